// The FMA peak probe (fma_probe.hpp). Twelve independent chains per thread cover the FMA latency
// (4 cycles) times the pipes (up to 2 on the CPUs targeted), so the loop runs at the issue rate; an
// empty asm keeps the compiler from folding the chains. One function per ISA, selected by the same
// run-time choice the kernels use (dispatch.hpp), compiled for it by a target attribute.
#include "pykernels/fma_probe.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "pykernels/dispatch.hpp"
#include "pykernels/parallel.hpp"

#if defined(PK_HAVE_X86_DISPATCH)
#include <immintrin.h>
#endif

namespace pk {
namespace {

// Each returns the flops done.
double fma_loop_generic(int64_t iters) {
  volatile float one = 1.0f, eps = 1e-7f;
  float a = one, b = eps, c[12] = {};
  for (int64_t i = 0; i < iters; ++i)
    for (float& x : c) x = a * b + x;
  volatile float sink = c[0] + c[11];
  (void)sink;
  return 24.0 * double(iters);
}

#if defined(PK_HAVE_X86_DISPATCH)
#define PK_FMA_CHAINS(VEC, FMA, ADD, SET1, ZERO, LANES)                                                  \
  VEC a = SET1(1.0f), b = SET1(1e-7f);                                                                    \
  VEC c0 = ZERO(), c1 = ZERO(), c2 = ZERO(), c3 = ZERO(), c4 = ZERO(), c5 = ZERO();                      \
  VEC c6 = ZERO(), c7 = ZERO(), c8 = ZERO(), c9 = ZERO(), c10 = ZERO(), c11 = ZERO();                    \
  for (int64_t i = 0; i < iters; ++i) {                                                                   \
    c0 = FMA(a, b, c0); c1 = FMA(a, b, c1); c2 = FMA(a, b, c2); c3 = FMA(a, b, c3);                       \
    c4 = FMA(a, b, c4); c5 = FMA(a, b, c5); c6 = FMA(a, b, c6); c7 = FMA(a, b, c7);                       \
    c8 = FMA(a, b, c8); c9 = FMA(a, b, c9); c10 = FMA(a, b, c10); c11 = FMA(a, b, c11);                   \
    __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));                   \
    __asm__ volatile("" : "+v"(c6), "+v"(c7), "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));                  \
  }                                                                                                       \
  VEC s = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));                              \
  s = ADD(s, ADD(ADD(c8, c9), ADD(c10, c11)));                                                            \
  alignas(64) float out[LANES];                                                                           \
  std::copy_n(reinterpret_cast<const float*>(&s), LANES, out);                                            \
  volatile float sink = out[0];                                                                           \
  (void)sink;                                                                                             \
  return 24.0 * double(iters) * LANES;

__attribute__((target("avx2,fma"))) double fma_loop_avx2(int64_t iters) {
  PK_FMA_CHAINS(__m256, _mm256_fmadd_ps, _mm256_add_ps, _mm256_set1_ps, _mm256_setzero_ps, 8)
}
__attribute__((target("avx512f"))) double fma_loop_avx512(int64_t iters) {
  PK_FMA_CHAINS(__m512, _mm512_fmadd_ps, _mm512_add_ps, _mm512_set1_ps, _mm512_setzero_ps, 16)
}
#undef PK_FMA_CHAINS
#endif

using FmaLoop = double (*)(int64_t);

FmaLoop loop_for(Isa isa) {
#if defined(PK_HAVE_X86_DISPATCH)
  if (isa == Isa::avx512) return &fma_loop_avx512;
  if (isa == Isa::avx2) return &fma_loop_avx2;
#endif
  (void)isa;
  return &fma_loop_generic;
}

}  // namespace

double fma_peak_gflops(double seconds, int threads) {
  const FmaLoop loop = loop_for(active_isa());
  // Calibrate the iteration count on one thread, then time all threads together.
  int64_t iters = 1 << 16;
  double el = 0.0;
  while (true) {
    const auto s = std::chrono::steady_clock::now();
    loop(iters);
    el = std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count();
    if (el > 0.02 || iters > (int64_t(1) << 40)) break;
    iters *= 4;
  }
  iters = std::max<int64_t>(1, int64_t(double(iters) * seconds / el));
  const int nt = std::max(1, std::min(threads, num_threads()));
  std::vector<double> flops(size_t(nt), 0.0);
  const auto s = std::chrono::steady_clock::now();
  auto body = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) flops[size_t(i)] = loop(iters);
  };
  if (nt > 1)
    parallel_for(nt, 1, 1, [&](int64_t b, int64_t e) { body(b, e); });
  else
    body(0, 1);
  el = std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count();
  double total = 0.0;
  for (double f : flops) total += f;
  return total / el * 1e-9;
}

}  // namespace pk
