// Bindings of the element-wise kernels and the broadcast-undoing sums. Pattern in every function:
// parse and validate (GIL held) -> allocate the result -> release the GIL for the kernel -> return.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <vector>

#include "array_cast.hpp"
#include "fastcall.hpp"
#include "numpy_api.hpp"
#include "pykernels/elementwise.hpp"

namespace pk::py_bind {

namespace {

// Runs kernel(), without the GIL when it touches enough elements (n) for that to pay.
template <class Kernel>
void run_nogil(int64_t n, Kernel kernel) {
  if (n >= kReleaseGilMin) {
    py::gil_scoped_release nogil;
    kernel();
  } else {
    kernel();
  }
}

// out = op(inputs) for nin = 1 or 2 parsed operands, with NumPy's broadcasting, promotion and `out=`
// rules; kernel(out_view, input_views) runs the op. With fp_name (the NumPy ufunc's name), the FP
// exception flags the kernel raised (in any thread: parallel.cpp merges them) are handled as the
// ufunc does under np.errstate ("overflow encountered in multiply"); nullptr: the op's NumPy twin
// reports none (maximum's compares raise "invalid" on NaN, NumPy ignores it).
template <class Kernel>
py::object ufunc_call(const char* fn, Operand* ops, int nin, py::handle out, Kernel kernel,
                      const char* fp_name = nullptr) {
  const DType dt = result_dtype(ops, nin);
  const int64_t* shapes[2];
  int nds[2];
  for (int k = 0; k < nin; ++k) {
    finalize(ops[k], dt);
    shapes[k] = ops[k].view.shape;
    nds[k] = ops[k].view.ndim;
  }
  int64_t shape[kMaxDims];
  int nd = broadcast_shapes(nin, shapes, nds, shape);

  if (py::isinstance<py::tuple>(out)) {
    py::tuple t = py::reinterpret_borrow<py::tuple>(out);
    if (t.size() != 1) throw ValueError(std::string(fn) + ": out must be an array or a 1-tuple of arrays");
    out = t[0];
  }
  py::array res = null_array();
  if (out.is_none()) {
    res = new_array(dt, shape, nd);
  } else {
    if (!py::isinstance<py::array>(out)) throw TypeError("return arrays must be of ArrayType");
    py::array oarr = py::reinterpret_borrow<py::array>(out);
    // NumPy lets the inputs broadcast up to out's shape, never out to the inputs'.
    const int ond = int(oarr.ndim());
    if (ond > kMaxDims)
      throw ValueError("pykernels supports arrays of at most " + std::to_string(kMaxDims) + " dimensions, got " +
                       std::to_string(ond));
    int64_t os[kMaxDims];
    for (int i = 0; i < ond; ++i) os[i] = oarr.shape(i);
    int64_t full[kMaxDims];
    const int64_t* s3[2] = {shape, os};
    int n3[2] = {nd, ond};
    int fnd;
    try {
      fnd = broadcast_shapes(2, s3, n3, full);
    } catch (const ValueError&) {
      fnd = -1;
    }
    bool match = fnd == ond;
    for (int i = 0; match && i < fnd; ++i) match = full[i] == os[i];
    if (!match)
      throw ValueError("non-broadcastable output operand with shape " + shape_str(os, ond) +
                       " doesn't match the broadcast shape " +
                       shape_str(fnd >= 0 ? full : shape, fnd >= 0 ? fnd : nd));
    nd = ond;
    std::copy(os, os + ond, shape);
    res = check_out(oarr, dt, shape, nd, fn, /*same_kind=*/true);
  }

  View in[2];
  for (int k = 0; k < nin; ++k) in[k] = broadcast_view(ops[k].view, nd, shape);
  // A temporary for an out the kernels cannot address or of another float dtype (cast by copyto).
  bool need_tmp = !out.is_none() && (!kernel_addressable(res) || res.dtype().num() != npy_type_num(dt));
  View ov;
  if (!need_tmp) {
    ov = direct_view(res);
    if (has_internal_overlap(ov)) throw ValueError(std::string(fn) + ": out has internal overlap (a zero stride)");
    for (int k = 0; k < nin; ++k)
      if (may_overlap(ov, in[k]) && !same_view(ov, in[k])) need_tmp = true;
  }
  if (need_tmp) {
    // Partial overlap between out and an input (or an unaligned out): compute into a fresh array,
    // then copy, so the result is what NumPy gives.
    py::array tmp = new_array(dt, shape, nd);
    View tv = direct_view(tmp);
    clear_fp_flags();
    run_nogil(tv.size(), [&] { kernel(tv, in); });
    if (fp_name) check_fp_errors(fp_name);
    py::module_::import("numpy").attr("copyto")(res, tmp);
    return std::move(res);
  }
  clear_fp_flags();
  run_nogil(ov.size(), [&] { kernel(ov, in); });
  if (fp_name) check_fp_errors(fp_name);
  if (!out.is_none()) return std::move(res);
  return maybe_scalar(res);
}

// out = op(x1, x2): a binary op of the registry.
py::object binary_call(BinOp op, const char* fn, const py::handle& x1, const py::handle& x2, py::handle out,
                       const char* n1, const char* n2, const char* fp_name = nullptr) {
  Operand ops[2] = {parse_operand(x1, fn, n1), parse_operand(x2, fn, n2)};
  if (ops[0].weak && ops[1].weak && !ops[0].weak_float && !ops[1].weak_float)
    throw TypeError(std::string(fn) + ": both arguments are Python ints (NumPy would compute in int64); "
                    "pykernels computes in float32/float64 only, pass a float or an array");
  return ufunc_call(fn, ops, 2, out, [op](const View& o, const View* in) { binary(op, o, in[0], in[1]); }, fp_name);
}

// out = op(x): a unary op of the registry.
py::object unary_call(UnOp op, const char* fn, const py::handle& x, py::handle out, const char* name,
                      const char* fp_name = nullptr) {
  Operand ops[1] = {parse_operand(x, fn, name)};
  if (ops[0].weak && !ops[0].weak_float)
    throw TypeError(std::string(fn) + ": the argument is a Python int or bool (NumPy would keep its integer "
                    "type); pykernels computes in float32/float64 only, pass a float or an array");
  return ufunc_call(fn, ops, 1, out, [op](const View& o, const View* in) { unary(op, o, in[0]); }, fp_name);
}

int64_t as_index(const py::handle& h, const char* what) {
  PyObject* idx = PyNumber_Index(h.ptr());
  if (!idx) {
    PyErr_Clear();
    throw TypeError(std::string("'") + Py_TYPE(h.ptr())->tp_name + "' object cannot be interpreted as an integer" +
                    (what ? std::string(" (") + what + ")" : std::string()));
  }
  const int64_t v = PyLong_AsLongLong(idx);
  Py_DECREF(idx);
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  return v;
}

std::vector<int64_t> as_shape(const py::handle& h, const char* what) {
  std::vector<int64_t> s;
  if (PyIndex_Check(h.ptr()) && !PySequence_Check(h.ptr())) {  // 3, np.int64(3): one dimension, as in np.zeros
    s.push_back(as_index(h, what));
  } else {
    for (py::handle e : py::iter(h)) s.push_back(as_index(e, what));
  }
  for (int64_t d : s)
    if (d < 0) throw ValueError(std::string(what) + ": negative dimensions are not allowed");
  if (s.size() > size_t(kMaxDims))
    throw ValueError("pykernels supports arrays of at most " + std::to_string(kMaxDims) + " dimensions, got " +
                     std::to_string(s.size()));
  return s;
}

// Normalises `axis` (None, an integer or a tuple of integers, as np.sum takes it) into a mask;
// NumPy's errors and messages: a bool or list is a TypeError, an axis out of range an AxisError
// (all axes are range-checked before duplicates are looked for), a 0-d array takes axis 0 or -1.
void axis_mask(const py::handle& axis, int ndim, bool* mask) {
  std::fill(mask, mask + kMaxDims, false);
  if (axis.is_none()) {
    std::fill(mask, mask + ndim, true);
    return;
  }
  std::vector<py::handle> items;
  const bool is_tuple = py::isinstance<py::tuple>(axis);
  if (is_tuple) {
    for (py::handle e : axis) items.push_back(e);
  } else {
    items.push_back(axis);
  }
  std::vector<int64_t> axes;
  for (py::handle e : items) {
    if (PyBool_Check(e.ptr())) throw TypeError("an integer is required");
    int64_t a = as_index(e, nullptr);
    // np.sum(np.array(1.5), axis=0) (or -1) is 1.5: a scalar axis of a 0-d array, not a tuple.
    if (ndim == 0 && !is_tuple && (a == 0 || a == -1)) return;
    if (a < -ndim || a >= ndim) {
      py::object AxisError = py::module_::import("numpy").attr("exceptions").attr("AxisError");
      PyErr_SetObject(AxisError.ptr(), AxisError(a, ndim).ptr());
      throw py::error_already_set();
    }
    axes.push_back(a < 0 ? a + ndim : a);
  }
  for (int64_t a : axes) {
    if (mask[a]) throw ValueError("duplicate value in 'axis'");
    mask[a] = true;
  }
}

// keepdims as np.sum reads it: an integer (Python bools included); numpy.bool_ is accepted too.
bool as_keepdims(const py::handle& h) {
  if (PyBool_Check(h.ptr())) return h.ptr() == Py_True;
  if (py::isinstance(h, py::module_::import("numpy").attr("bool_"))) return PyObject_IsTrue(h.ptr()) == 1;
  return as_index(h, nullptr) != 0;
}

Operand parse_reduce_input(const py::handle& x, const char* fn, const char* name) {
  Operand op = parse_operand(x, fn, name);
  if (op.weak && !op.weak_float)  // np.sum(2**63) is uint64, np.sum(5) int64: not a float result
    throw TypeError(std::string(fn) + ": the argument is a Python int or bool (NumPy would keep its integer "
                    "type); pykernels computes in float32/float64 only, pass a float or an array");
  if (op.weak) op.arr = py::module_::import("numpy").attr("asarray")(op.scalar);
  op.weak = false;
  finalize(op, dtype_of(op.arr, fn, name));
  return op;
}

// Sum of x over mask, result with shape `rshape`; x's dims are reduced where mask is true.
py::array sum_masked(const View& x, const bool* mask, const std::vector<int64_t>& rshape) {
  py::array res = new_array(x.dtype, rshape);
  View rv = direct_view(res);
  // The result seen with x's rank: size 1 and stride 0 on every reduced axis.
  View ov;
  ov.data = rv.data;
  ov.dtype = x.dtype;
  ov.ndim = x.ndim;
  int64_t cstride = 1;
  for (int i = x.ndim - 1; i >= 0; --i) {
    if (mask[i]) {
      ov.shape[i] = 1;
      ov.strides[i] = 0;
    } else {
      ov.shape[i] = x.shape[i];
      ov.strides[i] = cstride;
      cstride *= x.shape[i];
    }
  }
  run_nogil(x.size(), [&] { sum(ov, x, mask); });
  return res;
}

py::object sum_call(const py::handle& x, const py::handle& axis, const py::handle& keepdims_h) {
  const bool keepdims = as_keepdims(keepdims_h);
  Operand op = parse_reduce_input(x, "pykernels.sum", "x");
  const View& v = op.view;
  bool mask[kMaxDims];
  axis_mask(axis, v.ndim, mask);
  std::vector<int64_t> rshape;
  for (int i = 0; i < v.ndim; ++i) {
    if (!mask[i]) rshape.push_back(v.shape[i]);
    else if (keepdims) rshape.push_back(1);
  }
  return maybe_scalar(sum_masked(v, mask, rshape));
}

// Mask of the axes of `from` that must be summed to give `to` (which must broadcast to `from`).
void sum_to_mask(const View& x, const std::vector<int64_t>& to, bool* mask, const char* fn) {
  const int nd = x.ndim, nt = int(to.size());
  bool ok = nt <= nd;
  for (int i = 0; ok && i < nt; ++i) {
    const int64_t t = to[size_t(i)], d = x.shape[nd - nt + i];
    ok = t == d || t == 1;
  }
  if (!ok)
    throw ValueError(std::string(fn) + ": cannot sum an array of shape " + shape_str(x.shape, nd) +
                     " to shape " + shape_str(to.data(), nt) + " (the target shape must broadcast to " +
                     shape_str(x.shape, nd) + ")");
  for (int i = 0; i < nd; ++i) {
    const int j = i - (nd - nt);
    mask[i] = j < 0 || (to[size_t(j)] == 1 && x.shape[i] != 1);
  }
}

py::array sum_to_view(const View& x, const std::vector<int64_t>& to, const char* fn) {
  bool mask[kMaxDims];
  sum_to_mask(x, to, mask, fn);
  return sum_masked(x, mask, to);
}

// Whether the op reports FP exceptions under np.errstate as its NumPy twin does (Op::fp_report,
// ops.hpp): the IEEE operations whose flags are exactly NumPy's (add, subtract, multiply), and the
// vector-math ops (exp, log, tanh, sigmoid), whose polynomial and branch-free steps raise flags
// NumPy's loops do not (underflow in sigmoid's exp of a large negative x): their loops replace those
// by the flags the NumPy twin raises for the inputs (none for tanh and sigmoid). Not the comparisons
// (maximum, relu_backward's x > 0 raise "invalid" on a NaN in SIMD compares; NumPy clears that),
// nor the sign-bit ops (no flags).
template <class Op>
constexpr bool reports_fp_errors() {
  return Op::fp_report != FpReport::kNone;
}

// The docstring of a registered op: its summary, its NumPy twin, its example.
template <class Op>
std::string op_doc() {
  std::string d = std::string(Op::summary) + "\n\n" +
                  (Op::accuracy != nullptr ? std::string(Op::accuracy) + " (NumPy twin: " + Op::numpy + ")"
                                           : std::string("Values bit-identical to ") + Op::numpy) +
                  ", with NumPy's broadcasting, float32/float64 promotion (NEP 50) and out= rules; a 0-d result "
                  "is a NumPy scalar.\n";
  if constexpr (Op::alias != nullptr) d += std::string("pykernels.") + Op::alias + " is the same function.\n";
  if constexpr (Op::example != nullptr) d += std::string("\n") + Op::example;
  return d;
}

}  // namespace

void bind_elementwise(py::module_& m) {
  py::options options;  // docstrings open with a text signature (text_sig_doc), no pybind11 overload line
  options.disable_function_signatures();
  // One Python function per op of the registry (ops.hpp), named and documented from its entry.
  for_each_op(BinaryOps{}, [&](auto op) {
    using Op = decltype(op);
    const BinOp id = binary_id<Op>();
    const std::string fn = std::string("pykernels.") + Op::name;
    const std::string sig = std::string("(") + Op::args[0] + ", " + Op::args[1] + ", out=None)";
    def_fast(m, Op::name, {Op::args[0], Op::args[1], "out"}, 2, sig.c_str(), op_doc<Op>().c_str(),
             [id, fn](const py::handle* a) {
               return binary_call(id, fn.c_str(), a[0], a[1], a[2], Op::args[0], Op::args[1],
                                  reports_fp_errors<Op>() ? Op::name : nullptr);
             });
    if constexpr (Op::alias != nullptr) m.attr(Op::alias) = m.attr(Op::name);
  });
  for_each_op(UnaryOps{}, [&](auto op) {
    using Op = decltype(op);
    const UnOp id = unary_id<Op>();
    const std::string fn = std::string("pykernels.") + Op::name;
    const std::string sig = std::string("(") + Op::args[0] + ", out=None)";
    def_fast(m, Op::name, {Op::args[0], "out"}, 1, sig.c_str(), op_doc<Op>().c_str(),
             [id, fn](const py::handle* a) {
               return unary_call(id, fn.c_str(), a[0], a[1], Op::args[0], reports_fp_errors<Op>() ? Op::name : nullptr);
             });
    if constexpr (Op::alias != nullptr) m.attr(Op::alias) = m.attr(Op::name);
  });
  py::tuple unames(UnaryOps::size);
  for_each_op(UnaryOps{}, [&, i = 0](auto op) mutable { unames[size_t(i++)] = decltype(op)::name; });
  m.attr("_unary_ops") = unames;
  py::tuple names(BinaryOps::size);
  for_each_op(BinaryOps{}, [&, i = 0](auto op) mutable { names[size_t(i++)] = decltype(op)::name; });
  m.attr("_binary_ops") = names;  // the registry's names, for pykernels.cuda
  def_fast(m, "relu", {"x", "out"}, 1, "(x, out=None)",
           "max(x, 0) element-wise, bit-identical to np.maximum(x, 0.0) (NaN stays NaN).\n\n"
           ">>> import numpy as np, pykernels as pk\n>>> pk.relu(np.array([-1.0, 0.5], np.float32))\n"
           "array([0. , 0.5], dtype=float32)\n",
           [](const py::handle* a) {
             static const py::handle zero = py::float_(0.0).release();  // immortal: no destructor at exit
             return binary_call(binary_id<ops::Maximum>(), "pykernels.relu", a[0], zero, a[1], "x", "x2");
           });
  // A METH_FASTCALL function (not pybind11's m.def) so that np.sum's other keywords (dtype=, out=,
  // where=, initial=) get fastcall.hpp's message naming them.
  def_fast(m, "sum", {"x", "axis", "keepdims"}, 1, "(x, axis=None, keepdims=False)",
           "Sum over the given axes (np.sum semantics, result dtype = x's dtype).\n\n"
           "float32 accumulates in double, float64 sums pairwise; results do not depend on the thread count.\n\n"
           ">>> import numpy as np, pykernels as pk\n>>> pk.sum(np.ones((2, 3), np.float32), axis=0)\n"
           "array([2., 2., 2.], dtype=float32)\n>>> float(pk.sum(np.arange(6.0).reshape(2, 3)))\n15.0\n",
           [](const py::handle* a) { return sum_call(a[0], a[1], a[2]); }, {{"keepdims", py::bool_(false)}});
  m.def(
      "sum_to",
      [](py::handle x, py::handle shape) {
        Operand op = parse_reduce_input(x, "pykernels.sum_to", "x");
        return sum_to_view(op.view, as_shape(shape, "shape"), "pykernels.sum_to");
      },
      py::arg("x"), py::arg("shape"),
      text_sig_doc("sum_to", "(x, shape)", "Sums x down to `shape`, which must broadcast to x.shape: the backward of broadcasting "
      "(the Sum/Repeat node). Result has exactly `shape`.\n\n"
      ">>> import numpy as np, pykernels as pk\n>>> pk.sum_to(np.ones((4, 3)), (3,))\narray([4., 4., 4.])\n").c_str());
  m.def(
      "add_backward",
      [](py::handle dout, py::handle x_shape, py::handle y_shape) {
        Operand op = parse_reduce_input(dout, "pykernels.add_backward", "dout");
        auto xs = as_shape(x_shape, "x_shape"), ys = as_shape(y_shape, "y_shape");
        const int64_t* shapes[2] = {xs.data(), ys.data()};
        int nds[2] = {int(xs.size()), int(ys.size())};
        int64_t b[kMaxDims];
        const int nd = broadcast_shapes(2, shapes, nds, b);
        bool match = nd == op.view.ndim;
        for (int i = 0; match && i < nd; ++i) match = b[i] == op.view.shape[i];
        if (!match)
          throw ValueError("pykernels.add_backward: dout has shape " + shape_str(op.view.shape, op.view.ndim) +
                           " but x_shape and y_shape broadcast to " + shape_str(b, nd));
        py::array dx = sum_to_view(op.view, xs, "pykernels.add_backward");
        py::array dy = sum_to_view(op.view, ys, "pykernels.add_backward");
        return py::make_tuple(dx, dy);
      },
      py::arg("dout"), py::arg("x_shape"), py::arg("y_shape"),
      text_sig_doc("add_backward", "(dout, x_shape, y_shape)",
                   "Gradients (dx, dy) of z = x + y (broadcast): dout summed back to each operand's shape. Always "
                   "new arrays.\n\n>>> import numpy as np, pykernels as pk\n"
                   ">>> dx, dy = pk.add_backward(np.ones((2, 3)), (2, 3), (3,))\n>>> dx.shape, dy\n"
                   "((2, 3), array([2., 2., 2.]))\n").c_str());
}

}  // namespace pk::py_bind
