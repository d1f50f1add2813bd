// The broadcasting iterator: one N-d loop drives every element-wise op, binary (out, a, b) and
// unary (out, x).
//
// 1. drop size-1 dims, 2. order dims by the output's strides (largest first, so the innermost loop
// walks the output's fastest axis), 3. merge adjacent dims that are contiguous for all operands,
// 4. split the flat iteration space into contiguous ranges, one per thread, and run the ISA's strided
// 1-d inner loop (contiguous and stride-0 fast paths inside) over each run of the innermost dim.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "pykernels/dispatch.hpp"
#include "pykernels/elementwise.hpp"
#include "pykernels/parallel.hpp"

namespace pk {

int broadcast_shapes(int count, const int64_t* const* shapes, const int* ndims, int64_t* out_shape) {
  int nd = 0;
  for (int k = 0; k < count; ++k) nd = std::max(nd, ndims[k]);
  if (nd > kMaxDims)
    throw ValueError("pykernels supports arrays of at most " + std::to_string(kMaxDims) +
                     " dimensions, got " + std::to_string(nd));
  for (int i = 0; i < nd; ++i) out_shape[i] = 1;
  for (int k = 0; k < count; ++k) {
    const int off = nd - ndims[k];
    for (int i = 0; i < ndims[k]; ++i) {
      const int64_t d = shapes[k][i];
      int64_t& o = out_shape[off + i];
      if (d == o || d == 1) continue;
      if (o == 1) {
        o = d;
        continue;
      }
      std::string msg = "operands could not be broadcast together with shapes";
      for (int j = 0; j < count; ++j) msg += " " + shape_str(shapes[j], ndims[j]);
      throw ValueError(msg);
    }
  }
  return nd;
}

View broadcast_view(const View& v, int ndim, const int64_t* shape) {
  View r;
  r.data = v.data;
  r.dtype = v.dtype;
  r.ndim = ndim;
  const int off = ndim - v.ndim;
  for (int i = 0; i < ndim; ++i) {
    r.shape[i] = shape[i];
    if (i < off) {
      r.strides[i] = 0;
    } else {
      const int64_t d = v.shape[i - off];
      r.strides[i] = (d == 1 && shape[i] != 1) ? 0 : v.strides[i - off];
    }
  }
  return r;
}

int64_t elementwise_grain() {
  static const int64_t g = [] {
    const char* e = std::getenv("PYKERNELS_ELEMENTWISE_GRAIN");  // for bench/grain.py only
    if (e) return std::max<int64_t>(1, std::atoll(e));
    return cpu_info().amd ? kElementwiseGrain : kElementwiseGrainOther;
  }();
  return g;
}

namespace {
std::atomic<int64_t> g_stream_min{-1};
}

int64_t stream_min_bytes() {
  int64_t v = g_stream_min.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv("PYKERNELS_STREAM_MIN_BYTES");
    v = e ? std::max<int64_t>(0, std::atoll(e)) : kStreamMinBytes;
    g_stream_min.store(v, std::memory_order_relaxed);
  }
  return v;
}

void set_stream_min_bytes(int64_t n) { g_stream_min.store(std::max<int64_t>(0, n), std::memory_order_relaxed); }

bool coalesce3(Iter3& it, const View* const v[3]) {
  const int nd0 = v[0]->ndim;
  int dims[kMaxDims];
  int n = 0;
  for (int i = 0; i < nd0; ++i) {
    if (v[0]->shape[i] == 0) return false;
    if (v[0]->shape[i] != 1) dims[n++] = i;
  }
  // Stable sort by |out stride| descending (insertion sort: ndim <= 32).
  for (int i = 1; i < n; ++i) {
    const int d = dims[i];
    const int64_t key = std::llabs(v[0]->strides[d]);
    int j = i - 1;
    while (j >= 0 && std::llabs(v[0]->strides[dims[j]]) < key) {
      dims[j + 1] = dims[j];
      --j;
    }
    dims[j + 1] = d;
  }
  it.nd = 0;
  for (int q = 0; q < n; ++q) {
    const int d = dims[q];
    if (it.nd > 0) {
      const int p = it.nd - 1;
      bool merge = true;
      for (int k = 0; k < 3; ++k)
        if (it.st[k][p] != v[k]->strides[d] * v[0]->shape[d]) merge = false;
      if (merge) {
        it.shape[p] *= v[0]->shape[d];
        for (int k = 0; k < 3; ++k) it.st[k][p] = v[k]->strides[d];
        continue;
      }
    }
    it.shape[it.nd] = v[0]->shape[d];
    for (int k = 0; k < 3; ++k) it.st[k][it.nd] = v[k]->strides[d];
    ++it.nd;
  }
  if (it.nd == 0) {  // 0-d or all-ones shape: one element
    it.nd = 1;
    it.shape[0] = 1;
    for (int k = 0; k < 3; ++k) it.st[k][0] = 0;
  }
  return true;
}

