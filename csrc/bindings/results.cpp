// See results.hpp.
#include "results.hpp"

#include <cstdint>
#include <cstdio>
#include <new>
#include <string>

#include <unistd.h>

#include "pykernels/pool.hpp"

namespace pk::py_bind {

namespace {
std::string dtype_str(const py::array& arr) { return py::str(arr.dtype()).cast<std::string>(); }
}  // namespace

namespace {
struct PooledBlock {
  void* p;
  size_t capacity;
};

void release_block(void* ptr) {
  auto* b = static_cast<PooledBlock*>(ptr);
  pool_release(b->p, b->capacity);
  delete b;
}
}  // namespace

namespace {
// NumPy's words for a failed allocation: "Unable to allocate 256. TiB for an array with shape
// (35184372088832,) and data type float64".
[[noreturn]] void raise_alloc_error(DType dt, const int64_t* shape, int nd, double nbytes) {
  static const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (nbytes >= 1024.0 && u < 6) {
    nbytes /= 1024.0;
    ++u;
  }
  char size[32];
  std::snprintf(size, sizeof size, "%.3g %s", nbytes, units[u]);
  PyErr_Clear();
  PyErr_SetString(PyExc_MemoryError, (std::string("Unable to allocate ") + size + " for an array with shape " +
                                      shape_str(shape, nd) + " and data type " + dtype_name(dt))
                                         .c_str());
  throw py::error_already_set();
}
}  // namespace

void refuse_unmaterialisable(const View& v) {
  bool broadcast = false;
  double n = double(dtype_size(v.dtype));
  for (int i = 0; i < v.ndim; ++i) {
    broadcast = broadcast || (v.shape[i] > 1 && v.strides[i] == 0);
    n *= double(v.shape[i]);
  }
  if (!broadcast) return;
  static const double phys = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? double(pages) * double(page) : 0.0;
  }();
  if (phys > 0 && n > phys) raise_alloc_error(v.dtype, v.shape, v.ndim, n);
}

py::array new_array(DType dt, const int64_t* shape, int nd) {
  // Straight to PyArray_NewFromDescr: py::array_t's constructor builds stride vectors and a dtype
  // object per call, which shows up at 1e3 elements.
  if (nd < 0 || nd > kMaxDims)
    throw ValueError("pykernels supports arrays of at most " + std::to_string(kMaxDims) + " dimensions, got " +
                     std::to_string(nd));
  auto& api = py::detail::npy_api::get();
  Py_intptr_t dims[kMaxDims];
  size_t nbytes = dt == DType::f32 ? 4 : 8;
  bool too_big = false;
  for (int i = 0; i < nd; ++i) {
    dims[i] = Py_intptr_t(shape[i]);
    too_big = __builtin_mul_overflow(nbytes, size_t(shape[i]), &nbytes) || too_big;
  }
  if (too_big || nbytes > size_t(PTRDIFF_MAX))  // e.g. the broadcast of two huge zero-stride views
    throw ValueError("array is too big; `arr.size * arr.dtype.itemsize` is larger than the maximum possible size.");
  PyObject* descr = api.PyArray_DescrFromType_(npy_type_num(dt));
  if (nbytes < kPoolMinBytes || pool_stats().cap_bytes == 0) {
    PyObject* arr = api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, nd, dims, nullptr, nullptr, 0, nullptr);
    if (!arr) {
      if (PyErr_ExceptionMatches(PyExc_MemoryError)) raise_alloc_error(dt, shape, nd, double(nbytes));
      throw py::error_already_set();
    }
    return py::reinterpret_steal<py::array>(arr);
  }
  // Large result: a block of the output cache (pool.hpp), owned by a capsule that is the array's
  // base object and gives the block back when the last view of it is gone.
  auto* block = new PooledBlock{nullptr, 0};
  try {
    block->p = pool_acquire(nbytes, &block->capacity);
  } catch (const std::bad_alloc&) {
    delete block;
    Py_DECREF(descr);
    raise_alloc_error(dt, shape, nd, double(nbytes));
  } catch (...) {
    delete block;
    Py_DECREF(descr);
    throw;
  }
  py::capsule owner(block, &release_block);
  constexpr int kCArray = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_ |
                          py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  PyObject* arr = api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, nd, dims, nullptr, block->p, kCArray, nullptr);
  if (!arr) throw py::error_already_set();  // `owner` gives the block back
  if (api.PyArray_SetBaseObject_(arr, owner.release().ptr()) != 0) {  // steals the capsule
    Py_DECREF(arr);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::array>(arr);
}

py::tuple shape_tuple(const int64_t* shape, int ndim) {
  py::tuple t(ndim);
  for (int i = 0; i < ndim; ++i) t[i] = py::int_(shape[i]);
  return t;
}

py::array check_out(const py::handle& out, DType dt, const int64_t* shape, int ndim, const char* fn,
                    bool same_kind) {
  if (!py::isinstance<py::array>(out)) throw TypeError("return arrays must be of ArrayType");
  py::array arr = py::reinterpret_borrow<py::array>(out);
  if (!arr.writeable()) throw ValueError("output array is read-only");
  const int num = arr.dtype().num();
  const int want = npy_type_num(dt);
  if (num != want && !(same_kind && arr.dtype().kind() == 'f')) {
    if (same_kind)  // NumPy's ufunc words (its UFuncTypeError is a TypeError)
      throw TypeError(std::string(fn) + ": Cannot cast ufunc output from dtype('" + dtype_name(dt) +
                      "') to dtype('" + dtype_str(arr) + "') with casting rule 'same_kind'");
    throw TypeError(std::string(fn) + ": out has dtype " + dtype_str(arr) + " but the result has dtype " +
                    dtype_name(dt) + "; pass an out array of dtype " + dtype_name(dt));
  }
  bool same = arr.ndim() == ndim;
  for (int i = 0; same && i < ndim; ++i) same = arr.shape(i) == shape[i];
  if (!same) {
    std::vector<int64_t> os(arr.shape(), arr.shape() + arr.ndim());
    throw ValueError("non-broadcastable output operand with shape " + shape_str(os.data(), int(os.size())) +
                     " doesn't match the broadcast shape " + shape_str(shape, ndim));
  }
  return arr;
}

py::object maybe_scalar(py::array arr) {
  if (arr.ndim() == 0) return arr[py::tuple()];
  return std::move(arr);
}

}  // namespace pk::py_bind
