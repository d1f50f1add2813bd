// GEMM framework (BLIS/GotoBLAS loop structure) around the per-ISA micro-kernels and packing
// routines of gemm_<isa>.cpp, the matrix-vector path, the batched driver for N-d dot/matmul, and
// the naive reference.
//
// Loops:  one parallel region; each thread owns a range of C's rows OR of C's columns (never of K):
//           for jc (NC columns of C):
//             for pc (KC):  pack the B micro-panels it needs, KC x NC (thread-local workspace)
//               for ic (MC rows): pack A block MC x KC  (thread-local workspace)
//                 for ir (MR): for jr (NR): micro-kernel (+ epilogue on the last pc: bias, relu)
// Shape-driven special cases (gemm_t): M == 1 or N == 1 -> matrix-vector kernel; B's rows contiguous,
// B <= 64 KiB and N > one vector -> nothing packed (direct: A and B read in place); M <= MR (or
// N <= MR with a column-contiguous A, run as C^T = B^T A^T) -> B read in place, unpacked (each B
// element is used once); N <= 2 vectors -> the narrow kernel (only B packed, A read in place).
// Every element of C is produced by one thread, with the same blocking and k order for every
// thread count, so results are bit-identical whatever the thread count. The path, orientation and
// blocking depend only on the shapes and strides, never on the thread count.
#include "pykernels/gemm.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "pykernels/dispatch.hpp"
#include "pykernels/parallel.hpp"

namespace pk {
namespace {

// Thread-count thresholds (measured on the 2-core Zen5 VM, see bench/bench_dot.py): a product runs
// on one thread below kMinFlopsPerThread flops per thread, and a matrix-vector product below
// kGemvMinBytesPerThread bytes of A per thread. With the team's threads still spinning from the
// previous call (GOMP_SPINCOUNT, back-to-back calls as in training) a parallel region costs about a
// microsecond: 1 vs 2 threads, idle machine, 16:07 UTC: 64^3 (0.5 Mflop) 3.6 vs 2.9 us, 80^3
// 7.2 vs 5.1 us, (128,512)x(512,10) 8.5 vs 6.6 us, 48^3 (0.2 Mflop) 2.5 vs 2.5 us.
constexpr double kMinFlopsPerThread = 5.0e5;

// Threads for a product of `flops` flops: one per kMinFlopsPerThread, at most nt_max.
inline int threads_for_flops(double flops, int nt_max) {
  return int(std::max(1.0, std::min(double(nt_max), flops / kMinFlopsPerThread)));
}

// body(i0, i1) over rows [0, m) on nt threads in pieces aligned to `align` rows (so threads never
// share a cache line of the output); serial below `min_rows` rows.
template <class F>
void run_row_split(int64_t m, int nt, int64_t min_rows, int64_t align, F&& body) {
  if (nt <= 1 || m < min_rows)
    body(int64_t(0), m);
  else
    parallel_for(m, std::max<int64_t>(align, m / nt), align, [&](int64_t b, int64_t e) { body(b, e); });
}
constexpr int64_t kGemvMinBytesPerThread = int64_t(256) << 10;
// B (row-major) is read in place rather than packed when it is this small (it stays in L1/L2 for
// the whole product, so packing buys nothing): 1 thread, 96^3 9.3 -> 8.9 us, 128^3 21.7 -> 20.3 us.
constexpr int64_t kDirectBMaxBytes = int64_t(64) << 10;

// 64-byte aligned scratch, grown on demand and kept per thread: no allocation per call once warm.
struct Workspace {
  void* p = nullptr;
  size_t cap = 0;
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() { std::free(p); }
  // a * b elements of T plus `extra` bytes. Extents come from user arrays (a broadcast operand of
  // 2**58 elements costs no memory), so the product is checked: a size that wraps is bad_alloc
  // (MemoryError in Python), never a short buffer.
  template <class T>
  T* get(size_t a, size_t b = 1, size_t extra = 0) {
    size_t bytes = 0;
    if (__builtin_mul_overflow(a, b, &bytes) || __builtin_mul_overflow(bytes, sizeof(T), &bytes) ||
        __builtin_add_overflow(bytes, extra, &bytes) || bytes > (SIZE_MAX >> 2))
      throw std::bad_alloc();
    return static_cast<T*>(get_bytes(bytes));
  }

