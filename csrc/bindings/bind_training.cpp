// Bindings of the training kernels (pykernels/training.hpp): fused softmax + cross-entropy and the fused
// optimizer updates. The updates work IN PLACE on the caller's arrays, so every in-place argument must
// be exactly the array the layer holds: an ndarray, writeable, C-contiguous, of the parameter's dtype
// and shape. Anything else is an error; nothing is ever silently copied and updated on the copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "array_cast.hpp"
#include "pykernels/training.hpp"

namespace pk::py_bind {

namespace {

std::string shape_of_arr(const py::array& a) {
  std::vector<int64_t> s(a.shape(), a.shape() + a.ndim());
  return shape_str(s.data(), int(a.ndim()));
}

bool c_contiguous(const py::array& a) {
  return (a.flags() & py::array::c_style) != 0;
}

DType dt_of(const py::array& a) { return a.dtype().num() == npy_type_num(DType::f32) ? DType::f32 : DType::f64; }

// A read-only float input as the kernels read it: C-contiguous, aligned, native byte order, of
// dtype dt; `a` itself when it already is, else a converted copy ('>f4' or unaligned data included:
// np.ascontiguousarray keeps an unaligned array as it is).
py::array native_c(const py::array& a, DType dt) {
  if (a.dtype().num() == npy_type_num(dt) && c_contiguous(a) && kernel_addressable(a)) return a;  // exactly dt, not float16
  return py::module_::import("numpy").attr("array")(a, py::arg("dtype") = dtype_name(dt), py::arg("copy") = true,
                                                   py::arg("order") = "C");
}

// An array that the kernel updates in place (parameter, optimizer state, output buffer).
py::array inplace_array(const py::handle& h, const char* fn, const char* name, const py::array* like) {
  if (!py::isinstance<py::array>(h))
    throw TypeError(std::string(fn) + ": '" + name + "' must be a numpy.ndarray (it is updated in place), got " +
                    std::string(Py_TYPE(h.ptr())->tp_name));
  reject_masked(h, fn, name);
  py::array a = py::reinterpret_borrow<py::array>(h);
  dtype_of(a, fn, name);
  if (!a.writeable()) throw ValueError(std::string(fn) + ": '" + name + "' is read-only (it is updated in place)");
  if (!c_contiguous(a))
    throw ValueError(std::string(fn) + ": '" + name +
                     "' must be C-contiguous (it is updated in place; use np.ascontiguousarray once, and keep "
                     "that array)");
  if (!kernel_addressable(a))
    throw ValueError(std::string(fn) + ": '" + name + "' must be aligned and in native byte order (it is updated in " +
                     "place), got dtype " + std::string(py::str(a.dtype())) +
                     (native_byte_order(a) ? " with unaligned data" : "") +
                     "; convert it once with np.ascontiguousarray(x, dtype=x.dtype.newbyteorder('='))");
  if (like) {
    if (a.dtype().num() != like->dtype().num())
      throw TypeError(std::string(fn) + ": '" + name + "' has dtype " + std::string(py::str(a.dtype())) +
                      " but the parameter has dtype " + std::string(py::str(like->dtype())));
    bool same = a.ndim() == like->ndim();
    for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == like->shape(i);
    if (!same)
      throw ValueError(std::string(fn) + ": '" + name + "' has shape " + shape_of_arr(a) +
                       " but the parameter has shape " + shape_of_arr(*like));
  }
  return a;
}

// A read-only input of the same dtype/shape as `like` (C-contiguous; converted only if it is not, the
// input is never modified).
py::array input_like(const py::handle& h, const char* fn, const char* name, const py::array& like) {
  reject_masked(h, fn, name);
  py::array a = py::isinstance<py::array>(h) ? py::reinterpret_borrow<py::array>(h)
                                             : py::array(py::module_::import("numpy").attr("asarray")(h));
  dtype_of(a, fn, name);
  if (a.dtype().num() != like.dtype().num())
    throw TypeError(std::string(fn) + ": '" + name + "' has dtype " + std::string(py::str(a.dtype())) +
                    " but the parameter has dtype " + std::string(py::str(like.dtype())));
  bool same = a.ndim() == like.ndim();
  for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == like.shape(i);
  if (!same)
    throw ValueError(std::string(fn) + ": '" + name + "' has shape " + shape_of_arr(a) +
                     " but the parameter has shape " + shape_of_arr(like));
  return native_c(a, dt_of(like));
}

bool overlaps(const py::array& a, const py::array& b) {
  if (a.size() == 0 || b.size() == 0) return false;
  const char* a0 = static_cast<const char*>(a.data());
  const char* b0 = static_cast<const char*>(b.data());
  const char* a1 = a0 + a.nbytes();
  const char* b1 = b0 + b.nbytes();
  return a0 < b1 && b0 < a1;
}

void no_overlap(const py::array& a, const char* an, const py::array& b, const char* bn, const char* fn) {
  if (overlaps(a, b))
    throw ValueError(std::string(fn) + ": '" + an + "' and '" + bn + "' share memory; they must be distinct arrays");
}

void check_hyper(double v, const char* fn, const char* name, bool positive) {
  if (!std::isfinite(v) || v < 0.0 || (positive && v == 0.0))
    throw ValueError(std::string(fn) + ": " + name + " must be a finite number " + (positive ? "> 0" : ">= 0") +
                     ", got " + std::to_string(v));
}

template <class F>
void maybe_nogil(int64_t n, F&& f) {
  if (n >= kReleaseGilMin) {
    py::gil_scoped_release nogil;
    f();
  } else {
    f();
  }
}

// ---- softmax + cross-entropy -----------------------------------------------------------------------

struct SceArgs {
  py::array logits = null_array();
  py::array labels = null_array();  // int64 (N,), valid when has_labels
  py::array target = null_array();  // logits dtype (N,C), valid when !has_labels
  bool has_labels = false;
  DType dt = DType::f32;
  int64_t N = 0, C = 0;
};

SceArgs parse_sce(const py::handle& logits_h, const py::handle& labels_h, const char* fn) {
  py::object np = py::module_::import("numpy");
  SceArgs s;
  reject_masked(logits_h, fn, "logits");
  reject_masked(labels_h, fn, "labels");
  s.logits = py::isinstance<py::array>(logits_h) ? py::reinterpret_borrow<py::array>(logits_h)
                                                 : py::array(np.attr("asarray")(logits_h));
  s.dt = dtype_of(s.logits, fn, "logits");
  if (s.logits.ndim() != 2)
    throw ValueError(std::string(fn) + ": logits must be 2-d (N, C), got shape " + shape_of_arr(s.logits));
  s.N = s.logits.shape(0);
  s.C = s.logits.shape(1);
  if (s.C == 0 && s.N > 0) throw ValueError(std::string(fn) + ": logits has 0 classes (shape " + shape_of_arr(s.logits) + ")");
  s.logits = native_c(s.logits, s.dt);
  py::array lab = py::isinstance<py::array>(labels_h) ? py::reinterpret_borrow<py::array>(labels_h)
                                                      : py::array(np.attr("asarray")(labels_h));
  const char kind = lab.dtype().kind();
  if (lab.ndim() == 1) {
    if (kind != 'i' && kind != 'u')
      throw TypeError(std::string(fn) + ": sparse labels must be integers (class indices), got dtype " +
                      std::string(py::str(lab.dtype())));
    if (lab.shape(0) != s.N)
      throw ValueError(std::string(fn) + ": labels has shape " + shape_of_arr(lab) + " but logits has shape " +
                       shape_of_arr(s.logits) + " (need one label per row)");
    if (lab.dtype().num() == py::dtype::of<int64_t>().num() && c_contiguous(lab) && kernel_addressable(lab)) {
      s.labels = lab;  // the common case: no NumPy call at all
    } else {
      if (kind == 'u' && lab.itemsize() == 8 && lab.size() > 0) {
        // uint64 labels >= 2**63 would wrap to negative int64 values: report the real value.
        py::object mx = lab.attr("max")();
        if (mx.cast<uint64_t>() > uint64_t(INT64_MAX))
          throw ValueError("label " + std::string(py::str(mx)) + " at index " +
                           std::string(py::str(lab.attr("argmax")())) + " is out of range for " + std::to_string(s.C) +
                           " classes (expected 0 <= label < " + std::to_string(s.C) + ")");
      }
      s.labels = np.attr("array")(lab, py::arg("dtype") = np.attr("int64"), py::arg("copy") = true,
                                  py::arg("order") = "C");
    }
    s.has_labels = true;
  } else if (lab.ndim() == 2) {
    if (kind != 'f')
      throw TypeError(std::string(fn) + ": one-hot / probability targets must be floating point, got dtype " +
                      std::string(py::str(lab.dtype())));
    if (lab.shape(0) != s.N || lab.shape(1) != s.C)
      throw ValueError(std::string(fn) + ": targets have shape " + shape_of_arr(lab) + " but logits has shape " +
                       shape_of_arr(s.logits));
    s.target = native_c(lab, s.dt);
  } else {
    throw ValueError(std::string(fn) + ": labels must be (N,) class indices or (N, C) targets, got shape " +
                     shape_of_arr(lab));
  }
  return s;
}

py::array out_2d(const py::handle& h, const SceArgs& s, const char* fn, const char* name) {
  if (h.is_none()) return new_array(s.dt, {s.N, s.C});
  py::array a = inplace_array(h, fn, name, &s.logits);
  if (overlaps(a, s.logits) && a.data() != s.logits.data())
    throw ValueError(std::string(fn) + ": '" + name + "' partially overlaps logits");
  if (!s.has_labels && overlaps(a, s.target))
    throw ValueError(std::string(fn) + ": '" + name + "' overlaps the targets");
  return a;
}

py::object sce_forward(const py::handle& logits, const py::handle& labels, const py::handle& probs,
                       const py::handle& dlogits, double dloss) {
  const char* fn = "softmax_cross_entropy";
  SceArgs s = parse_sce(logits, labels, fn);
  void* pd = nullptr;
  void* dd = nullptr;
  py::array p = null_array(), d = null_array();
  if (!probs.is_none()) {
    p = out_2d(probs, s, fn, "probs");
    pd = p.mutable_data();
  }
  if (!dlogits.is_none()) {
    d = out_2d(dlogits, s, fn, "dlogits");
    dd = d.mutable_data();
    if (pd && overlaps(p, d)) throw ValueError(std::string(fn) + ": 'probs' and 'dlogits' share memory");
  }
  const int64_t* lab = s.has_labels ? static_cast<const int64_t*>(s.labels.data()) : nullptr;
  const void* tgt = s.has_labels ? nullptr : s.target.data();
  double loss = 0.0;
  maybe_nogil(s.N * s.C,
              [&] { loss = softmax_cross_entropy_forward(pd, dd, s.logits.data(), lab, tgt, s.dt, s.N, s.C, dloss); });
  return py::float_(loss);
}

py::array sce_backward(const py::handle& logits, const py::handle& labels, double dloss, const py::handle& dlogits) {
  const char* fn = "softmax_cross_entropy_backward";
  SceArgs s = parse_sce(logits, labels, fn);
  py::array d = out_2d(dlogits, s, fn, "dlogits");
  const int64_t* lab = s.has_labels ? static_cast<const int64_t*>(s.labels.data()) : nullptr;
  const void* tgt = s.has_labels ? nullptr : s.target.data();
  void* dd = d.mutable_data();
  maybe_nogil(s.N * s.C,
              [&] { softmax_cross_entropy_backward(dd, s.logits.data(), lab, tgt, s.dt, s.N, s.C, dloss); });
  return d;
}

// ---- optimizers --------------------------------------------------------------------------------------

void sgd(const py::handle& param, const py::handle& grad, double lr, double momentum, const py::handle& velocity,
         bool nesterov) {
  const char* fn = "sgd_update";
  py::array w = inplace_array(param, fn, "param", nullptr);
  py::array g = input_like(grad, fn, "grad", w);
  check_hyper(lr, fn, "learning_rate", false);
  check_hyper(momentum, fn, "momentum", false);
  no_overlap(w, "param", g, "grad", fn);
  void* md = nullptr;
  if (momentum != 0.0) {
    if (velocity.is_none()) throw ValueError(std::string(fn) + ": momentum != 0 needs a 'velocity' array");
    py::array m = inplace_array(velocity, fn, "velocity", &w);
    no_overlap(m, "velocity", w, "param", fn);
    no_overlap(m, "velocity", g, "grad", fn);
    md = m.mutable_data();
  }
  void* wd = w.mutable_data();
  maybe_nogil(w.size(), [&] { sgd_update(wd, md, g.data(), dt_of(w), w.size(), lr, momentum, nesterov); });
}

void rmsprop(const py::handle& param, const py::handle& grad, const py::handle& velocity, double lr, double rho,
             double eps, double momentum, const py::handle& mom_buf) {
  const char* fn = "rmsprop_update";
  py::array w = inplace_array(param, fn, "param", nullptr);
  py::array g = input_like(grad, fn, "grad", w);
  py::array v = inplace_array(velocity, fn, "velocity", &w);
  check_hyper(lr, fn, "learning_rate", false);
  check_hyper(rho, fn, "rho", false);
  check_hyper(eps, fn, "epsilon", false);
  check_hyper(momentum, fn, "momentum", false);
  no_overlap(w, "param", g, "grad", fn);
  no_overlap(w, "param", v, "velocity", fn);
  no_overlap(v, "velocity", g, "grad", fn);
  void* md = nullptr;
  if (momentum != 0.0) {
    if (mom_buf.is_none()) throw ValueError(std::string(fn) + ": momentum != 0 needs a 'momentums' array");
    py::array m = inplace_array(mom_buf, fn, "momentums", &w);
    no_overlap(m, "momentums", w, "param", fn);
    no_overlap(m, "momentums", v, "velocity", fn);
    no_overlap(m, "momentums", g, "grad", fn);
    md = m.mutable_data();
  }
  void* wd = w.mutable_data();
  void* vd = v.mutable_data();
  maybe_nogil(w.size(), [&] { rmsprop_update(wd, vd, md, g.data(), dt_of(w), w.size(), lr, rho, eps, momentum); });
}

void adam(const py::handle& param, const py::handle& grad, const py::handle& m_h, const py::handle& v_h,
          double alpha, double beta1, double beta2, double eps, const py::handle& vhat_h) {
  const char* fn = "adam_update";
  py::array w = inplace_array(param, fn, "param", nullptr);
  py::array g = input_like(grad, fn, "grad", w);
  py::array m = inplace_array(m_h, fn, "m", &w);
  py::array v = inplace_array(v_h, fn, "v", &w);
  check_hyper(alpha, fn, "alpha", false);
  check_hyper(beta1, fn, "beta_1", false);
  check_hyper(beta2, fn, "beta_2", false);
  check_hyper(eps, fn, "epsilon", false);
  if (beta1 >= 1.0 || beta2 >= 1.0) throw ValueError(std::string(fn) + ": beta_1 and beta_2 must be < 1");
  no_overlap(w, "param", g, "grad", fn);
  no_overlap(w, "param", m, "m", fn);
  no_overlap(w, "param", v, "v", fn);
  no_overlap(m, "m", v, "v", fn);
  no_overlap(m, "m", g, "grad", fn);
  no_overlap(v, "v", g, "grad", fn);
  void* vhd = nullptr;
  if (!vhat_h.is_none()) {
    py::array vh = inplace_array(vhat_h, fn, "vhat", &w);
    for (auto* o : {&w, &g, &m, &v}) no_overlap(vh, "vhat", *o, "another argument", fn);
    vhd = vh.mutable_data();
  }
  void* wd = w.mutable_data();
  void* mdd = m.mutable_data();
  void* vd = v.mutable_data();
  maybe_nogil(w.size(),
              [&] { adam_update(wd, mdd, vd, vhd, g.data(), dt_of(w), w.size(), alpha, beta1, beta2, eps); });
}

void adagrad(const py::handle& param, const py::handle& grad, const py::handle& acc_h, double lr, double eps) {
  const char* fn = "adagrad_update";
  py::array w = inplace_array(param, fn, "param", nullptr);
  py::array g = input_like(grad, fn, "grad", w);
  py::array a = inplace_array(acc_h, fn, "accumulator", &w);
  check_hyper(lr, fn, "learning_rate", false);
  check_hyper(eps, fn, "epsilon", false);
  no_overlap(w, "param", g, "grad", fn);
  no_overlap(w, "param", a, "accumulator", fn);
  no_overlap(a, "accumulator", g, "grad", fn);
  void* wd = w.mutable_data();
  void* ad = a.mutable_data();
  maybe_nogil(w.size(), [&] { adagrad_update(wd, ad, g.data(), dt_of(w), w.size(), lr, eps); });
}

}  // namespace

void bind_training(py::module_& m) {
  // Docstrings open with the text signature ("name(...)\n--\n\n": help() and inspect.signature read
  // it) instead of pybind11's "name(arg0: object, ...)" line.
  py::options options;
  options.disable_function_signatures();
  m.def("softmax_cross_entropy", &sce_forward, py::arg("logits"), py::arg("labels"), py::kw_only(),
        py::arg("probs") = py::none(), py::arg("dlogits") = py::none(), py::arg("dloss") = 1.0,
        "softmax_cross_entropy(logits, labels, *, probs=None, dlogits=None, dloss=1.0)\n--\n\n" R"pbdoc(Mean softmax cross-entropy of ``logits`` (N, C) against ``labels``.

``labels`` is either sparse class indices (N,) of any integer dtype, each in [0, C), or dense
one-hot / probability targets (N, C). Numerically stable (max-shifted, sums in double). When
``probs`` (an (N, C) array of the logits' dtype) is given, softmax(logits) is written into it; when
``dlogits`` is given, the gradient ``dloss * (softmax(logits) - onehot) / N`` too, in the same pass
(the training step's forward and backward of the loss in one call).
Returns a Python float. Equals ``reference.softmax_cross_entropy``.

>>> import numpy as np, pykernels as pk
>>> round(pk.softmax_cross_entropy(np.zeros((2, 4), np.float32), np.array([0, 3])), 6)
1.386294
)pbdoc");
  m.def("softmax_cross_entropy_backward", &sce_backward, py::arg("logits"), py::arg("labels"), py::kw_only(),
        py::arg("dloss") = 1.0, py::arg("dlogits") = py::none(),
        "softmax_cross_entropy_backward(logits, labels, *, dloss=1.0, dlogits=None)\n--\n\n" R"pbdoc(Gradient of the mean softmax cross-entropy: ``dloss * (softmax(logits) - onehot) / N``.

One pass per row; ``dlogits`` (optional preallocated (N, C) output, may be ``logits`` itself) is
overwritten and returned.

>>> import numpy as np, pykernels as pk
>>> pk.softmax_cross_entropy_backward(np.zeros((2, 2), np.float32), np.array([0, 1]))
array([[-0.25,  0.25],
       [ 0.25, -0.25]], dtype=float32)
)pbdoc");
  m.def("sgd_update", &sgd, py::arg("param"), py::arg("grad"), py::kw_only(), py::arg("learning_rate"),
        py::arg("momentum") = 0.0, py::arg("velocity") = py::none(), py::arg("nesterov") = false,
        "sgd_update(param, grad, *, learning_rate, momentum=0.0, velocity=None, nesterov=False)\n--\n\n" R"pbdoc(Keras SGD step, in place on ``param`` (and ``velocity``), one fused pass.

momentum == 0: ``w -= lr*g``; else ``m = momentum*m - lr*g; w += m`` (nesterov:
``w += momentum*m - lr*g``). Source: keras/src/optimizers/sgd.py.

>>> import numpy as np, pykernels as pk
>>> w, g = np.ones(3, np.float32), np.array([1, 2, 4], np.float32)
>>> pk.sgd_update(w, g, learning_rate=0.25)
>>> w
array([0.75, 0.5 , 0.  ], dtype=float32)
)pbdoc");
  m.def("rmsprop_update", &rmsprop, py::arg("param"), py::arg("grad"), py::arg("velocity"), py::kw_only(),
        py::arg("learning_rate") = 1e-3, py::arg("rho") = 0.9, py::arg("epsilon") = 1e-7, py::arg("momentum") = 0.0,
        py::arg("momentums") = py::none(),
        "rmsprop_update(param, grad, velocity, *, learning_rate=0.001, rho=0.9, epsilon=1e-07, momentum=0.0, "
        "momentums=None)\n--\n\n" R"pbdoc(Keras RMSprop step, in place on ``param`` and ``velocity``, one fused pass.

``v = rho*v + (1-rho)*g**2; inc = lr*g / sqrt(v + eps)`` (epsilon INSIDE the square root, as
Keras); ``w -= inc`` or, with momentum, ``mom = momentum*mom + inc; w -= mom``.
Source: keras/src/optimizers/rmsprop.py.

>>> import numpy as np, pykernels as pk
>>> w, g, v = np.zeros(2), np.array([1.0, -1.0]), np.zeros(2)
>>> pk.rmsprop_update(w, g, v, learning_rate=0.1, rho=0.9, epsilon=0.0)
>>> v, w.round(4)
(array([0.1, 0.1]), array([-0.3162,  0.3162]))
)pbdoc");
  m.def("adam_update", &adam, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"), py::kw_only(),
        py::arg("alpha"), py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999, py::arg("epsilon") = 1e-7,
        py::arg("vhat") = py::none(),
        "adam_update(param, grad, m, v, *, alpha, beta_1=0.9, beta_2=0.999, epsilon=1e-07, vhat=None)\n--\n\n"
        R"pbdoc(Keras Adam step, in place on ``param``, ``m``, ``v`` (and ``vhat`` for AMSGrad).

``m += (g - m)*(1-beta_1); v += (g**2 - v)*(1-beta_2); w -= m*alpha / (sqrt(v) + eps)`` with
``alpha = lr*sqrt(1-beta_2**t)/(1-beta_1**t)`` computed by the caller for step t (1-based).
Source: keras/src/optimizers/adam.py.

>>> import numpy as np, pykernels as pk
>>> w, g, m, v = np.zeros(2), np.array([1.0, -1.0]), np.zeros(2), np.zeros(2)
>>> pk.adam_update(w, g, m, v, alpha=0.1, epsilon=0.0)
>>> m, v, w.round(4)
(array([ 0.1, -0.1]), array([0.001, 0.001]), array([-0.3162,  0.3162]))
)pbdoc");
  m.def("adagrad_update", &adagrad, py::arg("param"), py::arg("grad"), py::arg("accumulator"), py::kw_only(),
        py::arg("learning_rate") = 1e-3, py::arg("epsilon") = 1e-7,
        "adagrad_update(param, grad, accumulator, *, learning_rate=0.001, epsilon=1e-07)\n--\n\n" R"pbdoc(Keras Adagrad step, in place: ``acc += g**2; w -= lr*g / sqrt(acc + eps)``.

Source: keras/src/optimizers/adagrad.py.

>>> import numpy as np, pykernels as pk
>>> w, g, acc = np.zeros(2), np.array([1.0, -1.0]), np.zeros(2)
>>> pk.adagrad_update(w, g, acc, learning_rate=0.1, epsilon=0.0)
>>> acc, w
(array([1., 1.]), array([-0.1,  0.1]))
)pbdoc");
}

}  // namespace pk::py_bind
