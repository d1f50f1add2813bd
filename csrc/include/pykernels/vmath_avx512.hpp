// The 16-lane AVX-512 float32 versions of vmath.hpp's exp, log, tanh and sigmoid (and the softmax
// rows' exp of a pair), in AVX-512F/DQ intrinsics. #included at the end of vmath.hpp where the ISA
// has them (it uses vmath.hpp's helpers); the scalar float32 functions there give the algorithms.
#pragma once

#include <immintrin.h>

#include "pykernels/vmath.hpp"

namespace pk {
namespace vmath {

// ---- float32, 16 lanes per AVX-512 vector ----------------------------------------------------------
// The AVX-512 build's element-wise loops call these on every path (contiguous, in place, strided,
// stride 0; elementwise_loops.inc), so one ISA gives one result per element whatever the layout. The
// instructions the scalar code cannot reach do the bookkeeping: a 16-entry table in one register
// (vpermps), vscalefps for 2^k (one rounding, IEEE overflow and subnormal results), vgetmantps /
// vgetexpps for log's reduction, vfixupimmps for its special inputs, vrcp14ps + exact residuals for the
// quotients. Same accuracy arguments as vmath.hpp's scalar functions, each stated with its function.
namespace avx512 {

// 2^(j/16) = kExp2Hi16[j] + kExp2Lo16[j] (the pair to ~2^-48), from mpmath:
// python -c "import mpmath as mp; mp.mp.prec=100; import numpy as np; v=mp.power(2, mp.mpf(j)/16);
//   h=np.float32(float(v)); print(float(h).hex(), float(np.float32(float(v-h))).hex())"
alignas(64) inline constexpr float kExp2Hi16[16] = {
    0x1.000000p+0f, 0x1.0b5586p+0f, 0x1.172b84p+0f, 0x1.2387a6p+0f, 0x1.306fe0p+0f, 0x1.3dea64p+0f,
    0x1.4bfdaep+0f, 0x1.5ab07ep+0f, 0x1.6a09e6p+0f, 0x1.7a1148p+0f, 0x1.8ace54p+0f, 0x1.9c4918p+0f,
    0x1.ae89fap+0f, 0x1.c199bep+0f, 0x1.d5818ep+0f, 0x1.ea4afap+0f};
alignas(64) inline constexpr float kExp2Lo16[16] = {
    0x0.0p+0f,        0x1.9f3122p-25f,  -0x1.c15742p-27f, 0x1.ceac48p-25f,  0x1.4636e2p-25f,  0x1.824684p-25f,
    -0x1.593abcp-25f, -0x1.5bd5ecp-27f, 0x1.9fcef4p-26f,  -0x1.829fd0p-25f, 0x1.15506ep-27f,  0x1.51f848p-27f,
    -0x1.a94b14p-26f, -0x1.3d56b2p-27f, -0x1.822dbcp-27f, 0x1.52486cp-27f};

PK_VM_INLINE __m512 f16(float v) { return _mm512_set1_ps(v); }

// exp(u) = 2^(kd/16) (th + w) with u = x (+ xl), or u = -x for kNeg: u = k ln2/16 + r, |r| <= 0.0217
// (the 2-part ln2/16, k * hi exact for |k| < 2^12; kd = k as a float), exp(r) = 1 + q, q = r + r^2 P(r)
// (P degree 2, relative minimax on |r| <= 0.0217, error 2^-24.5 on a term < 2^-12), th + w =
// 2^(j/16) (1 + q), j = k mod 16, with one rounding on w, a term < 0.045 th (error < 2^-29 relative).
// kNeg works on v = -r from x itself, the odd terms' signs flipped: the same bits as for -x, one
// negation fewer.
template <bool kNeg = false, bool kLow = false>
PK_VM_INLINE void exp_reduce(__m512 x, __m512& kd, __m512& th, __m512& w, __m512 xl = __m512()) {
  static_assert(!(kNeg && kLow), "xl is added to x, not to -x");
  constexpr float s = kNeg ? -1.0f : 1.0f;
  const __m512 kb = _mm512_fmadd_ps(x, f16(s * 0x1.715476p+4f), f16(kShiftF));  // k = the low bits of kb
  kd = _mm512_sub_ps(kb, f16(kShiftF));
  const __m512 vh = _mm512_fnmadd_ps(kd, f16(s * 0x1.62ep-5f), x);  // exact
  const __m512 v = _mm512_fnmadd_ps(kd, f16(s * 0x1.0bfbe8p-19f), kLow ? _mm512_add_ps(vh, xl) : vh);  // s r
  const __m512i j = _mm512_castps_si512(kb);  // vpermps reads the low 4 bits: k mod 16
  th = _mm512_permutexvar_ps(j, _mm512_load_ps(kExp2Hi16));
  __m512 p = _mm512_fmadd_ps(v, f16(0x1.5555aep-5f), f16(s * 0x1.5556e0p-3f));
  p = _mm512_fmadd_ps(v, p, f16(0.5f));  // P(r)
  const __m512 vv = _mm512_mul_ps(v, v);
  const __m512 q = kNeg ? _mm512_fmsub_ps(vv, p, v) : _mm512_fmadd_ps(vv, p, v);
  // 2^(j/16) (1 + q) - th, the product tl * q dropped
  w = _mm512_fmadd_ps(th, q, _mm512_permutexvar_ps(j, _mm512_load_ps(kExp2Lo16)));
}

// exp(x) = 2^e (h + l) for x in [-104, 89] (callers clamp), e = floor(k/16) as a float for vscalefps:
// exp_reduce's th + w normalised (Fast2Sum). So h alone is within 0.52 ULP of exp(x) / 2^e.
template <bool kLow = false>
PK_VM_INLINE void exp_parts(__m512 x, __m512& h, __m512& l, __m512& e, __m512 xl = __m512()) {
  __m512 kd, th, w;
  exp_reduce<false, kLow>(x, kd, th, w, xl);
  h = _mm512_add_ps(th, w);
  l = _mm512_add_ps(_mm512_sub_ps(th, h), w);
  e = _mm512_mul_ps(kd, f16(0.0625f));  // vscalefps takes floor(k / 16)
}

PK_VM_INLINE __m512 nan_to_canonical(__m512 x, __m512 y) {
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), _mm512_castsi512_ps(_mm512_set1_epi32(0x7fc00000)));
}

// e^x: h * 2^e rounded once more only where the result is subnormal (<= 0.77 ULP there); +inf from
// x >= 88.72283935546875 (vscalefps overflows exactly where the rounded result does).
// A NaN x goes through the clamps (vmaxps/vminps return their second operand when one is NaN) to a
// NaN y, so the NaN test can look at y, where a subnormal result raises DE (flags: top of file).
PK_VM_INLINE __m512 exp(__m512 x) {
  const __m512 xc = _mm512_min_ps(f16(89.0f), _mm512_max_ps(f16(-104.0f), x));
  __m512 h, l, e;
  exp_parts(xc, h, l, e);
  const __m512 y = _mm512_scalef_ps(h, e);
  return nan_to_canonical(y, y);
}

// e^(x + xl) for x <= 0 or NaN, |xl| <= 2^-23 |x| (softmax's rows; xl = 0 where x < -104). A NaN x
// passes through (vmaxps returns its second operand, x, when one is NaN), so a NaN makes its row's
// sum and every output of the row NaN.
PK_VM_INLINE __m512 exp_lo(__m512 x, __m512 xl) {
  __m512 h, l, e;
  exp_parts<true>(_mm512_max_ps(f16(-104.0f), x), h, l, e, xl);
  return _mm512_scalef_ps(h, e);
}

// 1 / (dh + dl) = g (1 + eps2) for dh in [1, 2^30]: g from vrcp14ps (relative error < 2^-14),
// eps = 1 - g (dh + dl) (the product's rounding error below 2^-38), eps2 = eps + eps^2 (error < 2^-42).
PK_VM_INLINE void recip_pair(__m512 dh, __m512 dl, __m512& g, __m512& eps2) {
  g = _mm512_rcp14_ps(dh);
  __m512 eps = _mm512_fnmadd_ps(g, dh, f16(1.0f));
  eps = _mm512_fnmadd_ps(g, dl, eps);
  eps2 = _mm512_fmadd_ps(eps, eps, eps);
}

// row[slot mod 32] per lane: a 32-entry table in two registers (vpermt2ps), for the table-driven tanh
// and log below.
PK_VM_INLINE __m512 lut32(const float* row, __m512i slot) {
  return _mm512_permutex2var_ps(_mm512_load_ps(row), slot, _mm512_load_ps(row + 16));
}

// tanh by table: |x| (clamped to 9.5; tanh rounds to 1 from 9.0109) picks one of 32 slots from its float
// bits, slot = max(bits >> 21, 491) mod 32 (a quarter binade each from 2^-4 to 8, [8, 10) in slot 8,
// |x| < 2^-4 in slot 11), whose two table registers vpermt2ps reads. In the slot, t = |x| - m (exact)
// and tanh = c0h + (c0l + c1 t + t^2 (c2 + ... + c5 t^3)): a degree-5 relative minimax fit with c0 as a
// float pair, so the only sizeable error is the final rounding (slot 11: x + x^3 (c3 + c5 x^2), one
// rounding). Over every float32 x: max 0.686 ULP (csrc/tools/exhaustive_ulp.py). About 25 vector
// instructions per 16 elements against 54 for exp's pair and a compensated quotient.
// Table: python csrc/tools/tanh_f32_table.py
alignas(64) inline constexpr float kTanhF32[8][32] = {
    {  // m
        0x1.2p+1f, 0x1.6p+1f, 0x1.ap+1f, 0x1.ep+1f,
        0x1.2p+2f, 0x1.6p+2f, 0x1.ap+2f, 0x1.ep+2f,
        0x1.2p+3f, 0x0p+0f, 0x0p+0f, 0x0p+0f,
        0x1.2p-4f, 0x1.6p-4f, 0x1.ap-4f, 0x1.ep-4f,
        0x1.2p-3f, 0x1.6p-3f, 0x1.ap-3f, 0x1.ep-3f,
        0x1.2p-2f, 0x1.6p-2f, 0x1.ap-2f, 0x1.ep-2f,
        0x1.2p-1f, 0x1.6p-1f, 0x1.ap-1f, 0x1.ep-1f,
        0x1.2p+0f, 0x1.6p+0f, 0x1.ap+0f, 0x1.ep+0f,
    },
    {  // c0h
        0x1.f4bfd6p-1f, 0x1.fbd50ap-1f, 0x1.fe767ap-1f, 0x1.ff6f18p-1f,
        0x1.ffdfa6p-1f, 0x1.fffbap-1f, 0x1.ffff68p-1f, 0x1.ffffecp-1f,
        0x1.fffffep-1f, 0x0p+0f, 0x0p+0f, 0x0p+0f,
        0x1.1f86bep-4f, 0x1.5f22d2p-4f, 0x1.9e9356p-4f, 0x1.ddd092p-4f,
        0x1.1e1ddp-3f, 0x1.5c9308p-3f, 0x1.9a5f1cp-3f, 0x1.d7665cp-3f,
        0x1.18a39ap-2f, 0x1.52c2c6p-2f, 0x1.8a87e2p-2f, 0x1.bfae6ap-2f,
        0x1.05087p-1f, 0x1.3157ep-1f, 0x1.5789p-1f, 0x1.77d838p-1f,
        0x1.9e5cb6p-1f, 0x1.c278a6p-1f, 0x1.d9c6fcp-1f, 0x1.e8789ep-1f,
    },
    {  // c0l
        0x1.27ee2p-26f, -0x1.d3e56cp-27f, -0x1.6561eap-26f, -0x1.7bbbcep-27f,
        0x1.867f46p-26f, -0x1.ba247p-26f, 0x1.38bf66p-27f, -0x1.0f30d4p-26f,
        0x1.f4fd34p-26f, 0x0p+0f, 0x0p+0f, 0x0p+0f,
        -0x1.374e84p-29f, -0x1.3d45cap-32f, 0x1.f363a2p-30f, 0x1.48eb18p-29f,
        0x1.50843ep-29f, -0x1.b9a9a6p-28f, -0x1.854d84p-31f, 0x1.f4af44p-28f,
        -0x1.ab188cp-30f, -0x1.3ab6d8p-27f, -0x1.6ba09ep-27f, 0x1.723f04p-27f,
        -0x1.a426b6p-26f, -0x1.5030bp-29f, -0x1.de3f0ep-26f, 0x1.c6377p-26f,
        -0x1.9c3966p-28f, -0x1.953196p-26f, -0x1.f8971p-26f, 0x1.9f84e4p-26f,
    },
    {  // c1
        0x1.641088p-5f, 0x1.09a7acp-6f, 0x1.88ef74p-8f, 0x1.21a7b8p-9f,
        0x1.02c148p-11f, 0x1.18359cp-14f, 0x1.2f62f4p-17f, 0x1.4878f6p-20f,
        0x1.066bb4p-24f, 0x0p+0f, 0x0p+0f, 0x1p+0f,
        0x1.fd7a22p-1f, 0x1.fc3cbep-1f, 0x1.fac13ep-1f, 0x1.f9085ap-1f,
        0x1.f601cap-1f, 0x1.f12bp-1f, 0x1.eb715ap-1f, 0x1.e4dfb2p-1f,
        0x1.d98b36p-1f, 0x1.c7f724p-1f, 0x1.b3ff2ep-1f, 0x1.9e23aep-1f,
        0x1.7aeae6p-1f, 0x1.49e6cp-1f, 0x1.197fcep-1f, 0x1.d834d2p-2f,
        0x1.615002p-2f, 0x1.cea744p-3f, 0x1.265e34p-3f, 0x1.6fcfa6p-4f,
    },
    {  // c2
        -0x1.5c3a3ep-5f, -0x1.077906p-6f, -0x1.87b86ep-8f, -0x1.214eaap-9f,
        -0x1.0244fp-11f, -0x1.17bd64p-14f, -0x1.2ee2eap-17f, -0x1.47eea6p-20f,
        -0x1.07fc54p-24f, 0x0p+0f, 0x0p+0f, 0x0p+0f,
        -0x1.1e1c0ap-4f, -0x1.5c8e36p-4f, -0x1.9a5416p-4f, -0x1.d75004p-4f,
        -0x1.18883cp-3f, -0x1.5279fep-3f, -0x1.89e50ep-3f, -0x1.be6cb8p-3f,
        -0x1.038f7p-2f, -0x1.2daf98p-2f, -0x1.4ff712p-2f, -0x1.6a1d38p-2f,
        -0x1.825de4p-2f, -0x1.897d22p-2f, -0x1.79c0e4p-2f, -0x1.5aa224p-2f,
        -0x1.1df056p-2f, -0x1.970ed2p-3f, -0x1.1064bap-3f, -0x1.5ee8aap-4f,
    },
    {  // c3
        0x1.bbce98p-6f, 0x1.59933p-7f, 0x1.0394eap-8f, 0x1.80e4f6p-10f,
        0x1.583eccp-12f, 0x1.750502p-15f, 0x1.93e844p-18f, 0x1.b54f58p-21f,
        0x1.49432p-25f, 0x0p+0f, 0x0p+0f, -0x1.55553ep-2f,
        -0x1.4ea16p-2f, -0x1.4b5adp-2f, -0x1.47742ap-2f, -0x1.42f17cp-2f,
        -0x1.3b135p-2f, -0x1.2ea3fcp-2f, -0x1.202a34p-2f, -0x1.0fdf04p-2f,
        -0x1.e91ef8p-3f, -0x1.98588ep-3f, -0x1.4272p-3f, -0x1.d71f7ep-4f,
        -0x1.bd0ce8p-5f, 0x1.d76898p-7f, 0x1.072cc4p-4f, 0x1.8434bp-4f,
        0x1.c68efep-4f, 0x1.97d8e2p-4f, 0x1.33df76p-4f, 0x1.a85c5p-5f,
    },
    {  // c4
        -0x1.960178p-7f, -0x1.51959ap-8f, -0x1.0374fap-9f, -0x1.83e818p-11f,
        -0x1.69dda6p-13f, -0x1.888fc2p-16f, -0x1.a92218p-19f, -0x1.cc4d02p-22f,
        -0x1.433a9ep-26f, 0x0p+0f, 0x0p+0f, 0x0p+0f,
        0x1.7aa41ap-5f, 0x1.cb980ep-5f, 0x1.0d55bap-4f, 0x1.33c77p-4f,
        0x1.6b051cp-4f, 0x1.af9b76p-4f, 0x1.ed77f8p-4f, 0x1.11e9fp-3f,
        0x1.32dfccp-3f, 0x1.4fff7cp-3f, 0x1.5c02d6p-3f, 0x1.5839a2p-3f,
        0x1.39dae6p-3f, 0x1.e93b12p-4f, 0x1.474356p-4f, 0x1.633ac2p-5f,
        0x1.e50c1ep-9f, -0x1.599f7ep-6f, -0x1.9b961cp-6f, -0x1.5596cp-6f,
    },
    {  // c5
        0x1.0494b2p-8f, 0x1.f67688p-10f, 0x1.947e7p-11f, 0x1.334cd2p-12f,
        0x1.202acep-14f, 0x1.39377ep-17f, 0x1.534b3p-20f, 0x1.6f5fa6p-23f,
        0x1.ffa486p-27f, 0x0p+0f, 0x0p+0f, 0x1.107772p-3f,
        0x1.05c0bep-3f, 0x1.003e52p-3f, 0x1.f378cap-4f, 0x1.e481fp-4f,
        0x1.cab64ap-4f, 0x1.a286acp-4f, 0x1.74c98cp-4f, 0x1.42ace4p-4f,
        0x1.e4bdcep-5f, 0x1.068f24p-5f, 0x1.898048p-8f, -0x1.18304p-6f,
        -0x1.630d46p-5f, -0x1.f7f4b8p-5f, -0x1.00ac5ep-4f, -0x1.b2c93cp-5f,
        -0x1.070c82p-5f, -0x1.39170cp-7f, 0x1.696242p-10f, 0x1.2d31fep-8f,
    },
};

PK_VM_INLINE __m512 tanh(__m512 x) {
  const __m512 ax = _mm512_min_ps(f16(9.5f), _mm512_abs_ps(x));  // NaN stays NaN (vminps's second operand)
  const __m512i slot = _mm512_max_epi32(_mm512_srli_epi32(_mm512_castps_si512(ax), 21), _mm512_set1_epi32(491));
  const __m512 t = _mm512_sub_ps(ax, lut32(kTanhF32[0], slot));
  __m512 p = _mm512_fmadd_ps(lut32(kTanhF32[7], slot), t, lut32(kTanhF32[6], slot));
  p = _mm512_fmadd_ps(p, t, lut32(kTanhF32[5], slot));
  p = _mm512_fmadd_ps(p, t, lut32(kTanhF32[4], slot));
  const __m512 u = _mm512_fmadd_ps(t, lut32(kTanhF32[3], slot), lut32(kTanhF32[2], slot));
  const __m512 y = _mm512_add_ps(lut32(kTanhF32[1], slot), _mm512_fmadd_ps(_mm512_mul_ps(t, t), p, u));
  const __m512i sign = _mm512_set1_epi32(int32_t(0x80000000u));
  const __m512i tb = _mm512_ternarylogic_epi32(sign, _mm512_castps_si512(x), _mm512_castps_si512(y), 0xca);  // sign ? x : y
  return nan_to_canonical(x, _mm512_castsi512_ps(tb));
}

// sigmoid(x) = 1 / (1 + e^-x) = Z / (Z + th + w) for every x, with x clamped to [-104, 64] (sigmoid
// rounds to 1 from 17.33 and to 0 below -103.97). By exp_reduce, e^-x = 2^m (th + w), m = floor(k/16)
// (|w| <= 0.0225 th, not renormalised).
// Z = 2^-m (exact; 2^-150 underflows to 0 where it no longer matters). D = Z + th + w: Z (a power of
// 2) and th (in [1, 2)), the larger first, summed exactly as dh + dl (Fast2Sum), w added into dl.
// 1/D = g (1 + eps): g = vrcp14ps(dh + dl) (relative error < 2^-14), eps = 1 - g dh - g dl; the eps^2
// term left out is < 2^-28. g + g eps is rounded once and scaled by Z (vscalefps: rounded again only
// where the result is subnormal). Over every float32 input: max 0.583 ULP, 0.765 where the result is
// subnormal (x < -87.34); python csrc/tools/exhaustive_ulp.py sigmoid
//
// N vectors at a time, each step over all N before the next: one vector's chain of ~25 dependent
// instructions is longer than the core's scheduler overlaps across loop iterations, so the
// contiguous loops call sigmoid<4>, whose four independent chains interleave in the instruction
// stream.
template <int N>
PK_VM_INLINE void sigmoid(const __m512* x, __m512* y) {
#define PK_EACH _Pragma("GCC unroll 8") for (int k = 0; k < N; ++k)
  const __m512 one = f16(1.0f);
  __m512 c[N], kd[N], th[N], w[N], nm[N], z[N], a[N], b[N], dh[N], dl[N], g[N], eps[N];
  PK_EACH c[k] = _mm512_max_ps(_mm512_min_ps(x[k], f16(64.0f)), f16(-104.0f));  // NaN -> -104
  PK_EACH exp_reduce<true>(c[k], kd[k], th[k], w[k]);  // e^-x = 2^(kd/16) (th + w)
  PK_EACH nm[k] = _mm512_mul_ps(kd[k], f16(-0.0625f));
  PK_EACH nm[k] = _mm512_roundscale_ps(nm[k], _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);  // -m = ceil(-k/16)
  PK_EACH z[k] = _mm512_scalef_ps(one, nm[k]);
  PK_EACH a[k] = _mm512_max_ps(z[k], th[k]);
  PK_EACH b[k] = _mm512_min_ps(z[k], th[k]);
  PK_EACH dh[k] = _mm512_add_ps(a[k], b[k]);
  PK_EACH dl[k] = _mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(a[k], dh[k]), b[k]), w[k]);
  PK_EACH g[k] = _mm512_rcp14_ps(_mm512_add_ps(dh[k], dl[k]));
  PK_EACH eps[k] = _mm512_fnmadd_ps(g[k], dl[k], _mm512_fnmadd_ps(g[k], dh[k], one));
  PK_EACH y[k] = nan_to_canonical(x[k], _mm512_scalef_ps(_mm512_fmadd_ps(g[k], eps[k], g[k]), nm[k]));
