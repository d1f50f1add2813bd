// Private bindings of the CUDA offload and of its CPU emulation; the public face is pykernels/cuda.py,
// which does the broadcasting and dtype checks with NumPy and passes arrays of equal shape here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "array_cast.hpp"
#include "pykernels/cuda.hpp"

namespace pk::py_bind {

namespace {
BinOp op_by_name(const std::string& name) {
  const int id = op_index(BinaryOps{}, name.c_str());
  if (id < 0) throw ValueError("unknown element-wise op '" + name + "'");
  return BinOp(id);
}

// These entry points are private, but an extension function never trusts its arguments: every
// array is checked (type, dtype, shapes, a writeable and addressable output that does not overlap an
// input) before a View is made, so a wrong call is a Python exception, never a stray write.
py::array float_array(const py::handle& h, const char* fn, const char* name, DType* dt) {
  if (!py::isinstance<py::array>(h))
    throw TypeError(std::string(fn) + ": " + name + " must be a numpy.ndarray, got " + Py_TYPE(h.ptr())->tp_name);
  py::array arr = py::reinterpret_borrow<py::array>(h);
  const DType got = dtype_of(arr, fn, name);
  if (dt) {
    if (got != *dt)
      throw TypeError(std::string(fn) + ": " + name + " has dtype " + dtype_name(got) + ", expected " +
                      dtype_name(*dt));
  }
  return arr;
}

py::array output_array(const py::handle& h, const char* fn, const char* name, DType* dt, bool c_contiguous) {
  py::array arr = float_array(h, fn, name, nullptr);
  *dt = dtype_of(arr, fn, name);
  if (!arr.writeable()) throw ValueError(std::string(fn) + ": output array is read-only");
  if (!kernel_addressable(arr) || (c_contiguous && !(arr.flags() & py::array::c_style)))
    throw ValueError(std::string(fn) + ": " + name + " must be " +
                     (c_contiguous ? "C-contiguous, " : "") + "aligned and in native byte order");
  return arr;
}

void check_shape(const py::array& arr, const std::vector<int64_t>& want, const char* fn, const char* name) {
  const std::vector<int64_t> got(arr.shape(), arr.shape() + arr.ndim());
  if (got != want)
    throw ValueError(std::string(fn) + ": " + name + " has shape " + shape_str(got.data(), int(got.size())) +
                     ", expected " + shape_str(want.data(), int(want.size())));
}

template <bool Emulate>
void binary_entry(const std::string& name, const py::handle& out_h, const py::handle& a_h, const py::handle& b_h) {
  const char* fn = Emulate ? "_cuda_emu_binary" : "_cuda_binary";
  const BinOp op = op_by_name(name);
  DType dt;
  py::array out = output_array(out_h, fn, "out", &dt, false);
  py::array a = float_array(a_h, fn, "a", &dt), b = float_array(b_h, fn, "b", &dt);
  const std::vector<int64_t> shape(out.shape(), out.shape() + out.ndim());
  check_shape(a, shape, fn, "a");
  check_shape(b, shape, fn, "b");
  View o = direct_view(out), va = view_of(a), vb = view_of(b);
  if (has_internal_overlap(o)) throw ValueError(std::string(fn) + ": out has a zero stride (internal overlap)");
  if ((may_overlap(o, va) && !same_view(o, va)) || (may_overlap(o, vb) && !same_view(o, vb)))
    throw ValueError(std::string(fn) + ": out partially overlaps an input");
  if (Emulate) {
    cuda_emu::binary(op, o, va, vb);
  } else {
    py::gil_scoped_release nogil;
    cuda::binary(op, o, va, vb);
  }
}

template <bool Emulate>
void unary_entry(const std::string& name, const py::handle& out_h, const py::handle& x_h) {
  const char* fn = Emulate ? "_cuda_emu_unary" : "_cuda_unary";
  const int id = op_index(UnaryOps{}, name.c_str());
  if (id < 0) throw ValueError("unknown element-wise op '" + name + "'");
  DType dt;
  py::array out = output_array(out_h, fn, "out", &dt, false);
  py::array x = float_array(x_h, fn, "x", &dt);
  check_shape(x, std::vector<int64_t>(out.shape(), out.shape() + out.ndim()), fn, "x");
  View o = direct_view(out), vx = view_of(x);
  if (has_internal_overlap(o)) throw ValueError(std::string(fn) + ": out has a zero stride (internal overlap)");
  if (may_overlap(o, vx) && !same_view(o, vx)) throw ValueError(std::string(fn) + ": out partially overlaps x");
  if (Emulate) {
    cuda_emu::unary(UnOp(id), o, vx);
  } else {
    py::gil_scoped_release nogil;
    cuda::unary(UnOp(id), o, vx);
  }
}

template <bool Emulate>
void gemm_entry(const py::handle& c_h, const py::handle& a_h, const py::handle& b_h, const py::handle& bias,
                bool relu) {
  const char* fn = Emulate ? "_cuda_emu_gemm" : "_cuda_gemm";
  DType dt;
  py::array c = output_array(c_h, fn, "c", &dt, true);
  py::array a = float_array(a_h, fn, "a", &dt), b = float_array(b_h, fn, "b", &dt);
  if (c.ndim() != 2 || a.ndim() != 2 || b.ndim() != 2)
    throw ValueError(std::string(fn) + ": c, a and b must be 2-d");
  const int64_t M = a.shape(0), K = a.shape(1), N = b.shape(1);
  check_shape(b, {K, N}, fn, "b");
  check_shape(c, {M, N}, fn, "c");
  View vc = direct_view(c), va = view_of(a), vb = view_of(b), vbias;
  const View* pb = nullptr;
  py::array barr = null_array();
  if (!bias.is_none()) {
    barr = float_array(bias, fn, "bias", &dt);
    check_shape(barr, {N}, fn, "bias");
    // the device code reads the bias as N contiguous values
    barr = py::module_::import("numpy").attr("ascontiguousarray")(barr);
    vbias = view_of(barr);
    pb = &vbias;
  }
  if (may_overlap(vc, va) || may_overlap(vc, vb) || (pb && may_overlap(vc, vbias)))
    throw ValueError(std::string(fn) + ": c overlaps an input");
  if (Emulate) {
    cuda_emu::gemm(vc, va, vb, pb, relu);
  } else {
    py::gil_scoped_release nogil;
    cuda::gemm(vc, va, vb, pb, relu);
  }
}
}  // namespace

void bind_cuda(py::module_& m) {
  m.def("_cuda_compiled", &cuda_compiled);
  m.def("_cuda_device_count", &cuda_device_count);
  m.def("_cuda_binary", &binary_entry<false>, py::arg("op"), py::arg("out"), py::arg("a"), py::arg("b"));
  m.def("_cuda_emu_binary", &binary_entry<true>, py::arg("op"), py::arg("out"), py::arg("a"), py::arg("b"));
  m.def("_cuda_unary", &unary_entry<false>, py::arg("op"), py::arg("out"), py::arg("x"));
  m.def("_cuda_emu_unary", &unary_entry<true>, py::arg("op"), py::arg("out"), py::arg("x"));
  m.def("_cuda_gemm", &gemm_entry<false>, py::arg("c"), py::arg("a"), py::arg("b"), py::arg("bias"), py::arg("relu"));
  m.def("_cuda_emu_gemm", &gemm_entry<true>, py::arg("c"), py::arg("a"), py::arg("b"), py::arg("bias"),
        py::arg("relu"));
}

}  // namespace pk::py_bind
