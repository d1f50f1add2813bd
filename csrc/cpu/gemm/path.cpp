// Which path computes a product. One function, choose_path, in the order of preference; the sizes
// where one path starts to beat another are data of the ISA's kernels (GemmLimits). path_applies
// says what each path can compute at all, for the forcing hook the tests use to drive every path.
#include <atomic>

#include "internal.hpp"

namespace pk {

namespace {
std::atomic<int> g_forced{int(GemmPath::Auto)};
}

const char* gemm_path_name(GemmPath p) {
  static const char* names[] = {"auto",       "degenerate", "matvec",     "direct",  "direct_transposed_b",
                                "one_row_tile", "one_col_tile", "dot_narrow", "narrow", "narrow_transposed",
                                "blocked"};
  const int i = int(p);
  return i >= 0 && i < int(GemmPath::Count) ? names[i] : "?";
}

GemmPath gemm_force_path(GemmPath path) {
  if (int(path) < 0 || int(path) >= int(GemmPath::Count)) throw ValueError("gemm_force_path: no such path");
  return GemmPath(g_forced.exchange(int(path)));
}

namespace gemm_detail {

bool path_applies(GemmPath path, const Shape& s, const GemmKernels& g) {
  const bool empty = s.M == 0 || s.N == 0 || s.K == 0;
  if (path == GemmPath::Degenerate) return empty;
  if (empty) return false;
  const bool no_a_extras = !s.amask && !s.a_rowsum;
  const bool no_b_extras = !s.bmask && !s.b_colsum;
  const bool col_bias_only = s.bias_kind != kBiasRow;
  const int64_t lanes = g.lanes;
  switch (path) {
    case GemmPath::Matvec:
      return (s.M == 1 || s.N == 1) && no_a_extras && no_b_extras;
    case GemmPath::Direct:
      return g.direct && s.csc == 1 && s.csb == 1 && !s.a_rowsum && no_b_extras && col_bias_only;
    case GemmPath::DirectTransposedB:
      return g.direct && s.csc == 1 && s.rsb == 1 && s.K <= g.transpose_max_cols && !s.a_rowsum && no_b_extras &&
             col_bias_only;
    case GemmPath::OneRowTile:
      return s.M <= g.mr && s.csb == 1 && no_b_extras;
    case GemmPath::OneColTile:
      return s.N <= g.mr && s.rsa == 1 && no_a_extras;
    case GemmPath::DotNarrow:
      return s.N <= lanes && g.dot_n && s.csa == 1 && no_a_extras && col_bias_only;
    case GemmPath::Narrow:
      return s.N <= g.limits.narrow_max_n * lanes && no_a_extras && col_bias_only;
    case GemmPath::NarrowTransposed:
      return s.M <= g.limits.narrow_max_n * lanes && no_b_extras && s.bias_kind == kBiasNone;
    case GemmPath::Blocked:
      return true;
    default:
      return false;
  }
}

namespace {
// Fraction of a tile grid's work that is useful.
inline double tile_eff(int64_t n, int64_t t) { return double(n) / double(ceil_div(n, t) * t); }
}  // namespace

PathChoice choose_path(const Shape& s, const GemmKernels& g) {
  // Blocked's orientation: the longer side along the vector (NR) direction when the register tile
  // would otherwise be mostly padding (e.g. N = 10 with NR = 32), or when C is column-major.
  const double e0 = tile_eff(s.M, g.mr) * tile_eff(s.N, g.nr), e1 = tile_eff(s.N, g.mr) * tile_eff(s.M, g.nr);
  bool swap = e1 > g.limits.swap_min_gain * e0;
  if (!swap && e1 >= e0 && s.csc != 1 && s.rsc == 1) swap = true;

  const GemmPath forced = GemmPath(g_forced.load(std::memory_order_relaxed));
  if (forced != GemmPath::Auto && path_applies(forced, s, g)) return {forced, swap};

  auto pick = [&](GemmPath p) { return PathChoice{p, swap}; };
  if (s.M == 0 || s.N == 0 || s.K == 0) return pick(GemmPath::Degenerate);
  if (path_applies(GemmPath::Matvec, s, g)) return pick(GemmPath::Matvec);
  const GemmLimits& lim = g.limits;
  const int64_t lanes = g.lanes;
  // Nothing packed while B (and a masked A, copied) is small enough to stay in cache, and wider
  // than one vector (narrower, most of the direct kernel's tile would be padding).
  const bool small_b = s.K * s.N * s.esz <= lim.direct_max_bytes && s.N > lanes;
  const bool small_a = s.M * s.K * s.esz <= lim.direct_max_bytes;
  if (small_b && (!s.amask || small_a)) {
    if (path_applies(GemmPath::Direct, s, g)) return pick(GemmPath::Direct);
    if (path_applies(GemmPath::DirectTransposedB, s, g)) return pick(GemmPath::DirectTransposedB);
  }
  if (path_applies(GemmPath::OneRowTile, s, g)) return pick(GemmPath::OneRowTile);
  if (path_applies(GemmPath::OneColTile, s, g)) return pick(GemmPath::OneColTile);
  if (s.K >= lim.dot_min_k * lanes && path_applies(GemmPath::DotNarrow, s, g)) return pick(GemmPath::DotNarrow);
  if (path_applies(GemmPath::Narrow, s, g)) return pick(GemmPath::Narrow);
  if (s.M < s.N && path_applies(GemmPath::NarrowTransposed, s, g)) return pick(GemmPath::NarrowTransposed);
  return pick(GemmPath::Blocked);
}

}  // namespace gemm_detail
}  // namespace pk
