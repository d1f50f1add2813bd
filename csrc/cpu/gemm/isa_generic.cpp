// Portable GEMM / GEMV kernels: plain C++ scalar "vectors" of one lane (the compiler may still use
// SSE2 for them). A 4 x 8 tile of accumulators (32 independent chains), multiply then add (the
// build has -ffp-contract=off, so no hidden FMA: results are those of the C++ source on every CPU).
// Blocks as for AVX2: KC = 256 (B micro-panel 8 KiB fp32), MC = 128.
#include <cstdint>

#include "no_transposes.hpp"

namespace {

template <class TT>
struct VecScalar : NoRegisterTransposes {
  using T = TT;
  using R = TT;
  static constexpr int W = 1;
  static inline R zero() { return T(0); }
  static inline R load(const T* p) { return *p; }
  static inline R loadu(const T* p) { return *p; }
  static inline R loadn(const T* p, int n) { return n > 0 ? *p : T(0); }
  static inline void storeu(T* p, R v) { *p = v; }
  static inline void storen(T* p, R v, int n) {
    if (n > 0) *p = v;
  }
  static inline R bcast(const T* p) { return *p; }
  static inline R fma(R a, R b, R c) { return a * b + c; }
  static inline R add(R a, R b) { return a + b; }
  static inline R relu(R v) { return (v > T(0) || v != v) ? v : T(0); }
  static inline R keep_pos(R v, R m) { return m > T(0) ? v : T(0); }
  static inline T hsum(R v) { return v; }
  static inline void prefetch_w(const T*) {}
};
using VecF = VecScalar<float>;
using VecD = VecScalar<double>;

constexpr int kMrF = 4, kNvF = 8;
constexpr int kMrD = 4, kNvD = 8;
constexpr int64_t kKcF = 256, kMcF = 128;
constexpr int64_t kKcD = 256, kMcD = 128;

// Dot-form narrow kernel: 1 rows x 1 columns of accumulators (1 + 1 + 1 vector registers).
constexpr int kDotR = 1, kDotC = 1;

constexpr int kMrShort = 0;

}  // namespace

#define PK_GEMM_NS isa_generic
#include "ukernels.inc"
