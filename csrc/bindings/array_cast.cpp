// See array_cast.hpp.
#include "array_cast.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <new>
#include <stdexcept>

#include <unistd.h>

#include "pykernels/pool.hpp"

namespace pk::py_bind {

namespace {
constexpr int kNpyFloat = npy_type_num(DType::f32);
constexpr int kNpyDouble = npy_type_num(DType::f64);

std::string dtype_str(const py::array& arr) { return py::str(arr.dtype()).cast<std::string>(); }
}  // namespace

DType dtype_of(const py::array& arr, const char* fn, const char* name) {
  const int num = arr.dtype().num();
  if (num == kNpyFloat) return DType::f32;
  if (num == kNpyDouble) return DType::f64;
  throw TypeError(std::string(fn) + ": unsupported dtype " + dtype_str(arr) + " for argument '" + name +
                  "' (supported: float32, float64)");
}

void reject_masked(const py::handle& obj, const char* fn, const char* name) {
  // Only a subclass of ndarray can be a masked array, which would be read as its raw data, the mask
  // lost (a silent wrong answer: np.sum(masked) skips the masked values). Other subclasses are read
  // as ndarrays.
  if (Py_TYPE(obj.ptr()) == py::detail::npy_api::get().PyArray_Type_) return;
  static PyObject* masked_type = py::object(py::module_::import("numpy.ma").attr("MaskedArray")).release().ptr();
  const int r = PyObject_IsInstance(obj.ptr(), masked_type);
  if (r < 0) throw py::error_already_set();
  if (r)
    throw TypeError(std::string(fn) + ": argument '" + name +
                    "' is a numpy.ma.MaskedArray; pykernels reads plain arrays and would ignore its mask: pass "
                    "x.filled(value) or use the numpy.ma functions");
}

Operand parse_operand(const py::handle& obj, const char* fn, const char* name) {
  Operand op;
  PyObject* p = obj.ptr();
  if (PyFloat_CheckExact(p) || PyLong_CheckExact(p) || PyBool_Check(p)) {
    op.weak = true;
    op.weak_float = PyFloat_CheckExact(p);
    op.scalar = PyFloat_CheckExact(p) ? PyFloat_AsDouble(p) : PyLong_AsDouble(p);
    if (op.scalar == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    return op;
  }
  if (py::isinstance<py::array>(obj)) {
    reject_masked(obj, fn, name);
    op.arr = py::reinterpret_borrow<py::array>(obj);
  } else {
    if (obj.is_none())
      throw TypeError(std::string(fn) + ": argument '" + name + "' is None; expected an array");
    py::object np = py::module_::import("numpy");
    op.arr = np.attr("asarray")(obj);
  }
  dtype_of(op.arr, fn, name);
  return op;
}

DType result_dtype(const Operand* ops, int n) {
  bool any_strong = false, any64 = false;
  for (int i = 0; i < n; ++i) {
    if (ops[i].weak) continue;
    any_strong = true;
    if (ops[i].arr.dtype().num() == kNpyDouble) any64 = true;
  }
  if (!any_strong) return DType::f64;
  return any64 ? DType::f64 : DType::f32;
}

bool native_byte_order(const py::array& arr) {
  const char b = arr.dtype().byteorder();  // '=' native, '|' n/a, '<' / '>' explicit
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return b != '<';
#else
  return b != '>';
#endif
}

bool kernel_addressable(const py::array& arr) {
  if (!native_byte_order(arr)) return false;
  const int64_t esz = arr.itemsize();
  if (reinterpret_cast<uintptr_t>(arr.data()) % uintptr_t(esz)) return false;
  for (py::ssize_t i = 0; i < arr.ndim(); ++i)
    if (arr.strides(i) % esz) return false;
  return true;
}

namespace {
View make_view(const py::array& arr) {
  const DType dt = arr.dtype().num() == kNpyFloat ? DType::f32 : DType::f64;
  const int64_t esz = dtype_size(dt);
  View v;
  v.data = const_cast<void*>(arr.data());
  v.dtype = dt;
  v.ndim = int(arr.ndim());
  for (int i = 0; i < v.ndim; ++i) {
    v.shape[i] = arr.shape(i);
    v.strides[i] = arr.strides(i) / esz;
  }
  return v;
}

void check_rank(const py::array& arr) {
  if (arr.ndim() > kMaxDims)
    throw ValueError("pykernels supports arrays of at most " + std::to_string(kMaxDims) +
                     " dimensions, got " + std::to_string(arr.ndim()));
}
}  // namespace

// An aligned, native-byte-order copy of `arr` in dtype `dt` that keeps its broadcast dimensions:
// only the distinct elements are copied and the result is broadcast back (a (2**31, 1) zero-stride
// float32 operand beside a float64 one converts 1 element, not 2**31; NumPy itself would refuse to
// allocate the materialised array).
py::array converted_copy(const py::array& arr, DType dt) {
  py::object np = py::module_::import("numpy");
  bool broadcast = false;
  for (py::ssize_t i = 0; i < arr.ndim(); ++i) broadcast = broadcast || (arr.shape(i) > 1 && arr.strides(i) == 0);
  if (!broadcast)
    return np.attr("array")(arr, py::arg("dtype") = dtype_name(dt), py::arg("copy") = true, py::arg("order") = "C");
  py::tuple idx(arr.ndim());
  for (py::ssize_t i = 0; i < arr.ndim(); ++i)
    idx[size_t(i)] = (arr.shape(i) > 1 && arr.strides(i) == 0) ? py::slice(0, 1, 1) : py::slice(py::none(), py::none(), py::none());
  py::object base = np.attr("array")(arr[idx], py::arg("dtype") = dtype_name(dt), py::arg("copy") = true,
                                     py::arg("order") = "C");
  return np.attr("broadcast_to")(base, arr.attr("shape"));
}

View view_of(py::array& arr) {
  check_rank(arr);
  if (!kernel_addressable(arr)) {
    // An aligned, native-byte-order copy ('>f4' data read as native floats would be garbage).
    arr = converted_copy(arr, arr.dtype().num() == kNpyFloat ? DType::f32 : DType::f64);
  }
  return make_view(arr);
}

View direct_view(const py::array& arr) {
  check_rank(arr);
  if (!kernel_addressable(arr))
    throw std::logic_error("pykernels internal error: an output array is not addressable by the kernels");
  return make_view(arr);
}

void finalize(Operand& op, DType dt) {
  if (op.weak) {
    op.scalar_f32 = static_cast<float>(op.scalar);
    op.view = View();
    op.view.dtype = dt;
    op.view.ndim = 0;
    op.view.data = dt == DType::f32 ? static_cast<void*>(&op.scalar_f32) : static_cast<void*>(&op.scalar);
    return;
  }
  const int want = npy_type_num(dt);
  if (op.arr.dtype().num() != want) op.arr = converted_copy(op.arr, dt);
  op.view = view_of(op.arr);
}

std::vector<int64_t> shape_of(const View& v) { return std::vector<int64_t>(v.shape, v.shape + v.ndim); }

namespace {
void bounds(const View& v, intptr_t& lo, intptr_t& hi) {
  const int64_t esz = dtype_size(v.dtype);
  int64_t a = 0, b = 0;
  for (int i = 0; i < v.ndim; ++i) {
    if (v.shape[i] == 0) {
      lo = hi = reinterpret_cast<intptr_t>(v.data);
      return;
    }
    const int64_t ext = (v.shape[i] - 1) * v.strides[i];
    if (ext < 0) a += ext; else b += ext;
  }
  lo = reinterpret_cast<intptr_t>(v.data) + a * esz;
  hi = reinterpret_cast<intptr_t>(v.data) + (b + 1) * esz;
}
}  // namespace

bool may_overlap(const View& x, const View& y) {
  if (x.size() == 0 || y.size() == 0) return false;
  intptr_t xl, xh, yl, yh;
  bounds(x, xl, xh);
  bounds(y, yl, yh);
  return xl < yh && yl < xh;
}

bool same_view(const View& a, const View& b) {
  if (a.data != b.data || a.ndim != b.ndim || a.dtype != b.dtype) return false;
  for (int i = 0; i < a.ndim; ++i) {
    if (a.shape[i] != b.shape[i]) return false;
    if (a.shape[i] > 1 && a.strides[i] != b.strides[i]) return false;
  }
  return true;
}

bool has_internal_overlap(const View& v) {
  if (v.size() == 0) return false;  // NumPy gives empty arrays zero strides, e.g. (2,0) -> (0,4)
  for (int i = 0; i < v.ndim; ++i)
    if (v.shape[i] > 1 && v.strides[i] == 0) return true;
  return false;
}

}  // namespace pk::py_bind
