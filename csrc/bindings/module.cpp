// pykernels._core: registration only; each bind_*.cpp binds one group of kernels.
#include <pybind11/pybind11.h>

#include <new>

#include "fastcall.hpp"
#include "numpy_api.hpp"
#include "pykernels/common.hpp"

namespace py = pybind11;

namespace pk::py_bind {
void bind_runtime(py::module_& m);
void bind_elementwise(py::module_& m);
void bind_cuda(py::module_& m);
void bind_linalg(py::module_& m);
void bind_training(py::module_& m);
void bind_activations(py::module_& m);
void bind_numpy_patch(py::module_& m);
}  // namespace pk::py_bind

PYBIND11_MODULE(_core, m) {
  m.doc() = "pykernels C++ kernels (private module; use the pykernels package)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const pk::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const pk::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::bad_alloc&) {
      // A kernel's working memory (packing buffers, a temporary): say what failed, not "std::bad_alloc".
      PyErr_SetString(PyExc_MemoryError, "pykernels: out of memory allocating a kernel's working buffers");
    }
  });
  pk::py_bind::import_numpy_api();
  pk::py_bind::bind_runtime(m);
  pk::py_bind::bind_elementwise(m);
  pk::py_bind::bind_cuda(m);
  pk::py_bind::bind_linalg(m);
  pk::py_bind::bind_training(m);
  pk::py_bind::bind_activations(m);
  pk::py_bind::bind_numpy_patch(m);
  pk::py_bind::module_functions(m);  // the public pybind11 functions as plain module functions
  m.attr("__version__") = PK_VERSION_INFO;
}
