// The element-wise op registry: every element-wise op is declared once, as one struct here that holds
//   f         the scalar function, f(a, b) for a binary op, f(x) for a unary one, PK_HD (host and
//             CUDA device); its result must be bit-identical to the NumPy twin's for float32/float64
//   name      the Python name (pykernels.<name>); alias an optional second name
//   numpy     the NumPy function it matches
//   args      the Python parameter names, summary and example the docstring is built from
// and one of the type lists BinaryOps / UnaryOps below registers it. From the lists, templates (no
// macros) generate the per-ISA loops of the KernelTable (csrc/cpu/elementwise_loops.inc), the CUDA
// kernels and their CPU emulation (device_logic.hpp) and the Python functions
// (csrc/bindings/bind_elementwise.cpp). At run time an op is its index in its list (BinOp, UnOp).
// How to add an op: csrc/README.md.
#pragma once

#include <cmath>
#include <cstring>
#include <type_traits>

#include "pykernels/vmath.hpp"

#if defined(__CUDACC__)
#define PK_HD __host__ __device__
#else
#define PK_HD
#endif
// An op's f is always inlined: the per-ISA files instantiate the same inline function with different
// -m flags, and an out-of-line copy (one per program, picked by the linker) could be an AVX-512 one
// called from the generic loops.
#if defined(__CUDACC__)
#define PK_OP_INLINE __forceinline__
#elif defined(__GNUC__)
#define PK_OP_INLINE inline __attribute__((always_inline))
#else
#define PK_OP_INLINE inline
#endif

