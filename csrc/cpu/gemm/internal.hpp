// What the GEMM's framework files share (csrc/cpu/gemm/*.cpp): the problem description every path
// takes, the per-thread scratch, the paths themselves and the choice between them. Not a public
// header: the API is csrc/include/pykernels/gemm.hpp.
//
// Files (BLIS's split):
//   path.cpp     which path computes a product (choose_path: an enum, thresholds per ISA as data)
//   driver.cpp   gemm(): options -> Problem -> path; gemm_batched() for N-d dot/matmul
//   blocked.cpp  the packed, cache-blocked framework around the micro-kernel (large products)
//   small.cpp    the small and skinny paths: nothing packed (direct), narrow N (small_n, dot_n)
//   matvec.cpp   matrix-vector products (bandwidth-bound) and the empty/degenerate shapes
//   naive.cpp    the reference triple loop
// The micro-kernels, packing routines and their contract are per ISA: ukernels.inc, compiled once
// per instruction set by isa_generic.cpp / isa_avx2.cpp / isa_avx512.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "pykernels/dispatch.hpp"
#include "pykernels/gemm.hpp"
#include "pykernels/parallel.hpp"

namespace pk::gemm_detail {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A product runs on one thread below kMinFlopsPerThread flops per thread: with the team's threads
// still spinning from the previous call (back-to-back calls as in training) a parallel region costs
// about a microsecond, which a 64^3 product (0.5 Mflop) just repays. Re-derive with
// bench/bench_dot.py at 1 and 2 threads.
constexpr double kMinFlopsPerThread = 5.0e5;

// Threads for a product of `flops` flops: one per kMinFlopsPerThread, at most nt_max.
inline int threads_for_flops(double flops, int nt_max) {
  return int(std::max(1.0, std::min(double(nt_max), flops / kMinFlopsPerThread)));
}

// body(i0, i1) over rows [0, m) on nt threads in pieces aligned to `align` rows (so threads never
// share a cache line of the output); serial below `min_rows` rows.
template <class F>
void run_row_split(int64_t m, int nt, int64_t min_rows, int64_t align, F&& body) {
  if (nt <= 1 || m < min_rows)
    body(int64_t(0), m);
  else
    parallel_for(m, std::max<int64_t>(align, m / nt), align, [&](int64_t b, int64_t e) { body(b, e); }, 1);
}

// 64-byte aligned scratch, grown on demand and kept per thread: no allocation per call once warm.
struct Workspace {
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() { std::free(p_); }
  // a * b elements of T plus `extra` bytes. Extents come from user arrays (a broadcast operand of
  // 2**58 elements costs no memory), so the product is checked: a size that wraps is bad_alloc
  // (MemoryError in Python), never a short buffer.
  template <class T>
  T* get(size_t a, size_t b = 1, size_t extra = 0) {
    size_t bytes = 0;
    if (__builtin_mul_overflow(a, b, &bytes) || __builtin_mul_overflow(bytes, sizeof(T), &bytes) ||
        __builtin_add_overflow(bytes, extra, &bytes) || bytes > (SIZE_MAX >> 2))
      throw std::bad_alloc();
    return static_cast<T*>(get_bytes(bytes));
  }

