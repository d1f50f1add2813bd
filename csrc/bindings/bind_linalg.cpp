// Bindings of the matrix products (csrc/cpu/linalg.cpp): dot, matmul, their backward passes and the
// fused dense layer. Each one parses its arguments (GIL held, NumPy's error words), allocates or
// checks the outputs, calls one pk:: function with the GIL released when the work is big, and
// returns.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <vector>

#include "array_cast.hpp"
#include "fastcall.hpp"
#include "pykernels/dispatch.hpp"
#include "pykernels/elementwise.hpp"
#include "pykernels/gemm.hpp"
#include "pykernels/linalg.hpp"
#include "pykernels/parallel.hpp"

namespace pk::py_bind {

namespace {

// Products with fewer multiply-adds than this keep the GIL (releasing costs more than the work).
constexpr double kReleaseGilFlops = 65536.0;

// Parses and promotes `n` operands to one float dtype; Python scalars become 0-d arrays. np.dot is
// not a ufunc: it converts a Python float or int to a float64/int64 array before promoting, so
// np.dot(float32 array, 2.0) is float64 (a bool stays weak: bool with float32 is float32). The
// other products reject 0-d operands, so the rule only shows in dot and dot_backward.
DType parse_all(Operand* ops, const py::handle* objs, const char* const* names, int n, const char* fn) {
  for (int i = 0; i < n; ++i) {
    ops[i] = parse_operand(objs[i], fn, names[i]);
    if (ops[i].weak && !PyBool_Check(objs[i].ptr())) {
      ops[i].arr = py::module_::import("numpy").attr("asarray")(ops[i].scalar, "float64");
      ops[i].weak = false;
    }
  }
  const DType dt = result_dtype(ops, n);
  for (int i = 0; i < n; ++i) {
    if (ops[i].weak) {
      ops[i].arr = py::module_::import("numpy").attr("asarray")(ops[i].scalar, dtype_name(dt));
      ops[i].weak = false;
    }
    finalize(ops[i], dt);
    refuse_unmaterialisable(ops[i].view);
  }
  return dt;
}

bool is_c_contiguous(const py::array& a) { return (a.flags() & py::array::c_style) != 0; }

std::string shp(const View& v) { return shape_str(v.shape, v.ndim); }

// out= for dot/matmul/dense: an ndarray of the result's shape, writeable, of the result's dtype
// (dot, dense) or any float dtype (matmul, cast through a temporary).
// np.dot (and dense, which replaces x @ W) take a C-Array only (C-contiguous, aligned, native byte
// order: NumPy's NPY_ARRAY_CARRAY); np.matmul takes any layout (any_layout: views, Fortran order,
// negative strides, byte-swapped or unaligned data, the last two written through a temporary).
py::array check_product_out(const py::handle& out, DType dt, const std::vector<int64_t>& shape, const char* fn,
                            bool any_layout = false) {
  if (!py::isinstance<py::array>(out)) throw TypeError(std::string(fn) + ": out must be a numpy.ndarray");
  py::array arr = py::reinterpret_borrow<py::array>(out);
  if (!any_layout && arr.dtype().num() != npy_type_num(dt))
    throw ValueError(std::string(fn) +
                     ": output array is not acceptable (must have the right datatype, number of dimensions, and be "
                     "a C-Array): out has dtype " + std::string(py::str(arr.dtype())) + ", the result " +
                     dtype_name(dt));
  check_out(arr, dt, shape.data(), int(shape.size()), fn, /*same_kind=*/any_layout);
  if (!any_layout && (!is_c_contiguous(arr) || !kernel_addressable(arr)))
    throw ValueError(std::string(fn) +
                     ": output array is not acceptable (must have the right datatype, number of dimensions, and be "
                     "a C-Array)");
  return arr;
}

// A preallocated gradient buffer (dense_backward dx/dW/db): exact type, dtype, shape, writeable,
// C-contiguous.
py::array check_buffer(const py::handle& h, DType dt, const std::vector<int64_t>& shape, const char* fn,
                       const char* name) {
  if (!py::isinstance<py::array>(h))
    throw TypeError(std::string(fn) + ": " + name + " must be a numpy.ndarray or None, got " +
                    Py_TYPE(h.ptr())->tp_name);
  py::array arr = py::reinterpret_borrow<py::array>(h);
  const DType got = dtype_of(arr, fn, name);
  if (got != dt)
    throw TypeError(std::string(fn) + ": " + name + " has dtype " + dtype_name(got) + ", expected " + dtype_name(dt));
  std::vector<int64_t> s(arr.shape(), arr.shape() + arr.ndim());
  if (s != shape)
    throw ValueError(std::string(fn) + ": " + name + " has shape " + shape_str(s.data(), int(s.size())) +
                     ", expected " + shape_str(shape.data(), int(shape.size())));
  if (!arr.writeable()) throw ValueError(std::string(fn) + ": " + name + " is read-only");
  if (!is_c_contiguous(arr)) throw ValueError(std::string(fn) + ": " + name + " must be C-contiguous");
  if (!kernel_addressable(arr))
    throw ValueError(std::string(fn) + ": " + name + " must be aligned and in native byte order, got dtype " +
                     std::string(py::str(arr.dtype())) + (native_byte_order(arr) ? " (unaligned data)" : ""));
  return arr;
}

struct NoGil {
  explicit NoGil(double flops) {
    if (flops >= kReleaseGilFlops) st = PyEval_SaveThread();
  }
  ~NoGil() {
    if (st) PyEval_RestoreThread(st);
  }
  PyThreadState* st = nullptr;
};

// ---- dot -----------------------------------------------------------------------------------------
py::object dot_call(const py::handle& a, const py::handle& b, const py::handle& out) {
  const char* fn = "pykernels.dot";
  Operand ops[2];
  const py::handle objs[2] = {a, b};
  const char* names[2] = {"a", "b"};
  const DType dt = parse_all(ops, objs, names, 2, fn);
  const View &va = ops[0].view, &vb = ops[1].view;
  const bool scalar = va.ndim == 0 || vb.ndim == 0;  // np.dot with a 0-d operand: the product
  const int64_t K = scalar ? 1 : dot_dims(va, vb).K;
  const std::vector<int64_t> shape = dot_shape(va, vb);
  py::array res = out.is_none() ? new_array(dt, shape) : check_product_out(out, dt, shape, fn);
  View rv = direct_view(res);
  py::array tmp = res;
  if (!out.is_none() && (may_overlap(rv, va) || may_overlap(rv, vb))) {
    tmp = new_array(dt, shape);  // out aliases an input: compute into a temporary, then copy
    rv = direct_view(tmp);
  }
  {
    NoGil nogil(product_flops(rv, K));
    pk::dot(rv, va, vb);
  }
  if (!tmp.is(res)) py::module_::import("numpy").attr("copyto")(res, tmp);
  // vector . vector into a 0-d out: np.dot fills out and returns the value as a NumPy scalar.
  return out.is_none() || res.ndim() == 0 ? maybe_scalar(res) : py::object(res);
}

// ---- matmul --------------------------------------------------------------------------------------
py::object matmul_call(const py::handle& a, const py::handle& b, py::handle out) {
  const char* fn = "matmul";
  if (py::isinstance<py::tuple>(out)) {  // np.matmul is a ufunc: out=(arr,) is the same as out=arr
    py::tuple t = py::reinterpret_borrow<py::tuple>(out);
    if (t.size() != 1) throw ValueError("pykernels.matmul: out must be an array or a 1-tuple of arrays");
    out = t[0];
  }
  Operand ops[2];
  const py::handle objs[2] = {a, b};
  const char* names[2] = {"a", "b"};
  const DType dt = parse_all(ops, objs, names, 2, "pykernels.matmul");
  const View &va = ops[0].view, &vb = ops[1].view;
  const MatmulDims d = matmul_dims(va, vb, fn);
  const std::vector<int64_t> shape = matmul_shape(d);
  py::array res =
      out.is_none() ? new_array(dt, shape) : check_product_out(out, dt, shape, "pykernels.matmul", true);
  py::array tmp = res;
  View rv;
  // A temporary when out is not addressable by the kernels (byte-swapped, unaligned), shares
  // memory with an input, or with itself (a zero stride over a dimension longer than 1: the
  // batched driver would read it as a sum over that dimension).
  bool use_tmp = !kernel_addressable(res) || res.dtype().num() != npy_type_num(dt);  // + another float dtype
  if (!use_tmp) {
    rv = direct_view(res);
    use_tmp = has_internal_overlap(rv) || (!out.is_none() && (may_overlap(rv, va) || may_overlap(rv, vb)));
  }
  if (use_tmp) {
    tmp = new_array(dt, shape);
    rv = direct_view(tmp);
  }
  {
    NoGil nogil(product_flops(rv, d.K));
    pk::matmul(rv, va, vb);
  }
  if (!tmp.is(res)) py::module_::import("numpy").attr("copyto")(res, tmp);
  return out.is_none() ? maybe_scalar(res) : py::object(res);
}

// ---- backward passes ---------------------------------------------------------------------------
py::object as_result(py::array a) { return maybe_scalar(std::move(a)); }

void check_dout(const View& dout, const std::vector<int64_t>& expected, const char* fn, const char* op) {
  if (shape_of(dout) != expected)
    throw ValueError(std::string(fn) + ": dout has shape " + shp(dout) + " but " + op + "(a, b) has shape " +
                     shape_str(expected.data(), int(expected.size())));
}

py::tuple dot_backward_call(const py::handle& dout, const py::handle& a, const py::handle& b) {
  const char* fn = "pykernels.dot_backward";
  Operand ops[3];
  const py::handle objs[3] = {dout, a, b};
  const char* names[3] = {"dout", "a", "b"};
  const DType dt = parse_all(ops, objs, names, 3, fn);
  const View &vd = ops[0].view, &va = ops[1].view, &vb = ops[2].view;
  const int64_t K = va.ndim == 0 || vb.ndim == 0 ? 1 : dot_dims(va, vb).K;
  check_dout(vd, dot_shape(va, vb), fn, "dot");
  py::array da = new_array(dt, shape_of(va)), db = new_array(dt, shape_of(vb));
  {
    NoGil nogil(2.0 * product_flops(vd, K));
    pk::dot_backward(direct_view(da), direct_view(db), vd, va, vb);
  }
  return py::make_tuple(as_result(da), as_result(db));
}

py::tuple matmul_backward_call(const py::handle& dout, const py::handle& a, const py::handle& b) {
  const char* fn = "pykernels.matmul_backward";
  Operand ops[3];
  const py::handle objs[3] = {dout, a, b};
  const char* names[3] = {"dout", "a", "b"};
  const DType dt = parse_all(ops, objs, names, 3, fn);
  const View &vd = ops[0].view, &va = ops[1].view, &vb = ops[2].view;
  const MatmulDims d = matmul_dims(va, vb, "matmul");
  check_dout(vd, matmul_shape(d), fn, "matmul");
  py::array da = new_array(dt, shape_of(va)), db = new_array(dt, shape_of(vb));
  {
    NoGil nogil(2.0 * product_flops(vd, d.K));
    pk::matmul_backward(direct_view(da), direct_view(db), vd, va, vb);
  }
  return py::make_tuple(as_result(da), as_result(db));
}

// ---- dense ---------------------------------------------------------------------------------------
bool parse_activation(const py::handle& act, const char* fn) {
  if (act.is_none()) return false;
  if (py::isinstance<py::str>(act)) {
    if (PyUnicode_CompareWithASCIIString(act.ptr(), "relu") == 0) return true;
    // repr(), not a UTF-8 copy: a str with lone surrogates has none
    throw ValueError(std::string(fn) + ": activation must be None or 'relu', got " + std::string(py::repr(act)));
  }
  throw TypeError(std::string(fn) + ": activation must be None or 'relu', got " + Py_TYPE(act.ptr())->tp_name);
}

py::object dense_call(const py::handle& x, const py::handle& w, const py::handle& b, const py::handle& activation,
                      const py::handle& out) {
  const char* fn = "pykernels.dense";
  const bool relu = parse_activation(activation, fn);
  Operand ops[3];
  const py::handle objs[3] = {x, w, b};
  const char* names[3] = {"x", "W", "b"};
  const int n = b.is_none() ? 2 : 3;
  const DType dt = parse_all(ops, objs, names, n, fn);
  const View &vx = ops[0].view, &vw = ops[1].view;
  const View* vb = n == 3 ? &ops[2].view : nullptr;
  dense_check(vx, vw, vb, fn);
  const int64_t M = vx.shape[0], K = vx.shape[1], N = vw.shape[1];
  const std::vector<int64_t> shape = {M, N};
  py::array res = out.is_none() ? new_array(dt, shape) : check_product_out(out, dt, shape, fn);
  View rv = direct_view(res);
  py::array tmp = res;
  bool overlap = false;
  for (int i = 0; i < n; ++i) overlap = overlap || (!out.is_none() && may_overlap(rv, ops[i].view));
  if (overlap) {
    tmp = new_array(dt, shape);
    rv = direct_view(tmp);
  }
  {
    NoGil nogil(2.0 * double(M) * double(N) * double(K));
    dense_forward(rv, vx, vw, vb, relu);
  }
  if (!tmp.is(res)) py::module_::import("numpy").attr("copyto")(res, tmp);
  return std::move(res);
}

py::tuple dense_backward_call(const py::handle& dy, const py::handle& x, const py::handle& w, const py::handle& y,
                              const py::handle& activation, const py::handle& need_dx_h, const py::handle& dx_buf,
                              const py::handle& dw_buf, const py::handle& db_buf) {
  const char* fn = "pykernels.dense_backward";
  // A bool (or numpy.bool_): None or an array here is a mistake, not "no dx".
  if (!PyBool_Check(need_dx_h.ptr()) && !py::isinstance(need_dx_h, py::module_::import("numpy").attr("bool_")))
    throw TypeError(std::string(fn) + ": need_dx must be a bool, got " + Py_TYPE(need_dx_h.ptr())->tp_name);
  const bool need_dx = PyObject_IsTrue(need_dx_h.ptr()) == 1;
  const bool relu = parse_activation(activation, fn);
  if (relu && y.is_none())
    throw ValueError(std::string(fn) + ": activation='relu' needs the forward output y");
  Operand ops[4];
  const py::handle objs[4] = {dy, x, w, y};
  const char* names[4] = {"dy", "x", "W", "y"};
  const int n = relu ? 4 : 3;
  const DType dt = parse_all(ops, objs, names, n, fn);
  const View &vdy = ops[0].view, &vx = ops[1].view, &vw = ops[2].view;
  dense_check(vx, vw, nullptr, fn);
  const int64_t M = vx.shape[0], K = vx.shape[1], N = vw.shape[1];
  if (vdy.ndim != 2 || vdy.shape[0] != M || vdy.shape[1] != N)
    throw ValueError(std::string(fn) + ": dy has shape " + shp(vdy) + " but dense(x, W) has shape (" +
                     std::to_string(M) + "," + std::to_string(N) + ")");
  const View* vy = relu ? &ops[3].view : nullptr;
  if (vy && shape_of(*vy) != shape_of(vdy))
    throw ValueError(std::string(fn) + ": y has shape " + shp(*vy) + " but dy has shape " + shp(vdy));

  auto out_buf = [&](const py::handle& h, const std::vector<int64_t>& shape, const char* name) {
    if (h.is_none()) return new_array(dt, shape);
    py::array a = check_buffer(h, dt, shape, fn, name);
    View v = direct_view(a);
    for (int i = 0; i < n; ++i)
      if (may_overlap(v, ops[i].view))
        throw ValueError(std::string(fn) + ": " + name + " overlaps the input '" + names[i] + "'");
    return a;
  };
  py::array dW = out_buf(dw_buf, {K, N}, "dW");
  py::array db = out_buf(db_buf, {N}, "db");
  py::array dx = null_array();  // not default-constructed: that would allocate an empty array
  if (need_dx) dx = out_buf(dx_buf, {M, K}, "dx");
  View vdW = direct_view(dW), vdb = direct_view(db);
  if (may_overlap(vdW, vdb)) throw ValueError(std::string(fn) + ": dW and db overlap");
  View vdx;
  if (need_dx) {
    vdx = direct_view(dx);
    if (may_overlap(vdx, vdW) || may_overlap(vdx, vdb)) throw ValueError(std::string(fn) + ": dx overlaps dW or db");
  }
  {
    NoGil nogil((need_dx ? 4.0 : 2.0) * double(M) * double(N) * double(K));
    dense_backward(need_dx ? &vdx : nullptr, vdW, vdb, vdy, vx, vw, vy);
  }
  return py::make_tuple(need_dx ? py::object(dx) : py::object(py::none()), dW, db);
}

py::array gemm_naive_call(const py::handle& a, const py::handle& b) {
  const char* fn = "pykernels._gemm_naive";
  Operand ops[2];
  const py::handle objs[2] = {a, b};
  const char* names[2] = {"a", "b"};
  const DType dt = parse_all(ops, objs, names, 2, fn);
  const View &va = ops[0].view, &vb = ops[1].view;
  if (va.ndim != 2 || vb.ndim != 2) throw ValueError(std::string(fn) + ": a and b must be 2-d");
  dot_dims(va, vb);
  py::array r = new_array(dt, {va.shape[0], vb.shape[1]});
  View rv = direct_view(r);
  gemm_naive(dt, va.shape[0], vb.shape[1], va.shape[1], rv.data, rv.strides[0], rv.strides[1], va.data,
             va.strides[0], va.strides[1], vb.data, vb.strides[0], vb.strides[1]);
  return r;
}

}  // namespace

void bind_linalg(py::module_& m) {
  // dot, matmul, dense and dense_backward are raw METH_FASTCALL functions (fastcall.hpp): pybind11's
  // dispatcher cost more per call than the kernel of a small product.
  def_fast(m, "dot", {"a", "b", "out"}, 2, "(a, b, out=None)",
        R"pbdoc(Dot product of two arrays with ``np.dot``'s rules for every rank.

vector . vector -> scalar (a NumPy scalar, like ``np.dot``), matrix . vector, vector . matrix,
matrix . matrix, N-d . 1-d (sum over the last axis of ``a`` and ``b``) and N-d . M-d:
``dot(a, b)[i,j,k,m] = sum(a[i,j,:] * b[k,:,m])``. A 0-d operand multiplies element-wise.
float32 and float64 (mixed inputs promote like NumPy); other dtypes raise TypeError. Any strides
(transposed, sliced, negative) are read directly by the packing step of the GEMM: no copy first.
``out`` must be a writeable C-contiguous, aligned, native-byte-order array of the result's dtype and
shape, as ``np.dot`` requires; if it overlaps an input the result is computed into a temporary
first. Deterministic for every thread count.

>>> import numpy as np, pykernels as pk
>>> a = np.arange(6.0).reshape(2, 3); b = np.arange(12.0).reshape(3, 4)
>>> np.array_equal(pk.dot(a, b), np.dot(a, b))
True
>>> float(pk.dot(np.array([1.0, 2.0]), np.array([3.0, 4.0])))
11.0
>>> pk.dot(np.ones((2, 3)), np.ones((4, 5)))
Traceback (most recent call last):
...
ValueError: shapes (2,3) and (4,5) not aligned: 3 (dim 1) != 4 (dim 0)
)pbdoc",
        [](const py::handle* a) { return dot_call(a[0], a[1], a[2]); });
  def_fast(m, "matmul", {"a", "b", "out"}, 2, "(a, b, out=None)",
        R"pbdoc(Matrix product with ``np.matmul`` (``@``) rules.

Stacks of matrices broadcast; a 1-d ``a`` gets a 1 prepended and a 1-d ``b`` a 1 appended, removed
again from the result; 0-d operands are an error, as in NumPy. float32/float64, any strides.
``out`` (as in ``np.matmul``) may have any layout (Fortran order, a strided or reversed view, even
byte-swapped or unaligned data) and any float dtype (the result is cast into it, NumPy's same_kind
rule), but must have the result's shape and be writeable; if it overlaps an input the result is
computed into a temporary first.

>>> import numpy as np, pykernels as pk
>>> a = np.ones((5, 2, 3), np.float32); b = np.ones((3, 4), np.float32)
>>> pk.matmul(a, b).shape
(5, 2, 4)
>>> float(pk.matmul(np.ones(3), np.ones(3)))
3.0
)pbdoc",
        [](const py::handle* a) { return matmul_call(a[0], a[1], a[2]); });
  py::options options;  // the public functions' docstrings open with a text signature (no "arg0: object" line)
  options.disable_function_signatures();
  m.def("dot_backward", &dot_backward_call, py::arg("dout"), py::arg("a"), py::arg("b"),
        "dot_backward(dout, a, b)\n--\n\n" R"pbdoc(Gradients of ``out = dot(a, b)``: returns ``(da, db)`` with the shapes of ``a`` and ``b``.

For matrices ``da = dout . b^T`` and ``db = a^T . dout``; the vector and N-d forms follow from
``dot``'s index rule (sums over the axes that ``dot`` broadcast). ``dout`` must have the shape of
``dot(a, b)``.

>>> import numpy as np, pykernels as pk
>>> a = np.ones((2, 3)); b = np.ones((3, 4)); dout = np.ones((2, 4))
>>> da, db = pk.dot_backward(dout, a, b)
>>> np.array_equal(da, dout @ b.T) and np.array_equal(db, a.T @ dout)
True
)pbdoc");
  m.def("matmul_backward", &matmul_backward_call, py::arg("dout"), py::arg("a"), py::arg("b"),
        "matmul_backward(dout, a, b)\n--\n\n" R"pbdoc(Gradients of ``out = matmul(a, b)``: returns ``(da, db)`` with the shapes of ``a`` and ``b``.

``da = dout @ b^T``, ``db = a^T @ dout`` per stack element; where an operand's stack was broadcast,
its gradient is summed over the broadcast axes (in a fixed order: deterministic).

>>> import numpy as np, pykernels as pk
>>> a = np.ones((4, 2, 3)); b = np.ones((3, 5)); dout = np.ones((4, 2, 5))
>>> da, db = pk.matmul_backward(dout, a, b)
>>> da.shape, db.shape, float(db[0, 0])
((4, 2, 3), (3, 5), 8.0)
)pbdoc");
  options.enable_function_signatures();
  def_fast(m, "dense", {"x", "W", "b", "activation", "out"}, 2, "(x, W, b=None, activation=None, out=None)",
        R"pbdoc(Fused dense layer: ``relu(x @ W + b)`` (or ``x @ W + b`` without activation) in one GEMM.

x is (M,K), W is (K,N), b is (N,) or None; activation is None or ``"relu"``. The bias and the relu
(``np.maximum(v, 0)``: NaN propagates) are applied in the micro-kernel's store, while the output
tile is still in registers, so there is no extra pass over the output.

>>> import numpy as np, pykernels as pk
>>> x = np.array([[1.0, -2.0]], np.float32); W = np.eye(2, dtype=np.float32)
>>> pk.dense(x, W, np.array([0.5, 0.5], np.float32), activation="relu")
array([[1.5, 0. ]], dtype=float32)
)pbdoc",
        [](const py::handle* a) { return dense_call(a[0], a[1], a[2], a[3], a[4]); });
  def_fast(m, "dense_backward", {"dy", "x", "W", "y", "activation", "need_dx", "dx", "dW", "db"}, 3,
        "(dy, x, W, y=None, activation=None, need_dx=True, dx=None, dW=None, db=None)",
        R"pbdoc(Gradients of :func:`dense`: returns ``(dx, dW, db)``.

With ``activation="relu"`` the mask ``y > 0`` (y = the forward output) is applied to ``dy`` while
``dy`` is packed for the GEMMs (no masked copy of dy is made), and ``db`` (the column sums of the
masked dy, accumulated in float64) comes from the same packing pass. ``dW = x^T dy'``,
``dx = dy' W^T``; with ``need_dx=False`` dx is skipped and returned as None (the first layer of a
network needs no input gradient). ``dx``, ``dW``, ``db`` may be preallocated buffers (ndarray of the
exact dtype and shape, writeable, C-contiguous, aligned, native byte order, not overlapping the
inputs), which are overwritten and returned, so a training loop allocates nothing per batch.

