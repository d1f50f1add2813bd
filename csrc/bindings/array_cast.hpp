// NumPy -> pk::View for the arguments of every binding: operand parsing (arrays, Python scalars,
// array-likes), NumPy's dtype promotion for float32/float64, conversion copies, overlap checks.
// Validation happens here, with the GIL held; kernels get plain Views. The results side (new
// arrays, out= checks, 0-d results as scalars) is results.hpp, included at the end: every binding
// that parses operands also returns a result.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "pykernels/common.hpp"

namespace pk::py_bind {

namespace py = pybind11;

// Below this many elements a call keeps the GIL: releasing and re-taking it costs more than the work.
constexpr int64_t kReleaseGilMin = 8192;

// A py::array holding no object (pybind11's `py::array x;` would allocate an empty array).
inline py::array null_array() { return py::reinterpret_steal<py::array>(py::handle()); }

struct Operand {
  // The array (or a converted copy); null for a weak Python scalar. Never default-construct a
  // py::array: pybind11's default constructor allocates an empty NumPy array (measurable per call).
  py::array arr = null_array();
  bool weak = false;    // Python float/int/bool: takes the other operand's dtype (NEP 50)
  bool weak_float = false;  // the weak scalar was a Python float
  double scalar = 0.0;  // value when weak
  float scalar_f32 = 0.0f;
  View view;            // filled by finalize()
};

// Parses `obj` for argument `name` of function `fn`. Arrays must be float32 or float64 (anything
// else is a TypeError naming the dtype); Python scalars are weak; other objects go through
// np.asarray.
Operand parse_operand(const py::handle& obj, const char* fn, const char* name);

// TypeError for a numpy.ma.MaskedArray (its mask would be ignored); a plain ndarray (or anything
// that is not an array subclass) returns at once.
void reject_masked(const py::handle& obj, const char* fn, const char* name);

// NumPy's result dtype for float32/float64 operands (weak scalars adopt the strong dtype; all weak:
// float64).
DType result_dtype(const Operand* ops, int n);

// Makes op.view: an N-d strided View of dtype `dt` (casting a copy if the array's dtype differs).
void finalize(Operand& op, DType dt);

// View of an INPUT array whose dtype is already known to be float32/float64. When the array is not
// kernel_addressable, `arr` is REPLACED by an aligned native-byte-order C copy and the view is of
// the copy: never use it for an array the kernel writes (see direct_view).
View view_of(py::array& arr);

// False for byte-swapped data (e.g. dtype '>f4' on a little-endian machine): such arrays are read
// through a native copy and written through a temporary, never handed to a kernel directly.
bool native_byte_order(const py::array& arr);

// True when a kernel may address the array's memory as it is: native byte order, data aligned to
// the item size, every stride a multiple of the item size. Outputs that are not (a '>f8' or an
// unaligned out=) are written through a temporary or rejected, never silently replaced.
bool kernel_addressable(const py::array& arr);

// View of an array the kernel writes (a result, an out= or a gradient buffer). Never copies: the
// caller has checked kernel_addressable (a std::logic_error otherwise, i.e. a bug of ours).
View direct_view(const py::array& arr);

// NumPy's type number of dt (NPY_FLOAT = 11, NPY_DOUBLE = 12).
constexpr int npy_type_num(DType dt) { return dt == DType::f32 ? 11 : 12; }
std::vector<int64_t> shape_of(const View& v);
DType dtype_of(const py::array& arr, const char* fn, const char* name);

// True when the memory spanned by a and b intersects.
bool may_overlap(const View& a, const View& b);
// True when a and b address exactly the same elements in the same order (after broadcasting).
bool same_view(const View& a, const View& b);
bool has_internal_overlap(const View& v);  // a zero stride on a dimension of size > 1

}  // namespace pk::py_bind

#include "results.hpp"  // IWYU pragma: export
