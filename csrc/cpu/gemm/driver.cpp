// gemm(): the options become a Problem, choose_path (path.cpp) names the path, and the path runs;
// gemm_batched() maps N-d dot/matmul (batch dims, broadcasting, reductions over broadcast stacks)
// onto 2-d products. Also the per-thread workspaces every path draws its scratch from.
#include <cstring>
#include <vector>

#include "internal.hpp"

namespace pk {
namespace gemm_detail {

void* Workspace::get_bytes(size_t bytes) {
  if (bytes > cap_) {
    std::free(p_);
    p_ = nullptr;
    cap_ = 0;
    const size_t want = ((bytes + bytes / 4) + 63) / 64 * 64;
    p_ = std::aligned_alloc(64, want);
    if (!p_) throw std::bad_alloc();
    cap_ = want;
  }
  return p_;
}

Workspace& ws_apack() {
  thread_local Workspace w;
  return w;
}
Workspace& ws_bown() {
  thread_local Workspace w;
  return w;
}
Workspace& ws_vec() {
  thread_local Workspace w;
  return w;
}
Workspace& ws_y() {
  thread_local Workspace w;
  return w;
}

namespace {

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
  const PathChoice c = choose_path(shape_of(p), g);
  const int nt = threads_for_flops(2.0 * double(M) * double(N) * double(K), nt_max);
  switch (c.path) {
    case GemmPath::Degenerate: degenerate(p); break;
    case GemmPath::Matvec: matvec(p, g, nt_max); break;
    case GemmPath::Direct: direct(p, g, nt_max, false); break;
    case GemmPath::DirectTransposedB: direct(p, g, nt_max, true); break;
    case GemmPath::OneRowTile: blocked(p, short_tile(g, p.M), nt); break;              // B read in place
    case GemmPath::OneColTile: blocked(transposed(p), short_tile(g, p.N), nt); break;  // A^T read in place
    case GemmPath::DotNarrow: dot_narrow(p, g, nt_max); break;
    case GemmPath::Narrow: narrow(p, g, nt_max); break;
    case GemmPath::NarrowTransposed: narrow(transposed(p), g, nt_max); break;
    default: blocked(c.swap ? transposed(p) : p, g, nt); break;
  }

  if (opt.b_colsum) {
    T* out = static_cast<T*>(opt.b_colsum);
    for (int64_t j = 0; j < N; ++j) out[j * opt.b_colsum_stride] = T(colsum[size_t(j)]);
  }
}

}  // namespace
}  // namespace gemm_detail

void gemm(DType dt, int64_t M, int64_t N, int64_t K, void* C, int64_t rsc, int64_t csc, const void* A, int64_t rsa,
          int64_t csa, const void* B, int64_t rsb, int64_t csb, const GemmOptions& opt) {
  if (dt == DType::f32)
    gemm_detail::gemm_t<float>(M, N, K, static_cast<float*>(C), rsc, csc, static_cast<const float*>(A), rsa, csa,
                  static_cast<const float*>(B), rsb, csb, opt);
  else
    gemm_detail::gemm_t<double>(M, N, K, static_cast<double*>(C), rsc, csc, static_cast<const double*>(A), rsa, csa,
                   static_cast<const double*>(B), rsb, csb, opt);
}

GemmPath gemm_path_for(DType dt, int64_t M, int64_t N, int64_t K, int64_t rsa, int64_t csa, int64_t rsb,
                       int64_t csb, int64_t rsc, int64_t csc) {
  const GemmKernels& g = kernels().gemm[dt == DType::f32 ? 0 : 1];
  const gemm_detail::Shape s{M, N, K, dtype_size(dt), rsa, csa, rsb, csb, rsc, csc,
                             false, false, false, false, false, kBiasNone};
  return gemm_detail::choose_path(s, g).path;
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

}  // namespace pk
