// Matrix-vector products (M == 1 or N == 1): bandwidth-bound, every element of the matrix read once
// (GemvKernel per ISA), threads split y; and the degenerate shapes (M, N or K of 0).
#include "internal.hpp"

namespace pk::gemm_detail {

// A matrix-vector product runs on one thread below this many bytes of A per thread.
constexpr int64_t kGemvMinBytesPerThread = int64_t(256) << 10;

// M, N or K is 0: sums over an empty or a full K directly, C from the epilogue of an empty sum.
template <class T>
void degenerate(const Problem<T>& p) {
  if (p.b_colsum) add_masked_colsums(p);
  if (p.a_rowsum)
    for (int64_t i = 0; i < p.M; ++i) {
      double s = 0.0;
      for (int64_t k = 0; k < p.K; ++k) {
        const T v = p.A[i * p.rsa + k * p.csa];
        if (!p.amask || p.amask[i * p.amrs + k * p.amcs] > T(0)) s += double(v);
      }
      p.a_rowsum[i] += s;
    }
  if (p.K != 0) return;
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = 0; j < p.N; ++j) {
      T* c = p.C + i * p.rsc + j * p.csc;
      T v = p.accumulate ? *c : T(0);
      v = v + bias_at(p, i, j);
      if (p.relu) v = relu_scalar(v);
      *c = v;
    }
}

// y = A x for M == 1 or N == 1 (no masks or sums): the bandwidth-bound kernel, threads split y.
template <class T>
void matvec(const Problem<T>& p, const GemmKernels& g, int nt_max) {
  // Form: C[:,0] = A x (N == 1) or C[0,:] = B^T a (M == 1); prefer the one whose matrix has
  // contiguous rows or columns.
  bool use_a = p.N == 1;
  if (p.M == 1 && p.N == 1) use_a = (p.csa == 1 || p.rsb != 1);
  const int64_t m = use_a ? p.M : p.N;
  const int64_t K = p.K;
  const T* mat = use_a ? p.A : p.B;
  const int64_t rs = use_a ? p.rsa : p.csb, cs = use_a ? p.csa : p.rsb;
  const T* x = use_a ? p.B : p.A;
  const int64_t incx = use_a ? p.rsb : p.csa;
  T* y = p.C;
  const int64_t incy = use_a ? p.rsc : p.csc;

  const T* xc = x;
  if (incx != 1) {
    T* buf = ws_vec().get<T>(size_t(K));
    for (int64_t k = 0; k < K; ++k) buf[k] = x[k * incx];
    xc = buf;
  }
  T* ytmp = ws_y().get<T>(size_t(m), 1, 64);
  const int64_t bytes = m * K * int64_t(sizeof(T));
  int nt = int(std::min<int64_t>(nt_max, std::max<int64_t>(1, bytes / kGemvMinBytesPerThread)));
  auto body = [&](int64_t i0, int64_t i1) {
    g.gemv(ytmp + i0, mat + i0 * rs, rs, cs, xc, i1 - i0, K);
    for (int64_t i = i0; i < i1; ++i) {
      T* yi = y + i * incy;
      T v = ytmp[i];
      if (p.accumulate) v = *yi + v;
      if (p.bias_kind != kBiasNone) v = v + (use_a ? bias_at(p, i, 0) : bias_at(p, 0, i));
      if (p.relu) v = relu_scalar(v);
      *yi = v;
    }
  };
  run_row_split(m, nt, 32, 16, body);  // 16-row units: threads never share a cache line of y
}

template void degenerate<float>(const Problem<float>&);
template void degenerate<double>(const Problem<double>&);
template void matvec<float>(const Problem<float>&, const GemmKernels&, int);
template void matvec<double>(const Problem<double>&, const GemmKernels&, int);

}  // namespace pk::gemm_detail