namespace {

int64_t iter_size(const Iter3& it) {
  int64_t total = 1;
  for (int i = 0; i < it.nd; ++i) total *= it.shape[i];
  return total;
}

// Outputs much larger than the last-level cache are written with non-temporal stores (when the
// output does not alias an input and its inner dimension is contiguous).
bool use_stream(const Iter3& it, int64_t total, int64_t esz, bool out_is_input) {
  return total * esz >= stream_min_bytes() && it.st[0][it.nd - 1] == 1 && !out_is_input;
}

// Whole rows per call: rows shorter than kShortRow through the 2-d loop; with streaming stores,
// rows of any length where the output's rows follow each other (it is contiguous over them), so
// the stream loop's blocks run across row ends.
bool use_whole_rows(const Iter3& it, bool stream) {
  constexpr int64_t kShortRow = 2048;
  const int nd = it.nd;
  return nd >= 2 && (stream ? it.st[0][nd - 2] == it.shape[nd - 1] : it.shape[nd - 1] < kShortRow);
}

// Step 4 of the iterator for N operands (out first; their strides are it.st[0..N-1]): splits the
// flat iteration space into one contiguous range per thread and walks each range, calling
// rows_fn(p, rows) for runs of whole rows (when whole_rows) and run_fn(p, len) for a piece of one
// row, p holding the operands' addresses at the start of the run.
template <int N, class RunFn, class RowsFn>
void drive(const Iter3& it, char* const base[N], int64_t esz, int64_t total, bool whole_rows, RunFn run_fn,
           RowsFn rows_fn) {
  const int nd = it.nd;
  const int64_t inner = it.shape[nd - 1];
  // The grain is the total size from which 2 threads win (bench/grain.py, float32 elements), i.e.
  // at least grain/2 elements per thread; parallel_for's grain is per thread. The work is memory
  // traffic, so float64 (twice the bytes per element) reaches it at half the element count.
  const int64_t per_thread = std::max<int64_t>(1, elementwise_grain() * 4 / esz / 2);
  parallel_for(total, per_thread, 16, [&](int64_t begin, int64_t end) {
    // Decode the multi-index of `begin` (C order over the coalesced dims).
    int64_t idx[kMaxDims];
    int64_t rem = begin;
    for (int i = nd - 1; i >= 0; --i) {
      idx[i] = rem % it.shape[i];
      rem /= it.shape[i];
    }
    int64_t off[N] = {};
    for (int i = 0; i < nd; ++i)
      for (int k = 0; k < N; ++k) off[k] += idx[i] * it.st[k][i];
    char* p[N];
    int64_t pos = begin;
    while (pos < end) {
      for (int k = 0; k < N; ++k) p[k] = base[k] + off[k] * esz;
      if (whole_rows && idx[nd - 1] == 0 && end - pos >= inner) {
        // Whole rows in one call, up to the end of dim nd-2.
        const int64_t rows = std::min(it.shape[nd - 2] - idx[nd - 2], (end - pos) / inner);
        rows_fn(p, rows);
        pos += rows * inner;
        idx[nd - 2] += rows;
        for (int k = 0; k < N; ++k) off[k] += rows * it.st[k][nd - 2];
        for (int i = nd - 2; i > 0 && idx[i] == it.shape[i]; --i) {
          for (int k = 0; k < N; ++k) off[k] += it.st[k][i - 1] - it.shape[i] * it.st[k][i];
          idx[i] = 0;
          ++idx[i - 1];
        }
        continue;
      }
      const int64_t len = std::min(inner - idx[nd - 1], end - pos);
      run_fn(p, len);
      pos += len;
      // advance the multi-index by len (the inner index either reaches `inner` or the range ends)
      idx[nd - 1] += len;
      for (int k = 0; k < N; ++k) off[k] += len * it.st[k][nd - 1];
      for (int i = nd - 1; i > 0 && idx[i] == it.shape[i]; --i) {
        for (int k = 0; k < N; ++k) off[k] += it.st[k][i - 1] - it.shape[i] * it.st[k][i];
        idx[i] = 0;
        ++idx[i - 1];
      }
    }
  });
}

}  // namespace

