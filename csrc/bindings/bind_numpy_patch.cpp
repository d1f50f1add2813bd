// pykernels.patch_numpy(): NumPy's own float32/float64 inner loops of np.add, np.subtract,
// np.multiply, np.maximum, np.minimum and the np.matmul gufunc
// replaced with pykernels's, through NumPy's public C API PyUFunc_ReplaceLoopBySignature (the
// mechanism of Intel's mkl_umath). Then `a + b`, `x @ W`, np.maximum(x, 0) in unchanged code run on
// the kernels.
//
// What a loop receives and where it goes:
// - Element-wise: (args, dimensions, steps, data) = 3 pointers, n, 3 byte steps. The kernels take
//   the call (pk::binary over 1-d Views: threads, streaming stores, merged FP flags) when n reaches
//   the element-wise grain; shorter calls, reductions (np.add.reduce / np.sum hand the loop an output
//   step of 0, input 1 = output: NumPy's pairwise order is kept), accumulations and other partial
//   overlaps, steps that are not a multiple of the item size and unaligned pointers go to the saved
//   NumPy loop. NumPy hands a loop 8192-element chunks when it buffers (casts, misaligned or
//   byte-swapped data; np.setbufsize changes it): such calls are below the grain and stay NumPy's.
// - matmul: dimensions = (outer count, n, k, m), steps = 3 outer steps, then a_n, a_k, b_k, b_m,
//   c_n, c_m. Products with n*k*m >= kMatmulMinWork go to pk::matmul over 3-d Views (one call for
//   the whole stack), the rest (and overlapping or odd-stride operands) to NumPy's loop.
// FP exception flags raised in pykernels's worker threads are merged into the calling thread's
// (parallel.cpp), where NumPy reads them after the loop: np.errstate behaves as unpatched.
// Patching is reference-counted (patch twice, unpatch twice), restores the saved loops exactly, and
// is serialised by a mutex (and the GIL).
#define PY_ARRAY_UNIQUE_SYMBOL pykernels_ARRAY_API
#define PY_UFUNC_UNIQUE_SYMBOL pykernels_UFUNC_API
#define NO_IMPORT_ARRAY
#define NO_IMPORT_UFUNC
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <pybind11/pybind11.h>

#include <numpy/arrayobject.h>
#include <numpy/ufuncobject.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "fastcall.hpp"
#include "numpy_api.hpp"
#include "pykernels/elementwise.hpp"
#include "pykernels/linalg.hpp"