#undef PK_EACH
}
PK_VM_INLINE __m512 sigmoid(__m512 x) {
  __m512 y;
  sigmoid<1>(&x, &y);
  return y;
}

// log by table: x = 2^k m, m in [0.75, 1.5) (vgetmantps; k from vgetexpps, plus 1 where m < 1), and
// m's slot is bits(m) >> 18 mod 32 (1/32 wide on [1, 1.5), 1/64 on [0.75, 1)). Per slot inv ~ 1/m with
// 6 fractional bits (1 for the two slots around m = 1), so r = m inv - 1 is exact in one FMA, |r| <=
// 1/32; log x = (k ln2_hi + T_hi) + r + (k ln2_lo + T_lo + log1p(r) - r) with T = -log(inv) = T_hi +
// T_lo, T_hi on a 2^-17 grid as k ln2_hi is (|sum| < 128: exact), then r added by Fast2Sum, log1p(r) - r
// by its Taylor series to r^6 (truncation < 2^-33 relative). Only the final rounding is sizeable:
// over every positive float32, subnormals included, max 0.520 ULP (csrc/tools/exhaustive_ulp.py).
// Subnormal inputs need no scaling (vgetexpps/vgetmantps take them). Special inputs by vfixupimmps: +-0 -> -inf, x < 0 and
// -inf -> x86's default NaN (sign bit set), +inf -> +inf; NaN -> the canonical +NaN.
// Tables: python csrc/tools/log_f32_table.py
alignas(64) inline constexpr float kLogF32[3][32] = {
    {  // inv
        0x1p+0f, 0x1.e8p-1f, 0x1.d8p-1f, 0x1.dp-1f,
        0x1.cp-1f, 0x1.b8p-1f, 0x1.a8p-1f, 0x1.ap-1f,
        0x1.98p-1f, 0x1.88p-1f, 0x1.8p-1f, 0x1.78p-1f,
        0x1.7p-1f, 0x1.68p-1f, 0x1.6p-1f, 0x1.58p-1f,
        0x1.5p+0f, 0x1.4cp+0f, 0x1.44p+0f, 0x1.4p+0f,
        0x1.38p+0f, 0x1.34p+0f, 0x1.2cp+0f, 0x1.28p+0f,
        0x1.2p+0f, 0x1.1cp+0f, 0x1.18p+0f, 0x1.14p+0f,
        0x1.1p+0f, 0x1.0cp+0f, 0x1.08p+0f, 0x1p+0f,
    },
    {  // T_hi
        0x0p+0f, 0x1.895p-5f, 0x1.4d3p-4f, 0x1.9338p-4f,
        0x1.1178p-3f, 0x1.366p-3f, 0x1.823cp-3f, 0x1.a94p-3f,
        0x1.d104p-3f, 0x1.1178p-2f, 0x1.2696p-2f, 0x1.3c26p-2f,
        0x1.522ap-2f, 0x1.68acp-2f, 0x1.7fbp-2f, 0x1.973ap-2f,
        -0x1.1676p-2f, -0x1.0a32p-2f, -0x1.e27p-3f, -0x1.c9p-3f,
        -0x1.9524p-3f, -0x1.7ab8p-3f, -0x1.44d4p-3f, -0x1.2954p-3f,
        -0x1.e27p-4f, -0x1.a928p-4f, -0x1.6f1p-4f, -0x1.342p-4f,
        -0x1.f0ap-5f, -0x1.774p-5f, -0x1.f82p-6f, 0x0p+0f,
    },
    {  // T_lo
        0x0p+0f, -0x1.57ad82p-19f, 0x1.15d208p-20f, -0x1.0d1536p-19f,
        0x1.d044fcp-20f, -0x1.a7f538p-22f, 0x1.6551a4p-23f, -0x1.2c3752p-19f,
        -0x1.01b354p-20f, 0x1.d044fcp-19f, 0x1.089a6ep-21f, -0x1.b1199ap-19f,
        0x1.c0e714p-19f, 0x1.07d38ep-19f, -0x1.7109fap-20f, 0x1.a189acp-21f,
        0x1.aa2a2cp-21f, -0x1.389ce4p-20f, -0x1.db8abcp-21f, 0x1.070cacp-20f,
        -0x1.a9cf46p-19f, -0x1.20421cp-20f, 0x1.493348p-19f, -0x1.2f82p-19f,
        -0x1.db8abcp-22f, 0x1.2c5b52p-20f, 0x1.6ba8d4p-19f, 0x1.434f22p-19f,
        -0x1.86008cp-20f, -0x1.63d8ccp-19f, -0x1.361cfp-19f, 0x0p+0f,
    },
};

