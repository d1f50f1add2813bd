// Private bindings of the CUDA offload and of its CPU emulation; the public face is pykernels/cuda.py,
// which does the broadcasting and dtype checks with NumPy and passes arrays of equal shape here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "array_cast.hpp"
#include "pykernels/cuda.hpp"

namespace pk::py_bind {

namespace {
BinOp op_by_name(const std::string& name) {
  if (name == "add") return BinOp::Add;
  if (name == "subtract") return BinOp::Sub;
  if (name == "multiply") return BinOp::Mul;
  if (name == "maximum") return BinOp::Max;
  if (name == "relu_backward") return BinOp::WherePositive;
  throw ValueError("unknown element-wise op '" + name + "'");
}

template <bool Emulate>
void binary_entry(const std::string& name, py::array out, py::array a, py::array b) {
  const BinOp op = op_by_name(name);
  View o = direct_view(out), va = view_of(a), vb = view_of(b);
  if (Emulate) {
    cuda_emu::binary(op, o, va, vb);
  } else {
    py::gil_scoped_release nogil;
    cuda::binary(op, o, va, vb);
  }
}

template <bool Emulate>
void gemm_entry(py::array c, py::array a, py::array b, py::object bias, bool relu) {
  View vc = direct_view(c), va = view_of(a), vb = view_of(b), vbias;
  const View* pb = nullptr;
  py::array barr = null_array();
  if (!bias.is_none()) {
    barr = py::reinterpret_borrow<py::array>(bias);
    vbias = view_of(barr);
    pb = &vbias;
  }
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
  m.def("_cuda_gemm", &gemm_entry<false>, py::arg("c"), py::arg("a"), py::arg("b"), py::arg("bias"), py::arg("relu"));
  m.def("_cuda_emu_gemm", &gemm_entry<true>, py::arg("c"), py::arg("a"), py::arg("b"), py::arg("bias"),
        py::arg("relu"));
}

}  // namespace pk::py_bind
