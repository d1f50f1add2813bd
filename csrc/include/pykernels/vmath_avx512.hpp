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

// exp(x) = 2^e (h + l) for x in [-104, 89] (callers clamp), e = floor(k/16) as a float for vscalefps:
// x = k ln2/16 + r, |r| <= 0.0217 (the 2-part ln2/16, k * hi exact for |k| < 2^12),
// exp(r) = 1 + q, q = r + r^2 P(r) (P degree 2, relative minimax on |r| <= 0.0217, error 2^-24.5 on a
// term < 2^-12), h + l = 2^(j/16) (1 + q) with one rounding on a term < 0.045 (error < 2^-29 relative),
// h + l normalised (Fast2Sum). So h alone is within 0.52 ULP of exp(x) / 2^e.
template <bool kLow = false>
PK_VM_INLINE void exp_parts(__m512 x, __m512& h, __m512& l, __m512& e, __m512 xl = __m512()) {
  const __m512 kb = _mm512_fmadd_ps(x, f16(0x1.715476p+4f), f16(kShiftF));  // k = the low bits of kb
  const __m512 kd = _mm512_sub_ps(kb, f16(kShiftF));
  const __m512 rh = _mm512_fnmadd_ps(kd, f16(0x1.62ep-5f), x);  // exact
  const __m512 r = _mm512_fnmadd_ps(kd, f16(0x1.0bfbe8p-19f), kLow ? _mm512_add_ps(rh, xl) : rh);
  const __m512i j = _mm512_castps_si512(kb);  // vpermps reads the low 4 bits: k mod 16
  const __m512 th = _mm512_permutexvar_ps(j, _mm512_load_ps(kExp2Hi16));
  const __m512 tl = _mm512_permutexvar_ps(j, _mm512_load_ps(kExp2Lo16));
  __m512 p = _mm512_fmadd_ps(r, f16(0x1.5555aep-5f), f16(0x1.5556e0p-3f));
  p = _mm512_fmadd_ps(r, p, f16(0.5f));
  const __m512 q = _mm512_fmadd_ps(_mm512_mul_ps(r, r), p, r);
  const __m512 w = _mm512_fmadd_ps(th, q, tl);  // 2^(j/16) (1 + q) - th, the product tl * q dropped
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

// e^(x + xl) for x <= 0 or NaN, |xl| <= 2^-23 |x| (softmax's rows; xl = 0 where x < -104).
PK_VM_INLINE __m512 exp_lo(__m512 x, __m512 xl) {
  __m512 h, l, e;
  exp_parts<true>(_mm512_max_ps(x, f16(-104.0f)), h, l, e, xl);
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

// tanh: |x| < 0.4 x + x^3 Q(x^2) (the scalar function's Q); else 1 - 2/(1 + E), E = exp(2|x|) as the
// pair 2^e (h + l) (exact scaling, e <= 29), 2/(1 + E) = qh (1 + eps2), 1 - qh by Fast2Sum.
PK_VM_INLINE __m512 tanh(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 z = _mm512_mul_ps(ax, ax);
  __m512 q = _mm512_fmadd_ps(z, f16(-0x1.efd194p-8f), f16(0x1.636e58p-6f));
  q = _mm512_fmadd_ps(z, q, f16(-0x1.ba06e4p-5f));
  q = _mm512_fmadd_ps(z, q, f16(0x1.1110f6p-3f));
  q = _mm512_fmadd_ps(z, q, f16(-0x1.555556p-2f));
  const __m512 tp = _mm512_fmadd_ps(_mm512_mul_ps(ax, z), q, ax);
  __m512 h, l, e;
  exp_parts(_mm512_add_ps(_mm512_min_ps(ax, f16(10.0f)), _mm512_min_ps(ax, f16(10.0f))), h, l, e);
  const __m512 eh = _mm512_scalef_ps(h, e), el = _mm512_scalef_ps(l, e);  // exact
  const __m512 dh = _mm512_add_ps(eh, f16(1.0f));
  const __m512 dl = _mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(eh, dh), f16(1.0f)), el);  // eh >= 1 where used
  __m512 g, eps2;
  recip_pair(dh, dl, g, eps2);
  const __m512 qh = _mm512_add_ps(g, g);
  const __m512 ql = _mm512_mul_ps(qh, eps2);
  const __m512 hh = _mm512_sub_ps(f16(1.0f), qh);
  const __m512 ll = _mm512_sub_ps(_mm512_sub_ps(f16(1.0f), hh), qh);
  const __m512 te = _mm512_add_ps(hh, _mm512_sub_ps(ll, ql));
  const __m512 t = _mm512_mask_mov_ps(te, _mm512_cmp_ps_mask(ax, f16(0.4f), _CMP_LT_OQ), tp);
  const __m512i sign = _mm512_set1_epi32(int32_t(0x80000000u));
  const __m512i tb = _mm512_ternarylogic_epi32(sign, _mm512_castps_si512(x), _mm512_castps_si512(t), 0xca);  // sign ? x : t
  return nan_to_canonical(x, _mm512_castsi512_ps(tb));
}

