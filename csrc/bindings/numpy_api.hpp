// NumPy's C API where the bindings need more than pybind11's numpy.h gives: NumPy's floating-point
// error handling (np.errstate / np.seterr / np.seterrcall) for the element-wise kernels, and the
// ufunc loop replacement behind pykernels.patch_numpy() (bind_numpy_patch.cpp). Only numpy_api.cpp
// and bind_numpy_patch.cpp include NumPy's headers; the API tables are imported once, at module load.
#pragma once

#include <pybind11/pybind11.h>

#include <cfenv>

namespace pk::py_bind {

// The FP exception flags NumPy reports (inexact is not one of them).
constexpr int kFpFlags = FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW | FE_INVALID;

// Clears the calling thread's kFpFlags (reads them first: clearing costs more than testing).
inline void clear_fp_flags() {
  if (std::fetestexcept(kFpFlags)) std::feclearexcept(kFpFlags);
}

// Handles the FP exception flags `fe_flags` (FE_* bits) raised by the operation `name` as a NumPy
// ufunc does after its loop, under the current np.errstate: "overflow encountered in multiply" as a
// RuntimeWarning, a FloatingPointError, the seterrcall function or log object, or nothing. Clears
// the flags. Throws py::error_already_set when the handling raised (errstate "raise", a warning
// filter set to "error"). Needs the GIL.
void report_fp_errors(const char* name, int fe_flags);

// After an operation: the calling thread's flags, reported as above when any is set.
inline void check_fp_errors(const char* name) {
  if (const int f = std::fetestexcept(kFpFlags)) report_fp_errors(name, f);
}

// Imports NumPy's C API tables (import_array, import_umath); called once from module.cpp.
void import_numpy_api();

}  // namespace pk::py_bind