 private:
  void* get_bytes(size_t bytes) {
    if (bytes > cap) {
      std::free(p);
      p = nullptr;
      cap = 0;
      const size_t want = ((bytes + bytes / 4) + 63) / 64 * 64;
      p = std::aligned_alloc(64, want);
      if (!p) throw std::bad_alloc();
      cap = want;
    }
    return p;
  }
};
thread_local Workspace tl_apack;  // per thread: the packed A block
thread_local Workspace tl_bown;   // per thread: its B block (or the narrow paths' packed B)
thread_local Workspace tl_vec;    // calling thread: bias copy / x copy
thread_local Workspace tl_y;      // calling thread: matrix-vector result

template <class T>
struct Problem {
  int64_t M, N, K;
  T* C;
  int64_t rsc, csc;
  const T* A;
  int64_t rsa, csa;
  const T* B;
  int64_t rsb, csb;
  const T* amask = nullptr;
  int64_t amrs = 0, amcs = 0;
  const T* bmask = nullptr;
  int64_t bmrs = 0, bmcs = 0;
  bool accumulate = false, relu = false;
  int bias_kind = kBiasNone;  // before padding: bias along N (col) or M (row)
  const T* bias = nullptr;
  int64_t bias_stride = 1;
  double* a_rowsum = nullptr;  // sum over k of the (masked) rows of A
  double* b_colsum = nullptr;  // sum over k of the (masked) columns of B
};

// C = A B  <=>  C^T = B^T A^T: the same problem with the roles of rows and columns exchanged.
template <class T>
Problem<T> transposed(const Problem<T>& p) {
  Problem<T> q = p;
  q.M = p.N;
  q.N = p.M;
  q.rsc = p.csc;
  q.csc = p.rsc;
  q.A = p.B;
  q.rsa = p.csb;
  q.csa = p.rsb;
  q.B = p.A;
  q.rsb = p.csa;
  q.csb = p.rsa;
  q.amask = p.bmask;
  q.amrs = p.bmcs;
  q.amcs = p.bmrs;
  q.bmask = p.amask;
  q.bmrs = p.amcs;
  q.bmcs = p.amrs;
  q.bias_kind = p.bias_kind == kBiasCol ? kBiasRow : p.bias_kind == kBiasRow ? kBiasCol : kBiasNone;
  q.a_rowsum = p.b_colsum;
  q.b_colsum = p.a_rowsum;
  return q;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

// The macro-kernel streams a thread's packed B block (KC x its columns) past every A micro-panel, so
// the block is read once per A micro-panel from wherever it lives. Measured, C++ harness, 1 thread,
// (budget: GFLOP/s, ratio to OpenBLAS in the same interleaved run):
//  - Zen 5 VM (L2 1 MiB, L3 32 MiB per CCX): an L3-resident block, 8 MiB, is what the blocking was
//    tuned with (developers' session 3): 2048^3 0.975x OpenBLAS; packing A once per wide panel pays.
//  - Xeon VM (L2 2 MiB, a large mesh L3, 2026-12-02): streamed from L3 the micro-kernel drops from
//    ~205 to ~170 GFLOP/s; 2048^3 8 MiB: 149-162 (0.86-0.93x), 1 MiB: 170-188 (1.02-1.06x);
//    float64 0.88-0.90x -> 0.95-0.96x; (128,784)x(784,512) and the other MNIST shapes unchanged.
// Hence half the L2 where the L3 is not AMD's, and 8 MiB on AMD.
int64_t gemm_b_block_bytes() {
  static const int64_t v = [] {
    if (const char* e = std::getenv("PYKERNELS_GEMM_B_BLOCK_KB")) {
      const long long kb = std::atoll(e);
      if (kb > 0) return int64_t(kb) << 10;
    }
    const CpuInfo& c = cpu_info();
    if (c.amd) return int64_t(8) << 20;
    return c.l2 >= (int64_t(256) << 10) ? c.l2 / 2 : int64_t(1) << 20;
  }();
  return v;
}

namespace {

// Fraction of a tile grid's work that is useful.
inline double tile_eff(int64_t n, int64_t t) { return double(n) / double(ceil_div(n, t) * t); }

template <class T>
inline T relu_scalar(T v) {
  return (v > T(0) || v != v) ? v : T(0);
}

template <class T>
inline T bias_at(const Problem<T>& p, int64_t i, int64_t j) {
  if (p.bias_kind == kBiasCol) return p.bias[j * p.bias_stride];
  if (p.bias_kind == kBiasRow) return p.bias[i * p.bias_stride];
  return T(0);
}

// b_colsum[j] += sum over k of the (masked) B(k, j), in double, k ascending: the db of the dense
// backward pass for the paths that do not pack B in micro-panels.
template <class T>
void add_masked_colsums(const Problem<T>& p) {
  for (int64_t j = 0; j < p.N; ++j) {
    double s = 0.0;
    for (int64_t k = 0; k < p.K; ++k)
      if (!p.bmask || p.bmask[k * p.bmrs + j * p.bmcs] > T(0)) s += double(p.B[k * p.rsb + j * p.csb]);
    p.b_colsum[j] += s;
  }
}

// The bias as `len` contiguous values (the first `valid` from p.bias, the rest 0), for kernels that
// load whole vectors of it; p.bias itself when it already is that.
template <class T>
const T* contiguous_bias(const Problem<T>& p, int64_t valid, int64_t len) {
  if (p.bias_stride == 1 && len == valid) return p.bias;
  T* buf = tl_vec.get<T>(size_t(len));
  for (int64_t i = 0; i < len; ++i) buf[i] = i < valid ? p.bias[i * p.bias_stride] : T(0);
  return buf;
}

// M, N or K is 0: sums over an empty or a full K directly, C from the epilogue of an empty sum.
template <class T>
void degenerate(const Problem<T>& p) {
  if (p.b_colsum) add_masked_colsums(p);
  if (p.a_rowsum)
    for (int64_t i = 0; i < p.M; ++i) {
      double s = 0.0;
      for (int64_t k = 0; k < p.K; ++k) {
        const T v = p.A[i * p.rsa + k * p.csa];
        if (!p.amask || p.amask[i * p.amrs + k * p.amcs] > T(0)) s += double(v);
      }
      p.a_rowsum[i] += s;
    }
  if (p.K != 0) return;
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = 0; j < p.N; ++j) {
      T* c = p.C + i * p.rsc + j * p.csc;
      T v = p.accumulate ? *c : T(0);
      v = v + bias_at(p, i, j);
      if (p.relu) v = relu_scalar(v);
      *c = v;
    }
}

// y = A x for M == 1 or N == 1 (no masks or sums): the bandwidth-bound kernel, threads split y.
template <class T>
void matvec(const Problem<T>& p, const GemmKernels& g, int nt_max) {
  // Form: C[:,0] = A x (N == 1) or C[0,:] = B^T a (M == 1); prefer the one whose matrix has
  // contiguous rows or columns.
  bool use_a = p.N == 1;
  if (p.M == 1 && p.N == 1) use_a = (p.csa == 1 || p.rsb != 1);
  const int64_t m = use_a ? p.M : p.N;
  const int64_t K = p.K;
  const T* mat = use_a ? p.A : p.B;
  const int64_t rs = use_a ? p.rsa : p.csb, cs = use_a ? p.csa : p.rsb;
  const T* x = use_a ? p.B : p.A;
  const int64_t incx = use_a ? p.rsb : p.csa;
  T* y = p.C;
  const int64_t incy = use_a ? p.rsc : p.csc;

  const T* xc = x;
  if (incx != 1) {
    T* buf = tl_vec.get<T>(size_t(K));
    for (int64_t k = 0; k < K; ++k) buf[k] = x[k * incx];
    xc = buf;
  }
  T* ytmp = tl_y.get<T>(size_t(m), 1, 64);
  const int64_t bytes = m * K * int64_t(sizeof(T));
  int nt = int(std::min<int64_t>(nt_max, std::max<int64_t>(1, bytes / kGemvMinBytesPerThread)));
  auto body = [&](int64_t i0, int64_t i1) {
    g.gemv(ytmp + i0, mat + i0 * rs, rs, cs, xc, i1 - i0, K);
    for (int64_t i = i0; i < i1; ++i) {
      T* yi = y + i * incy;
      T v = ytmp[i];
      if (p.accumulate) v = *yi + v;
      if (p.bias_kind != kBiasNone) v = v + (use_a ? bias_at(p, i, 0) : bias_at(p, 0, i));
      if (p.relu) v = relu_scalar(v);
      *yi = v;
    }
  };
  run_row_split(m, nt, 32, 16, body);  // 16-row units: threads never share a cache line of y
}

// How many of a block's mc rows go in MR-row tiles (the first ones, whole tiles unless all of them
// are) when the rest go in tiles of ms < MR rows: the split that computes the fewest padded rows
// (ms = 0: no shorter tile, all of them). A tile costs its FMAs whatever the rows it stores: 128 rows
// are 11 tiles of 12 (132 rows) or 9 of 12 and 2 of 10 (128); 112 are 6 of 12 and 4 of 10. The
// FMA chain of every C element is the same in either tile, so this changes no result.
int64_t long_tile_rows(int64_t mc, int64_t mr, int64_t ms) {
  if (ms <= 0) return mc;
  int64_t best = mc, best_rows = ceil_div(mc, mr) * mr;
  for (int64_t ns = 1; ns < mr && (ns - 1) * ms < mc; ++ns) {
    const int64_t nl = ceil_div(std::max<int64_t>(0, mc - ns * ms), mr);
    if (nl * mr + ns * ms < best_rows) {
      best_rows = nl * mr + ns * ms;
      best = std::min(mc, nl * mr);
    }
  }
  return best;
}

template <class T>
void blocked(const Problem<T>& p, const GemmKernels& g, int nt) {
  const int64_t M = p.M, N = p.N, K = p.K;
  const int64_t MR = g.mr, NR = g.nr, MC = g.mc;
  const int64_t MRS = g.mr_short > 0 && g.mr_short < g.mr ? g.mr_short : 0;  // the shorter tile, if any
  // K blocks of equal size (at most g.kc; a multiple of 8): no short last block (K = 784 is
  // 2 x 392 rather than 448 + 336). Depends on K only, so the same for every thread count (the K
  // blocking fixes the order of the sums).
  const int64_t KC = std::min<int64_t>(g.kc, (ceil_div(K, ceil_div(K, g.kc)) + 7) / 8 * 8);
  const int64_t esz = int64_t(sizeof(T));

  // Bias as a contiguous, tile-padded copy (the micro-kernel loads whole vectors of it).
  const T* bias = nullptr;
  if (p.bias_kind != kBiasNone)
    bias = p.bias_kind == kBiasCol ? contiguous_bias(p, N, ceil_div(N, NR) * NR)
                                   : contiguous_bias(p, M, ceil_div(M, MR) * MR);

  const int64_t rt = ceil_div(M, MR), ct = ceil_div(N, NR);
  // Split C's rows (each thread packs all of B and its rows of A) or its columns (each thread packs
  // its own B micro-panels and all of A). Cost in micro-tile units: packing an MR-row panel of A
  // (register transposes) costs about a quarter of a tile, an NR-wide panel of B about 0.4.
  // B read in place (not packed) when its rows are contiguous and every B element is used by a
  // single row tile (M <= MR: packing would cost as much as the product) or B is small enough to
  // stay in cache (kDirectBMaxBytes). A partial last
  // micro-panel is still packed (the kernel loads whole NR-wide rows). Threads then split columns.
  const bool direct_b = (M <= MR || K * N * esz <= kDirectBMaxBytes) && p.csb == 1 && !p.bmask && !p.b_colsum;
  bool split_rows = true;
  if (direct_b) {
    // Nothing of B to pack: split the rows (each thread packs only its rows of A) unless there
    // are fewer row tiles than threads.
    split_rows = rt >= nt;
    nt = int(std::min<int64_t>(nt, split_rows ? rt : ct));
  } else if (nt > 1) {
    const int64_t cost_rows = ceil_div(rt, nt) * ct + ceil_div(2 * ct, 5);  // + packing all of B
    const int64_t cost_cols = rt * ceil_div(ct, nt) + ceil_div(rt, 4);      // + packing all of A
    split_rows = cost_rows <= cost_cols;
    nt = int(std::min<int64_t>(nt, split_rows ? rt : ct));
  }

  // Each thread packs the B block (KC x its columns of the panel) it needs, one K block at a time;
  // NC keeps every thread's block within gemm_b_block_bytes() (NC only decides which columns go together:
  // results do not depend on it). A is packed once per panel, so a wide NC packs A fewer times.
  const int64_t own_cols_cap = std::max<int64_t>(1, gemm_b_block_bytes() / (KC * esz * NR)) * NR;
  const int64_t nc_cap = (nt > 1 && !split_rows) ? own_cols_cap * nt : own_cols_cap;
  const int64_t NC = std::min(ceil_div(N, NR) * NR, nc_cap);

  // Thread t's share of the panel at jc: rows [r0, r1) x micro-panels [q0, q1).
  auto compute = [&](int64_t jc, int64_t nc, int64_t t) {
    const int64_t np = ceil_div(nc, NR);
    int64_t r0 = 0, r1 = M, q0 = 0, q1 = np;
    if (split_rows) {
      r0 = std::min(M, (rt * t / nt) * MR);
      r1 = std::min(M, (rt * (t + 1) / nt) * MR);
    } else {
      q0 = np * t / nt;
      q1 = np * (t + 1) / nt;
    }
    const bool own_rowsum = p.a_rowsum && jc == 0 && (split_rows || t == 0);
    if (q0 == q1 && !own_rowsum) return;
    // This thread's micro-panels [q0, q1) of the B block, packed per K block (unless B is read in
    // place); the column sums are taken by one thread per column.
    const int64_t jb = jc + q0 * NR;
    const int64_t nb = std::min(q1 * NR, nc) - q0 * NR;
    const bool sums = p.b_colsum && (!split_rows || t == 0);
    T* own = nullptr;
    if (!direct_b && q1 > q0)
      own = tl_bown.get<T>(size_t(q1 - q0) * size_t(NR), size_t(KC));
    // Row blocks of equal size (multiples of MR, at most MC): no short last block, whose B
    // micro-panels would be reused by only a few A micro-panels.
    const int64_t MCe = std::max<int64_t>(MR, ceil_div(ceil_div(r1 - r0, ceil_div(r1 - r0, MC)), MR) * MR);
    T* apack = tl_apack.get<T>(size_t(MCe), size_t(KC));  // MCe may exceed MC
    const int64_t nblk = ceil_div(r1 - r0, MCe);
    // With a column split, neighbouring threads write the two ends of every row of C, and the cache
    // line at their boundary is shared unless C's rows are 64-byte aligned. Walking the rows in
    // opposite directions (odd threads bottom up) keeps them from writing that line at the same time
    // ((128,10)x(10,512), 2 threads, C++ loop, 8 alternating runs, 18:46 UTC: 158 -> 165 GFLOP/s
    // median, faster in 7 of the 8 pairs).
    const bool reverse = !split_rows && t % 2 == 1;
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const bool last = pc + kc == K;
      const int load_c = (pc > 0 || p.accumulate) ? 1 : 0;
      T* edge = nullptr;
      if (own) {
        g.pack_b(own, p.B + pc * p.rsb + jb * p.csb, p.rsb, p.csb, kc, nb,
                 p.bmask ? p.bmask + pc * p.bmrs + jb * p.bmcs : nullptr, p.bmrs, p.bmcs,
                 sums ? p.b_colsum + jb : nullptr);
      } else if (direct_b && q1 > q0 && nc - (q1 - 1) * NR < NR) {
        // B read in place; its partial last micro-panel is packed (the kernel loads whole rows).
        const int64_t j = jc + (q1 - 1) * NR;
        edge = tl_bown.get<T>(size_t(KC), size_t(NR));
        g.pack_b(edge, p.B + pc * p.rsb + j, p.rsb, 1, kc, jc + nc - j, nullptr, 0, 0, nullptr);
      }
      for (int64_t bi = 0; bi < nblk; ++bi) {
        const int64_t ic = r0 + (reverse ? nblk - 1 - bi : bi) * MCe;
        const int64_t mc = std::min(MCe, r1 - ic);
        // Rows [0, lr) of the block in MR-row micro-panels, the rest in mr_short-row ones.
        const int64_t lr = long_tile_rows(mc, MR, MRS);
        auto pack = [&](GemmPackA pk_fn, int64_t i0, int64_t rows) {
          const int64_t i = ic + i0;
          pk_fn(apack + i0 * kc, p.A + i * p.rsa + pc * p.csa, p.rsa, p.csa, rows, kc,
                p.amask ? p.amask + i * p.amrs + pc * p.amcs : nullptr, p.amrs, p.amcs,
                own_rowsum ? p.a_rowsum + i : nullptr);
        };
        if (lr > 0) pack(g.pack_a, 0, lr);
        if (lr < mc) pack(g.pack_a_short, lr, mc - lr);
        // B micro-panel q of this K block: packed, or B itself (direct_b; the partial last panel
        // is packed once per K block into `edge`).
        auto bpanel = [&](int64_t q, int64_t& ldb) -> const T* {
          const int64_t j = jc + q * NR;
          ldb = NR;
          if (!direct_b) return own + (q - q0) * kc * NR;
          ldb = p.rsb;
          if (jc + nc - j >= NR) return p.B + pc * p.rsb + j;
          ldb = NR;
          return edge;
        };
        auto tile = [&](int64_t ir, int64_t rows, GemmUkr ukr, int64_t q) {
          const int64_t j = jc + q * NR;
          const int nn = int(std::min(NR, jc + nc - j));
          const int mm = int(std::min(rows, mc - ir));
          const int64_t i = ic + ir;
          int64_t ldb;
          const T* bp = bpanel(q, ldb);
          const T* bptr = p.bias_kind == kBiasCol ? bias + j : p.bias_kind == kBiasRow ? bias + i : nullptr;
          ukr(kc, apack + ir * kc, bp, ldb, p.C + i * p.rsc + j * p.csc, p.rsc, p.csc, mm, nn, load_c,
              last ? p.bias_kind : kBiasNone, bptr, (last && p.relu) ? 1 : 0);
        };
        // One A micro-panel (MR x kc, in L1) against every B micro-panel of the block, streamed
        // from L2/L3, then the next A micro-panel: C is written row tile by row tile, along its
        // rows. The other order (a B micro-panel against every A micro-panel of the block) walks
        // C down its columns, MR rows at a time; with a row stride of 4 KiB (n = 1024) all those
        // C lines fall in the same L1 sets: 1 thread 1024^3 0.89x -> 0.98x and 2048^3 0.84x ->
        // 0.93x OpenBLAS (C++ harness calling both, interleaved medians, 17:57 UTC); the packing of B
        // one K block at a time (above) brought both to 0.98x.
        const int64_t nlong = ceil_div(lr, MR), ntiles = nlong + (lr < mc ? ceil_div(mc - lr, MRS) : 0);
        for (int64_t ti = 0; ti < ntiles; ++ti) {
          const int64_t t = reverse ? ntiles - 1 - ti : ti;
          if (t < nlong)
            for (int64_t q = q0; q < q1; ++q) tile(t * MR, MR, g.ukr, q);
          else
            for (int64_t q = q0; q < q1; ++q) tile(lr + (t - nlong) * MRS, MRS, g.ukr_short, q);
        }
      }
    }
  };

  if (nt <= 1) {
    for (int64_t jc = 0; jc < N; jc += NC) compute(jc, std::min(NC, N - jc), 0);
  } else {
    // One parallel region per product, no barrier inside: with a row split every thread packs the
    // B blocks for itself (~1% of its share of the work for n >= 512) instead of sharing one
    // packed block, which would need a barrier per K block.
    // Fewer synchronisation points matter on a shared machine, where a team member that is not
    // scheduled stalls every barrier for a time slice.
    parallel_for(nt, 1, 1, [&](int64_t b, int64_t e) {
      for (int64_t jc = 0; jc < N; jc += NC) {
        const int64_t nc = std::min(NC, N - jc);
        for (int64_t t = b; t < e; ++t) compute(jc, nc, t);
      }
    });
  }
}

// The small B of the narrow paths is packed (or transposed) by every thread for itself, inside the
// parallel region: a copy written by the calling thread and read by the other costs a cross-core
// transfer per call, which on this VM took longer than the product ((128,512)x(512,10), 2 threads:
// 14.8 us with one shared copy, 8.0 us without a copy, 9.4 us on one thread; 17:13 UTC).

// N <= 2 vectors: only B is packed (it is small); A is read in place (see small_n). Threads split
// C's rows.
template <class T>
void narrow(const Problem<T>& p, const GemmKernels& g, int nt_max) {
  const int64_t M = p.M, N = p.N, K = p.K;
  const int64_t nrs = N <= g.lanes ? g.lanes : 2 * g.lanes;
  // Rows of (at most 32) padded values: fixed-length loops (no memcpy/memset call per row).
  auto pack = [&](T* bp, auto nrs_const) {
    constexpr int64_t NRS = decltype(nrs_const)::value;
    for (int64_t k = 0; k < K; ++k) {
      const T* row = p.B + k * p.rsb;
      T* d = bp + k * NRS;
      if (!p.bmask) {
        for (int64_t j = 0; j < NRS; ++j) d[j] = j < N ? row[j * p.csb] : T(0);
      } else {
        const T* mrow = p.bmask + k * p.bmrs;
        for (int64_t j = 0; j < NRS; ++j) d[j] = (j < N && mrow[j * p.bmcs] > T(0)) ? row[j * p.csb] : T(0);
      }
    }
  };
  auto pack_b = [&]() {
    T* bp = tl_bown.get<T>(size_t(K), size_t(nrs), 64);  // this thread's
    switch (nrs) {
      case 1: pack(bp, std::integral_constant<int64_t, 1>()); break;
      case 2: pack(bp, std::integral_constant<int64_t, 2>()); break;
      case 4: pack(bp, std::integral_constant<int64_t, 4>()); break;
      case 8: pack(bp, std::integral_constant<int64_t, 8>()); break;
      case 16: pack(bp, std::integral_constant<int64_t, 16>()); break;
      default: pack(bp, std::integral_constant<int64_t, 32>()); break;
    }
    return bp;
  };
  if (p.b_colsum) add_masked_colsums(p);
  const T* bias = p.bias_kind == kBiasCol ? contiguous_bias(p, N, nrs) : nullptr;
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const int nt = threads_for_flops(flops, nt_max);
  auto body = [&](int64_t i0, int64_t i1) {
    const T* bp = pack_b();
    g.small_n(i1 - i0, N, K, p.A + i0 * p.rsa, p.rsa, p.csa, bp, p.C + i0 * p.rsc, p.rsc, p.csc,
              p.accumulate ? 1 : 0, bias, p.relu ? 1 : 0);
  };
  run_row_split(M, nt, 48, 24, body);
}

// Small N, rows of A contiguous: every C element as a dot product along k (GemmDotN), B used
// transposed (read in place when its columns are contiguous, else copied by each thread: it is
// small). Threads split C's rows.
template <class T>
void dot_narrow(const Problem<T>& p, const GemmKernels& g, int nt_max) {
  const int64_t M = p.M, N = p.N, K = p.K;
  const bool copy = p.bmask || p.rsb != 1;
  auto transposed_b = [&]() {
    T* buf = tl_bown.get<T>(size_t(N), size_t(K), 64);  // this thread's
    if (!p.bmask && p.csb == 1) {
      // Register transposes: (128,512)x(512,10) on 1 thread 13.7 -> 9.6 us (C++ loop, medians of 6
      // alternating runs, 18:07 UTC; the scalar copy was a fifth of the time in perf).
      g.transpose(buf, K, p.B, p.rsb, K, N);
      return buf;
    }
    for (int64_t k = 0; k < K; ++k) {
      const T* row = p.B + k * p.rsb;
      const T* mrow = p.bmask ? p.bmask + k * p.bmrs : nullptr;
      for (int64_t j = 0; j < N; ++j)
        buf[j * K + k] = (!mrow || mrow[j * p.bmcs] > T(0)) ? row[j * p.csb] : T(0);
    }
    return buf;
  };
  if (p.b_colsum) add_masked_colsums(p);
  const T* bias = p.bias_kind == kBiasCol ? contiguous_bias(p, N, N) : nullptr;
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const int nt = threads_for_flops(flops, nt_max);
  auto body = [&](int64_t i0, int64_t i1) {
    const T* bt = copy ? transposed_b() : p.B;
    const int64_t ldbt = copy ? K : p.csb;
    g.dot_n(i1 - i0, N, K, p.A + i0 * p.rsa, p.rsa, bt, ldbt, p.C + i0 * p.rsc, p.rsc, p.csc,
            p.accumulate ? 1 : 0, bias, p.relu ? 1 : 0);
  };
  run_row_split(M, nt, 32, 16, body);
}

// B within kDirectBMaxBytes, wider than one vector: nothing packed, A and B read in place
// (GemmDirect), whatever M. Threads split C's rows. Against the packed path (1 thread, 16:55 UTC):
// 32^3 1.43 -> 0.91 us, 48^3 2.73 -> 2.01 us, 64^3 3.9 -> 3.3 us, 128^3 22.7 -> 21.0 us,
// (10000,128)x(128,100) 2.3 -> 1.6 ms, (128,784)x(784,20) 40 -> 30 us. Not for N <= one vector
// (N = 10: (128,512)x(512,10) 9.6 us by the dot-form kernel, 20 us here: most of the tile is padding).

// transpose_b: B is given with contiguous columns (csb == 1 does not hold, rsb == 1: a W.T view)
// and K is within one vector: each thread first copies its columns of B into row-major order with
// register transposes (K x N, at most 64 KiB), then reads the copy in place.
template <class T>
void direct(const Problem<T>& p, const GemmKernels& g, int nt_max, bool transpose_b = false) {
  const int64_t M = p.M, N = p.N, K = p.K;
  const T* bias = p.bias_kind == kBiasCol ? contiguous_bias(p, N, N) : nullptr;
  const int nt = threads_for_flops(2.0 * double(M) * double(N) * double(K), nt_max);
  // Threads split C's rows, or its columns (in whole NR-wide panels) where that gives the busiest
  // thread fewer register tiles or, at equal tiles, less of B to transpose: dZ(128,10) . W2.T(10,512)
  // on 2 threads is 6 + 5 row tiles of 12 rows (the busier thread does 6/11 of the work and both
  // transpose all of B) against 8 + 8 column panels of 32.
  const int64_t rt = ceil_div(M, g.mr), ct = ceil_div(N, g.nr);
  bool split_cols = false;
  if (nt > 1 && N >= 2 * int64_t(g.nr)) {
    const int64_t busiest_rows = M >= 2 * int64_t(g.mr) ? ceil_div(rt, nt) * ct : rt * ct;
    const int64_t busiest_cols = rt * ceil_div(ct, nt);
    split_cols = busiest_cols < busiest_rows || (busiest_cols == busiest_rows && transpose_b);
  }
  // This thread's block of C: rows [i0, i1) x columns [j0, j1).
  auto body = [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const T* a = p.A + i0 * p.rsa;
    int64_t rsa = p.rsa, csa = p.csa;
    if (p.amask) {
      // The relu mask of the dense backward pass: this thread's rows of A, masked, into a
      // contiguous copy (A is small here: M x K within kDirectBMaxBytes).
      T* abuf = tl_apack.get<T>(size_t(i1 - i0), size_t(K), 64);
      for (int64_t i = i0; i < i1; ++i) {
        const T* arow = p.A + i * p.rsa;
        const T* mrow = p.amask + i * p.amrs;
        T* d = abuf + (i - i0) * K;
        for (int64_t k = 0; k < K; ++k) {
          const T v = arow[k * p.csa], m = mrow[k * p.amcs];  // both loaded: a select, not a branch
          d[k] = m > T(0) ? v : T(0);
        }
      }
      a = abuf;
      rsa = K;
      csa = 1;
    }
    const T* b = p.B + j0 * p.csb;
    int64_t ldb = p.rsb;
    if (transpose_b) {
      // This thread's columns of B, copied into row-major order (K x (j1 - j0)).
      T* buf = tl_bown.get<T>(size_t(K), size_t(j1 - j0), 64);
      g.transpose(buf, j1 - j0, b, p.csb, j1 - j0, K);
      b = buf;
      ldb = j1 - j0;
    }
    g.direct(i1 - i0, j1 - j0, K, a, rsa, csa, b, ldb, p.C + i0 * p.rsc + j0, p.rsc, p.accumulate ? 1 : 0,
             bias ? bias + j0 : nullptr, p.relu ? 1 : 0);
  };
  if (split_cols)
    parallel_for(N, std::max<int64_t>(g.nr, N / nt), g.nr, [&](int64_t j0, int64_t j1) { body(0, M, j0, j1); });
  else
    run_row_split(M, nt, 2 * int64_t(g.mr), g.mr, [&](int64_t i0, int64_t i1) { body(i0, i1, 0, N); });
}

// The kernels with the shorter register tile when the product has at most mr_short rows.
GemmKernels short_tile(const GemmKernels& g, int64_t rows) {
  GemmKernels s = g;
  if (g.mr_short > 0 && rows <= g.mr_short) {
    s.mr = g.mr_short;
    s.ukr = g.ukr_short;
    s.pack_a = g.pack_a_short;
  }
  return s;
}

template <class T>
void gemm_t(int64_t M, int64_t N, int64_t K, T* C, int64_t rsc, int64_t csc, const T* A, int64_t rsa, int64_t csa,
            const T* B, int64_t rsb, int64_t csb, const GemmOptions& opt) {
  if (opt.accumulate && (opt.bias || opt.relu))
    throw ValueError("gemm: accumulate cannot be combined with bias or relu");
  const GemmKernels& g = kernels().gemm[sizeof(T) == 4 ? 0 : 1];
  Problem<T> p{M, N, K, C, rsc, csc, A, rsa, csa, B, rsb, csb};
  p.amask = static_cast<const T*>(opt.a_mask);
  p.amrs = opt.a_mask_rs;
  p.amcs = opt.a_mask_cs;
  p.bmask = static_cast<const T*>(opt.b_mask);
  p.bmrs = opt.b_mask_rs;
  p.bmcs = opt.b_mask_cs;
  p.accumulate = opt.accumulate;
  p.relu = opt.relu;
  if (opt.bias) {
    p.bias_kind = kBiasCol;
    p.bias = static_cast<const T*>(opt.bias);
    p.bias_stride = opt.bias_stride;
  }
  std::vector<double> colsum;
  if (opt.b_colsum) {
    colsum.assign(size_t(N), 0.0);
    p.b_colsum = colsum.data();
  }

  int nt_max = num_threads();
  if (opt.threads > 0) nt_max = std::min(nt_max, opt.threads);

  if (M == 0 || N == 0 || K == 0) {
    degenerate(p);
  } else if ((M == 1 || N == 1) && !p.amask && !p.bmask && !p.b_colsum) {
    matvec(p, g, nt_max);
  } else {
    // Orientation: put the longer side along the vector (NR) direction when the register tile
    // would otherwise be mostly padding (e.g. N = 10 with NR = 32), or when C is column-major.
    const double e0 = tile_eff(M, g.mr) * tile_eff(N, g.nr), e1 = tile_eff(N, g.mr) * tile_eff(M, g.nr);
    bool swap = e1 > 1.15 * e0;
    if (!swap && e1 >= e0 && p.csc != 1 && p.rsc == 1) swap = true;
    const Problem<T> q = swap ? transposed(p) : p;
    const int64_t narrow_max = 2 * int64_t(g.lanes);
    const double flops = 2.0 * double(M) * double(N) * double(K);
    const int nt = threads_for_flops(flops, nt_max);
    const bool small_b = K * N * int64_t(sizeof(T)) <= kDirectBMaxBytes && N > g.lanes;
    // A masked A (the dense backward's dZ . W.T) is copied, masked, when it is small too.
    const bool small_a = M * K * int64_t(sizeof(T)) <= kDirectBMaxBytes;
    const bool direct_ok = small_b && g.direct && p.csc == 1 && (!p.amask || small_a) && !p.bmask && !p.a_rowsum &&
                           !p.b_colsum && p.bias_kind != kBiasRow;
    if (direct_ok && p.csb == 1) {
      direct(p, g, nt_max);
    } else if (direct_ok && p.rsb == 1 && K <= g.transpose_max_cols) {
      // B = W.T with few rows (dZ(128,10) . W2(512,10).T): a transposed copy, then read in place.
      // (128,10)x(10,512), C++ loop, 4 alternating runs (about 19:00 UTC): 1 thread 130-132 -> 153-173
      // GFLOP/s against the packed path, 2 threads 107-179 -> 188-232.
      direct(p, g, nt_max, true);
    } else if (p.M <= g.mr && p.csb == 1 && !p.bmask && !p.b_colsum) {
      blocked(p, short_tile(g, p.M), nt);  // one row tile: B read in place (direct_b)
    } else if (p.N <= g.mr && p.rsa == 1 && !p.amask && !p.a_rowsum) {
      blocked(transposed(p), short_tile(g, p.N), nt);  // C^T = B^T A^T: one row tile, A^T read in place
    } else if (p.N <= g.lanes && g.dot_n && p.csa == 1 && K >= 4 * int64_t(g.lanes) && !p.amask && !p.a_rowsum &&
               p.bias_kind != kBiasRow) {
      dot_narrow(p, g, nt_max);
    } else if (p.N <= narrow_max && !p.amask && !p.a_rowsum && p.bias_kind != kBiasRow) {
      narrow(p, g, nt_max);
    } else if (p.M <= narrow_max && p.M < p.N && !p.bmask && !p.b_colsum && p.bias_kind == kBiasNone) {
      narrow(transposed(p), g, nt_max);
    } else {
      blocked(q, g, nt);
    }
  }

  if (opt.b_colsum) {
    T* out = static_cast<T*>(opt.b_colsum);
    for (int64_t j = 0; j < N; ++j) out[j * opt.b_colsum_stride] = T(colsum[size_t(j)]);
  }
}

template <class T>
void naive_t(int64_t M, int64_t N, int64_t K, T* C, int64_t rsc, int64_t csc, const T* A, int64_t rsa, int64_t csa,
             const T* B, int64_t rsb, int64_t csb) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T s = T(0);
      for (int64_t k = 0; k < K; ++k) s = s + A[i * rsa + k * csa] * B[k * rsb + j * csb];
      C[i * rsc + j * csc] = s;
    }
}

}  // namespace

