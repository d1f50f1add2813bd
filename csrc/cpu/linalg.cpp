// np.dot, np.matmul and the fused dense layer, forward and backward, on the GEMM. Each function maps
// its operands onto gemm_batched (batch dims + one 2-d product per batch element, strides only) or
// onto gemm with the dense layer's fused epilogue, packing masks and column sums (gemm.hpp).
#include "pykernels/linalg.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "pykernels/elementwise.hpp"
#include "pykernels/gemm.hpp"

namespace pk {
namespace {

std::string shp(const View& v) { return shape_str(v.shape, v.ndim); }

std::vector<int64_t> shape_vec(const View& v) { return std::vector<int64_t>(v.shape, v.shape + v.ndim); }

// A C-contiguous scratch array of `shape` (the element-wise product of the 0-d dot gradient).
struct Scratch {
  std::vector<double> buf;  // double: storage for either dtype, 8-byte aligned
  View view;
  Scratch(DType dt, const View& like) {
    view.dtype = dt;
    view.ndim = like.ndim;
    int64_t n = 1;
    for (int i = like.ndim - 1; i >= 0; --i) {
      view.shape[i] = like.shape[i];
      view.strides[i] = n;
      n *= like.shape[i];
    }
    buf.resize(size_t(std::max<int64_t>(n, 1)));
    view.data = buf.data();
  }
};

// sum of every element of x into the 0-d view r.
void full_sum(const View& r, const View& x) {
  View keep = x;  // r seen with x's rank: every dim of size 1, stride 0
  keep.data = r.data;
  for (int i = 0; i < x.ndim; ++i) {
    keep.shape[i] = 1;
    keep.strides[i] = 0;
  }
  bool mask[kMaxDims];
  std::fill(mask, mask + kMaxDims, true);
  sum(keep, x, mask);
}

void mul(const View& out, const View& x, const View& y) {
  binary<ops::Multiply>(out, broadcast_view(x, out.ndim, out.shape), broadcast_view(y, out.ndim, out.shape));
}

}  // namespace

// ---- dot -----------------------------------------------------------------------------------------

DotDims dot_dims(const View& a, const View& b) {
  DotDims d;
  d.am = a.ndim >= 2;
  d.bn = b.ndim >= 2;
  d.la = std::max(a.ndim - 2, 0);
  d.lb = std::max(b.ndim - 2, 0);
  d.K = a.shape[a.ndim - 1];
  const int bk = b.ndim >= 2 ? b.ndim - 2 : 0;
  if (b.shape[bk] != d.K)
    throw ValueError("shapes " + shp(a) + " and " + shp(b) + " not aligned: " + std::to_string(d.K) + " (dim " +
                     std::to_string(a.ndim - 1) + ") != " + std::to_string(b.shape[bk]) + " (dim " +
                     std::to_string(bk) + ")");
  d.M = d.am ? a.shape[a.ndim - 2] : 1;
  d.N = d.bn ? b.shape[b.ndim - 1] : 1;
  // dot's result has a.ndim - 1 + b.ndim - 1 dimensions (up to 62 for two 32-d operands): refuse
  // what the fixed-size shape and stride arrays cannot hold before any of them is filled.
  const int rank = a.ndim - 1 + std::max(b.ndim - 1, 0);
  if (rank > kMaxDims)
    throw ValueError("pykernels.dot: the result would have " + std::to_string(rank) +
                     " dimensions; pykernels supports arrays of at most " + std::to_string(kMaxDims) + " dimensions");
  return d;
}

std::vector<int64_t> dot_shape(const View& a, const View& b) {
  if (a.ndim == 0) return shape_vec(b);
  if (b.ndim == 0) return shape_vec(a);
  std::vector<int64_t> s(a.shape, a.shape + a.ndim - 1);
  if (b.ndim >= 2) {
    s.insert(s.end(), b.shape, b.shape + b.ndim - 2);
    s.push_back(b.shape[b.ndim - 1]);
  }
  return s;
}

void dot(const View& c, const View& a, const View& b) {
  if (a.ndim == 0 || b.ndim == 0) return mul(c, a, b);  // np.dot with a 0-d operand
  if (c.size() == 0) return;  // nothing to write (and C-contiguous zero strides)
  const DotDims d = dot_dims(a, b);
  const int nb = d.la + d.lb;
  int64_t bshape[2 * kMaxDims];
  BatchedOperand C, A, B;
  C.data = c.data;
  A.data = a.data;
  B.data = b.data;
  for (int i = 0; i < d.la; ++i) {
    bshape[i] = a.shape[i];
    A.bstrides[i] = a.strides[i];
    B.bstrides[i] = 0;
    C.bstrides[i] = c.strides[i];
  }
  const int cb = d.la + (d.am ? 1 : 0);  // first of b's lead dims in c
  for (int i = 0; i < d.lb; ++i) {
    bshape[d.la + i] = b.shape[i];
    A.bstrides[d.la + i] = 0;
    B.bstrides[d.la + i] = b.strides[i];
    C.bstrides[d.la + i] = c.strides[cb + i];
  }
  A.rs = d.am ? a.strides[a.ndim - 2] : 0;
  A.cs = a.strides[a.ndim - 1];
  B.rs = b.strides[d.bn ? b.ndim - 2 : 0];
  B.cs = d.bn ? b.strides[b.ndim - 1] : 0;
  C.rs = d.am ? c.strides[d.la] : 0;
  C.cs = d.bn ? c.strides[c.ndim - 1] : 0;
  gemm_batched(a.dtype, nb, bshape, d.M, d.N, d.K, C, A, B);
}

void dot_backward(const View& da, const View& db, const View& dout, const View& a, const View& b) {
  if (a.ndim == 0 || b.ndim == 0) {
    // out = a * b: d(a) = sum(dout * b) when a is 0-d, else dout * b (and symmetrically).
    if (a.ndim == 0) {
      Scratch t(dout.dtype, dout);
      mul(t.view, dout, b);
      full_sum(da, t.view);
    } else {
      mul(da, dout, b);
    }
    if (b.ndim == 0) {
      Scratch t(dout.dtype, dout);
      mul(t.view, dout, a);
      full_sum(db, t.view);
    } else {
      mul(db, dout, a);
    }
    return;
  }
  const DotDims d = dot_dims(a, b);
  const int nb = d.la + d.lb;
  int64_t bshape[2 * kMaxDims];
  const int dbl = d.la + (d.am ? 1 : 0);  // first of b's lead dims in dout
  const int64_t dM = d.am ? dout.strides[d.la] : 0, dN = d.bn ? dout.strides[dout.ndim - 1] : 0;
  const int64_t aM = d.am ? a.strides[a.ndim - 2] : 0, aK = a.strides[a.ndim - 1];
  const int64_t bK = b.strides[d.bn ? b.ndim - 2 : 0], bN = d.bn ? b.strides[b.ndim - 1] : 0;
  for (int i = 0; i < d.la; ++i) bshape[i] = a.shape[i];
  for (int i = 0; i < d.lb; ++i) bshape[d.la + i] = b.shape[i];
  // da[i] (M,K) = sum_q dout[i,:,q,:] (M,N) . b[q]^T (N,K)
  BatchedOperand C, A, B;
  C.data = da.data;
  A.data = dout.data;
  B.data = b.data;
  for (int i = 0; i < d.la; ++i) {
    C.bstrides[i] = da.strides[i];
    A.bstrides[i] = dout.strides[i];
    B.bstrides[i] = 0;
  }
  for (int i = 0; i < d.lb; ++i) {
    C.bstrides[d.la + i] = 0;
    A.bstrides[d.la + i] = dout.strides[dbl + i];
    B.bstrides[d.la + i] = b.strides[i];
  }
  C.rs = d.am ? da.strides[da.ndim - 2] : 0;
  C.cs = da.strides[da.ndim - 1];
  A.rs = dM;
  A.cs = dN;
  B.rs = bN;
  B.cs = bK;
  if (da.size() > 0) gemm_batched(a.dtype, nb, bshape, d.M, d.K, d.N, C, A, B);
  // db[q] (K,N) = sum_i a[i]^T (K,M) . dout[i,:,q,:] (M,N)
  BatchedOperand C2, A2, B2;
  C2.data = db.data;
  A2.data = a.data;
  B2.data = dout.data;
  for (int i = 0; i < d.la; ++i) {
    C2.bstrides[i] = 0;
    A2.bstrides[i] = a.strides[i];
    B2.bstrides[i] = dout.strides[i];
  }
  for (int i = 0; i < d.lb; ++i) {
    C2.bstrides[d.la + i] = db.strides[i];
    A2.bstrides[d.la + i] = 0;
    B2.bstrides[d.la + i] = dout.strides[dbl + i];
  }
  C2.rs = db.strides[d.bn ? db.ndim - 2 : 0];
  C2.cs = d.bn ? db.strides[db.ndim - 1] : 0;
  A2.rs = aK;
  A2.cs = aM;
  B2.rs = dM;
  B2.cs = dN;
  if (db.size() > 0) gemm_batched(a.dtype, nb, bshape, d.K, d.N, d.M, C2, A2, B2);
}

// ---- matmul --------------------------------------------------------------------------------------

namespace {
const char* kMatmulSig = "(n?,k),(k,m?)->(n?,m?)";

// Stride of `v`'s stack dim i (of the broadcast stack of rank ns), 0 when broadcast.
int64_t stack_stride(const View& v, int ns, int i) {
  const int s = std::max(v.ndim - 2, 0);
  const int iv = i - (ns - s);
  if (iv < 0 || v.shape[iv] == 1) return 0;
  return v.strides[iv];
}
}  // namespace

MatmulDims matmul_dims(const View& a, const View& b, const char* fn) {
  for (int i = 0; i < 2; ++i) {
    const View& v = i ? b : a;
    if (v.ndim == 0)
      throw ValueError(std::string(fn) + ": Input operand " + std::to_string(i) +
                       " does not have enough dimensions (has 0, gufunc core with signature " + kMatmulSig +
                       " requires 1)");
  }
  MatmulDims d;
  d.am = a.ndim >= 2;
  d.bn = b.ndim >= 2;
  d.K = a.shape[a.ndim - 1];
  const int64_t bk = b.shape[d.bn ? b.ndim - 2 : 0];
  if (bk != d.K)
    throw ValueError(std::string(fn) + ": Input operand 1 has a mismatch in its core dimension 0, with gufunc signature " +
                     kMatmulSig + " (size " + std::to_string(bk) + " is different from " + std::to_string(d.K) + ")");
  d.M = d.am ? a.shape[a.ndim - 2] : 1;
  d.N = d.bn ? b.shape[b.ndim - 1] : 1;
  const int sa = std::max(a.ndim - 2, 0), sb = std::max(b.ndim - 2, 0);
  d.ns = std::max(sa, sb);
  for (int i = 0; i < d.ns; ++i) {
    const int ia = i - (d.ns - sa), ib = i - (d.ns - sb);
    const int64_t x = ia >= 0 ? a.shape[ia] : 1, y = ib >= 0 ? b.shape[ib] : 1;
    if (x != y && x != 1 && y != 1) {
      auto remap = [](const View& v, int s) {
        std::string r = shp(v) + "->(";
        for (int j = 0; j < s; ++j) r += std::to_string(v.shape[j]) + ",";
        return r + "newaxis,newaxis)";
      };
      const int64_t req[2] = {d.M, d.N};
      throw ValueError("operands could not be broadcast together with remapped shapes [original->remapped]: " +
                       remap(a, sa) + " " + remap(b, sb) + "  and requested shape " + shape_str(req, 2));
    }
    d.stack[i] = x == 1 ? y : x;
  }
  return d;
}

std::vector<int64_t> matmul_shape(const MatmulDims& d) {
  std::vector<int64_t> s(d.stack, d.stack + d.ns);
  if (d.am) s.push_back(d.M);
  if (d.bn) s.push_back(d.N);
  return s;
}

void matmul(const View& c, const View& a, const View& b) {
  if (c.size() == 0) return;
  const MatmulDims d = matmul_dims(a, b);
  BatchedOperand C, A, B;
  C.data = c.data;
  A.data = a.data;
  B.data = b.data;
  for (int i = 0; i < d.ns; ++i) {
    A.bstrides[i] = stack_stride(a, d.ns, i);
    B.bstrides[i] = stack_stride(b, d.ns, i);
    C.bstrides[i] = c.shape[i] == 1 ? 0 : c.strides[i];
  }
  A.rs = d.am ? a.strides[a.ndim - 2] : 0;
  A.cs = a.strides[a.ndim - 1];
  B.rs = b.strides[d.bn ? b.ndim - 2 : 0];
  B.cs = d.bn ? b.strides[b.ndim - 1] : 0;
  C.rs = d.am ? c.strides[d.ns] : 0;
  C.cs = d.bn ? c.strides[c.ndim - 1] : 0;
  gemm_batched(a.dtype, d.ns, d.stack, d.M, d.N, d.K, C, A, B);
}

void matmul_backward(const View& da, const View& db, const View& dout, const View& a, const View& b) {
  const MatmulDims d = matmul_dims(a, b);
  // Stack strides: the gradients get stride 0 where their operand was broadcast, so those
  // products are summed (a reduction dim of gemm_batched).
  BatchedOperand C, A, B;
  C.data = da.data;
  A.data = dout.data;
  B.data = b.data;
  BatchedOperand C2, A2, B2;
  C2.data = db.data;
  A2.data = a.data;
  B2.data = dout.data;
  for (int i = 0; i < d.ns; ++i) {
    const int64_t sd = d.stack[i] == 1 ? 0 : dout.strides[i];
    C.bstrides[i] = stack_stride(da, d.ns, i);
    A.bstrides[i] = sd;
    B.bstrides[i] = stack_stride(b, d.ns, i);
    C2.bstrides[i] = stack_stride(db, d.ns, i);
    A2.bstrides[i] = stack_stride(a, d.ns, i);
    B2.bstrides[i] = sd;
  }
  const int64_t dM = d.am ? dout.strides[d.ns] : 0, dN = d.bn ? dout.strides[dout.ndim - 1] : 0;
  // da (M,K) = dout (M,N) . b^T (N,K)
  C.rs = d.am ? da.strides[da.ndim - 2] : 0;
  C.cs = da.strides[da.ndim - 1];
  A.rs = dM;
  A.cs = dN;
  B.rs = d.bn ? b.strides[b.ndim - 1] : 0;
  B.cs = b.strides[d.bn ? b.ndim - 2 : 0];
  if (da.size() > 0) gemm_batched(a.dtype, d.ns, d.stack, d.M, d.K, d.N, C, A, B);
  // db (K,N) = a^T (K,M) . dout (M,N)
  C2.rs = db.strides[d.bn ? db.ndim - 2 : 0];
  C2.cs = d.bn ? db.strides[db.ndim - 1] : 0;
  A2.rs = a.strides[a.ndim - 1];
  A2.cs = d.am ? a.strides[a.ndim - 2] : 0;
  B2.rs = dM;
  B2.cs = dN;
  if (db.size() > 0) gemm_batched(a.dtype, d.ns, d.stack, d.K, d.N, d.M, C2, A2, B2);
}

// ---- dense ---------------------------------------------------------------------------------------

void dense_check(const View& x, const View& w, const View* b, const char* fn) {
  if (x.ndim != 2) throw ValueError(std::string(fn) + ": x must be 2-d (M,K), got shape " + shp(x));
  if (w.ndim != 2) throw ValueError(std::string(fn) + ": W must be 2-d (K,N), got shape " + shp(w));
  if (x.shape[1] != w.shape[0])
    throw ValueError(std::string(fn) + ": shapes " + shp(x) + " and " + shp(w) + " not aligned: " +
                     std::to_string(x.shape[1]) + " (dim 1) != " + std::to_string(w.shape[0]) + " (dim 0)");
  if (b && (b->ndim != 1 || b->shape[0] != w.shape[1]))
    throw ValueError(std::string(fn) + ": b must have shape (" + std::to_string(w.shape[1]) + ",), got " + shp(*b));
}

void dense_forward(const View& y, const View& x, const View& w, const View* b, bool relu) {
  const int64_t M = x.shape[0], K = x.shape[1], N = w.shape[1];
  GemmOptions opt;
  opt.relu = relu;
  if (b) {
    opt.bias = b->data;
    opt.bias_stride = b->strides[0];
  }
  gemm(x.dtype, M, N, K, y.data, y.strides[0], y.strides[1], x.data, x.strides[0], x.strides[1], w.data,
       w.strides[0], w.strides[1], opt);
}

void dense_backward(const View* dx, const View& dW, const View& db, const View& dy, const View& x, const View& w,
                    const View* y_relu) {
  const int64_t M = x.shape[0], K = x.shape[1], N = w.shape[1];
  // dW (K,N) = x^T (K,M) . dy' (M,N), dy' = dy masked by y > 0 while dy is packed; db = column
  // sums of dy' from the same packing pass.
  GemmOptions o1;
  if (y_relu) {
    o1.b_mask = y_relu->data;
    o1.b_mask_rs = y_relu->strides[0];
    o1.b_mask_cs = y_relu->strides[1];
  }
  o1.b_colsum = db.data;
  o1.b_colsum_stride = db.strides[0];
  gemm(x.dtype, K, N, M, dW.data, dW.strides[0], dW.strides[1], x.data, x.strides[1], x.strides[0], dy.data,
       dy.strides[0], dy.strides[1], o1);
  if (!dx) return;
  // dx (M,K) = dy' (M,N) . W^T (N,K), the mask applied while dy is packed as the A operand.
  GemmOptions o2;
  if (y_relu) {
    o2.a_mask = y_relu->data;
    o2.a_mask_rs = y_relu->strides[0];
    o2.a_mask_cs = y_relu->strides[1];
  }
  gemm(x.dtype, M, K, N, dx->data, dx->strides[0], dx->strides[1], dy.data, dy.strides[0], dy.strides[1], w.data,
       w.strides[1], w.strides[0], o2);
}

}  // namespace pk
