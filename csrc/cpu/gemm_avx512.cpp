// AVX-512 GEMM / GEMV kernels (compiled with -mavx512f ... -mfma, see CMakeLists.txt).
//
// Register tile: 14 x 32 floats (14 x 16 doubles) = 28 zmm accumulators + 2 for the B row + the
// broadcast operand comes from memory ({1to16} embedded broadcast): 31 of the 32 zmm registers.
// Per k step 28 FMAs against 2 vector loads + 14 broadcasts, so the two 512-bit FMA pipes of Zen5
// (4-cycle latency -> 8 chains needed) stay busy and loads are not the bottleneck.
//
// Cache blocks (Zen5 VM: L1d 48 KiB/core, L2 1 MiB/core, L3 32 MiB shared; lscpu):
//  - KC = 256: one packed B micro-panel is KC x NR = 256 x 32 x 4 B = 32 KiB and stays in L1 while
//    the MC/MR A micro-panels (14 x 256 x 4 B = 14 KiB each) stream through it.
//  - MC = 336 (24 x MR): the packed A block MC x KC = 336 KiB (fp32) sits in L2 with room for the
//    B micro-panels and C lines passing through; fp64 uses MC = 168 (same bytes).
//  - NC (gemm.cpp): the packed B panel K x NC is kept <= 8 MiB, an L3-resident slice.
#include <immintrin.h>

#include <cstdint>

namespace {

struct VecF {
  using T = float;
  using R = __m512;
  static constexpr int W = 16;
  static inline __mmask16 mask(int n) { return __mmask16((1u << n) - 1u); }
  static inline R zero() { return _mm512_setzero_ps(); }
  static inline R load(const T* p) { return _mm512_load_ps(p); }
  static inline R loadu(const T* p) { return _mm512_loadu_ps(p); }
  static inline R loadn(const T* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static inline void storeu(T* p, R v) { _mm512_storeu_ps(p, v); }
  static inline void storen(T* p, R v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static inline R bcast(const T* p) { return _mm512_set1_ps(*p); }
  static inline R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static inline R add(R a, R b) { return _mm512_add_ps(a, b); }
  // np.maximum(v, 0): keep v where !(v <= 0) (v > 0 or NaN), else +0.0.
  static inline R relu(R v) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero(), _CMP_NLE_UQ), v); }
  static inline T hsum(R v) { return _mm512_reduce_add_ps(v); }
  static inline void prefetch_w(const T* p) {
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p + W), _MM_HINT_T0);
  }
};

struct VecD {
  using T = double;
  using R = __m512d;
  static constexpr int W = 8;
  static inline __mmask8 mask(int n) { return __mmask8((1u << n) - 1u); }
  static inline R zero() { return _mm512_setzero_pd(); }
  static inline R load(const T* p) { return _mm512_load_pd(p); }
  static inline R loadu(const T* p) { return _mm512_loadu_pd(p); }
  static inline R loadn(const T* p, int n) { return _mm512_maskz_loadu_pd(mask(n), p); }
  static inline void storeu(T* p, R v) { _mm512_storeu_pd(p, v); }
  static inline void storen(T* p, R v, int n) { _mm512_mask_storeu_pd(p, mask(n), v); }
  static inline R bcast(const T* p) { return _mm512_set1_pd(*p); }
  static inline R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static inline R add(R a, R b) { return _mm512_add_pd(a, b); }
  static inline R relu(R v) { return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(v, zero(), _CMP_NLE_UQ), v); }
  static inline T hsum(R v) { return _mm512_reduce_add_pd(v); }
  static inline void prefetch_w(const T* p) {
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p + W), _MM_HINT_T0);
  }
};

constexpr int kMrF = 14, kNvF = 2;  // 14 x 32 floats
constexpr int kMrD = 14, kNvD = 2;  // 14 x 16 doubles
constexpr int64_t kKcF = 256, kMcF = 336;
constexpr int64_t kKcD = 256, kMcD = 168;

}  // namespace

#define PK_GEMM_NS isa_avx512
#include "gemm_kernels.inc"
