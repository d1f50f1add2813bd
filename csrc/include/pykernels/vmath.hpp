// Vectorisable exp, log, tanh and sigmoid for float32 and float64: branch-free scalar functions
// (selects instead of branches, table lookups GCC turns into gathers) that the per-ISA element-wise
// loops inline, so `for (i) o[i] = exp(x[i])` becomes one SIMD loop per ISA (elementwise_loops.inc);
// for float32 the AVX-512 build calls 16-lane versions instead (the end of this file).
//
// Accuracy (measured by tests/test_activations.py against float64 / np.longdouble on > 10^6 inputs
// per function and dtype plus the edge cases): within 1 ULP everywhere. Measured max: float32 exp
// 0.545 (AVX-512; 0.63 generic), log 0.514 (AVX-512's table; 0.667 generic), tanh 0.686 (AVX-512's
// table; 0.62 generic), sigmoid 0.583 (AVX-512; 0.62 generic), and 0.765 where exp/sigmoid results
// are subnormal (rounded to 24 bits, then to the subnormal grid); over every float32 input (AVX-512,
// python csrc/tools/exhaustive_ulp.py exp log tanh sigmoid): exp 0.546 (0.757 subnormal results), log
// 0.520, tanh 0.686, sigmoid 0.583 (0.765 subnormal results). float64 exp/sigmoid 0.748
// (subnormal results; 0.502 above), log 0.793 (fdlibm's bound is < 1), tanh 0.500.
//  * float32: computed in float32 arithmetic (16 lanes per AVX-512 vector, not 8): argument
//    reductions exact (Cody-Waite with a short ln2_hi), the large terms of each result summed
//    exactly (Fast2Sum, exact product errors) and the small ones added to their rounding errors, so
//    only the final rounding is sizeable; the polynomial errors are < 2^-24 of terms below 0.07.
//    The AVX-512 tanh and log are table-driven instead (vmath_avx512.hpp): tanh a degree-5 polynomial
//    per slot of |x| with the constant term as a float pair, log a reciprocal and -log of it per slot
//    of the mantissa; fewer instructions, still one sizeable rounding.
//  * float64: exp reduces x = (128 e + j) ln2/128 + r with a 2-part ln2/128 (k*hi exact for
//    |k| < 2^17), 2^(j/128) from a table as hi + relative tail, exp(r) - 1 by a degree-6 Taylor
//    polynomial (|r| <= ln2/256: truncation < 2^-62 relative to r). log is fdlibm's (e_log.c,
//    error < 1 ULP). tanh and sigmoid carry exp's result as a double-double (hi + lo) through the
//    quotient, with one Newton correction of the division, so their only sizeable error is the
//    final rounding.
// Results can differ from NumPy's in the last bit: NumPy's own loops are not correctly rounded
// either (its float32 AVX-512 exp/log, glibc's float64 ones).
//
// Special values follow NumPy 2.x on x86-64 bit for bit: overflow to +inf exactly where the
// correctly rounded result overflows (float32 exp: x >= 88.72283935546875, float64: x > 709.78),
// subnormal results rounded once, log(+-0) = -inf, log(x < 0) = NaN with the sign bit set (x86's
// default NaN), NaN inputs: float32 functions return the canonical +NaN (NumPy's AVX-512 float32
// loops do), float64 exp/log return x quieted (sign and payload kept), float64 tanh the canonical
// +NaN, sigmoid the NaN of -x (as 1/(1+exp(-x)) gives).
//
// Floating-point exception flags: pykernels.exp and .log warn as np.exp and np.log do, whatever these
// functions raised (the loops replace the flags by those of the op's input ranges, ops.hpp and
// elementwise_fp_loops.inc), and the loops compute those only when the call raised invalid, x86's
// denormal-operand flag (DE), divide-by-zero, overflow or underflow. So every input NumPy reports a
// flag for raises one of these here: exp overflows or underflows, or (a subnormal result rounded
// exactly raises no underflow) its NaN test compares the result y, where a subnormal y raises DE;
// its clamps compare a subnormal x (DE) or a NaN x (invalid). The 16-lane log's vfixupimmps raises
// NumPy's divide-by-zero and invalid for x <= 0 itself; the scalar log computes x <= 0 without a flag,
// so its loops also look for x <= 0 among the inputs. tests/test_errstate_vmath.py checks every ISA.
//
// No FP contraction (the library builds with -ffp-contract=off); fma computes exact product errors
// (the Dekker split where the ISA has no FMA) and the Horner steps, so the FMA ISAs and the generic
// build can differ in the last bit, never in the bound; within one ISA every layout and thread count
// gives the same bits.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define PK_VM_HD __host__ __device__
#define PK_VM_INLINE __forceinline__
#elif defined(__GNUC__)
#define PK_VM_HD
#define PK_VM_INLINE inline __attribute__((always_inline))
#else
#define PK_VM_HD
#define PK_VM_INLINE inline
#endif

