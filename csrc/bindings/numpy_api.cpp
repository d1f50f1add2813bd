// NumPy's C API tables for the bindings (numpy_api.hpp): this file owns PY_ARRAY_UNIQUE_SYMBOL and
// PY_UFUNC_UNIQUE_SYMBOL; bind_numpy_patch.cpp uses them with NO_IMPORT_*.
#define PY_ARRAY_UNIQUE_SYMBOL pykernels_ARRAY_API
#define PY_UFUNC_UNIQUE_SYMBOL pykernels_UFUNC_API
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include "numpy_api.hpp"

#include <numpy/arrayobject.h>
#include <numpy/ufuncobject.h>
#include <numpy/npy_math.h>

namespace pk::py_bind {

namespace {
// NumPy >= 2.0 exports its ufuncs' own FP-error handling as PyUFunc_GiveFloatingpointErrors (slot 46
// of the ufunc API table). The build targets the 1.23 API, so the slot is read directly when the
// NumPy found at run time has it; older NumPy goes through pykernels._fperr (np.geterr() rules).
using GiveFpErrors = int (*)(const char*, int);
GiveFpErrors g_give = nullptr;
}  // namespace

void import_numpy_api() {
  if (_import_array() < 0) throw pybind11::error_already_set();
  if (_import_umath() < 0) throw pybind11::error_already_set();
  if (PyArray_GetNDArrayCFeatureVersion() >= 0x00000012)  // NPY_2_0_API_VERSION
    g_give = reinterpret_cast<GiveFpErrors>(PyUFunc_API[46]);
}

void report_fp_errors(const char* name, int fe_flags) {
  std::feclearexcept(kFpFlags);
  int npy = 0;
  if (fe_flags & FE_DIVBYZERO) npy |= NPY_FPE_DIVIDEBYZERO;
  if (fe_flags & FE_OVERFLOW) npy |= NPY_FPE_OVERFLOW;
  if (fe_flags & FE_UNDERFLOW) npy |= NPY_FPE_UNDERFLOW;
  if (fe_flags & FE_INVALID) npy |= NPY_FPE_INVALID;
  if (!npy) return;
  if (g_give) {
    if (g_give(name, npy) < 0) throw pybind11::error_already_set();
    return;
  }
  pybind11::module_::import("pykernels._fperr").attr("give_fp_errors")(name, npy);
}

}  // namespace pk::py_bind