namespace pk::py_bind {

namespace py = pybind11;

namespace {

// Below this many multiply-adds (n*k*m) a matmul loop call stays NumPy's (its BLAS call or its
// own loop costs less than pykernels's set-up for tiny products).
constexpr int64_t kMatmulMinWork = 4096;

// The element-wise ufuncs patched: the NumPy name and the registry op.
struct PatchedBinary {
  const char* ufunc;
  BinOp op;
};

std::mutex g_mu;        // serialises patch/unpatch
int g_count = 0;        // patch_numpy() calls not yet undone (under g_mu)
std::atomic<bool> g_patched{false};

constexpr int kMaxPatched = 8;  // element-wise ufuncs (matmul is separate)
PyUFuncGenericFunction g_saved[kMaxPatched][2] = {};  // NumPy's loops, [ufunc][dtype]; never cleared
PyUFuncGenericFunction g_saved_matmul[2] = {};
PyObject* g_ufuncs[kMaxPatched] = {};  // the ufunc objects (owned references)
PyObject* g_matmul = nullptr;
int g_npatched = 0;
BinOp g_ops[kMaxPatched];
bool g_clears_fp[kMaxPatched] = {};  // NumPy's loop clears the FP flags at its end (maximum, minimum)

// Counters for the tests and benchmarks: calls taken by the kernels (all, and of them matmul's), and
// calls forwarded to NumPy.
std::atomic<int64_t> g_taken{0}, g_forwarded{0}, g_reductions{0}, g_matmul_taken{0};

template <class T>
constexpr DType dtype_of_t() {
  return sizeof(T) == 4 ? DType::f32 : DType::f64;
}

// Whether the byte ranges of two strided 1-d runs of n items intersect.
inline bool ranges_overlap(const char* p, npy_intp s, const char* q, npy_intp t, npy_intp n, npy_intp item) {
  const char* p0 = s >= 0 ? p : p + s * (n - 1);
  const char* p1 = (s >= 0 ? p + s * (n - 1) : p) + item;
  const char* q0 = t >= 0 ? q : q + t * (n - 1);
  const char* q1 = (t >= 0 ? q + t * (n - 1) : q) + item;
  return p0 < q1 && q0 < p1;
}

template <int I, class T>
void binary_loop(char** args, npy_intp const* dims, npy_intp const* steps, void* data) {
  constexpr int D = sizeof(T) == 4 ? 0 : 1;
  const npy_intp n = dims[0];
  const npy_intp s0 = steps[0], s1 = steps[1], s2 = steps[2];
  constexpr npy_intp item = sizeof(T);
  bool take = n >= elementwise_grain() / (sizeof(T) / 4) && s2 != 0;
  if (!take && s2 == 0) g_reductions.fetch_add(1, std::memory_order_relaxed);
  if (take) {
    take = s0 % item == 0 && s1 % item == 0 && s2 % item == 0 &&
           (reinterpret_cast<uintptr_t>(args[0]) | reinterpret_cast<uintptr_t>(args[1]) |
            reinterpret_cast<uintptr_t>(args[2])) % item == 0;
    // The kernels' contract: out is disjoint from an input or exactly it (accumulate hands the loop
    // an input one element behind the output).
    for (int k = 0; take && k < 2; ++k)
      if (ranges_overlap(args[2], s2, args[k], steps[k], n, item) && !(args[2] == args[k] && s2 == steps[k]))
        take = false;
  }
  if (!take) {
    g_forwarded.fetch_add(1, std::memory_order_relaxed);
    g_saved[I][D](args, dims, steps, data);
    return;
  }
  g_taken.fetch_add(1, std::memory_order_relaxed);
  View v[3];
  for (int k = 0; k < 3; ++k) {
    v[k].data = args[k];
    v[k].dtype = dtype_of_t<T>();
    v[k].ndim = 1;
    v[k].shape[0] = n;
    v[k].strides[0] = steps[k] / item;
  }
  try {
    binary(g_ops[I], v[2], v[0], v[1]);
  } catch (...) {
    // The kernels throw only on bad arguments (none here) or memory exhaustion: NumPy computes it.
    g_saved[I][D](args, dims, steps, data);
    return;
  }
  // NumPy's maximum/minimum loops clear the flags their compares raise on NaN ("invalid"): so do we.
  if (g_clears_fp[I]) clear_fp_flags();
}

template <class T>
void matmul_loop(char** args, npy_intp const* dims, npy_intp const* steps, void* data) {
  constexpr int D = sizeof(T) == 4 ? 0 : 1;
  constexpr npy_intp item = sizeof(T);
  const npy_intp outer = dims[0], n = dims[1], k = dims[2], m = dims[3];
  bool take = n * k * m >= kMatmulMinWork && outer >= 1;
  for (int i = 0; take && i < 9; ++i) take = steps[i] % item == 0;
  if (take)
    take = (reinterpret_cast<uintptr_t>(args[0]) | reinterpret_cast<uintptr_t>(args[1]) |
            reinterpret_cast<uintptr_t>(args[2])) % item == 0;
  View a, b, c;
  if (take) {
    auto make = [&](View& v, char* p, npy_intp so, npy_intp r, npy_intp rs, npy_intp cl, npy_intp cs) {
      v.data = p;
      v.dtype = dtype_of_t<T>();
      v.ndim = 3;
      v.shape[0] = outer;
      v.shape[1] = r;
      v.shape[2] = cl;
      v.strides[0] = so / item;
      v.strides[1] = rs / item;
      v.strides[2] = cs / item;
    };
    make(a, args[0], steps[0], n, steps[3], k, steps[4]);
    make(b, args[1], steps[1], k, steps[5], m, steps[6]);
    make(c, args[2], steps[2], n, steps[7], m, steps[8]);
    // The output must not overlap an input (NumPy copies overlapping operands for a gufunc, so
    // this is a safeguard) nor itself.
    auto extent = [](const View& v, const char*& lo, const char*& hi) {
      const char* p = static_cast<const char*>(v.data);
      lo = hi = p;
      for (int d = 0; d < 3; ++d) {
        const int64_t span = (v.shape[d] - 1) * v.strides[d] * int64_t(item);
        if (span < 0) lo += span; else hi += span;
      }
      hi += item;
    };
    const char *c0, *c1, *x0, *x1;
    extent(c, c0, c1);
    extent(a, x0, x1);
    if (c0 < x1 && x0 < c1) take = false;
    extent(b, x0, x1);
    if (c0 < x1 && x0 < c1) take = false;
    if ((outer > 1 && c.strides[0] == 0) || (n > 1 && c.strides[1] == 0) || (m > 1 && c.strides[2] == 0))
      take = false;
  }
  if (!take) {
    g_forwarded.fetch_add(1, std::memory_order_relaxed);
    g_saved_matmul[D](args, dims, steps, data);
    return;
  }
  g_taken.fetch_add(1, std::memory_order_relaxed);
  g_matmul_taken.fetch_add(1, std::memory_order_relaxed);
  try {
    pk::matmul(c, a, b);
  } catch (...) {
    g_saved_matmul[D](args, dims, steps, data);
  }
}

// Replaces (or, with `restore`, puts back) the float32/float64 loops of one ufunc. Throws on failure
// (a NumPy without the loop).
void replace(PyObject* ufunc, const PyUFuncGenericFunction mine[2], PyUFuncGenericFunction saved[2], int nargs,
             bool restore) {
  const int types[2] = {NPY_FLOAT, NPY_DOUBLE};
  for (int d = 0; d < 2; ++d) {
    int sig[3] = {types[d], types[d], types[d]};
    (void)nargs;
    PyUFuncGenericFunction old = nullptr;
    if (PyUFunc_ReplaceLoopBySignature(reinterpret_cast<PyUFuncObject*>(ufunc), restore ? saved[d] : mine[d], sig,
                                       &old) != 0) {
      if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "pykernels: NumPy has no loop of that signature");
      throw py::error_already_set();
    }
    if (!restore) saved[d] = old;
  }
}

PyUFuncGenericFunction g_mine[kMaxPatched][2];
PyUFuncGenericFunction g_mine_matmul[2] = {&matmul_loop<float>, &matmul_loop<double>};

void init_tables() {
  static bool done = false;
  if (done) return;
  py::module_ np = py::module_::import("numpy");
  int i = 0;
  auto add = [&](const char* name, BinOp op, PyUFuncGenericFunction f32, PyUFuncGenericFunction f64) {
    g_ufuncs[i] = py::object(np.attr(name)).release().ptr();
    g_ops[i] = op;
    g_clears_fp[i] = op == binary_id<ops::Maximum>() || op == binary_id<ops::Minimum>();
    g_mine[i][0] = f32;
    g_mine[i][1] = f64;
    ++i;
  };
  add("add", binary_id<ops::Add>(), &binary_loop<0, float>, &binary_loop<0, double>);
  add("subtract", binary_id<ops::Subtract>(), &binary_loop<1, float>, &binary_loop<1, double>);
  add("multiply", binary_id<ops::Multiply>(), &binary_loop<2, float>, &binary_loop<2, double>);
  add("maximum", binary_id<ops::Maximum>(), &binary_loop<3, float>, &binary_loop<3, double>);
  add("minimum", binary_id<ops::Minimum>(), &binary_loop<4, float>, &binary_loop<4, double>);
  g_npatched = i;
  g_matmul = py::object(np.attr("matmul")).release().ptr();
  done = true;
}

void patch() {
  std::lock_guard<std::mutex> lk(g_mu);
  if (g_count++ > 0) return;
  try {
    init_tables();
    for (int i = 0; i < g_npatched; ++i) replace(g_ufuncs[i], g_mine[i], g_saved[i], 3, false);
    replace(g_matmul, g_mine_matmul, g_saved_matmul, 3, false);
  } catch (...) {
    // Undo what was replaced (a replaced ufunc has its saved loops set).
    for (int i = 0; i < g_npatched; ++i)
      if (g_saved[i][0] && g_saved[i][1]) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        try { replace(g_ufuncs[i], g_mine[i], g_saved[i], 3, true); } catch (...) { PyErr_Clear(); }
        PyErr_Restore(t, v, tb);
      }
    --g_count;
    throw;
  }
  g_patched.store(true);
}