 private:
  void* get_bytes(size_t bytes);
  void* p_ = nullptr;
  size_t cap_ = 0;
};
Workspace& ws_apack();  // per thread: the packed A block
Workspace& ws_bown();   // per thread: its B block (or the narrow paths' packed B)
Workspace& ws_vec();    // calling thread: bias copy / x copy
Workspace& ws_y();      // calling thread: matrix-vector result

// One 2-d product C(M,N) (+)= A(M,K) B(K,N) with everything the paths need: strides, the fused
// epilogue (bias along N or M, relu), the relu-backward masks applied while packing and the
// row/column sums produced while packing.
template <class T>
struct Problem {
  int64_t M, N, K;
  T* C;
  int64_t rsc, csc;
  const T* A;
  int64_t rsa, csa;
  const T* B;
  int64_t rsb, csb;
  const T* amask = nullptr;
  int64_t amrs = 0, amcs = 0;
  const T* bmask = nullptr;
  int64_t bmrs = 0, bmcs = 0;
  bool accumulate = false, relu = false;
  int bias_kind = kBiasNone;  // before padding: bias along N (col) or M (row)
  const T* bias = nullptr;
  int64_t bias_stride = 1;
  double* a_rowsum = nullptr;  // sum over k of the (masked) rows of A
  double* b_colsum = nullptr;  // sum over k of the (masked) columns of B
};

// C = A B  <=>  C^T = B^T A^T: the same problem with the roles of rows and columns exchanged.
template <class T>
Problem<T> transposed(const Problem<T>& p) {
  Problem<T> q = p;
  q.M = p.N;
  q.N = p.M;
  q.rsc = p.csc;
  q.csc = p.rsc;
  q.A = p.B;
  q.rsa = p.csb;
  q.csa = p.rsb;
  q.B = p.A;
  q.rsb = p.csa;
  q.csb = p.rsa;
  q.amask = p.bmask;
  q.amrs = p.bmcs;
  q.amcs = p.bmrs;
  q.bmask = p.amask;
  q.bmrs = p.amcs;
  q.bmcs = p.amrs;
  q.bias_kind = p.bias_kind == kBiasCol ? kBiasRow : p.bias_kind == kBiasRow ? kBiasCol : kBiasNone;
  q.a_rowsum = p.b_colsum;
  q.b_colsum = p.a_rowsum;
  return q;
}

template <class T>
inline T relu_scalar(T v) {
  return (v > T(0) || v != v) ? v : T(0);
}

template <class T>
inline T bias_at(const Problem<T>& p, int64_t i, int64_t j) {
  if (p.bias_kind == kBiasCol) return p.bias[j * p.bias_stride];
  if (p.bias_kind == kBiasRow) return p.bias[i * p.bias_stride];
  return T(0);
}

// b_colsum[j] += sum over k of the (masked) B(k, j), in double, k ascending: the db of the dense
// backward pass for the paths that do not pack B in micro-panels.
template <class T>
void add_masked_colsums(const Problem<T>& p) {
  for (int64_t j = 0; j < p.N; ++j) {
    double s = 0.0;
    for (int64_t k = 0; k < p.K; ++k)
      if (!p.bmask || p.bmask[k * p.bmrs + j * p.bmcs] > T(0)) s += double(p.B[k * p.rsb + j * p.csb]);
    p.b_colsum[j] += s;
  }
}

// The bias as `len` contiguous values (the first `valid` from p.bias, the rest 0), for kernels that
// load whole vectors of it; p.bias itself when it already is that.
template <class T>
const T* contiguous_bias(const Problem<T>& p, int64_t valid, int64_t len) {
  if (p.bias_stride == 1 && len == valid) return p.bias;
  T* buf = ws_vec().get<T>(size_t(len));
  for (int64_t i = 0; i < len; ++i) buf[i] = i < valid ? p.bias[i * p.bias_stride] : T(0);
  return buf;
}

// ---- the paths (each defined, for float and double, in the file named) --------------------------
// The problem is one the path can compute (choose_path / path_applies); nt_max bounds the threads.
template <class T> void degenerate(const Problem<T>& p);                                  // matvec.cpp
template <class T> void matvec(const Problem<T>& p, const GemmKernels& g, int nt_max);    // matvec.cpp
template <class T> void blocked(const Problem<T>& p, const GemmKernels& g, int nt);       // blocked.cpp
template <class T> void narrow(const Problem<T>& p, const GemmKernels& g, int nt_max);    // small.cpp
template <class T> void dot_narrow(const Problem<T>& p, const GemmKernels& g, int nt_max);  // small.cpp
template <class T>
void direct(const Problem<T>& p, const GemmKernels& g, int nt_max, bool transpose_b);    // small.cpp

// ---- the choice -------------------------------------------------------------------------------------
// What choose_path needs to know of a product: its shape, strides and fused operations.
struct Shape {
  int64_t M, N, K, esz;
  int64_t rsa, csa, rsb, csb, rsc, csc;
  bool amask, bmask, a_rowsum, b_colsum, relu;
  int bias_kind;
};
template <class T>
Shape shape_of(const Problem<T>& p) {
  return {p.M, p.N, p.K, int64_t(sizeof(T)), p.rsa, p.csa, p.rsb, p.csb, p.rsc, p.csc,
          p.amask != nullptr, p.bmask != nullptr, p.a_rowsum != nullptr, p.b_colsum != nullptr, p.relu,
          p.bias_kind};
}
struct PathChoice {
  GemmPath path;
  bool swap;  // Blocked only: computed as C^T = B^T A^T (the register tile along the longer side)
};
// The path for `s` on kernels `g`: the forced one (gemm_force_path) where it applies, else the
// fastest that applies by the thresholds in g.limits.
PathChoice choose_path(const Shape& s, const GemmKernels& g);
// True when `path` can compute `s` on `g` (whatever its speed).
bool path_applies(GemmPath path, const Shape& s, const GemmKernels& g);

}  // namespace pk::gemm_detail