namespace pk {

template <class... Op>
struct OpList {
  static constexpr int size = int(sizeof...(Op));
};

// NumPy's floating-point error kinds (NPY_FPE_*), as the op registry's FpRange lists name them.
namespace fpe {
constexpr unsigned kDivideByZero = 1;
constexpr unsigned kOverflow = 2;
constexpr unsigned kUnderflow = 4;
constexpr unsigned kInvalid = 8;
}  // namespace fpe

// Inputs for which an op's NumPy twin raises `flag` (fpe::): the values whose bit pattern b (with the
// sign bit cleared if abs) has b - lo < count, as unsigned integers. A kFromInputs op lists them per
// dtype (fp_ranges32 / fp_ranges64), and its loops test the inputs against them.
template <class U>
struct FpRange {
  bool abs;
  U lo, count;
  unsigned flag;
};

// How an op's floating-point exception flags reach np.errstate (bindings/bind_elementwise.cpp):
//   kNone        not reported: the NumPy twin reports none, and f's flags are not NumPy's (the SIMD
//                compares of maximum raise "invalid" on a NaN) or there are none (sign-bit ops)
//   kHardware    the flags f's IEEE operations raise are exactly the twin's (add, subtract, multiply)
//   kFromInputs  f's own flags are not the twin's (the vector-math ops' polynomial and branch-free
//                steps): the loops replace them by the flags the twin raises for the call's inputs,
//                the op's fp_ranges32 / fp_ranges64 (cpu/elementwise_fp_loops.inc)
//   kDiscarded   the twin reports nothing at all: the loops drop whatever f raised
enum class FpReport { kNone, kHardware, kFromInputs, kDiscarded };

namespace ops {

// Defaults every op may override.
struct OpDefaults {
  static constexpr const char* alias = nullptr;
  static constexpr const char* example = nullptr;
  // nullptr: f is bit-identical to `numpy`. Otherwise the op's accuracy statement for the docstring
  // (the transcendental ops: within 1 ULP of the exact result, not always NumPy's bits).
  static constexpr const char* accuracy = nullptr;
  static constexpr FpReport fp_report = FpReport::kNone;
};

// ---- binary: out = f(a, b) with NumPy broadcasting ----------------------------------------------
struct BinaryOp : OpDefaults {
  static constexpr int arity = 2;
  static constexpr const char* args[2] = {"x1", "x2"};
};

struct Add : BinaryOp {
  static constexpr FpReport fp_report = FpReport::kHardware;
  static constexpr const char* name = "add";
  static constexpr const char* numpy = "np.add";
  static constexpr const char* summary = "Element-wise x1 + x2.";
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.add(np.ones((2, 3), np.float32), np.arange(3, dtype=np.float32))\n"
      "array([[1., 2., 3.],\n       [1., 2., 3.]], dtype=float32)\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T a, T b) { return a + b; }
};

struct Subtract : BinaryOp {
  static constexpr FpReport fp_report = FpReport::kHardware;
  static constexpr const char* name = "subtract";
  static constexpr const char* numpy = "np.subtract";
  static constexpr const char* summary = "Element-wise x1 - x2.";
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.subtract(np.float32([3.0, 1.0]), 1.0)\n"
      "array([2., 0.], dtype=float32)\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T a, T b) { return a - b; }
};

struct Multiply : BinaryOp {
  static constexpr FpReport fp_report = FpReport::kHardware;
  static constexpr const char* name = "multiply";
  static constexpr const char* numpy = "np.multiply";
  static constexpr const char* summary = "Element-wise x1 * x2.";
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.multiply(np.float32([1.5, -2.0]), np.float32([2.0, 3.0]))\n"
      "array([ 3., -6.], dtype=float32)\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T a, T b) { return a * b; }
};

// NaN in a or b propagates (a's NaN when both are NaN), and for equal values (e.g. -0.0 and 0.0)
// the result is b, as NumPy's SIMD loops do.
struct Maximum : BinaryOp {
  static constexpr const char* name = "maximum";
  static constexpr const char* numpy = "np.maximum";
  static constexpr const char* summary =
      "Element-wise maximum; NaNs propagate. maximum(x, 0.0) is the book's relu.";
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.maximum(np.float32([1.0, np.nan, -3.0]), 0.0)\n"
      "array([ 1., nan,  0.], dtype=float32)\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T a, T b) { return (a > b || a != a) ? a : b; }
};

// NumPy's minimum, the mirror of maximum: NaN in a or b propagates (a's NaN when both are NaN), and
// for equal values (-0.0 and 0.0) the result is b, as NumPy's SIMD loops do.
struct Minimum : BinaryOp {
  static constexpr const char* name = "minimum";
  static constexpr const char* numpy = "np.minimum";
  static constexpr const char* summary = "Element-wise minimum; NaNs propagate.";
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.minimum(np.float32([1.0, np.nan, -3.0]), 0.0)\n"
      "array([ 0., nan, -3.], dtype=float32)\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T a, T b) { return (a < b || a != a) ? a : b; }
};

// The relu mask applied to a gradient: a (the upstream gradient) where b (the forward input or
// output) > 0, else +0 (relu'(0) = 0; a NaN b gives 0).
struct WherePositive : BinaryOp {
  static constexpr const char* name = "relu_backward";
  static constexpr const char* numpy = "np.where(x > 0, dout, 0)";
  static constexpr const char* args[2] = {"dout", "x"};
  static constexpr const char* summary =
      "Gradient of relu: dout where x > 0, else 0 (relu'(0) = 0).\n"
      "x may be the forward input or output. Broadcasts and promotes like a binary ufunc: float32 dout\n"
      "with float64 x gives float64 (np.where would keep dout's float32).";
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.relu_backward(np.float32([5.0, 6.0, 7.0]), np.float32([1.0, 0.0, -1.0]))\n"
      "array([5., 0., 0.], dtype=float32)\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T a, T b) { return b > T(0) ? a : T(0); }
};

// A product nvcc may not fuse with a neighbouring add (it contracts by default, -fmad=true): the
// device code of an op whose NumPy twin rounds the product keeps NumPy's bits. Host builds use
// -ffp-contract=off.
PK_HD PK_OP_INLINE float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
PK_HD PK_OP_INLINE double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

// The backward passes of sigmoid and tanh from the forward output y, as binary ops: exact products,
// bit-identical to the NumPy expressions (pykernels.reference.sigmoid_backward / tanh_backward).
struct SigmoidBackward : BinaryOp {
  static constexpr const char* name = "sigmoid_backward";
  static constexpr const char* numpy = "dy * (y * (1 - y))";
  static constexpr const char* args[2] = {"dy", "y"};
  static constexpr const char* summary = "Gradient of sigmoid from its output y: dy * (y * (1 - y)).";
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.sigmoid_backward(np.float32([1.0, 2.0]), np.float32([0.5, 0.25]))\n"
      "array([0.25 , 0.375], dtype=float32)\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T a, T b) { return a * (b * (T(1) - b)); }
};

struct TanhBackward : BinaryOp {
  static constexpr const char* name = "tanh_backward";
  static constexpr const char* numpy = "dy * (1 - y * y)";
  static constexpr const char* args[2] = {"dy", "y"};
  static constexpr const char* summary = "Gradient of tanh from its output y: dy * (1 - y * y).";
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.tanh_backward(np.float32([1.0, 2.0]), np.float32([0.5, 0.0]))\n"
      "array([0.75, 2.  ], dtype=float32)\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T a, T b) { return a * (T(1) - mul_rn(b, b)); }
};

// ---- unary: out = f(x) --------------------------------------------------------------------------
struct UnaryOp : OpDefaults {
  static constexpr int arity = 1;
  static constexpr const char* args[1] = {"x"};
};

// -x flips the sign bit of every value, NaN and 0.0 included (-(+0.0) = -0.0), as np.negative.
struct Negative : UnaryOp {
  static constexpr const char* name = "negative";
  static constexpr const char* numpy = "np.negative";
  static constexpr const char* summary = "Element-wise -x (the sign bit flipped, NaN and zeros included).";
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.negative(np.float32([1.5, -0.0, np.inf]))\n"
      "array([-1.5,  0. , -inf], dtype=float32)\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T x) { return -x; }
};

// |x| clears the sign bit of every value, NaN included (abs(-nan) = +nan), as np.absolute (C fabs).
// fabs is one AND with a constant on every ISA (vectorised by GCC/Clang) and a device function in CUDA.
struct Absolute : UnaryOp {
  static constexpr const char* name = "absolute";
  static constexpr const char* alias = "abs";
  static constexpr const char* numpy = "np.absolute";
  static constexpr const char* summary = "Element-wise |x| (the sign bit cleared, NaN and -0.0 included).";
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.abs(np.float32([-1.5, -0.0, 2.0]))\n"
      "array([1.5, 0. , 2. ], dtype=float32)\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T x) {
#if defined(__CUDA_ARCH__)
    return fabs(x);  // CUDA's float and double overloads
#else
    return std::fabs(x);
#endif
  }
};

// ---- transcendental unary ops (vmath.hpp): within 1 ULP, not bit-identical to NumPy -------------
// On the host the vectorisable vmath functions (every ISA gives a result within the same bound; the
// FMA ISAs and the generic build can differ in the last bit). On a CUDA device CUDA's own functions
// (CUDA Programming Guide, "Mathematical functions": exp, log, tanh <= 1-2 ULP).
constexpr const char* kTranscendentalAccuracy =
    "Within 1 ULP of the exact result for float32 and float64 (measured max 0.69 ULP for float32 where "
    "the result is normal, 0.76 where it is subnormal, 0.79 ULP for float64, on 10^6 inputs per function "
    "over the whole range; tests/test_activations.py), "
    "so values may differ from NumPy's in the last bit (NumPy's own loops are not correctly rounded either)";

// Their floating-point warnings (np.errstate) are their NumPy twin's, whatever the vector code raised
// on the way (FpReport::kFromInputs / kDiscarded). The flags each twin raises were measured with
// NumPy 2.4 on x86-64 (its AVX2 / AVX-512 loops): all float32 inputs scanned in blocks, the float64
// thresholds by bisection; tests/test_errstate_vmath.py compares with the NumPy it runs against.

struct Exp : UnaryOp {
  static constexpr const char* name = "exp";
  static constexpr const char* numpy = "np.exp";
  static constexpr const char* summary =
      "Element-wise e**x. Overflows to +inf exactly where the correctly rounded result does (float32: x >= "
      "88.72283935546875), subnormal results are rounded once; a NaN input gives NumPy's NaN (float32: the "
      "canonical +NaN, float64: x quieted).\n"
      "Warns as np.exp does: overflow for finite x whose result overflows (float32 x >= 88.72283935546875, "
      "float64 x > 709.782712893384), underflow for finite x whose result is below the smallest normal "
      "number (float32 x <= -87.3365478515625, float64 x < -708.3964185322641; np.exp misses it for a few "
      "of these x, whose tiny result its last scaling happens to give exactly) and, for float32, for a "
      "subnormal x (NumPy's loops multiply x by log2(e) first), invalid for a float32 signalling NaN; "
      "nothing for +-inf or a quiet NaN.";
  static constexpr const char* accuracy = kTranscendentalAccuracy;
  static constexpr FpReport fp_report = FpReport::kFromInputs;
  // np.exp's flags. Overflow and underflow where the exact result rounds above the largest finite
  // number or below the smallest normal one; NumPy's loops miss the underflow for a few x whose tiny
  // result their final scaling happens to give exactly (it is never exact), pykernels reports it for
  // all. float32's underflow for a subnormal x comes from NumPy's x * log2(e) (a float32 multiply)
  // falling below 2^-126: for |x| up to the bit pattern 0x58b90b.
  static constexpr FpRange<uint32_t> fp_ranges32[] = {
      {false, 0x42b17218u, 0x7f800000u - 0x42b17218u, fpe::kOverflow},   // [88.72283935546875, +inf)
      {false, 0xc2aeac50u, 0xff800000u - 0xc2aeac50u, fpe::kUnderflow},  // (-inf, -87.3365478515625]
      {true, 1u, 0x58b90bu, fpe::kUnderflow},                            // subnormal, |x| log2(e) < 2^-126
      {true, 0x7f800001u, 0x3fffffu, fpe::kInvalid}};                    // signalling NaN
  static constexpr FpRange<uint64_t> fp_ranges64[] = {
      // from the least x whose exp overflows, 0x1.62e42fefa39f0p+9, to +inf (excluded)
      {false, 0x40862e42fefa39f0ull, 0x7ff0000000000000ull - 0x40862e42fefa39f0ull, fpe::kOverflow},
      // from the x < 0 nearest 0 whose exp is below DBL_MIN, -0x1.6232bdd7abcd3p+9, to -inf (excluded)
      {false, 0xc086232bdd7abcd3ull, 0xfff0000000000000ull - 0xc086232bdd7abcd3ull, fpe::kUnderflow}};
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.exp(np.float32([0.0, 1.0, -np.inf]))\n"
      "array([1.       , 2.7182817, 0.       ], dtype=float32)\n"
      ">>> with np.errstate(over=\"ignore\"):  # as np.exp, else RuntimeWarning: overflow encountered in exp\n"
      "...     pk.exp(np.float32([100.0]))\n"
      "array([inf], dtype=float32)\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T x) {
#if defined(__CUDA_ARCH__)
    return ::exp(x);
#else
    return vmath::exp(x);
#endif
  }
};

