// The small and skinny paths: products where packing both operands would cost as much as the product.
//   direct      B small (stays in cache): nothing packed, A and B read in place (GemmDirect)
//   narrow      N <= two vectors: only B packed (it is small), A read in place (GemmSmallN)
//   dot_narrow  N <= one vector, long contiguous rows of A: dot products along k (GemmDotN)
// Threads split C's rows (or, in direct, its columns where that balances better); every C element is
// one FMA chain in a fixed order, so results do not depend on the thread count.
#include <type_traits>

#include "internal.hpp"

namespace pk::gemm_detail {

// The small B of the narrow paths is packed (or transposed) by every thread for itself, inside the
// parallel region: a copy written by the calling thread and read by the other costs a cross-core
// transfer per call, which can take longer than the product itself ((128,512)x(512,10) on 2 threads:
// about 2x slower with one shared copy; bench/native/gemm_vs_openblas.cpp re-measures it).

// N <= 2 vectors: only B is packed (it is small); A is read in place (see small_n). Threads split
// C's rows.
template <class T>
void narrow(const Problem<T>& p, const GemmKernels& g, int nt_max) {
  const int64_t M = p.M, N = p.N, K = p.K;
  const int64_t nrs = N <= g.lanes ? g.lanes : 2 * g.lanes;
  // Rows of (at most 32) padded values: fixed-length loops (no memcpy/memset call per row).
  auto pack = [&](T* bp, auto nrs_const) {
    constexpr int64_t NRS = decltype(nrs_const)::value;
    for (int64_t k = 0; k < K; ++k) {
      const T* row = p.B + k * p.rsb;
      T* d = bp + k * NRS;
      if (!p.bmask) {
        for (int64_t j = 0; j < NRS; ++j) d[j] = j < N ? row[j * p.csb] : T(0);
      } else {
        const T* mrow = p.bmask + k * p.bmrs;
        for (int64_t j = 0; j < NRS; ++j) d[j] = (j < N && mrow[j * p.bmcs] > T(0)) ? row[j * p.csb] : T(0);
      }
    }
  };
  auto pack_b = [&]() {
    T* bp = ws_bown().get<T>(size_t(K), size_t(nrs), 64);  // this thread's
    switch (nrs) {
      case 1: pack(bp, std::integral_constant<int64_t, 1>()); break;
      case 2: pack(bp, std::integral_constant<int64_t, 2>()); break;
      case 4: pack(bp, std::integral_constant<int64_t, 4>()); break;
      case 8: pack(bp, std::integral_constant<int64_t, 8>()); break;
      case 16: pack(bp, std::integral_constant<int64_t, 16>()); break;
      default: pack(bp, std::integral_constant<int64_t, 32>()); break;
    }
    return bp;
  };
  if (p.b_colsum) add_masked_colsums(p);
  const T* bias = p.bias_kind == kBiasCol ? contiguous_bias(p, N, nrs) : nullptr;
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const int nt = threads_for_flops(flops, nt_max);
  auto body = [&](int64_t i0, int64_t i1) {
    const T* bp = pack_b();
    g.small_n(i1 - i0, N, K, p.A + i0 * p.rsa, p.rsa, p.csa, bp, p.C + i0 * p.rsc, p.rsc, p.csc,
              p.accumulate ? 1 : 0, bias, p.relu ? 1 : 0);
  };
  run_row_split(M, nt, 48, 24, body);
}

// Small N, rows of A contiguous: every C element as a dot product along k (GemmDotN), B used
// transposed (read in place when its columns are contiguous, else copied by each thread: it is
// small). Threads split C's rows.
template <class T>
void dot_narrow(const Problem<T>& p, const GemmKernels& g, int nt_max) {
  const int64_t M = p.M, N = p.N, K = p.K;
  const bool copy = p.bmask || p.rsb != 1;
  auto transposed_b = [&]() {
    T* buf = ws_bown().get<T>(size_t(N), size_t(K), 64);  // this thread's
    if (!p.bmask && p.csb == 1) {
      // Register transposes: the scalar copy was a fifth of the (128,512)x(512,10) product's time.
      g.transpose(buf, K, p.B, p.rsb, K, N);
      return buf;
    }
    for (int64_t k = 0; k < K; ++k) {
      const T* row = p.B + k * p.rsb;
      const T* mrow = p.bmask ? p.bmask + k * p.bmrs : nullptr;
      for (int64_t j = 0; j < N; ++j)
        buf[j * K + k] = (!mrow || mrow[j * p.bmcs] > T(0)) ? row[j * p.csb] : T(0);
    }
    return buf;
  };
  if (p.b_colsum) add_masked_colsums(p);
  const T* bias = p.bias_kind == kBiasCol ? contiguous_bias(p, N, N) : nullptr;
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const int nt = threads_for_flops(flops, nt_max);
  auto body = [&](int64_t i0, int64_t i1) {
    const T* bt = copy ? transposed_b() : p.B;
    const int64_t ldbt = copy ? K : p.csb;
    g.dot_n(i1 - i0, N, K, p.A + i0 * p.rsa, p.rsa, bt, ldbt, p.C + i0 * p.rsc, p.rsc, p.csc,
            p.accumulate ? 1 : 0, bias, p.relu ? 1 : 0);
  };
  run_row_split(M, nt, 32, 16, body);
}

// B within GemmLimits::direct_max_bytes, wider than one vector: nothing packed, A and B read in place
// (GemmDirect), whatever M. Threads split C's rows. Faster than the packed path from 32^3 to 128^3
// and for tall products with a small B ((10000,128)x(128,100): about 1.4x), where packing costs as
// much as the product. Not for N <= one vector (N = 10: most of the tile would be padding; the
// dot-form kernel is about 2x faster there). bench/bench_dot.py re-measures these shapes.

// transpose_b: B is given with contiguous columns (csb == 1 does not hold, rsb == 1: a W.T view)
// and K is within one vector: each thread first copies its columns of B into row-major order with
// register transposes (K x N, at most 64 KiB), then reads the copy in place.
template <class T>
void direct(const Problem<T>& p, const GemmKernels& g, int nt_max, bool transpose_b) {
  const int64_t M = p.M, N = p.N, K = p.K;
  const T* bias = p.bias_kind == kBiasCol ? contiguous_bias(p, N, N) : nullptr;
  const int nt = threads_for_flops(2.0 * double(M) * double(N) * double(K), nt_max);
  // Threads split C's rows, or its columns (in whole NR-wide panels) where that gives the busiest
  // thread fewer register tiles or, at equal tiles, less of B to transpose: dZ(128,10) . W2.T(10,512)
  // on 2 threads is 6 + 5 row tiles of 12 rows (the busier thread does 6/11 of the work and both
  // transpose all of B) against 8 + 8 column panels of 32.
  const int64_t rt = ceil_div(M, g.mr), ct = ceil_div(N, g.nr);
  bool split_cols = false;
  if (nt > 1 && N >= 2 * int64_t(g.nr)) {
    const int64_t busiest_rows = M >= 2 * int64_t(g.mr) ? ceil_div(rt, nt) * ct : rt * ct;
    const int64_t busiest_cols = rt * ceil_div(ct, nt);
    split_cols = busiest_cols < busiest_rows || (busiest_cols == busiest_rows && transpose_b);
  }
  // This thread's block of C: rows [i0, i1) x columns [j0, j1).
  auto body = [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const T* a = p.A + i0 * p.rsa;
    int64_t rsa = p.rsa, csa = p.csa;
    if (p.amask) {
      // The relu mask of the dense backward pass: this thread's rows of A, masked, into a
      // contiguous copy (A is small here: M x K within GemmLimits::direct_max_bytes).
      T* abuf = ws_apack().get<T>(size_t(i1 - i0), size_t(K), 64);
      for (int64_t i = i0; i < i1; ++i) {
        const T* arow = p.A + i * p.rsa;
        const T* mrow = p.amask + i * p.amrs;
        T* d = abuf + (i - i0) * K;
        for (int64_t k = 0; k < K; ++k) {
          const T v = arow[k * p.csa], m = mrow[k * p.amcs];  // both loaded: a select, not a branch
          d[k] = m > T(0) ? v : T(0);
        }
      }
      a = abuf;
      rsa = K;
      csa = 1;
    }
    const T* b = p.B + j0 * p.csb;
    int64_t ldb = p.rsb;
    if (transpose_b) {
      // This thread's columns of B, copied into row-major order (K x (j1 - j0)).
      T* buf = ws_bown().get<T>(size_t(K), size_t(j1 - j0), 64);
      g.transpose(buf, j1 - j0, b, p.csb, j1 - j0, K);
      b = buf;
      ldb = j1 - j0;
    }
    g.direct(i1 - i0, j1 - j0, K, a, rsa, csa, b, ldb, p.C + i0 * p.rsc + j0, p.rsc, p.accumulate ? 1 : 0,
             bias ? bias + j0 : nullptr, p.relu ? 1 : 0);
  };
  if (split_cols)
    parallel_for(
        N, std::max<int64_t>(g.nr, N / nt), g.nr, [&](int64_t j0, int64_t j1) { body(0, M, j0, j1); }, 1);
  else
    run_row_split(M, nt, 2 * int64_t(g.mr), g.mr, [&](int64_t i0, int64_t i1) { body(i0, i1, 0, N); });
}

template void narrow<float>(const Problem<float>&, const GemmKernels&, int);
template void narrow<double>(const Problem<double>&, const GemmKernels&, int);
template void dot_narrow<float>(const Problem<float>&, const GemmKernels&, int);
template void dot_narrow<double>(const Problem<double>&, const GemmKernels&, int);
template void direct<float>(const Problem<float>&, const GemmKernels&, int, bool);
template void direct<double>(const Problem<double>&, const GemmKernels&, int, bool);

}  // namespace pk::gemm_detail
