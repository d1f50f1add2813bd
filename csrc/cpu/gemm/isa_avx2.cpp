// AVX2 + FMA GEMM / GEMV kernels (compiled with -mavx2 -mfma, see CMakeLists.txt).
//
// Register tile: 6 x 16 floats (6 x 8 doubles) = 12 ymm accumulators + 2 for the B row + 1
// broadcast = 15 of the 16 ymm registers (the classic BLIS Haswell shape: 12 independent FMA chains
// cover 2 pipes x 4-5 cycles latency).
// Cache blocks: KC = 256 -> B micro-panel 256 x 16 x 4 B = 16 KiB in L1; MC = 144 (24 x MR) -> the
// packed A block 144 KiB in L2 (fits the 256 KiB+ L2 of any AVX2 core); fp64 MC = 72 (same bytes).
#include <immintrin.h>

#include <cstdint>

#include "no_transposes.hpp"

namespace {

alignas(32) const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

struct VecF : NoRegisterTransposes {
  using T = float;
  using R = __m256;
  static constexpr int W = 8;
  static inline __m256i mask(int n) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - n)); }
  static inline R zero() { return _mm256_setzero_ps(); }
  static inline R load(const T* p) { return _mm256_load_ps(p); }
  static inline R loadu(const T* p) { return _mm256_loadu_ps(p); }
  static inline R loadn(const T* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static inline void storeu(T* p, R v) { _mm256_storeu_ps(p, v); }
  static inline void storen(T* p, R v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static inline R bcast(const T* p) { return _mm256_broadcast_ss(p); }
  static inline R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static inline R add(R a, R b) { return _mm256_add_ps(a, b); }
  static inline R relu(R v) { return _mm256_and_ps(_mm256_cmp_ps(v, zero(), _CMP_NLE_UQ), v); }
  // The relu mask of the backward pass: v where m > 0, else +0.0.
  static inline R keep_pos(R v, R m) { return _mm256_and_ps(_mm256_cmp_ps(m, zero(), _CMP_GT_OQ), v); }
  static inline T hsum(R v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static inline void prefetch_w(const T* p) {
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p + W), _MM_HINT_T0);
  }
};

struct VecD : NoRegisterTransposes {
  using T = double;
  using R = __m256d;
  static constexpr int W = 4;
  static inline __m256i mask(int n) {
    return _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kMaskTable + 8 - n)));
  }
  static inline R zero() { return _mm256_setzero_pd(); }
  static inline R load(const T* p) { return _mm256_load_pd(p); }
  static inline R loadu(const T* p) { return _mm256_loadu_pd(p); }
  static inline R loadn(const T* p, int n) { return _mm256_maskload_pd(p, mask(n)); }
  static inline void storeu(T* p, R v) { _mm256_storeu_pd(p, v); }
  static inline void storen(T* p, R v, int n) { _mm256_maskstore_pd(p, mask(n), v); }
  static inline R bcast(const T* p) { return _mm256_broadcast_sd(p); }
  static inline R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static inline R add(R a, R b) { return _mm256_add_pd(a, b); }
  static inline R relu(R v) { return _mm256_and_pd(_mm256_cmp_pd(v, zero(), _CMP_NLE_UQ), v); }
  static inline R keep_pos(R v, R m) { return _mm256_and_pd(_mm256_cmp_pd(m, zero(), _CMP_GT_OQ), v); }
  static inline T hsum(R v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static inline void prefetch_w(const T* p) {
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p + W), _MM_HINT_T0);
  }
};

constexpr int kMrF = 6, kNvF = 2;  // 6 x 16 floats
constexpr int kMrD = 6, kNvD = 2;  // 6 x 8 doubles
constexpr int64_t kKcF = 256, kMcF = 144;
constexpr int64_t kKcD = 256, kMcD = 72;

// Dot-form narrow kernel: 2 rows x 4 columns of accumulators (8 + 2 + 4 vector registers).
constexpr int kDotR = 2, kDotC = 4;

constexpr int kMrShort = 0;

}  // namespace

#define PK_GEMM_NS isa_avx2
#include "ukernels.inc"