struct Log : UnaryOp {
  static constexpr const char* name = "log";
  static constexpr const char* numpy = "np.log";
  static constexpr const char* summary =
      "Element-wise natural logarithm. log(+-0) = -inf, log(x < 0) = NaN with the sign bit set (x86's "
      "default NaN, as NumPy), log(+inf) = +inf.\n"
      "Warns as np.log does: divide by zero for +-0, invalid for x < 0 (-inf included) and a signalling "
      "NaN; nothing for a quiet NaN or a subnormal x.";
  static constexpr const char* accuracy = kTranscendentalAccuracy;
  static constexpr FpReport fp_report = FpReport::kFromInputs;
  // np.log's flags: divide by zero for +-0; invalid for x < 0 (-inf included, -0 not) and for a
  // signalling NaN (quiet bit clear) of either sign.
  static constexpr FpRange<uint32_t> fp_ranges32[] = {
      {true, 0u, 1u, fpe::kDivideByZero},
      {false, 0x80000001u, 0xff800000u - 0x80000000u, fpe::kInvalid},  // [-smallest subnormal, -inf]
      {true, 0x7f800001u, 0x3fffffu, fpe::kInvalid}};
  static constexpr FpRange<uint64_t> fp_ranges64[] = {
      {true, 0u, 1u, fpe::kDivideByZero},
      {false, 0x8000000000000001ull, 0xfff0000000000000ull - 0x8000000000000000ull, fpe::kInvalid},
      {true, 0x7ff0000000000001ull, 0x7ffffffffffffull, fpe::kInvalid}};
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.log(np.float64([1.0, np.e]))\n"
      "array([0., 1.])\n"
      ">>> with np.errstate(divide=\"ignore\", invalid=\"ignore\"):  # as np.log\n"
      "...     pk.log(np.float64([0.0, -1.0]))\n"
      "array([-inf,  nan])\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T x) {
#if defined(__CUDA_ARCH__)
    return ::log(x);
#else
    return vmath::log(x);
#endif
  }
};