void gemm(DType dt, int64_t M, int64_t N, int64_t K, void* C, int64_t rsc, int64_t csc, const void* A, int64_t rsa,
          int64_t csa, const void* B, int64_t rsb, int64_t csb, const GemmOptions& opt) {
  if (dt == DType::f32)
    gemm_t<float>(M, N, K, static_cast<float*>(C), rsc, csc, static_cast<const float*>(A), rsa, csa,
                  static_cast<const float*>(B), rsb, csb, opt);
  else
    gemm_t<double>(M, N, K, static_cast<double*>(C), rsc, csc, static_cast<const double*>(A), rsa, csa,
                   static_cast<const double*>(B), rsb, csb, opt);
}

void gemm_naive(DType dt, int64_t M, int64_t N, int64_t K, void* C, int64_t rsc, int64_t csc, const void* A,
                int64_t rsa, int64_t csa, const void* B, int64_t rsb, int64_t csb) {
  if (dt == DType::f32)
    naive_t<float>(M, N, K, static_cast<float*>(C), rsc, csc, static_cast<const float*>(A), rsa, csa,
                   static_cast<const float*>(B), rsb, csb);
  else
    naive_t<double>(M, N, K, static_cast<double*>(C), rsc, csc, static_cast<const double*>(A), rsa, csa,
                    static_cast<const double*>(B), rsb, csb);
}

