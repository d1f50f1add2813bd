// AVX-512 GEMM / GEMV kernels (compiled with -mavx512f ... -mfma, see CMakeLists.txt).
//
// Register tile: 12 x 32 floats (12 x 16 doubles) = 24 zmm accumulators + 2 for the B row; the A
// value is broadcast from memory ({1to16} embedded broadcast or one vbroadcastss). Per k step 24
// FMAs against 2 vector loads + 12 broadcasts: two 512-bit FMA pipes (4-cycle latency -> at least 8
// independent chains needed) stay busy and the loads are not the bottleneck.
// MR = 12 rather than 14: the MNIST batch of 128 rows is 11 tiles with 4 padded rows (97%
// useful) instead of 10 tiles with 12 padded rows (91%); square sizes lose nothing measurable.
//
// Cache blocks (tuned for L1d 48 KiB/core, L2 1 MiB/core, L3 32 MiB shared):
//  - KC = 448, MC = 192 (fp32), chosen by measurement: interleaved runs in one process (1 thread,
//    median of 7 rounds, bench-like sizes) of (KC, MC) in {192..640} x {144..480}: (448, 192) was
//    best or within noise of the best everywhere; in one run n = 1024: 199 GFLOP/s vs 196 for
//    (384, 240); n = 2048: 197 vs 184; (128,784)x(784,512): 205 vs 202 ((256, 336) gave 196, 176
//    and 193 in an earlier run). blocked.cpp evens the blocks out (K = 1024 -> 3 x 344, K = 784 ->
//    2 x 392), so the
//    packed B micro-panel is KC x 32 x 4 B = 43-56 KiB (about L1) and the A block MC x KC
//    = 192 x 448 x 4 B = 336 KiB sits in L2 (1 MiB).
//  - fp64: KC = 448, MC = 168 (A block 588 KiB), measured the same way with MC = 160: n = 2048:
//    91.4 GFLOP/s vs 89.9 for (384, 192) and 84.6 for (256, 336); n = 1024: 91.4 vs 88.9 and 87.4.
//    (MC is kept a multiple of MR.)
//  - NC (blocked.cpp, gemm_b_block_bytes): every thread's packed B block KC x NC is kept within
//    8 MiB on AMD (an L3-resident slice) and half the L2 elsewhere (a mesh L3 streams too slowly).
// Packing of row-major A and column-major B goes through 16 x 16 (8 x 8 for doubles) register
// transposes, so transposed operands cost no more than contiguous ones.
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics headers trigger false "-Wmaybe-uninitialized" warnings on
// _mm512_undefined_* temporaries (GCC bug 105593); they say nothing about this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cstdint>

namespace {

// In-register 16 x 16 transpose: r[j] becomes column j of the input rows r[0..15].
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int c = 0; c < 4; ++c) {
    t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
    t[4 + c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
    t[8 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
  }
  for (int c = 0; c < 8; ++c) {
    r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xdd);
  }
}

struct VecF {
  using T = float;
  using R = __m512;
  static constexpr int W = 16;
  static constexpr bool kRegisterTransposes = true;  // transpose_regs (and pack_rows, pack_cols, transpose_tile)
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
  // The relu mask of the backward pass: v where m > 0, else +0.0.
  static inline R keep_pos(R v, R m) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m, zero(), _CMP_GT_OQ), v); }
  static inline T hsum(R v) { return _mm512_reduce_add_ps(v); }
  // Packs nn (<= NR) columns of a column-contiguous B (B(p, j) at b[j*cs + p]) into k steps of NR
  // values (pack_b's layout), 16 columns at a time through register transposes.
  template <int NR>
  static inline bool pack_cols(T* dst, const T* b, int64_t cs, int64_t k, int nn) {
    if (NR % 16 != 0) return false;
    for (int64_t p = 0; p < k; p += 16) {
      const int kr = int(k - p < 16 ? k - p : 16);  // the last block: masked loads, kr rows stored
      const __mmask16 lm = mask(kr);
      for (int g = 0; g < NR / 16; ++g) {
        R r[16];
        for (int j = 0; j < 16; ++j) {
          const int col = g * 16 + j;
          r[j] = col < nn ? _mm512_maskz_loadu_ps(lm, b + col * cs + p) : zero();
        }
        transpose16(r);
        for (int q = 0; q < kr; ++q) _mm512_storeu_ps(dst + (p + q) * NR + g * 16, r[q]);
      }
    }
    return true;
  }
  // Packs MR (<= 16) contiguous rows x k into k steps of MR values (pack_a's layout) through
  // 16 x 16 register transposes; with a mask, A(i,p) is kept where mask(i,p) > 0.
  template <int MR>
  static inline bool pack_rows(T* dst, const T* a, int64_t rs, const T* keep, int64_t mrs, int64_t k) {
    if (MR > 16) return false;
    const __mmask16 keep_rows = mask(MR);
    for (int64_t p = 0; p < k; p += 16) {
      const int kr = int(k - p < 16 ? k - p : 16);  // the last block: masked loads, kr columns stored
      const __mmask16 lm = mask(kr);
      R r[16];
      for (int i = 0; i < 16; ++i) {
        if (i >= MR) {
          r[i] = zero();
        } else if (keep) {
          const __mmask16 pos =
              _mm512_mask_cmp_ps_mask(lm, _mm512_maskz_loadu_ps(lm, keep + i * mrs + p), zero(), _CMP_GT_OQ);
          r[i] = _mm512_maskz_loadu_ps(pos, a + i * rs + p);
        } else {
          r[i] = _mm512_maskz_loadu_ps(lm, a + i * rs + p);
        }
      }
      transpose16(r);
      for (int j = 0; j < kr; ++j) _mm512_mask_storeu_ps(dst + (p + j) * MR, keep_rows, r[j]);
    }
    return true;
  }

  // The MR x NV*16 register tile transposed: out[j] holds column j (lane i = row i; lanes past MR
  // are zero).
  template <int MR, int NV>
  static inline bool transpose_tile(const R (&acc)[MR][NV], R* out) {
    if (MR > 16) return false;
    for (int jv = 0; jv < NV; ++jv) {
      R r[16];
      for (int i = 0; i < 16; ++i) r[i] = i < MR ? acc[i < MR ? i : 0][jv] : zero();
      transpose16(r);
      for (int q = 0; q < 16; ++q) out[jv * 16 + q] = r[q];
    }
    return true;
  }
  static inline void transpose_regs(R r[16]) { transpose16(r); }  // r[j] becomes column j

  static inline void prefetch_w(const T* p) {
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p + W), _MM_HINT_T0);
  }
};