struct Tanh : UnaryOp {
  static constexpr const char* name = "tanh";
  static constexpr const char* numpy = "np.tanh";
  static constexpr const char* summary =
      "Element-wise hyperbolic tangent; tanh(-0.0) = -0.0, +-1 from |x| >= 9.01 (float32) / 19.06 (float64).\n"
      "Never warns, as np.tanh (no input of either dtype, subnormals and NaNs included, raises a flag there).";
  static constexpr const char* accuracy = kTranscendentalAccuracy;
  static constexpr FpReport fp_report = FpReport::kDiscarded;
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.tanh(np.float32([-20.0, 0.5, 0.0]))\n"
      "array([-1.       ,  0.46211717,  0.       ], dtype=float32)\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T x) {
#if defined(__CUDA_ARCH__)
    return ::tanh(x);
#else
    return vmath::tanh(x);
#endif
  }
};

// sigmoid(x) = 1/(1 + exp(-x)) computed stably (exp(x)/(1 + exp(x)) for x < 0): no overflow, no
// warning, subnormal results for x < -87.3 (float32) rounded once instead of NumPy's formula's 0.
// No NumPy ufunc: it warns as scipy.special.expit does, never. A result in [0, 1] that saturates to
// 0 or 1, or is subnormal on the way to 0, is the function's value, not an error; the formula's
// "overflow encountered in exp" for x < -88.7 is an artefact of the formula.
struct Sigmoid : UnaryOp {
  static constexpr const char* name = "sigmoid";
  static constexpr const char* numpy = "1 / (1 + np.exp(-x))";
  static constexpr const char* summary =
      "Element-wise logistic sigmoid 1 / (1 + exp(-x)), stable for large |x| (no overflow; exact limits "
      "0 and 1).\n"
      "Never warns, as scipy.special.expit: no overflow (where 1 / (1 + np.exp(-x)) warns for x < -88.7 in "
      "float32), and no underflow either where the result is subnormal or 0.";
  static constexpr const char* accuracy = kTranscendentalAccuracy;
  static constexpr FpReport fp_report = FpReport::kDiscarded;
  static constexpr const char* example =
      ">>> import numpy as np, pykernels as pk\n"
      ">>> pk.sigmoid(np.float32([-1000.0, 0.0, 2.0]))\n"
      "array([0.       , 0.5      , 0.8807971], dtype=float32)\n";
  template <class T> PK_HD PK_OP_INLINE static T f(T x) {
#if defined(__CUDA_ARCH__)
    return x >= T(0) ? T(1) / (T(1) + ::exp(-x)) : ::exp(x) / (T(1) + ::exp(x));
#else
    return vmath::sigmoid(x);
#endif
  }
};

}  // namespace ops

