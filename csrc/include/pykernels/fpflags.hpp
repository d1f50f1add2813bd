// The calling thread's floating-point exception flags, as the element-wise loops of the vector-math
// ops (exp, log, tanh, sigmoid) read and replace them: their branch-free code raises flags NumPy's
// loops do not (invalid from a compare on NaN, underflow inside sigmoid's exp of a large negative x),
// so each loop call reports instead the flags NumPy's ufunc raises for the same inputs (the op's
// FpRange lists, ops.hpp), keeping the flags the thread had before the call (elementwise_fp_loops.inc).
//
// On x86 the flags are read and written in MXCSR directly: one stmxcsr per check, and the
// denormal-operand flag (DE, not one of C's FE_* flags) is visible, which the vector-math functions
// rely on to flag a subnormal result that was rounded exactly (vmath.hpp). The loops never use the
// x87 unit, so its flags (which fetestexcept also reads) are left as they are. Elsewhere the C
// <cfenv> functions, without a denormal flag: there the loops compute NumPy's flags on every call.
#pragma once

#include <cfenv>
#include <cstdint>

#include "pykernels/ops.hpp"  // fpe::

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <xmmintrin.h>
#define PK_FP_MXCSR 1
#endif

namespace pk {

namespace fpflags {

#if defined(PK_FP_MXCSR)
// MXCSR's sticky exception bits: invalid (IE), denormal operand (DE), divide-by-zero (ZE), overflow
// (OE), underflow (UE), precision (PE).
constexpr unsigned kIE = 0x01, kDE = 0x02, kZE = 0x04, kOE = 0x08, kUE = 0x10, kPE = 0x20;
constexpr unsigned kAll = 0x3f;
// Raised by the vector-math functions for every input NumPy reports a flag for (vmath.hpp).
constexpr unsigned kScreen = kIE | kDE | kZE | kOE | kUE;
constexpr bool kScreenComplete = true;

inline unsigned status() { return _mm_getcsr() & kAll; }
inline void set_status(unsigned s) { _mm_setcsr((_mm_getcsr() & ~kAll) | s); }
inline unsigned from_fpe(unsigned f) {
  return (f & fpe::kDivideByZero ? kZE : 0u) | (f & fpe::kOverflow ? kOE : 0u) |
         (f & fpe::kUnderflow ? kUE : 0u) | (f & fpe::kInvalid ? kIE : 0u);
}
#else
constexpr unsigned kAll = FE_ALL_EXCEPT;
constexpr unsigned kScreen = FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW | FE_INVALID;
constexpr unsigned kPE = FE_INEXACT;
constexpr unsigned kDE = 0;
constexpr bool kScreenComplete = false;  // no denormal flag: a rounded-exactly subnormal exp passes unseen

inline unsigned status() { return unsigned(std::fetestexcept(FE_ALL_EXCEPT)); }
inline void set_status(unsigned s) {
  const unsigned now = status();
  if (now & ~s) std::feclearexcept(int(now & ~s));
  if (s & ~now) std::feraiseexcept(int(s & ~now));
}
inline unsigned from_fpe(unsigned f) {
  return (f & fpe::kDivideByZero ? unsigned(FE_DIVBYZERO) : 0u) | (f & fpe::kOverflow ? unsigned(FE_OVERFLOW) : 0u) |
         (f & fpe::kUnderflow ? unsigned(FE_UNDERFLOW) : 0u) | (f & fpe::kInvalid ? unsigned(FE_INVALID) : 0u);
}
#endif

// One loop call: the flags the thread had before it are kept aside and cleared (so that raised()
// sees what this call raises), and finish() leaves them plus the given NumPy flags; whatever the
// call's own arithmetic raised is dropped (inexact excepted: NumPy ignores it).
class Scope {
 public:
  Scope() : before_(status()) {
    if (before_ & kScreen) set_status(before_ & ~kScreen);
  }
  // Whether the code since the start (or the last clear()) raised a screened flag.
  bool raised() const { return (status() & kScreen) != 0; }
  void clear() {
    if (raised()) set_status(status() & ~kScreen);
  }
  // The thread's flags become the ones it had before the call plus `fpe_flags` (NumPy's kinds);
  // a denormal-operand flag the thread had before is dropped (NumPy never reports it, and it must
  // not hide the next call's).
  void finish(unsigned fpe_flags) {
    const unsigned target = (before_ & kScreen & ~kDE) | from_fpe(fpe_flags);
    const unsigned now = status();
    if ((now & kScreen) != target) set_status((now & ~kScreen) | target);
  }

 private:
  unsigned before_;
};

}  // namespace fpflags
}  // namespace pk