// In-register 8 x 8 transpose of doubles: r[j] becomes column j of the input rows r[0..7].
inline void transpose8(__m512d r[8]) {
  __m512d t[8], s[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
  }
  const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int h = 0; h < 2; ++h)
    for (int e = 0; e < 2; ++e) {
      s[4 * h + e] = _mm512_permutex2var_pd(t[4 * h + e], lo, t[4 * h + 2 + e]);
      s[4 * h + 2 + e] = _mm512_permutex2var_pd(t[4 * h + e], hi, t[4 * h + 2 + e]);
    }
  const __m512i l2 = _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11), h2 = _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15);
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm512_permutex2var_pd(s[c], l2, s[4 + c]);
    r[4 + c] = _mm512_permutex2var_pd(s[c], h2, s[4 + c]);
  }
}

struct VecD {
  using T = double;
  using R = __m512d;
  static constexpr int W = 8;
  static constexpr bool kRegisterTransposes = true;
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
  static inline R keep_pos(R v, R m) { return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(m, zero(), _CMP_GT_OQ), v); }
  static inline T hsum(R v) { return _mm512_reduce_add_pd(v); }
  // As VecF::pack_rows / pack_cols, with 8 x 8 transposes.
  template <int MR>
  static inline bool pack_rows(T* dst, const T* a, int64_t rs, const T* keep, int64_t mrs, int64_t k) {
    if (MR > 16) return false;
    for (int64_t p = 0; p < k; p += 8) {
      const int kr = int(k - p < 8 ? k - p : 8);
      const __mmask8 lm = mask(kr);
      for (int g = 0; g < (MR + 7) / 8; ++g) {
        R r[8];
        for (int i = 0; i < 8; ++i) {
          const int row = g * 8 + i;
          if (row >= MR) {
            r[i] = zero();
          } else if (keep) {
            const __mmask8 pos =
                _mm512_mask_cmp_pd_mask(lm, _mm512_maskz_loadu_pd(lm, keep + row * mrs + p), zero(), _CMP_GT_OQ);
            r[i] = _mm512_maskz_loadu_pd(pos, a + row * rs + p);
          } else {
            r[i] = _mm512_maskz_loadu_pd(lm, a + row * rs + p);
          }
        }
        transpose8(r);
        const __mmask8 sm = mask(MR - g * 8 < 8 ? MR - g * 8 : 8);
        for (int q = 0; q < kr; ++q) _mm512_mask_storeu_pd(dst + (p + q) * MR + g * 8, sm, r[q]);
      }
    }
    return true;
  }
  template <int NR>
  static inline bool pack_cols(T* dst, const T* b, int64_t cs, int64_t k, int nn) {
    if (NR % 8 != 0) return false;
    for (int64_t p = 0; p < k; p += 8) {
      const int kr = int(k - p < 8 ? k - p : 8);
      const __mmask8 lm = mask(kr);
      for (int g = 0; g < NR / 8; ++g) {
        R r[8];
        for (int j = 0; j < 8; ++j) {
          const int col = g * 8 + j;
          r[j] = col < nn ? _mm512_maskz_loadu_pd(lm, b + col * cs + p) : zero();
        }
        transpose8(r);
        for (int q = 0; q < kr; ++q) _mm512_storeu_pd(dst + (p + q) * NR + g * 8, r[q]);
      }
    }
    return true;
  }

  template <int MR, int NV>
  static inline bool transpose_tile(const R (&)[MR][NV], R*) {
    return false;  // a column of MR = 12 doubles spans two vectors: the scalar stores are kept
  }
  static inline void transpose_regs(R r[8]) { transpose8(r); }  // r[j] becomes column j

  static inline void prefetch_w(const T* p) {
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p + W), _MM_HINT_T0);
  }
};

constexpr int kMrF = 12, kNvF = 2;  // 12 x 32 floats
constexpr int kMrD = 12, kNvD = 2;  // 12 x 16 doubles
constexpr int64_t kKcF = 448, kMcF = 192;
constexpr int64_t kKcD = 448, kMcD = 168;

// Dot-form narrow kernel: 4 rows x 5 columns of accumulators (20 + 4 + 5 vector registers).
constexpr int kDotR = 4, kDotC = 5;

// MR = 10 for products of at most 10 rows (the transposed classifier products, e.g. (10,128)x(128,512)
// for H^T dZ), where 2 of the 12 rows of the full tile would be padding.
constexpr int kMrShort = 10;

}  // namespace

#define PK_GEMM_NS isa_avx512
#include "ukernels.inc"