// The registered ops, in the order of their run-time ids.
using BinaryOps = OpList<ops::Add, ops::Subtract, ops::Multiply, ops::Maximum, ops::WherePositive,
                         ops::SigmoidBackward, ops::TanhBackward, ops::Minimum>;
using UnaryOps = OpList<ops::Negative, ops::Absolute, ops::Exp, ops::Log, ops::Tanh, ops::Sigmoid>;

// Run-time id of an op: its index in BinaryOps / UnaryOps.
enum class BinOp : int {};
enum class UnOp : int {};
constexpr int kNumBinaryOps = BinaryOps::size;
constexpr int kNumUnaryOps = UnaryOps::size;

namespace detail {
template <class Op, class... Ops>
constexpr int index_of(OpList<Ops...>) {
  int i = 0, found = -1;
  ((std::is_same_v<Op, Ops> ? (found = i, ++i) : ++i), ...);
  return found;
}
}  // namespace detail

template <class Op>
constexpr BinOp binary_id() {
  constexpr int i = detail::index_of<Op>(BinaryOps{});
  static_assert(i >= 0, "not a registered binary op (ops.hpp: BinaryOps)");
  return BinOp(i);
}
template <class Op>
constexpr UnOp unary_id() {
  constexpr int i = detail::index_of<Op>(UnaryOps{});
  static_assert(i >= 0, "not a registered unary op (ops.hpp: UnaryOps)");
  return UnOp(i);
}

// Calls f(Op{}) for every op of the list, in order (registration loops).
template <class F, class... Op>
void for_each_op(OpList<Op...>, F&& f) {
  (f(Op{}), ...);
}

// Calls f(Op{}) for the op with run-time id `id`; false when there is none. This is the one switch
// over ops: a kernel is instantiated per op (per-ISA loops, CUDA kernels), never branches per element.
template <class F, class... Op>
bool visit_op(OpList<Op...>, int id, F&& f) {
  int i = 0;
  return ((i++ == id ? (f(Op{}), true) : false) || ...);
}

// Id of the op of the list whose Python name (or alias) is `name`; -1 when there is none.
template <class... Op>
int op_index(OpList<Op...>, const char* name) {
  int i = 0, found = -1;
  ((found < 0 && (std::strcmp(name, Op::name) == 0 || (Op::alias && std::strcmp(name, Op::alias) == 0))
        ? (found = i, ++i)
        : ++i),
   ...);
  return found;
}

}  // namespace pk