void unpatch() {
  std::lock_guard<std::mutex> lk(g_mu);
  if (g_count == 0) throw ValueError("pykernels.unpatch_numpy(): NumPy is not patched");
  if (--g_count > 0) return;
  for (int i = 0; i < g_npatched; ++i) replace(g_ufuncs[i], g_mine[i], g_saved[i], 3, true);
  replace(g_matmul, g_mine_matmul, g_saved_matmul, 3, true);
  g_patched.store(false);
}

}  // namespace

void bind_numpy_patch(py::module_& m) {
  m.def("_patch_numpy", &patch, "Replace NumPy's float loops (reference-counted); see pykernels.patch_numpy.");
  m.def("_unpatch_numpy", &unpatch, "Undo one _patch_numpy (the last one restores NumPy's loops).");
  m.def("_numpy_patch_count", [] {
    std::lock_guard<std::mutex> lk(g_mu);
    return g_count;
  });
  m.def("_numpy_is_patched", [] { return g_patched.load(); });
  m.def("_numpy_patch_stats", [] {
    py::dict d;
    d["taken"] = g_taken.load();
    d["forwarded"] = g_forwarded.load();
    d["reductions"] = g_reductions.load();
    d["matmul_taken"] = g_matmul_taken.load();
    return d;
  });
  m.def("_numpy_patch_ufuncs", [] {
    init_tables();
    py::list l;
    for (int i = 0; i < g_npatched; ++i) l.append(py::reinterpret_borrow<py::object>(g_ufuncs[i]).attr("__name__"));
    l.append("matmul");
    return l;
  });
}

}  // namespace pk::py_bind
