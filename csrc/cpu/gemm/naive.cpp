// The reference GEMM: a plain triple loop in the operand dtype (k ascending, no FMA contraction: the
// build has -ffp-contract=off). Kept for tests and as the oracle of the fast paths.
#include "pykernels/gemm.hpp"

namespace pk {
namespace {

template <class T>
void naive_t(int64_t M, int64_t N, int64_t K, T* C, int64_t rsc, int64_t csc, const T* A, int64_t rsa, int64_t csa,
             const T* B, int64_t rsb, int64_t csb) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T s = T(0);
      for (int64_t k = 0; k < K; ++k) s = s + A[i * rsa + k * csa] * B[k * rsb + j * csb];
      C[i * rsc + j * csc] = s;
    }
}

}  // namespace

void gemm_naive(DType dt, int64_t M, int64_t N, int64_t K, void* C, int64_t rsc, int64_t csc, const void* A,
                int64_t rsa, int64_t csa, const void* B, int64_t rsb, int64_t csb) {
  if (dt == DType::f32)
    naive_t<float>(M, N, K, static_cast<float*>(C), rsc, csc, static_cast<const float*>(A), rsa, csa,
                   static_cast<const float*>(B), rsb, csb);
  else
    naive_t<double>(M, N, K, static_cast<double*>(C), rsc, csc, static_cast<const double*>(A), rsa, csa,
                    static_cast<const double*>(B), rsb, csb);
}

}  // namespace pk