namespace pk {
namespace vmath {

PK_VM_HD PK_VM_INLINE uint64_t as_u64(double x) { uint64_t u; std::memcpy(&u, &x, 8); return u; }
PK_VM_HD PK_VM_INLINE double as_f64(uint64_t u) { double x; std::memcpy(&x, &u, 8); return x; }
PK_VM_HD PK_VM_INLINE uint32_t as_u32(float x) { uint32_t u; std::memcpy(&u, &x, 4); return u; }
PK_VM_HD PK_VM_INLINE float as_f32(uint32_t u) { float x; std::memcpy(&x, &u, 4); return x; }

// c ? a : b as a bit blend. A ?: on floating-point values lets GCC sink the computation of the
// unused side into a branch, which it then cannot if-convert under the default -ftrapping-math
// (the loop stays scalar); the blend keeps every lane's computation unconditional.
PK_VM_HD PK_VM_INLINE double sel(bool c, double a, double b) {
  const uint64_t m = uint64_t(0) - uint64_t(c);
  return as_f64((as_u64(a) & m) | (as_u64(b) & ~m));
}
PK_VM_HD PK_VM_INLINE float sel(bool c, float a, float b) {
  const uint32_t m = uint32_t(0) - uint32_t(c);
  return as_f32((as_u32(a) & m) | (as_u32(b) & ~m));
}

// a*b + c, fused where the ISA has FMA (then results differ from the generic build's in the last
// bit of an intermediate, never in the error bound): Horner steps of the polynomials only.
PK_VM_HD PK_VM_INLINE double fmadd(double a, double b, double c) {
#if defined(__FMA__) || defined(__CUDA_ARCH__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// a*b - p exactly, for p = fl(a*b) (no overflow or underflow in the operands used here).
PK_VM_HD PK_VM_INLINE double mul_err(double a, double b, double p) {
#if defined(__FMA__) || defined(__CUDA_ARCH__)
  return std::fma(a, b, -p);
#else
  const double ca = 134217729.0 * a, cb = 134217729.0 * b;  // Veltkamp split, 2^27 + 1
  const double ah = ca - (ca - a), al = a - ah;
  const double bh = cb - (cb - b), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
}

// 2^(j/128) = kExp2Hi[j] * (1 + kExp2Tail[j]), the tail relative (|tail| < 2^-53), from mpmath at
// 200 bits: python -c "import mpmath as mp; mp.mp.prec=200; v=mp.power(2, mp.mpf(j)/128); h=float(v);
//   print(h.hex(), float((v-h)/h).hex())"
alignas(64) inline constexpr double kExp2Hi[128] = {
    0x1.0000000000000p+0, 0x1.0163da9fb3335p+0, 0x1.02c9a3e778061p+0, 0x1.04315e86e7f85p+0,
    0x1.059b0d3158574p+0, 0x1.0706b29ddf6dep+0, 0x1.0874518759bc8p+0, 0x1.09e3ecac6f383p+0,
    0x1.0b5586cf9890fp+0, 0x1.0cc922b7247f7p+0, 0x1.0e3ec32d3d1a2p+0, 0x1.0fb66affed31bp+0,
    0x1.11301d0125b51p+0, 0x1.12abdc06c31ccp+0, 0x1.1429aaea92de0p+0, 0x1.15a98c8a58e51p+0,
    0x1.172b83c7d517bp+0, 0x1.18af9388c8deap+0, 0x1.1a35beb6fcb75p+0, 0x1.1bbe084045cd4p+0,
    0x1.1d4873168b9aap+0, 0x1.1ed5022fcd91dp+0, 0x1.2063b88628cd6p+0, 0x1.21f49917ddc96p+0,
    0x1.2387a6e756238p+0, 0x1.251ce4fb2a63fp+0, 0x1.26b4565e27cddp+0, 0x1.284dfe1f56381p+0,
    0x1.29e9df51fdee1p+0, 0x1.2b87fd0dad990p+0, 0x1.2d285a6e4030bp+0, 0x1.2ecafa93e2f56p+0,
    0x1.306fe0a31b715p+0, 0x1.32170fc4cd831p+0, 0x1.33c08b26416ffp+0, 0x1.356c55f929ff1p+0,
    0x1.371a7373aa9cbp+0, 0x1.38cae6d05d866p+0, 0x1.3a7db34e59ff7p+0, 0x1.3c32dc313a8e5p+0,
    0x1.3dea64c123422p+0, 0x1.3fa4504ac801cp+0, 0x1.4160a21f72e2ap+0, 0x1.431f5d950a897p+0,
    0x1.44e086061892dp+0, 0x1.46a41ed1d0057p+0, 0x1.486a2b5c13cd0p+0, 0x1.4a32af0d7d3dep+0,
    0x1.4bfdad5362a27p+0, 0x1.4dcb299fddd0dp+0, 0x1.4f9b2769d2ca7p+0, 0x1.516daa2cf6642p+0,
    0x1.5342b569d4f82p+0, 0x1.551a4ca5d920fp+0, 0x1.56f4736b527dap+0, 0x1.58d12d497c7fdp+0,
    0x1.5ab07dd485429p+0, 0x1.5c9268a5946b7p+0, 0x1.5e76f15ad2148p+0, 0x1.605e1b976dc09p+0,
    0x1.6247eb03a5585p+0, 0x1.6434634ccc320p+0, 0x1.6623882552225p+0, 0x1.68155d44ca973p+0,
    0x1.6a09e667f3bcdp+0, 0x1.6c012750bdabfp+0, 0x1.6dfb23c651a2fp+0, 0x1.6ff7df9519484p+0,
    0x1.71f75e8ec5f74p+0, 0x1.73f9a48a58174p+0, 0x1.75feb564267c9p+0, 0x1.780694fde5d3fp+0,
    0x1.7a11473eb0187p+0, 0x1.7c1ed0130c132p+0, 0x1.7e2f336cf4e62p+0, 0x1.80427543e1a12p+0,
    0x1.82589994cce13p+0, 0x1.8471a4623c7adp+0, 0x1.868d99b4492edp+0, 0x1.88ac7d98a6699p+0,
    0x1.8ace5422aa0dbp+0, 0x1.8cf3216b5448cp+0, 0x1.8f1ae99157736p+0, 0x1.9145b0b91ffc6p+0,
    0x1.93737b0cdc5e5p+0, 0x1.95a44cbc8520fp+0, 0x1.97d829fde4e50p+0, 0x1.9a0f170ca07bap+0,
    0x1.9c49182a3f090p+0, 0x1.9e86319e32323p+0, 0x1.a0c667b5de565p+0, 0x1.a309bec4a2d33p+0,
    0x1.a5503b23e255dp+0, 0x1.a799e1330b358p+0, 0x1.a9e6b5579fdbfp+0, 0x1.ac36bbfd3f37ap+0,
    0x1.ae89f995ad3adp+0, 0x1.b0e07298db666p+0, 0x1.b33a2b84f15fbp+0, 0x1.b59728de5593ap+0,
    0x1.b7f76f2fb5e47p+0, 0x1.ba5b030a1064ap+0, 0x1.bcc1e904bc1d2p+0, 0x1.bf2c25bd71e09p+0,
    0x1.c199bdd85529cp+0, 0x1.c40ab5fffd07ap+0, 0x1.c67f12e57d14bp+0, 0x1.c8f6d9406e7b5p+0,
    0x1.cb720dcef9069p+0, 0x1.cdf0b555dc3fap+0, 0x1.d072d4a07897cp+0, 0x1.d2f87080d89f2p+0,
    0x1.d5818dcfba487p+0, 0x1.d80e316c98398p+0, 0x1.da9e603db3285p+0, 0x1.dd321f301b460p+0,
    0x1.dfc97337b9b5fp+0, 0x1.e264614f5a129p+0, 0x1.e502ee78b3ff6p+0, 0x1.e7a51fbc74c83p+0,
    0x1.ea4afa2a490dap+0, 0x1.ecf482d8e67f1p+0, 0x1.efa1bee615a27p+0, 0x1.f252b376bba97p+0,
    0x1.f50765b6e4540p+0, 0x1.f7bfdad9cbe14p+0, 0x1.fa7c1819e90d8p+0, 0x1.fd3c22b8f71f1p+0,
};
alignas(64) inline constexpr double kExp2Tail[128] = {
    0x0.0p+0, 0x1.b3b4f1a88bf6ep-54, -0x1.160139cd8dc5dp-56, -0x1.05e7a108766d1p-54,
    0x1.cd2523567f613p-55, -0x1.bce8023f98efap-55, 0x1.0f74e61e6c861p-57, 0x1.0a3e45b33d399p-54,
    0x1.79aa65d837b6dp-54, 0x1.eb51a92fdeffcp-55, 0x1.ebe3d702f9cd1p-60, -0x1.a033489906e0bp-57,
    -0x1.556522a2fbd0ep-54, -0x1.080ef8c4eea55p-58, -0x1.1c923b9d5f416p-54, 0x1.0d3e3e95c55afp-55,
    -0x1.01b15eaa59348p-55, -0x1.f1ff055de323dp-55, 0x1.b898c3f1353bfp-55, -0x1.6d99c7611eb26p-54,
    0x1.aecf73e3a2f60p-54, -0x1.fe782cb86389dp-55, 0x1.a6f4144a6c38dp-55, 0x1.07a05b0e4047dp-55,
    0x1.68efde3a8a894p-54, 0x1.75e18f274487dp-55, 0x1.0472b981fe7f2p-55, -0x1.6b87b3f71085ep-54,
    0x1.2f7e16d09ab31p-55, -0x1.d219b1a6fbffap-60, 0x1.b3782720c0ab4p-55, 0x1.e149289cecb8fp-57,
    0x1.34d754db0abb6p-55, 0x1.64201e2ac744cp-55, 0x1.fdd395dd3f84ap-55, -0x1.6a3803b8e5b04p-55,
    -0x1.24aedcc4b5068p-54, -0x1.907f81b512d8ep-54, -0x1.1d1e83e9436d2p-56, -0x1.91919b3ce1b15p-54,
    0x1.59f48a72a4c6dp-55, -0x1.312607a28698ap-54, -0x1.8a78f4817895bp-58, -0x1.c2c9b67499a1bp-56,
    0x1.363ed60c2ac11p-59, 0x1.666093b0664efp-54, 0x1.ecce1daa10379p-57, 0x1.3ff8e3f0f1230p-54,
    0x1.690cebb7aafb0p-56, 0x1.31dbdeb54e077p-54, -0x1.f94340071a38ep-55, -0x1.7deccdc93a349p-55,
    -0x1.8dec6bd0f385fp-56, -0x1.61246ec7b5cf6p-55, 0x1.3350518fdd78ep-54, 0x1.b98b72f8a9b05p-56,
    0x1.063e1e21c5409p-54, 0x1.4c7855019c6eap-60, 0x1.432e62b64c035p-54, -0x1.ce44a6199769fp-55,
    -0x1.c33c53bef4da8p-55, -0x1.45378892be9aep-55, -0x1.3cedd78565858p-54, 0x1.710aa807e1964p-58,
    -0x1.3b3efbf5e2228p-54, -0x1.a12ad8734b982p-57, -0x1.367efb86da9eep-57, -0x1.0dc3d54e08851p-55,
    -0x1.81f647e5a3ecfp-56, -0x1.6ee4ac08b7db0p-55, -0x1.619321e55e68ap-55, 0x1.09ccb5e09d4d3p-54,
    -0x1.b32dcb94da51dp-56, 0x1.4ecfd5467c06bp-54, 0x1.5ebe1abd66c55p-57, -0x1.8a1c52fb3cf42p-55,
    -0x1.369b6f13b3734p-54, -0x1.05e843a19ff1ep-55, -0x1.4d450d872576ep-54, 0x1.0ad675b0e8a00p-54,
    0x1.db72fc1f0eab4p-55, -0x1.5b6609cc5e7ffp-57, 0x1.bf68359f35f44p-56, -0x1.3091fa71e3d83p-54,
    -0x1.da9b88b6c1e29p-58, -0x1.c23f97c90b959p-57, -0x1.2434322f4f9aap-54, -0x1.5ca6cd7668e4bp-55,
    0x1.1affc2b91ce27p-56, 0x1.dd235e10a73bbp-57, -0x1.7c50422622263p-55, 0x1.b1c86e3e231d5p-55,
    -0x1.1bbd1d3bcbb15p-54, 0x1.0cc319cee31d2p-54, 0x1.469846e735ab3p-55, -0x1.2dfcd978e9db4p-55,
    0x1.c1a7792cb3387p-55, -0x1.07b8f4ad1d9fap-54, -0x1.5c3d956dcaebap-58, -0x1.0a40e3da6f640p-54,
    -0x1.8d6f438ad9334p-57, -0x1.1eee26b588a35p-54, 0x1.4ffd70a5fddcdp-56, -0x1.1bdfbfa9298acp-54,
    0x1.36eae30af0cb3p-56, 0x1.ee3325c9ffd94p-55, 0x1.4e08fd10959acp-55, 0x1.3cdaf384e1a67p-57,
    0x1.76b2c6c921968p-57, -0x1.08a1883ccb5d2p-55, -0x1.fad5d3ffffa6fp-55, -0x1.00dae3875a949p-54,
    0x1.4a385a63d07a7p-56, -0x1.2919e2040220fp-55, 0x1.e5a50d5c192acp-55, 0x1.43a59ac016b4bp-55,
    -0x1.2d52107b43e1fp-55, -0x1.92ab93b470dc9p-55, 0x1.4b604603a88d3p-56, 0x1.3c5ec519d7271p-55,
    -0x1.ff7128fd391f0p-55, -0x1.dae98e223747dp-55, 0x1.ec3bc41aa2008p-55, 0x1.42b94c3a9eb32p-55,
    0x1.a64a931d185eep-55, -0x1.e37bae43be3edp-55, 0x1.7893b4d91cd9dp-56, 0x1.305c14160cc89p-58,
};

constexpr double kShift = 0x1.8p52;             // x + kShift - kShift rounds x to an integer
constexpr uint64_t kShiftBits = 0x4338000000000000ULL;
constexpr double kInvLn2N = 0x1.71547652b82fep7;  // 128 / ln2
constexpr double kLn2HiN = 0x1.62e42fefa0000p-8;  // ln2/128, 17 trailing zero bits: k*hi exact, |k| < 2^17
constexpr double kLn2LoN = 0x1.cf79abc9e3b3ap-47;
constexpr double kLog2e = 0x1.71547652b82fep0;
constexpr double kLn2Hi = 0x1.62e42fefa0000p-1;   // the same split for ln2 itself
constexpr double kLn2Lo = 0x1.cf79abc9e3b3ap-40;

// exp(x) = s * (1 + mh + ml) * f2 for x in [-760, 720] (callers clamp; NaN passes through as NaN in
// mh): s = 2^(e1 + j/128) with e1 clamped to [-1000, 1000] so that s is normal, f2 = 2^(e - e1) the
// rest of the power of two (1 unless the result overflows or is subnormal), mh + ml = exp(r) - 1
// plus the table's tail as a double-double accurate to ~2^-62 relative to mh.
PK_VM_HD PK_VM_INLINE void exp_parts(double x, double& s, double& mh, double& ml, double& f2) {
  const double z = x * kInvLn2N;
  const double kb = z + kShift;
  const uint64_t ki = as_u64(kb);  // kShiftBits + k
  const double kd = kb - kShift;
  const double rh = x - kd * kLn2HiN;  // exact
  const double t = kd * kLn2LoN;
  const double r = rh - t;
  const double rl = (rh - r) - t;
  const uint64_t j = ki & 127;
  const int64_t e = int64_t(ki >> 7) - int64_t(kShiftBits >> 7);  // floor(k / 128)
  const int64_t e1 = e < -1000 ? -1000 : (e > 1000 ? 1000 : e);
  const int64_t e2 = e - e1;
  s = kExp2Hi[j] * as_f64(uint64_t(e1 + 1023) << 52);
  f2 = as_f64(uint64_t(e2 + 1023) << 52);
  const double p = r * r *
      fmadd(r, fmadd(r, fmadd(r, fmadd(r, 0x1.6c16c16c16c17p-10, 0x1.1111111111111p-7), 0x1.5555555555555p-5),
                     0x1.5555555555555p-3), 0.5);
  mh = r + p;
  ml = ((r - mh) + p) + (rl + kExp2Tail[j] * (1.0 + mh));  // tail*mh matters to expm1 near 0 (tanh)
}

// ---- float64 -------------------------------------------------------------------------------------
PK_VM_HD PK_VM_INLINE double exp(double x) {
  const double xc = sel(x < -760.0, -760.0, sel(x > 720.0, 720.0, x));
  double s, mh, ml, f2;
  exp_parts(xc, s, mh, ml, f2);
  const double y = (s + s * (mh + ml)) * f2;
  // A subnormal y must raise DE (flags: top of file): y + 0 (exact, exp is never -0) where it measured
  // faster (the AVX-512 build: 4% against comparing y), elsewhere the NaN test on y rather than x.
#if defined(__AVX512F__)
  return sel(x != x, x + x, y) + 0.0;
#else
  return sel(y != y, x + x, y);
#endif
}

// fdlibm's log (e_log.c): x = 2^k m, m in [sqrt(2)/2, sqrt(2)), f = m - 1, s = f/(2+f),
// log(1+f) = f - (f^2/2 - s (f^2/2 + R(s^2))) with R a degree-7 minimax polynomial in s^2.
PK_VM_HD PK_VM_INLINE double log(double x) {
  constexpr double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01,
                   Lg3 = 2.857142874366239149e-01, Lg4 = 2.222219843214978396e-01,
                   Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
                   Lg7 = 1.479819860511658591e-01;
  constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  const bool sub = x < 0x1p-1022;  // subnormal (or <= 0, handled below): scale into the normal range
  const double xs = sel(sub, x * 0x1p54, x);
  const uint64_t hx = as_u64(xs) + (0x3ff0000000000000ULL - 0x3fe6a09e667f3bcdULL);
  const double m = as_f64((hx & 0x000fffffffffffffULL) + 0x3fe6a09e667f3bcdULL);
  // k = (hx >> 52) - 1023 (- 54), converted through the mantissa of 2^52 (no int64 -> double).
  const double dk = (as_f64(0x4330000000000000ULL | (hx >> 52)) - 0x1p52) - sel(sub, 1077.0, 1023.0);
  const double f = m - 1.0;
  const double hfsq = 0.5 * f * f;
  const double s = f / (2.0 + f);
  const double z = s * s, w = z * z;
  const double t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
  const double t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
  const double R = t2 + t1;
  double y = dk * ln2_hi - ((hfsq - (s * (hfsq + R) + dk * ln2_lo)) - f);
  y = sel(x == 0.0, -HUGE_VAL, y);
  y = sel(x < 0.0, as_f64(0xfff8000000000000ULL), y);
  y = sel(x == HUGE_VAL, x, y);
  return sel(x != x, x + x, y);
}

// tanh(|x|) = em / (em + 2), em = exp(2|x|) - 1 as a double-double; the quotient with one exact
// residual correction. |x| >= 20 rounds to 1 (tanh(x) = 1 in float64 from 19.06).
PK_VM_HD PK_VM_INLINE double tanh(double x) {
  const double ax = std::fabs(x);
  const double y = sel(ax > 20.0, 40.0, 2.0 * ax);
  double s, mh, ml, f2;
  exp_parts(y, s, mh, ml, f2);  // s >= 1, f2 = 1
  const double h0 = s - 1.0, l0 = (s - h0) - 1.0;  // exact
  const double b = s * mh, be = mul_err(s, mh, b);
  const double eh = h0 + b;                        // |h0| >= |b| or h0 = 0: Fast2Sum
  const double el = ((h0 - eh) + b) + (l0 + be + s * ml);
  const double dh = eh + 2.0, bb = dh - eh;        // TwoSum(eh, 2)
  const double dl = ((eh - (dh - bb)) + (2.0 - bb)) + el;
  const double q = eh / dh;
  const double pq = q * dh, pe = mul_err(q, dh, pq);
  const double rho = (((eh - pq) - pe) + el) - q * dl;
  double t = q + rho / dh;
  t = sel(ax < 0x1p-28, ax, t);  // tanh(x) = x - x^3/3 rounds to x
  t = std::copysign(t, x);
  return sel(x != x, as_f64(0x7ff8000000000000ULL), t);
}

// sigmoid(x) = 1/(1 + E) for x >= 0, E/(1 + E) for x < 0, E = exp(-|x|) as a double-double (its
// power-of-two rest f2 applied last, so a subnormal result is rounded once). Never overflows.
PK_VM_HD PK_VM_INLINE double sigmoid(double x) {
  const double na = -std::fabs(x);
  const double t = sel(na < -760.0, -760.0, na);
  double s, mh, ml, f2;
  exp_parts(t, s, mh, ml, f2);  // s <= 1
  const double b = s * mh, be = mul_err(s, mh, b);
  const double eh = s + b;
  const double el = ((s - eh) + b) + (be + s * ml);
  const double ehs = eh * f2, els = el * f2;
  const double dh = 1.0 + ehs;
  const double dl = ((1.0 - dh) + ehs) + els;
  const bool pos = x >= 0.0;
  const double nh = sel(pos, 1.0, eh), nl = sel(pos, 0.0, el), g = sel(pos, 1.0, f2);
  const double q = nh / dh;
  const double pq = q * dh, pe = mul_err(q, dh, pq);
  const double rho = (((nh - pq) - pe) + nl) - q * dl;
  const double y = (q + rho / dh) * g;
  return sel(x != x, -x - x, y);
}

// ---- float32, in float32 arithmetic (16 lanes per AVX-512 vector) ------------------------------
// Each function keeps the one rounding that matters exact or compensated (Fast2Sum, the exact
// product error), so its only sizeable error is the final rounding.
PK_VM_HD PK_VM_INLINE float fmadd(float a, float b, float c) {
#if defined(__FMA__) || defined(__CUDA_ARCH__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// a*b - p exactly, for p = fl(a*b) (|a|, |b| < 2^100: the Dekker split cannot overflow).
PK_VM_HD PK_VM_INLINE float mul_err(float a, float b, float p) {
#if defined(__FMA__) || defined(__CUDA_ARCH__)
  return std::fma(a, b, -p);
#else
  const float ca = 4097.0f * a, cb = 4097.0f * b;  // Veltkamp split, 2^12 + 1
  const float ah = ca - (ca - a), al = a - ah;
  const float bh = cb - (cb - b), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
}

// 2^k for k in [-126, 127] (the exponent field built directly).
PK_VM_HD PK_VM_INLINE float pow2f(int32_t k) { return as_f32(uint32_t(k + 127) << 23); }

constexpr float kShiftF = 0x1.8p23f;        // x + kShiftF - kShiftF rounds |x| < 2^22 to an integer
constexpr float kLog2eF = 0x1.715476p0f;
constexpr float kLn2HiF = 0x1.62e4p-1f;     // ln2 to 15 bits: k * kLn2HiF exact for |k| < 2^9
constexpr float kLn2LoF = 0x1.7f7d1cp-20f;  // ln2 - kLn2HiF (error 5.5e-14)

// exp(x + xl) = 2^k (s + c) for x in [-104, 89] (callers clamp; NaN passes through as NaN in s and c)
// and |xl| <= 2^-20 |x| (the low part of an argument known more precisely than a float, or 0).
// x = k ln2 + r + re with r + re exact where it matters (|r| > |k kLn2LoF|), |r| <= 0.3467;
// exp(r) = 1 + r + r^2 P(r), P degree 5, relative error 2^-26.5 (on a term <= 0.066);
// s + e = 1 + r exactly, c = e + re (1 + r) + r^2 P(r) (|c| < 0.07, error < 2^-29.5). s + c rounded
// once is within 0.52 ULP of exp(r) (the measured max 0.51 ULP).
// Re-derive P: a relative minimax fit of (exp(r) - 1 - r) / r^2 on [-0.3467, 0.3467], rounded to floats.
PK_VM_HD PK_VM_INLINE void expf_parts(float x, float xl, float& s, float& c, int32_t& k) {
  const float kb = fmadd(x, kLog2eF, kShiftF);
  const float kd = kb - kShiftF;
  k = int32_t(as_u32(kb) - as_u32(kShiftF));
  const float rh = x - kd * kLn2HiF;  // exact
  const float rl = fmadd(-kd, kLn2LoF, xl);
  const float r = rh + rl;
  const float re = (rh - r) + rl;  // r's rounding error (Fast2Sum; inexact only when |r| < 2^-9: no matter)
  float p = fmadd(r, 0x1.a072cap-13f, 0x1.6d4302p-10f);
  p = fmadd(r, p, 0x1.11114cp-7f);
  p = fmadd(r, p, 0x1.5554eap-5f);
  p = fmadd(r, p, 0x1.555556p-3f);
  p = fmadd(r, p, 0.5f);
  const float t = (r * r) * p;  // exp(r) - 1 - r
  s = 1.0f + r;
  const float e = (1.0f - s) + r;  // exact: s + e = 1 + r
  c = fmadd(re, s, e) + t;
}

// e^x: (s + c) * 2^k1 * 2^k2 with k1 + k2 = k in [-150, 128], both halves normal, so the result is
// rounded once more only where it is subnormal (<= 0.77 ULP there) and overflows to +inf exactly
// where the rounded result does (x >= 88.72283935546875).
PK_VM_HD PK_VM_INLINE float exp(float x) {
  // NaN stays NaN. A blend, not ?:, which lets GCC fold exp(-104) to the constant 0 for x < -104 and
  // drop the underflow the loops look for (the flags: top of file).
  const float xc = sel(x < -104.0f, -104.0f, sel(x > 89.0f, 89.0f, x));
  float s, c;
  int32_t k;
  expf_parts(xc, 0.0f, s, c, k);
  const int32_t k1 = k >> 1;
  const float y = ((s + c) * pow2f(k1)) * pow2f(k - k1);
  return sel(y != y, as_f32(0x7fc00000u), y);  // y (not x): a subnormal y raises DE (flags: top of file)
}

// e^(x + xl) for x <= 0 (NaN passes through) and |xl| <= 2^-23 |x|: the low part of a difference known
// exactly (softmax's x - max). Callers give xl = 0 where x < -104.
PK_VM_HD PK_VM_INLINE float exp_lo(float x, float xl) {
  const float xc = x < -104.0f ? -104.0f : x;
  float s, c;
  int32_t k;
  expf_parts(xc, xl, s, c, k);
  const int32_t k1 = k >> 1;
  return ((s + c) * pow2f(k1)) * pow2f(k - k1);
}

// x = 2^k m, m in [sqrt(2)/2, sqrt(2)), f = m - 1 (exact), s = f/(2+f): fdlibm's
// log(1+f) = f - f^2/2 + s (f^2/2 + R(s^2)), R(z) = z (Lg1 + Lg2 z + Lg3 z^2) (relative minimax fit of
// (2 atanh(s) - 2s)/s on s^2 <= 0.0298, error 2^-21.7), with the large terms k*ln2_hi + f - f^2/2
// summed exactly (two Fast2Sums and f^2/2's exact product error) and everything else added to their
// rounding errors: only the final rounding is sizeable (measured max 0.52 ULP).
PK_VM_HD PK_VM_INLINE float log(float x) {
  const bool sub = x < 0x1p-126f;  // subnormal (or <= 0, handled below): scale into the normal range
  const float xs = sel(sub, x * 0x1p23f, x);
  const uint32_t u = as_u32(xs) - 0x3f3504f3u;  // sqrt(2)/2
  const float m = as_f32((u & 0x007fffffu) + 0x3f3504f3u);
  const float kd = float(int32_t(u) >> 23) - sel(sub, 23.0f, 0.0f);
  const float f = m - 1.0f;
  const float hf = 0.5f * f;
  const float hfsq = hf * f;
  const float ef = mul_err(hf, f, hfsq);  // f^2/2 = hfsq + ef
  const float s = f / (2.0f + f);
  const float z = s * s;
  const float R = z * fmadd(z, fmadd(z, 0x1.2f039ep-2f, 0x1.997b86p-2f), 0x1.55555cp-1f);
  const float kh = kd * kLn2HiF;                   // exact
  const float h1 = kh + f, l1 = (kh - h1) + f;      // |kh| >= 0.69 > |f|, or kh = 0
  const float h2 = h1 - hfsq, l2 = (h1 - h2) - hfsq;  // |h1| >= hfsq
  const float tail = fmadd(s, hfsq + R, kd * kLn2LoF) + ((l1 + l2) - ef);
  float y = h2 + tail;
  y = sel(x == 0.0f, -HUGE_VALF, y);
  y = sel(x < 0.0f, as_f32(0xffc00000u), y);
  y = sel(x == HUGE_VALF, x, y);
  return sel(x != x, as_f32(0x7fc00000u), y);
}

// |x| < 0.55: x + x^3 Q(x^2), Q degree 4 (relative minimax fit of (tanh(t) - t)/t^3 on t^2 <= 0.3025,
// error 2^-24 on a term <= x/9). |x| >= 0.55: 1 - 2/(1 + E), E = exp(2|x|) >= 3 as the pair 2^k (s + c),
// 1 + E as a pair, the quotient corrected by its exact residual, 1 - q by Fast2Sum: only the final
// rounding is sizeable. |x| >= 9.01 rounds to 1.
PK_VM_HD PK_VM_INLINE float tanh(float x) {
  const float ax = std::fabs(x);
  const float z = ax * ax;
  float q = fmadd(z, -0x1.efd194p-8f, 0x1.636e58p-6f);
  q = fmadd(z, q, -0x1.ba06e4p-5f);
  q = fmadd(z, q, 0x1.1110f6p-3f);
  q = fmadd(z, q, -0x1.555556p-2f);
  const float tp = fmadd(ax * z, q, ax);
  float s, c;
  int32_t k;
  expf_parts(2.0f * (ax > 10.0f ? 10.0f : ax), 0.0f, s, c, k);  // k in [0, 29]
  const float sc = s + c, sl = (s - sc) + c;  // Fast2Sum: |c| < 0.07 < s
  const float p2 = pow2f(k);
  const float eh = sc * p2, el = sl * p2;  // exact
  const float dh = eh + 1.0f, dl = ((eh - dh) + 1.0f) + el;  // 1 + E = dh + dl (eh >= 1 where used)
  const float g = 1.0f / dh;
  const float gd = g * dh;
  const float rho = ((1.0f - gd) - mul_err(g, dh, gd)) - g * dl;  // 1 - g (dh + dl)
  const float q2 = 2.0f * g, ql = q2 * rho;  // 2 / (1 + E) = q2 + ql
  const float h = 1.0f - q2, l = (1.0f - h) - q2;
  const float te = h + (l - ql);
  const float t = std::copysign(sel(ax < 0.4f, tp, te), x);
  return sel(x != x, as_f32(0x7fc00000u), t);
}

// sigmoid(x) = 1/(1 + E) for x >= 0, E/(1 + E) for x < 0, E = exp(-|x|) = 2^k (s + c): 1/(1 + E) as
// g + gl (the quotient and its exact residual), the product with s + c rounded once, then scaled by
// 2^k (rounded again only where the result is subnormal). Never overflows.
PK_VM_HD PK_VM_INLINE float sigmoid(float x) {
  const float na = -std::fabs(x);
  float s, c;
  int32_t k;
  expf_parts(na < -104.0f ? -104.0f : na, 0.0f, s, c, k);  // k in [-150, 0]
  const int32_t k1 = k >> 1;
  const float s1 = pow2f(k1), s2 = pow2f(k - k1);
  const float sc = s + c, sl = (s - sc) + c;  // Fast2Sum: |c| < 0.07 < s
  const float p2 = s1 * s2;  // 2^k (flushed where E is negligible beside 1)
  const float eh = sc * p2, el = sl * p2;
  const float dh = 1.0f + eh, dl = ((1.0f - dh) + eh) + el;
  const float g = 1.0f / dh;
  const float gd = g * dh;
  const float gl = g * (((1.0f - gd) - mul_err(g, dh, gd)) - g * dl);  // 1/(1 + E) = g + gl
  const bool pos = x >= 0.0f;
  const float nh = sel(pos, 1.0f, sc), nl = sel(pos, 0.0f, sl);
  const float pr = nh * g;
  const float y = pr + (mul_err(nh, g, pr) + fmadd(nh, gl, nl * g));
  const float r = (y * sel(pos, 1.0f, s1)) * sel(pos, 1.0f, s2);
  return sel(x != x, as_f32(0x7fc00000u), r);
}

}  // namespace vmath
}  // namespace pk

#if defined(__AVX512F__) && defined(__AVX512DQ__) && !defined(__CUDACC__)
#include "pykernels/vmath_avx512.hpp"  // the 16-lane float32 versions
#endif
