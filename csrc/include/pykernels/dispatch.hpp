// Run-time choice of instruction set. Kernel files are compiled once per ISA (elementwise_loops_generic.cpp,
// elementwise_loops_avx2.cpp, elementwise_loops_avx512.cpp, each with its own -m flags); each fills a KernelTable, and
// kernels() returns the table of the best ISA this CPU supports (or the one forced by
// PYKERNELS_ISA=generic|avx2|avx512 / set_isa(), never above what the CPU has).
#pragma once

#include <cstdint>

#include "pykernels/gemm.hpp"
#include "pykernels/ops.hpp"

namespace pk {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };
const char* isa_name(Isa isa);

// One strided 1-d inner loop: out[i*so] = op(a[i*sa], b[i*sb]) for i < n. Strides in elements.
// Contract: out either does not overlap a/b at all, or is exactly a (or b) with the same stride.
using BinaryLoop = void (*)(void* out, const void* a, const void* b, int64_t n, int64_t so, int64_t sa,
                            int64_t sb);
// `rows` rows of the 1-d loop, row r starting at element offsets (r*ro, r*ra, r*rb): short inner
// dimensions (a (N,100) + (100,) bias add) without an indirect call and index update per row.
using BinaryLoop2D = void (*)(void* out, const void* a, const void* b, int64_t rows, int64_t n, int64_t so,
                              int64_t sa, int64_t sb, int64_t ro, int64_t ra, int64_t rb);
// The same with non-temporal stores, for an output that does not overlap a or b and is contiguous
// as a whole: so = 1 and ro = n (a single run is rows = 1).
using BinaryStreamLoop = void (*)(void* out, const void* a, const void* b, int64_t rows, int64_t n, int64_t sa,
                                  int64_t sb, int64_t ra, int64_t rb);
// The unary loops, same contracts with one input: out[i*so] = op(x[i*sx]).
using UnaryLoop = void (*)(void* out, const void* x, int64_t n, int64_t so, int64_t sx);
using UnaryLoop2D = void (*)(void* out, const void* x, int64_t rows, int64_t n, int64_t so, int64_t sx, int64_t ro,
                             int64_t rx);
using UnaryStreamLoop = void (*)(void* out, const void* x, int64_t rows, int64_t n, int64_t sx, int64_t rx);
// Sum of n elements with stride s, accumulated in double (float32) or pairwise (float64).
using SumLoop = double (*)(const void* x, int64_t n, int64_t s);
// acc[i] += x[i*s] for i < n, acc in double.
using AccumulateLoop = void (*)(double* acc, const void* x, int64_t n, int64_t s);

// acc[i] += x[r*rs + i*s] for r < nrows, i < n.
using AccumulateRowsLoop = void (*)(double* acc, const void* x, int64_t nrows, int64_t rs, int64_t n, int64_t s);

// softmax (log = false) or log_softmax (log = true) of `rows` contiguous rows of n elements each;
// out may be x itself. The backward: dx from dy and the forward output y (all three contiguous;
// dx may be dy or y).
using SoftmaxRowsLoop = void (*)(void* out, const void* x, int64_t rows, int64_t n, bool log);
using SoftmaxBackwardRowsLoop = void (*)(void* dx, const void* dy, const void* y, int64_t rows, int64_t n, bool log);

struct KernelTable {
  Isa isa = Isa::generic;
  // [op][dtype], op = index in BinaryOps / UnaryOps (ops.hpp)
  BinaryLoop binary[kNumBinaryOps][2] = {};
  BinaryStreamLoop binary_stream[kNumBinaryOps][2] = {};
  BinaryLoop2D binary_2d[kNumBinaryOps][2] = {};
  UnaryLoop unary[kNumUnaryOps][2] = {};
  UnaryStreamLoop unary_stream[kNumUnaryOps][2] = {};
  UnaryLoop2D unary_2d[kNumUnaryOps][2] = {};
  SumLoop sum[2] = {};
  AccumulateLoop accumulate[2] = {};
  AccumulateRowsLoop accumulate_rows[2] = {};
  SoftmaxRowsLoop softmax_rows[2] = {};
  SoftmaxBackwardRowsLoop softmax_backward_rows[2] = {};
  GemmKernels gemm[2];                         // [dtype]: micro-kernel, packing, gemv (gemm_<isa>.cpp)
};

// What the blocking of the GEMM depends on (dispatch.cpp): the CPU vendor and the cache sizes the C
// library reports (sysconf, from cpuid), 0 where unknown.
struct CpuInfo {
  const char* vendor = "unknown";  // "intel", "amd" or "unknown" (for show_config)
  bool amd = false;                 // the one distinction the tuning makes (gemm/blocked.cpp, elementwise.cpp)
  int64_t l1d = 0, l2 = 0, l3 = 0;  // bytes (L2 per core)
};
const CpuInfo& cpu_info();

Isa detected_isa();               // best ISA the CPU (and OS) supports
Isa active_isa();                 // the one kernels() uses
void set_isa(Isa isa);            // throws ValueError above detected_isa()
const KernelTable& kernels();     // table for active_isa()
bool isa_compiled(Isa isa);       // false for avx2/avx512 on non-x86 builds

namespace isa_generic { void fill(KernelTable& t); void fill_gemm(KernelTable& t); }
namespace isa_avx2 { void fill(KernelTable& t); void fill_gemm(KernelTable& t); }
namespace isa_avx512 { void fill(KernelTable& t); void fill_gemm(KernelTable& t); }

}  // namespace pk