void binary(BinOp op, const View& out, const View& a, const View& b) {
  const View* v[3] = {&out, &a, &b};
  Iter3 it;
  if (!coalesce3(it, v)) return;
  const KernelTable& kt = kernels();
  const int dt = int(out.dtype);
  const BinaryLoop loop = kt.binary[int(op)][dt];
  const BinaryLoop2D loop2d = kt.binary_2d[int(op)][dt];
  const BinaryStreamLoop sloop = kt.binary_stream[int(op)][dt];
  const int64_t esz = dtype_size(out.dtype);
  char* const base[3] = {static_cast<char*>(out.data), static_cast<char*>(a.data), static_cast<char*>(b.data)};
  const int64_t total = iter_size(it);
  const bool stream = use_stream(it, total, esz, out.data == a.data || out.data == b.data);
  const int i = it.nd - 1, r = it.nd - 2;  // the inner dim and the one above it
  const int64_t inner = it.shape[i];
  drive<3>(
      it, base, esz, total, use_whole_rows(it, stream),
      [&](char* const p[3], int64_t len) {
        if (stream)
          sloop(p[0], p[1], p[2], 1, len, it.st[1][i], it.st[2][i], 0, 0);
        else
          loop(p[0], p[1], p[2], len, it.st[0][i], it.st[1][i], it.st[2][i]);
      },
      [&](char* const p[3], int64_t rows) {
        if (stream)
          sloop(p[0], p[1], p[2], rows, inner, it.st[1][i], it.st[2][i], it.st[1][r], it.st[2][r]);
        else
          loop2d(p[0], p[1], p[2], rows, inner, it.st[0][i], it.st[1][i], it.st[2][i], it.st[0][r], it.st[1][r],
                 it.st[2][r]);
      });
}

void unary(UnOp op, const View& out, const View& x) {
  const View* v[3] = {&out, &x, &x};  // the 3-operand coalescing with x twice merges as for 2
  Iter3 it;
  if (!coalesce3(it, v)) return;
  const KernelTable& kt = kernels();
  const int dt = int(out.dtype);
  const UnaryLoop loop = kt.unary[int(op)][dt];
  const UnaryLoop2D loop2d = kt.unary_2d[int(op)][dt];
  const UnaryStreamLoop sloop = kt.unary_stream[int(op)][dt];
  const int64_t esz = dtype_size(out.dtype);
  char* const base[2] = {static_cast<char*>(out.data), static_cast<char*>(x.data)};
  const int64_t total = iter_size(it);
  const bool stream = use_stream(it, total, esz, out.data == x.data);
  const int i = it.nd - 1, r = it.nd - 2;
  const int64_t inner = it.shape[i];
  drive<2>(
      it, base, esz, total, use_whole_rows(it, stream),
      [&](char* const p[2], int64_t len) {
        if (stream)
          sloop(p[0], p[1], 1, len, it.st[1][i], 0);
        else
          loop(p[0], p[1], len, it.st[0][i], it.st[1][i]);
      },
      [&](char* const p[2], int64_t rows) {
        if (stream)
          sloop(p[0], p[1], rows, inner, it.st[1][i], it.st[1][r]);
        else
          loop2d(p[0], p[1], rows, inner, it.st[0][i], it.st[1][i], it.st[0][r], it.st[1][r]);
      });
}

}  // namespace pk
