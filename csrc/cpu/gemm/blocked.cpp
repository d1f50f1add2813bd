// The blocked GEMM framework (BLIS/GotoBLAS loop structure) around the per-ISA micro-kernel and
// packing routines (ukernels.inc):
//
//   one parallel region; each thread owns a range of C's rows OR of C's columns (never of K):
//     for jc (NC columns of C):
//       for pc (KC):  pack the B micro-panels it needs, KC x NC (thread-local workspace)
//         for ic (MC rows): pack A block MC x KC  (thread-local workspace)
//           for ir (MR): for jr (NR): micro-kernel (+ epilogue on the last pc: bias, relu)
//
// Every element of C is produced by one thread, with the same blocking and k order for every thread
// count, so results are bit-identical whatever the thread count.
#include <algorithm>
#include <cstdlib>

#include "internal.hpp"

namespace pk {

// The macro-kernel streams a thread's packed B block (KC x its columns) past every A micro-panel, so
// the block is read once per A micro-panel from wherever it lives. On AMD EPYC (L3 32 MiB per CCX)
// an L3-resident block of 8 MiB runs at the micro-kernel's full rate, and packing A once per wide
// panel pays; on Intel Xeon with a mesh L3 the micro-kernel loses about 17% when its B block streams
// from L3, so the block is half the L2 there. Re-derive with bench/native/gemm_vs_openblas.cpp and
// PYKERNELS_GEMM_B_BLOCK_KB (2048^3 and the MNIST shapes, interleaved against OpenBLAS).
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


namespace gemm_detail {

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
  // stay in cache (GemmLimits::direct_max_bytes). A partial last
  // micro-panel is still packed (the kernel loads whole NR-wide rows). Threads then split columns.
  const bool direct_b = (M <= MR || K * N * esz <= g.limits.direct_max_bytes) && p.csb == 1 && !p.bmask && !p.b_colsum;
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
      own = ws_bown().get<T>(size_t(q1 - q0) * size_t(NR), size_t(KC));
    // Row blocks of equal size (multiples of MR, at most MC): no short last block, whose B
    // micro-panels would be reused by only a few A micro-panels.
    const int64_t MCe = std::max<int64_t>(MR, ceil_div(ceil_div(r1 - r0, ceil_div(r1 - r0, MC)), MR) * MR);
    T* apack = ws_apack().get<T>(size_t(MCe), size_t(KC));  // MCe may exceed MC
    const int64_t nblk = ceil_div(r1 - r0, MCe);
    // With a column split, neighbouring threads write the two ends of every row of C, and the cache
    // line at their boundary is shared unless C's rows are 64-byte aligned. Walking the rows in
    // opposite directions (odd threads bottom up) keeps them from writing that line at the same time
    // ((128,10)x(10,512) on 2 threads: about 4% faster).
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
        edge = ws_bown().get<T>(size_t(KC), size_t(NR));
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
        // C lines fall in the same L1 sets (about 10% slower at 1024^3 and 2048^3).
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

template void blocked<float>(const Problem<float>&, const GemmKernels&, int);
template void blocked<double>(const Problem<double>&, const GemmKernels&, int);

}  // namespace gemm_detail
}  // namespace pk
