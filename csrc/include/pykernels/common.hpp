// Shared definitions for the kernels: array views with signed element strides, dtypes, errors.
// Nothing here includes Python or pybind11, so the kernels can be built and tested without them.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace pk {

// The largest rank any kernel accepts (NumPy allows 64; we document 32 and raise above it).
constexpr int kMaxDims = 32;

enum class DType : int { f32 = 0, f64 = 1 };

inline const char* dtype_name(DType t) { return t == DType::f32 ? "float32" : "float64"; }
inline int64_t dtype_size(DType t) { return t == DType::f32 ? 4 : 8; }

// Errors the bindings translate to Python: ValueError (shapes, axes, overlap) and TypeError (dtypes).
struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct TypeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An N-d strided view. Strides are in elements (not bytes) and may be negative or zero
// (zero = broadcast). `data` addresses the element with index (0, ..., 0).
struct View {
  void* data = nullptr;
  DType dtype = DType::f32;
  int ndim = 0;
  // Only the first ndim entries are meaningful (left uninitialised: a View is built on every call
  // and zeroing 2 x 32 entries each time was measurable at 1e3 elements).
  int64_t shape[kMaxDims];
  int64_t strides[kMaxDims];

  int64_t size() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
};

// "(3,4)" / "(5,)" / "()" as NumPy prints shapes in its error messages.
inline std::string shape_str(const int64_t* shape, int ndim) {
  std::string s = "(";
  for (int i = 0; i < ndim; ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  if (ndim == 1) s += ",";
  return s + ")";
}

}  // namespace pk