>>> import numpy as np, pykernels as pk
>>> x = np.ones((4, 3)); W = np.ones((3, 2)); y = pk.dense(x, W, activation="relu")
>>> dx, dW, db = pk.dense_backward(np.ones((4, 2)), x, W, y=y, activation="relu")
>>> dx.shape, dW.shape, db.tolist()
((4, 3), (3, 2), [4.0, 4.0])
>>> pk.dense_backward(np.ones((4, 2)), x, W, need_dx=False)[0] is None
True
)pbdoc",
        [](const py::handle* a) { return dense_backward_call(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]); },
        {{"need_dx", py::bool_(true)}});
  m.def("_gemm_naive", &gemm_naive_call, py::arg("a"), py::arg("b"), "Reference triple-loop GEMM (2-d only).");
  // Test hooks of the GEMM's path choice (tests/test_gemm.py drives every path through them).
  m.def(
      "_gemm_force_path",
      [](const std::string& name) {
        for (int i = 0; i < int(GemmPath::Count); ++i)
          if (name == gemm_path_name(GemmPath(i))) return std::string(gemm_path_name(gemm_force_path(GemmPath(i))));
        throw ValueError("unknown GEMM path '" + name + "'");
      },
      py::arg("path"), "Force later products onto `path` where it applies ('auto' restores the choice); returns the previous one.");
  m.def(
      "_gemm_kernel_info",
      [](const std::string& dtype) {
        if (dtype != "float32" && dtype != "float64") throw ValueError("dtype must be 'float32' or 'float64'");
        const GemmKernels& g = kernels().gemm[dtype == "float32" ? 0 : 1];
        py::dict d;
        d["mr"] = g.mr;
        d["nr"] = g.nr;
        d["lanes"] = g.lanes;
        d["mr_short"] = g.mr_short;
        d["transpose_max_cols"] = g.transpose_max_cols;
        d["dot_n"] = g.dot_n != nullptr;
        d["direct"] = g.direct != nullptr;
        d["narrow_max_n"] = g.limits.narrow_max_n;
        d["dot_min_k"] = g.limits.dot_min_k;
        d["direct_max_bytes"] = g.limits.direct_max_bytes;
        return d;
      },
      py::arg("dtype"), "The active ISA's GEMM register tile, vector width and path thresholds (a test hook).");
  m.def(
      "_gemm_path",
      [](const py::handle& a, const py::handle& b) {
        Operand ops[2];
        const py::handle objs[2] = {a, b};
        const char* names[2] = {"a", "b"};
        const DType dt = parse_all(ops, objs, names, 2, "pykernels._gemm_path");
        const View &va = ops[0].view, &vb = ops[1].view;
        if (va.ndim != 2 || vb.ndim != 2) throw ValueError("pykernels._gemm_path: a and b must be 2-d");
        dot_dims(va, vb);
        // C is a new C-contiguous (M,N) array: rsc = N, csc = 1.
        return std::string(gemm_path_name(gemm_path_for(dt, va.shape[0], vb.shape[1], va.shape[1], va.strides[0],
                                                        va.strides[1], vb.strides[0], vb.strides[1], vb.shape[1], 1)));
      },
      py::arg("a"), py::arg("b"), "The path dot(a, b) takes for 2-d a and b (a test hook).");
}

}  // namespace pk::py_bind