// sigmoid: E = exp(-|x|) = 2^e (h + l); 1/(1 + E) = g (1 + eps2); x >= 0: g (1 + eps2) rounded once;
// x < 0: (h + l) g (1 + eps2) rounded once (the exact product error of h g), then scaled by 2^e
// (rounded again only where subnormal). Never overflows.
PK_VM_INLINE __m512 sigmoid(__m512 x) {
  const __m512 na = _mm512_max_ps(_mm512_or_ps(x, f16(-0.0f)), f16(-104.0f));
  __m512 h, l, e;
  exp_parts(na, h, l, e);
  const __m512 eh = _mm512_scalef_ps(h, e), el = _mm512_scalef_ps(l, e);
  const __m512 dh = _mm512_add_ps(f16(1.0f), eh);
  const __m512 dl = _mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(f16(1.0f), dh), eh), el);
  __m512 g, eps2;
  recip_pair(dh, dl, g, eps2);
  const __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  const __m512 nh = _mm512_mask_mov_ps(h, pos, f16(1.0f));
  const __m512 nl = _mm512_maskz_mov_ps(__mmask16(~pos), l);
  const __m512 ph = _mm512_mul_ps(nh, g);
  const __m512 pe = _mm512_fmsub_ps(nh, g, ph);
  const __m512 y = _mm512_add_ps(ph, _mm512_fmadd_ps(nl, g, _mm512_fmadd_ps(ph, eps2, pe)));
  return nan_to_canonical(x, _mm512_scalef_ps(y, _mm512_maskz_mov_ps(__mmask16(~pos), e)));
}

// log: x = 2^k m, m in [sqrt(2)/2, sqrt(2)) (vgetmantps to [1, 2), halved from sqrt(2) on, with
// vgetexpps's k), then the scalar function's f, s and compensated sum. Subnormal inputs need no
// scaling (vgetexpps/vgetmantps take them). Special inputs by vfixupimmps: +-0 -> -inf, x < 0 and
// -inf -> x86's default NaN (sign bit set), +inf -> +inf; NaN -> the canonical +NaN.
PK_VM_INLINE __m512 log(__m512 x) {
  const __m512 m1 = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
  const __mmask16 big = _mm512_cmp_ps_mask(m1, f16(0x1.6a09e6p+0f), _CMP_GE_OQ);
  const __m512 m = _mm512_mask_mul_ps(m1, big, m1, f16(0.5f));
  const __m512 kd = _mm512_mask_add_ps(_mm512_getexp_ps(x), big, _mm512_getexp_ps(x), f16(1.0f));
  const __m512 f = _mm512_sub_ps(m, f16(1.0f));  // exact
  const __m512 hf = _mm512_mul_ps(f16(0.5f), f);
  const __m512 hfsq = _mm512_mul_ps(hf, f);
  const __m512 ef = _mm512_fmsub_ps(hf, f, hfsq);  // f^2/2 = hfsq + ef
  const __m512 s = _mm512_div_ps(f, _mm512_add_ps(f16(2.0f), f));
  const __m512 z = _mm512_mul_ps(s, s);
  const __m512 R = _mm512_mul_ps(
      z, _mm512_fmadd_ps(z, _mm512_fmadd_ps(z, f16(0x1.2f039ep-2f), f16(0x1.997b86p-2f)), f16(0x1.55555cp-1f)));
  const __m512 kh = _mm512_mul_ps(kd, f16(kLn2HiF));  // exact
  const __m512 h1 = _mm512_add_ps(kh, f);
  const __m512 l1 = _mm512_add_ps(_mm512_sub_ps(kh, h1), f);      // |kh| >= 0.69 > |f|, or kh = 0
  const __m512 h2 = _mm512_sub_ps(h1, hfsq);
  const __m512 l2 = _mm512_sub_ps(_mm512_sub_ps(h1, h2), hfsq);   // |h1| >= hfsq
  const __m512 tail = _mm512_add_ps(_mm512_fmadd_ps(s, _mm512_add_ps(hfsq, R), _mm512_mul_ps(kd, f16(kLn2LoF))),
                                    _mm512_sub_ps(_mm512_add_ps(l1, l2), ef));
  const __m512 y = _mm512_add_ps(h2, tail);
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
