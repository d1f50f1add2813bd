// Matrix products: a BLIS/GotoBLAS-style packed GEMM (with a fused bias + relu epilogue and the relu
// mask / column sums of the dense backward pass applied while packing), a bandwidth-bound
// matrix-vector kernel, a batched driver for N-d dot/matmul and their backward passes, and the
// naive reference (csrc/cpu/gemm/). Pure C++ (no Python); dot/matmul/dense build on it in linalg.hpp.
//
// Conventions: A is (M,K), B is (K,N), C is (M,N); every operand is addressed through signed element
// strides (rs = row stride, cs = column stride), so transposes and negative strides cost nothing:
// the packing step reads through the strides. C is overwritten (beta = 0: never read) unless
// `accumulate` is set. Results are bit-identical for every thread count: threads split the OUTPUT
// (rows or columns of C), never K.
#pragma once

#include <cstdint>

#include "pykernels/common.hpp"

namespace pk {

// ---- per-ISA building blocks (gemm/isa_generic.cpp, isa_avx2.cpp, isa_avx512.cpp) ----------------
enum GemmBias : int { kBiasNone = 0, kBiasCol = 1, kBiasRow = 2 };

// Micro-kernel: C[0:m, 0:n] (op)= Apanel(MR x k) * Bpanel(k x NR), m <= MR, n <= NR.
// a: packed MR-tall micro-panel (k steps of MR values), b: NR-wide micro-panel (k rows, ldb apart).
// load_c = 0: C is overwritten and never read; 1: C += result. Then (only meant for the last K block)
// bias (kBiasCol: bias[j], j < NR; kBiasRow: bias[i], i < MR; contiguous, padded) and relu
// (np.maximum(v, 0): NaN propagates, -0.0 -> +0.0). Only the m x n valid part of C is touched.
// ldb: distance between consecutive k rows of b in elements (NR for a packed micro-panel; a row
// stride of B itself when B is read in place, then all NR columns must exist).
using GemmUkr = void (*)(int64_t k, const void* a, const void* b, int64_t ldb, void* c, int64_t rsc, int64_t csc,
                         int m, int n, int load_c, int bias_kind, const void* bias, int relu);
// Packs rows [0,m) x cols [0,k) of A (strides rs, cs) into ceil(m/MR) micro-panels of k*MR values,
// zero-padding the last one. mask (same shape, strides mrs/mcs, or null): A(i,p) is kept where
// mask(i,p) > 0, else 0 (the relu backward mask). rowsum (or null): rowsum[i] += sum_p of the packed
// row, in double, p ascending.
using GemmPackA = void (*)(void* dst, const void* a, int64_t rs, int64_t cs, int64_t m, int64_t k, const void* mask,
                           int64_t mrs, int64_t mcs, double* rowsum);
// Packs rows [0,k) x cols [0,n) of B into ceil(n/NR) micro-panels of k*NR values (each panel at
// dst + panel*k*NR); mask/colsum as above, over columns.
using GemmPackB = void (*)(void* dst, const void* b, int64_t rs, int64_t cs, int64_t k, int64_t n, const void* mask,
                           int64_t mrs, int64_t mcs, double* colsum);
// y[i] = sum_p A(i,p) * x[p] for i < m; y and x contiguous. Fast paths for cs == 1 (row dot
// products) and rs == 1 (column axpys); the order of every sum depends only on the shapes.
using GemvKernel = void (*)(void* y, const void* a, int64_t rs, int64_t cs, const void* x, int64_t m, int64_t k);

// Narrow product C(m,n) (op)= A(m,k) * Bp, n <= 2*lanes, Bp packed k x (n <= lanes ? lanes : 2*lanes)
// zero-padded; A read in place through (rsa, csa). Epilogue as for GemmUkr (bias: padded, per column).
using GemmSmallN = void (*)(int64_t m, int64_t n, int64_t k, const void* a, int64_t rsa, int64_t csa, const void* bp,
                            void* c, int64_t rsc, int64_t csc, int load_c, const void* bias, int relu);

// Dot-form narrow product (small n, long k): C(m,n) (op)= A(m,k) * B with A's rows contiguous and B
// given transposed, bt (n rows of k contiguous values, ldbt apart). Each C element is a dot product
// vectorised along k (full vector lanes however small n is). Epilogue as GemmUkr; bias (or null)
// is contiguous, one value per column.
using GemmDotN = void (*)(int64_t m, int64_t n, int64_t k, const void* a, int64_t rsa, const void* bt, int64_t ldbt,
                          void* c, int64_t rsc, int64_t csc, int load_c, const void* bias, int relu);

// Small products with nothing packed: C(m,n) (op)= A(m,k) * B(k,n), A read in place through
// (rsa, csa), B through its contiguous rows (ldb apart), C's rows contiguous (rsc apart). Epilogue
// as GemmUkr; bias (or null) is contiguous, one value per column (n values, not padded).
using GemmDirect = void (*)(int64_t m, int64_t n, int64_t k, const void* a, int64_t rsa, int64_t csa, const void* b,
                            int64_t ldb, void* c, int64_t rsc, int load_c, const void* bias, int relu);

// dst[j * ldd + r] = src[r * lds + j] for r < rows, j < cols: a small matrix with contiguous rows,
// transposed (the narrow paths' B).
using GemmTranspose = void (*)(void* dst, int64_t ldd, const void* src, int64_t lds, int64_t rows, int64_t cols);

// The ways a product is computed (csrc/cpu/gemm/): each is the fastest for some shapes, and the
// choice (gemm/path.cpp) depends only on the shapes, strides and fused operations, never on the
// thread count, so every element of C has the same sum order whatever the threads.
enum class GemmPath : int {
  Auto = 0,           // (for gemm_force_path: no forcing)
  Degenerate,         // M, N or K is 0: the epilogue of an empty sum
  Matvec,             // M == 1 or N == 1: the bandwidth-bound matrix-vector kernel
  Direct,             // small B with contiguous rows: nothing packed, A and B read in place
  DirectTransposedB,  // the same with B = W.T of few rows: each thread transposes its columns first
  OneRowTile,         // M <= MR: the blocked framework with B read in place (one row tile)
  OneColTile,         // N <= MR with A^T row-contiguous: C^T = B^T A^T on one row tile
  DotNarrow,          // N <= one vector, long contiguous rows of A: dot products along k
  Narrow,             // N <= two vectors: only B packed, A read in place
  NarrowTransposed,   // M <= two vectors < N: the narrow kernel on C^T = B^T A^T
  Blocked,            // the packed, cache-blocked framework (large products)
  Count
};
const char* gemm_path_name(GemmPath p);

// The thresholds of the path choice, per ISA (filled with the kernels, gemm/ukernels.inc). Each is
// where one path starts to beat the next on the machines measured (bench/bench_dot.py,
// bench/native/gemm_vs_openblas.cpp re-derive them); none changes a result's bits.
struct GemmLimits {
  // B (and a masked A, which is copied) at most this many bytes: nothing packed (Direct). Such a B
  // stays in L1/L2 for the whole product, so packing it buys nothing.
  int64_t direct_max_bytes = int64_t(64) << 10;
  int64_t narrow_max_n = 2;  // Narrow for N up to this many vectors
  int64_t dot_min_k = 4;     // DotNarrow needs K of at least this many vectors
  // Blocked computes C^T = B^T A^T when that makes the register tile this much less padded.
  double swap_min_gain = 1.15;
};

struct GemmKernels {
  int mr = 0, nr = 0;     // register tile
  int64_t kc = 0, mc = 0;  // cache blocks (see the ISA file for why)
  GemmUkr ukr = nullptr;
  GemmPackA pack_a = nullptr;
  GemmPackB pack_b = nullptr;
  GemvKernel gemv = nullptr;
  GemmSmallN small_n = nullptr;
  GemmDotN dot_n = nullptr;  // null where vectors are 1 lane wide (generic)
  GemmDirect direct = nullptr;
  // A shorter register tile for products with at most mr_short rows (e.g. the 10 rows of a
  // classifier layer's transposed products), or 0: the same micro-kernel and packing with fewer rows.
  int mr_short = 0;
  GemmUkr ukr_short = nullptr;
  GemmPackA pack_a_short = nullptr;
  GemmTranspose transpose = nullptr;
  int transpose_max_cols = 0;  // transpose() uses register transposes up to this many columns
  int lanes = 1;  // vector width in elements
  GemmLimits limits;
};

// Bytes of packed B each thread keeps per block (KC x its columns of an NC panel), from the CPU
// (see gemm/blocked.cpp); PYKERNELS_GEMM_B_BLOCK_KB overrides it. It decides which columns go together,
// never the order of a sum: results do not depend on it.
int64_t gemm_b_block_bytes();

// ---- 2-d products --------------------------------------------------------------------------------
struct GemmOptions {
  bool accumulate = false;  // C += A*B (beta = 1); no bias/relu allowed with it
  const void* bias = nullptr;  // length N, stride bias_stride: C(i,j) += bias[j] (after the full sum)
  int64_t bias_stride = 1;
  bool relu = false;           // C = np.maximum(C, 0) after the bias
  // relu-backward masks applied while packing: A(i,k) -> A(i,k) if amask(i,k) > 0 else 0 (same for B).
  const void* a_mask = nullptr;
  int64_t a_mask_rs = 0, a_mask_cs = 0;
  const void* b_mask = nullptr;
  int64_t b_mask_rs = 0, b_mask_cs = 0;
  // Output (or null): b_colsum[j*b_colsum_stride] = sum_k of the (masked) B(k,j), dtype of C,
  // produced while B is packed (db of the dense backward pass).
  void* b_colsum = nullptr;
  int64_t b_colsum_stride = 1;
  int threads = 0;  // 0: chosen from the problem size (never more than num_threads())
};

// C(M,N) = A(M,K) * B(K,N) [+ bias] [relu], all of dtype dt. C must not overlap A, B or the masks.
void gemm(DType dt, int64_t M, int64_t N, int64_t K, void* C, int64_t rsc, int64_t csc, const void* A, int64_t rsa,
          int64_t csa, const void* B, int64_t rsb, int64_t csb, const GemmOptions& opt = GemmOptions());

// The reference: plain triple loop in the operand dtype (k ascending, no FMA contraction). Kept for
// tests and as the fallback for problems the blocked path does not take.
void gemm_naive(DType dt, int64_t M, int64_t N, int64_t K, void* C, int64_t rsc, int64_t csc, const void* A,
                int64_t rsa, int64_t csa, const void* B, int64_t rsb, int64_t csb);

// ---- batched driver for N-d dot / matmul and their backward passes ----------------------------
// For every index b of the batch space `bshape` (rank nb): C[b] (+)= A[b] * B[b], where X[b] is the
// 2-d matrix at X.data + sum_d b[d]*X.bstride[d]. A batch dimension where C's stride is 0 (and the
// size > 1) is a reduction: those products are summed into the same C block in a fixed order
// (deterministic). Dimensions are folded into M, N or K when the strides allow (so a contiguous
// (P,Q,K)x(K,N) is one (P*Q,K)x(K,N) GEMM). C must have at least one element: an empty NumPy
// array can have zero strides on its non-empty dims, which would look like reduction dims here.
struct BatchedOperand {
  void* data = nullptr;
  int64_t bstrides[kMaxDims] = {};
  int64_t rs = 0, cs = 0;
};
void gemm_batched(DType dt, int nb, const int64_t* bshape, int64_t M, int64_t N, int64_t K, const BatchedOperand& C,
                  const BatchedOperand& A, const BatchedOperand& B);

// For tests: every later product runs on `path` where that path can compute it (the choice of
// gemm/path.cpp otherwise); GemmPath::Auto restores the normal choice. Returns the previous value.
GemmPath gemm_force_path(GemmPath path);
// The path gemm() would take for a product of these shapes and strides (no masks, bias or sums),
// for tests and show_config.
GemmPath gemm_path_for(DType dt, int64_t M, int64_t N, int64_t K, int64_t rsa, int64_t csa, int64_t rsb,
                       int64_t csb, int64_t rsc, int64_t csc);

}  // namespace pk
