// Sum over a set of axes: the backward of broadcasting (sum_to, add_backward, bias gradients).
//
// Two loop orders, chosen by which axis of x has the smallest stride:
//  A. a reduced axis is innermost: each output element is a dot-like sum over contiguous runs
//     (ISA sum loop: float32 in double lanes, float64 pairwise);
//  B. a kept axis is innermost (e.g. (N,D) -> (D,)): rows are added into a tile of double
//     accumulators, streaming x once in memory order.
// Parallelism and determinism: work items are (output element or tile) x (chunk of the reduction).
// The number of chunks depends only on the shapes (never on the thread count), partial sums are
// combined in a fixed (pairwise) order, so results are bit-identical for any number of threads.
#include <algorithm>
#include <cstdlib>
#include <vector>

#include "pykernels/elementwise.hpp"
#include "pykernels/parallel.hpp"

namespace pk {
namespace {

struct Dims {
  int n = 0;
  int64_t shape[kMaxDims];
  int64_t sx[kMaxDims];  // strides in x
  int64_t so[kMaxDims];  // strides in out (kept dims only)
};

// Sort dims by |x stride| descending, then merge neighbours contiguous in x (and in out if `with_out`).
void order_and_coalesce(Dims& d, bool with_out) {
  for (int i = 1; i < d.n; ++i) {
    const int64_t sh = d.shape[i], a = d.sx[i], o = d.so[i];
    int j = i - 1;
    while (j >= 0 && std::llabs(d.sx[j]) < std::llabs(a)) {
      d.shape[j + 1] = d.shape[j];
      d.sx[j + 1] = d.sx[j];
      d.so[j + 1] = d.so[j];
      --j;
    }
    d.shape[j + 1] = sh;
    d.sx[j + 1] = a;
    d.so[j + 1] = o;
  }
  int m = 0;
  for (int i = 0; i < d.n; ++i) {
    if (m > 0 && d.sx[m - 1] == d.sx[i] * d.shape[i] && (!with_out || d.so[m - 1] == d.so[i] * d.shape[i])) {
      d.shape[m - 1] *= d.shape[i];
      d.sx[m - 1] = d.sx[i];
      d.so[m - 1] = d.so[i];
      continue;
    }
    d.shape[m] = d.shape[i];
    d.sx[m] = d.sx[i];
    d.so[m] = d.so[i];
    ++m;
  }
  d.n = m;
}

// Multi-index over `n` dims in C order, tracking the element offset for one set of strides.
struct Odometer {
  int n;
  const int64_t* shape;
  const int64_t* st;
  int64_t idx[kMaxDims];
  int64_t off;
  Odometer(int n_, const int64_t* shape_, const int64_t* st_, int64_t flat) : n(n_), shape(shape_), st(st_) {
    off = 0;
    for (int i = n - 1; i >= 0; --i) {
      idx[i] = flat % shape[i];
      flat /= shape[i];
      off += idx[i] * st[i];
    }
  }
  // Advance the innermost index by len (not past its end), carrying into outer dims.
  void advance_inner(int64_t len) {
    idx[n - 1] += len;
    off += len * st[n - 1];
    for (int i = n - 1; i > 0 && idx[i] == shape[i]; --i) {
      off += st[i - 1] - shape[i] * st[i];
      idx[i] = 0;
      ++idx[i - 1];
    }
  }
};

int64_t offset_of(int n, const int64_t* shape, const int64_t* st, int64_t flat) {
  int64_t off = 0;
  for (int i = n - 1; i >= 0; --i) {
    off += (flat % shape[i]) * st[i];
    flat /= shape[i];
  }
  return off;
}

template <class T>
void store(const View& out, int64_t off, double v) {
  static_cast<T*>(out.data)[off] = static_cast<T>(v);
}

constexpr int64_t kChunkElems = int64_t(1) << 16;  // elements of x per work item when chunking
constexpr int64_t kFewOutputs = 64;                // below this many items, chunk the reduction
constexpr int64_t kMaxChunks = 16;                 // loop order B: most chunks of rows per tile
// Loop order B keeps one double accumulator per output element of a tile of the inner kept axis.
// The tile is as wide as possible (whole rows up to 4096 elements, 32 KB of accumulators): reading
// rows in narrow pieces at a large stride was measured 4x slower ((20000,512)->(512,), 1 thread).
constexpr int64_t kTile = 4096;

template <class T>
void sum_impl(const View& out, const View& x, const bool* reduce) {
  Dims kept, red;
  bool empty_reduction = false;
  for (int i = 0; i < x.ndim; ++i) {
    if (x.shape[i] == 0) {
      if (!reduce[i]) return;  // empty output
      empty_reduction = true;
    }
  }
  for (int i = 0; i < x.ndim; ++i) {
    if (x.shape[i] == 1) continue;
    Dims& d = reduce[i] ? red : kept;
    d.shape[d.n] = x.shape[i];
    d.sx[d.n] = x.strides[i];
    d.so[d.n] = reduce[i] ? 0 : out.strides[i];
    ++d.n;
  }
  order_and_coalesce(kept, true);
  order_and_coalesce(red, false);
  const KernelTable& K = kernels();
  const int di = int(x.dtype);
  int64_t P = 1;
  for (int i = 0; i < kept.n; ++i) P *= kept.shape[i];

  if (empty_reduction || red.n == 0) {
    // Sum over nothing (0.0) or over single elements (x + 0.0, which is what np.sum gives).
    static const T zero = T(0);
    View o = out, s;
    s.dtype = x.dtype;
    s.ndim = out.ndim;
    for (int i = 0; i < out.ndim; ++i) {
      s.shape[i] = out.shape[i];
      s.strides[i] = 0;
    }
    if (empty_reduction) {
      s.data = const_cast<T*>(&zero);
      binary<ops::Multiply>(o, s, s);
    } else {
      s.data = const_cast<T*>(&zero);
      View xv = x;
      binary<ops::Add>(o, xv, s);  // x + 0.0: -0.0 becomes +0.0 as in np.sum
    }
    return;
  }

  int64_t R = 1;
  for (int i = 0; i < red.n; ++i) R *= red.shape[i];
  const char* xb = static_cast<const char*>(x.data);
  const int64_t esz = sizeof(T);
  const bool order_b = kept.n > 0 && std::llabs(kept.sx[kept.n - 1]) < std::llabs(red.sx[red.n - 1]);

  if (!order_b) {
    // ---- A: reduced axis innermost ----
    const int64_t nchunks = (P < kFewOutputs && R >= 2 * kChunkElems) ? (R + kChunkElems - 1) / kChunkElems : 1;
    const int64_t clen = (R + nchunks - 1) / nchunks;
    std::vector<double> partial(nchunks > 1 ? size_t(P * nchunks) : 0);
    const int64_t items = P * nchunks;
    const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, clen));
    parallel_for(items, grain, 1, [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it) {
        const int64_t p = it / nchunks, c = it % nchunks;
        const int64_t xoff = kept.n ? offset_of(kept.n, kept.shape, kept.sx, p) : 0;
        const int64_t r0 = c * clen, r1 = std::min(R, r0 + clen);
        Odometer od(red.n, red.shape, red.sx, r0);
        const int64_t inner = red.shape[red.n - 1], sin = red.sx[red.n - 1];
        double s = 0.0;
        for (int64_t pos = r0; pos < r1;) {
          const int64_t len = std::min(inner - od.idx[red.n - 1], r1 - pos);
          s += K.sum[di](xb + (xoff + od.off) * esz, len, sin);
          pos += len;
          if (pos < r1) od.advance_inner(len);
        }
        if (nchunks == 1)
          store<T>(out, kept.n ? offset_of(kept.n, kept.shape, kept.so, p) : 0, s);
        else
          partial[size_t(it)] = s;
      }
    });
    if (nchunks > 1)
      for (int64_t p = 0; p < P; ++p)
        store<T>(out, kept.n ? offset_of(kept.n, kept.shape, kept.so, p) : 0,
                 K.sum[1](partial.data() + p * nchunks, nchunks, 1));
    return;
  }

  // ---- B: kept axis innermost: tiles of the inner kept axis accumulate rows ----
  const int64_t L = kept.shape[kept.n - 1], sxin = kept.sx[kept.n - 1], soin = kept.so[kept.n - 1];
  const int64_t Pouter = P / L;
  const int64_t ntiles = (L + kTile - 1) / kTile;
  const int64_t units = Pouter * ntiles;
  const int64_t row_elems = std::min(L, kTile);
  const int64_t rows_per_chunk = std::max<int64_t>(16, kChunkElems / row_elems);
  // At most kMaxChunks chunks: combining the partial rows costs nchunks * L strided reads.
  const int64_t nchunks = (units < kFewOutputs && R >= 2 * rows_per_chunk)
                              ? std::min(kMaxChunks, (R + rows_per_chunk - 1) / rows_per_chunk)
                              : 1;
  const int64_t clen = (R + nchunks - 1) / nchunks;
  std::vector<double> partial(nchunks > 1 ? size_t(units * nchunks * row_elems) : 0);
  const int64_t items = units * nchunks;
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, clen * row_elems));
  parallel_for(items, grain, 1, [&](int64_t b, int64_t e) {
    std::vector<double> accv(size_t(std::min(kTile, L)));
    double* acc = accv.data();
    for (int64_t it = b; it < e; ++it) {
      const int64_t unit = it / nchunks, c = it % nchunks;
      const int64_t po = unit / ntiles, t = unit % ntiles;
      const int64_t t0 = t * kTile, tl = std::min(kTile, L - t0);
      const int64_t xoff = (kept.n > 1 ? offset_of(kept.n - 1, kept.shape, kept.sx, po) : 0) + t0 * sxin;
      std::fill(acc, acc + tl, 0.0);
      const int64_t r0 = c * clen, r1 = std::min(R, r0 + clen);
      if (red.n == 1) {
        K.accumulate_rows[di](acc, xb + (xoff + r0 * red.sx[0]) * esz, r1 - r0, red.sx[0], tl, sxin);
      } else {
        Odometer od(red.n, red.shape, red.sx, r0);
        for (int64_t r = r0; r < r1; ++r) {
          K.accumulate[di](acc, xb + (xoff + od.off) * esz, tl, sxin);
          if (r + 1 < r1) od.advance_inner(1);
        }
      }
      if (nchunks == 1) {
        const int64_t ooff = (kept.n > 1 ? offset_of(kept.n - 1, kept.shape, kept.so, po) : 0) + t0 * soin;
        for (int64_t j = 0; j < tl; ++j) store<T>(out, ooff + j * soin, acc[j]);
      } else {
        std::copy(acc, acc + tl, partial.data() + size_t(it) * row_elems);
      }
    }
  });
  if (nchunks > 1) {
    for (int64_t unit = 0; unit < units; ++unit) {
      const int64_t po = unit / ntiles, t = unit % ntiles;
      const int64_t t0 = t * kTile, tl = std::min(kTile, L - t0);
      const int64_t ooff = (kept.n > 1 ? offset_of(kept.n - 1, kept.shape, kept.so, po) : 0) + t0 * soin;
      const double* base = partial.data() + size_t(unit * nchunks) * row_elems;
      for (int64_t j = 0; j < tl; ++j) store<T>(out, ooff + j * soin, K.sum[1](base + j, nchunks, row_elems));
    }
  }
}

}  // namespace

void sum(const View& out, const View& x, const bool* reduce) {
  if (x.dtype == DType::f32)
    sum_impl<float>(out, x, reduce);
  else
    sum_impl<double>(out, x, reduce);
}

}  // namespace pk
