// Picks the kernel table for the CPU at run time (cpuid via __builtin_cpu_supports).
#include "pykernels/dispatch.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

#include "pykernels/common.hpp"

namespace pk {
namespace {

KernelTable make_table(Isa isa) {
  KernelTable t;
  isa_generic::fill(t);
  isa_generic::fill_gemm(t);
#ifdef PK_HAVE_X86_DISPATCH
  if (isa == Isa::avx2) {
    isa_avx2::fill(t);
    isa_avx2::fill_gemm(t);
  }
  if (isa == Isa::avx512) {
    isa_avx512::fill(t);
    isa_avx512::fill_gemm(t);
  }
#endif
  t.isa = isa;
  return t;
}

// The tables of the instruction sets this CPU has; the others stay generic and are never selected
// (set_isa refuses them). Building one runs its ISA's fill(), which the compiler may have given that
// ISA's instructions (AVX-512 stores in isa_avx512::fill): on a CPU without it, SIGILL.
struct Tables {
  KernelTable t[3];
  Tables() {
    for (int i = 0; i < 3; ++i) t[i] = make_table(i <= int(detected_isa()) ? Isa(i) : Isa::generic);
  }
};

const Tables& tables() {
  static const Tables tabs;
  return tabs;
}

Isa initial_isa() {
  Isa isa = detected_isa();
  if (const char* env = std::getenv("PYKERNELS_ISA")) {
    for (int i = 0; i < 3; ++i)
      if (std::strcmp(env, isa_name(Isa(i))) == 0 && i <= int(isa)) return Isa(i);
  }
  return isa;
}

std::atomic<int> g_isa{-1};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

bool isa_compiled(Isa isa) {
#ifdef PK_HAVE_X86_DISPATCH
  (void)isa;
  return true;
#else
  return isa == Isa::generic;
#endif
}

const CpuInfo& cpu_info() {
  static const CpuInfo info = [] {
    CpuInfo c;
#ifdef PK_HAVE_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_is("intel")) c.vendor = "intel";
    if (__builtin_cpu_is("amd")) {
      c.vendor = "amd";
      c.amd = true;
    }
#endif
    auto conf = [](int name) -> int64_t {
      const long v = sysconf(name);
      return v > 0 ? int64_t(v) : 0;
    };
#ifdef _SC_LEVEL1_DCACHE_SIZE
    c.l1d = conf(_SC_LEVEL1_DCACHE_SIZE);
#endif
#ifdef _SC_LEVEL2_CACHE_SIZE
    c.l2 = conf(_SC_LEVEL2_CACHE_SIZE);
#endif
#ifdef _SC_LEVEL3_CACHE_SIZE
    c.l3 = conf(_SC_LEVEL3_CACHE_SIZE);
#endif
    return c;
  }();
  return info;
}

Isa detected_isa() {
#ifdef PK_HAVE_X86_DISPATCH
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
      return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::generic;
  }();
  return isa;
#else
  return Isa::generic;
#endif
}

Isa active_isa() {
  int v = g_isa.load(std::memory_order_relaxed);
  if (v < 0) {
    v = int(initial_isa());
    g_isa.store(v);
  }
  return Isa(v);
}

void set_isa(Isa isa) {
  if (int(isa) > int(detected_isa()))
    throw ValueError(std::string("instruction set '") + isa_name(isa) +
                     "' is not supported by this CPU (best: '" + isa_name(detected_isa()) + "')");
  g_isa.store(int(isa));
}

const KernelTable& kernels() { return tables().t[int(active_isa())]; }

}  // namespace pk
