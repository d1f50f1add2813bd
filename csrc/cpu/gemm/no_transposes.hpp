// The register-transpose hooks of the GEMM SIMD traits (see isa_avx512.cpp for what each does),
// declined: a traits type without vector transposes derives from this, and the callers in
// ukernels.inc fall back to their scalar loops. Internal linkage (anonymous namespace), like
// the traits themselves: every ISA file is compiled with its own -m flags, and an inline function
// shared across them could be merged by the linker into the copy built for another ISA.
#pragma once

#include <cstdint>

namespace {

struct NoRegisterTransposes {
  static constexpr bool kRegisterTransposes = false;
  template <int NR, class U>
  static inline bool pack_cols(U*, const U*, int64_t, int64_t, int) {
    return false;
  }
  template <int MR, class U>
  static inline bool pack_rows(U*, const U*, int64_t, const U*, int64_t, int64_t) {
    return false;
  }
  template <int MR, int NV, class R>
  static inline bool transpose_tile(const R (&)[MR][NV], R*) {
    return false;
  }
};

}  // namespace