PK_VM_INLINE __m512 log(__m512 x) {
  const __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_zero);
  const __m512 ex = _mm512_getexp_ps(x);
  const __m512 kd = _mm512_mask_add_ps(ex, _mm512_cmp_ps_mask(m, f16(1.0f), _CMP_LT_OQ), ex, f16(1.0f));
  const __m512i slot = _mm512_srli_epi32(_mm512_castps_si512(m), 18);
  const __m512 r = _mm512_fmadd_ps(m, lut32(kLogF32[0], slot), f16(-1.0f));         // exact
  const __m512 s1 = _mm512_fmadd_ps(kd, f16(kLn2HiF), lut32(kLogF32[1], slot));     // exact
  const __m512 s2 = _mm512_add_ps(s1, r);
  const __m512 e2 = _mm512_add_ps(_mm512_sub_ps(s1, s2), r);  // |s1| >= |r| or s1 = 0
  __m512 q = _mm512_fmadd_ps(r, f16(-1.0f / 6), f16(0.2f));
  q = _mm512_fmadd_ps(r, q, f16(-0.25f));
  q = _mm512_fmadd_ps(r, q, f16(1.0f / 3));
  q = _mm512_fmadd_ps(r, q, f16(-0.5f));
  const __m512 lo = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(r, r), q, e2),
                                  _mm512_fmadd_ps(kd, f16(kLn2LoF), lut32(kLogF32[2], slot)));
  const __m512 y = _mm512_add_ps(s2, lo);
  // vfixupimmps responses per input class (4 bits each, class 0 = QNaN ... 7 = positive): zero -> -inf (4),
  // -inf and negative -> QNaN indefinite (3), +inf -> +inf (5), the rest keep y (0). Its imm8 0x71
  // raises np.log's flags on the way: divide-by-zero for a zero input (bit 0), invalid for an SNaN
  // (bit 4), -inf (bit 5) and a negative input (bit 6).
  const __m512 fx = _mm512_fixupimm_ps(y, x, _mm512_set1_epi32(0x03530400), 0x71);
  return nan_to_canonical(x, fx);
}

}  // namespace avx512

}  // namespace vmath
}  // namespace pk