void gemm_batched(DType dt, int nb, const int64_t* bshape, int64_t M, int64_t N, int64_t K, const BatchedOperand& C,
                  const BatchedOperand& A, const BatchedOperand& B) {
  bool plain = true;  // no batch dims of size != 1: one 2-d product (the common case, no allocation)
  for (int d = 0; d < nb; ++d) plain = plain && bshape[d] == 1;
  if (plain) {
    gemm(dt, M, N, K, C.data, C.rs, C.cs, A.data, A.rs, A.cs, B.data, B.rs, B.cs);
    return;
  }
  const int64_t esz = dtype_size(dt);
  // Working copies: batch dims (size, strides of C, A, B), dropping size-1 dims.
  struct Dim {
    int64_t n, c, a, b;
  };
  std::vector<Dim> dims;
  bool empty_batch = false;
  for (int d = 0; d < nb; ++d) {
    if (bshape[d] == 1) continue;
    if (bshape[d] == 0) empty_batch = true;
    dims.push_back({bshape[d], C.bstrides[d], A.bstrides[d], B.bstrides[d]});
  }
  int64_t rsc = C.rs, csc = C.cs, rsa = A.rs, csa = A.cs, rsb = B.rs, csb = B.cs;
  char* c0 = static_cast<char*>(C.data);
  const char* a0 = static_cast<const char*>(A.data);
  const char* b0 = static_cast<const char*>(B.data);

  if (empty_batch) {
    // No products: the C blocks that exist (C dims of size 0 have none) are empty sums = 0.
    for (const Dim& d : dims)
      if (d.n == 0 && d.c != 0) return;
    std::vector<Dim> cd;
    for (const Dim& d : dims)
      if (d.c != 0) cd.push_back(d);
    std::vector<int64_t> idx(cd.size(), 0);
    while (true) {
      int64_t off = 0;
      for (size_t d = 0; d < cd.size(); ++d) off += idx[d] * cd[d].c;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) std::memset(c0 + (off + i * rsc + j * csc) * esz, 0, size_t(esz));
      size_t d = cd.size();
      while (d > 0) {
        --d;
        if (++idx[d] < cd[d].n) break;
        idx[d] = 0;
        if (d == 0) return;
      }
      if (cd.empty()) return;
    }
  }

  // Fold batch dims into M, N or K where the strides line up (repeat until nothing changes).
  bool changed = true;
  while (changed) {
    changed = false;
    for (size_t d = 0; d < dims.size() && !changed; ++d) {
      const Dim x = dims[d];
      if (x.b == 0 && x.c != 0 && (M == 1 || (x.a == M * rsa && x.c == M * rsc))) {
        if (M == 1) {
          rsa = x.a;
          rsc = x.c;
        }
        M *= x.n;
        changed = true;
      } else if (x.a == 0 && x.c != 0 && (N == 1 || (x.b == N * csb && x.c == N * csc))) {
        if (N == 1) {
          csb = x.b;
          csc = x.c;
        }
        N *= x.n;
        changed = true;
      } else if (x.c == 0 && (K == 1 || (x.a == K * csa && x.b == K * rsb))) {
        if (K == 1) {
          csa = x.a;
          rsb = x.b;
        }
        K *= x.n;
        changed = true;
      }
      if (changed) dims.erase(dims.begin() + long(d));
    }
  }

  // Output dims outer, reduction dims (C stride 0) inner: the first product of a C block overwrites
  // it, the next ones accumulate, in a fixed order.
  std::stable_partition(dims.begin(), dims.end(), [](const Dim& d) { return d.c != 0; });
  size_t nout = 0;
  while (nout < dims.size() && dims[nout].c != 0) ++nout;
  std::vector<int64_t> idx(dims.size(), 0);
  while (true) {
    int64_t oc = 0, oa = 0, ob = 0;
    bool first = true;
    for (size_t d = 0; d < dims.size(); ++d) {
      oc += idx[d] * dims[d].c;
      oa += idx[d] * dims[d].a;
      ob += idx[d] * dims[d].b;
      if (d >= nout && idx[d] != 0) first = false;
    }
    GemmOptions opt;
    opt.accumulate = !first;
    gemm(dt, M, N, K, c0 + oc * esz, rsc, csc, a0 + oa * esz, rsa, csa, b0 + ob * esz, rsb, csb, opt);
    size_t d = dims.size();
    bool done = true;
    while (d > 0) {
      --d;
      if (++idx[d] < dims[d].n) {
        done = false;
        break;
      }
      idx[d] = 0;
    }
    if (done) break;
  }
}

double fma_peak_gflops(double seconds, int threads) {
  const KernelTable& t = kernels();
  if (!t.fma_loop_f32) return 0.0;
  // Calibrate the iteration count on one thread, then time all threads together.
  int64_t iters = 1 << 16;
  double el = 0.0;
  while (true) {
    const auto s = std::chrono::steady_clock::now();
    t.fma_loop_f32(iters);
    el = std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count();
    if (el > 0.02 || iters > (int64_t(1) << 40)) break;
    iters *= 4;
  }
  iters = std::max<int64_t>(1, int64_t(double(iters) * seconds / el));
  const int nt = std::max(1, std::min(threads, num_threads()));
  std::vector<double> flops(size_t(nt), 0.0);
  const auto s = std::chrono::steady_clock::now();
  auto body = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) flops[size_t(i)] = t.fma_loop_f32(iters);
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
