// Bindings of the matrix products: dot, matmul (NumPy's rules for every rank), their backward
// passes, and the fused dense layer. Pattern: parse and validate (GIL held, NumPy's error words)
// -> allocate or check the outputs -> release the GIL around the kernel when the work is big ->
// return. Rank handling maps every case onto pk::gemm_batched (batch dims + one 2-d product).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <vector>

#include "array_cast.hpp"
#include "fastcall.hpp"
#include "pykernels/elementwise.hpp"
#include "pykernels/gemm.hpp"
#include "pykernels/parallel.hpp"

namespace pk::py_bind {

namespace {

// Products with fewer multiply-adds than this keep the GIL (releasing costs more than the work).
constexpr double kReleaseGilFlops = 65536.0;

const char* kMatmulSig = "(n?,k),(k,m?)->(n?,m?)";

// Parses and promotes `n` operands to one float dtype; Python scalars become 0-d arrays. np.dot is
// not a ufunc: it converts a Python float or int to a float64/int64 array before promoting, so
// np.dot(float32 array, 2.0) is float64 (a bool stays weak: bool with float32 is float32). The
// other products reject 0-d operands, so the rule only shows in dot and dot_backward.
DType parse_all(Operand* ops, const py::handle* objs, const char* const* names, int n, const char* fn) {
  for (int i = 0; i < n; ++i) {
    ops[i] = parse_operand(objs[i], fn, names[i]);
    if (ops[i].weak && !PyBool_Check(objs[i].ptr())) {
      ops[i].arr = py::module_::import("numpy").attr("asarray")(ops[i].scalar, "float64");
      ops[i].weak = false;
    }
  }
  const DType dt = result_dtype(ops, n);
  for (int i = 0; i < n; ++i) {
    if (ops[i].weak) {
      ops[i].arr = py::module_::import("numpy").attr("asarray")(ops[i].scalar, dtype_name(dt));
      ops[i].weak = false;
    }
    finalize(ops[i], dt);
  }
  return dt;
}

bool is_c_contiguous(const py::array& a) { return (a.flags() & py::array::c_style) != 0; }

std::string shp(const View& v) { return shape_str(v.shape, v.ndim); }

// out= for dot/matmul/dense: an ndarray of the result's shape, writeable, of the result's dtype
// (dot, dense) or any float dtype (matmul, cast through a temporary).
// np.dot (and dense, which replaces x @ W) take a C-Array only (C-contiguous, aligned, native byte
// order: NumPy's NPY_ARRAY_CARRAY); np.matmul takes any layout (any_layout: views, Fortran order,
// negative strides, byte-swapped or unaligned data, the last two written through a temporary).
py::array check_product_out(const py::handle& out, DType dt, const std::vector<int64_t>& shape, const char* fn,
                            bool any_layout = false) {
  if (!py::isinstance<py::array>(out)) throw TypeError(std::string(fn) + ": out must be a numpy.ndarray");
  py::array arr = py::reinterpret_borrow<py::array>(out);
  if (!any_layout && arr.dtype().num() != npy_type_num(dt))
    throw ValueError(std::string(fn) +
                     ": output array is not acceptable (must have the right datatype, number of dimensions, and be "
                     "a C-Array): out has dtype " + std::string(py::str(arr.dtype())) + ", the result " +
                     dtype_name(dt));
  check_out(arr, dt, shape.data(), int(shape.size()), fn, /*same_kind=*/any_layout);
  if (!any_layout && (!is_c_contiguous(arr) || !kernel_addressable(arr)))
    throw ValueError(std::string(fn) +
                     ": output array is not acceptable (must have the right datatype, number of dimensions, and be "
                     "a C-Array)");
  return arr;
}

// A preallocated gradient buffer (dense_backward dx/dW/db): exact type, dtype, shape, writeable,
// C-contiguous.
py::array check_buffer(const py::handle& h, DType dt, const std::vector<int64_t>& shape, const char* fn,
                       const char* name) {
  if (!py::isinstance<py::array>(h))
    throw TypeError(std::string(fn) + ": " + name + " must be a numpy.ndarray or None, got " +
                    Py_TYPE(h.ptr())->tp_name);
  py::array arr = py::reinterpret_borrow<py::array>(h);
  const DType got = dtype_of(arr, fn, name);
  if (got != dt)
    throw TypeError(std::string(fn) + ": " + name + " has dtype " + dtype_name(got) + ", expected " + dtype_name(dt));
  std::vector<int64_t> s(arr.shape(), arr.shape() + arr.ndim());
  if (s != shape)
    throw ValueError(std::string(fn) + ": " + name + " has shape " + shape_str(s.data(), int(s.size())) +
                     ", expected " + shape_str(shape.data(), int(shape.size())));
  if (!arr.writeable()) throw ValueError(std::string(fn) + ": " + name + " is read-only");
  if (!is_c_contiguous(arr)) throw ValueError(std::string(fn) + ": " + name + " must be C-contiguous");
  if (!kernel_addressable(arr))
    throw ValueError(std::string(fn) + ": " + name + " must be aligned and in native byte order, got dtype " +
                     std::string(py::str(arr.dtype())) + (native_byte_order(arr) ? " (unaligned data)" : ""));
  return arr;
}

struct NoGil {
  explicit NoGil(double flops) {
    if (flops >= kReleaseGilFlops) st = PyEval_SaveThread();
  }
  ~NoGil() {
    if (st) PyEval_RestoreThread(st);
  }
  PyThreadState* st = nullptr;
};

// ---- dot -----------------------------------------------------------------------------------------
struct DotDims {
  int la = 0, lb = 0;  // leading (batch) dims of a and b
  bool am = false, bn = false;  // a has an M dim (ndim >= 2), b has an N dim (ndim >= 2)
  int64_t M = 1, K = 0, N = 1;
};

DotDims dot_dims(const View& a, const View& b, const char* fn) {
  DotDims d;
  d.am = a.ndim >= 2;
  d.bn = b.ndim >= 2;
  d.la = std::max(a.ndim - 2, 0);
  d.lb = std::max(b.ndim - 2, 0);
  d.K = a.shape[a.ndim - 1];
  const int bk = b.ndim >= 2 ? b.ndim - 2 : 0;
  if (b.shape[bk] != d.K)
    throw ValueError(std::string(fn[0] ? fn : "") + "shapes " + shp(a) + " and " + shp(b) + " not aligned: " +
                     std::to_string(d.K) + " (dim " + std::to_string(a.ndim - 1) + ") != " +
                     std::to_string(b.shape[bk]) + " (dim " + std::to_string(bk) + ")");
  d.M = d.am ? a.shape[a.ndim - 2] : 1;
  d.N = d.bn ? b.shape[b.ndim - 1] : 1;
  // dot's result has a.ndim - 1 + b.ndim - 1 dimensions (up to 62 for two 32-d operands): refuse
  // what the fixed-size shape and stride arrays cannot hold before any of them is filled.
  const int rank = a.ndim - 1 + std::max(b.ndim - 1, 0);
  if (rank > kMaxDims)
    throw ValueError(std::string(fn[0] ? fn : "pykernels.dot: ") + "the result would have " + std::to_string(rank) +
                     " dimensions; pykernels supports arrays of at most " + std::to_string(kMaxDims) + " dimensions");
  return d;
}

std::vector<int64_t> dot_shape(const View& a, const View& b) {
  std::vector<int64_t> s(a.shape, a.shape + a.ndim - 1);
  if (b.ndim >= 2) {
    s.insert(s.end(), b.shape, b.shape + b.ndim - 2);
    s.push_back(b.shape[b.ndim - 1]);
  }
  return s;
}

// c = dot(a, b) for ndim >= 1 operands (c has dot_shape(a, b)).
void dot_views(const View& c, const View& a, const View& b, const DotDims& d) {
  const int nb = d.la + d.lb;
  int64_t bshape[kMaxDims + 1];
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

double product_flops(const View& c, int64_t K) { return 2.0 * double(c.size()) * double(K); }

py::object dot_call(const py::handle& a, const py::handle& b, const py::handle& out) {
  const char* fn = "pykernels.dot";
  Operand ops[2];
  const py::handle objs[2] = {a, b};
  const char* names[2] = {"a", "b"};
  const DType dt = parse_all(ops, objs, names, 2, fn);
  const View &va = ops[0].view, &vb = ops[1].view;

  if (va.ndim == 0 || vb.ndim == 0) {
    // np.dot with a 0-d operand is the element-wise product.
    const View& big = va.ndim == 0 ? vb : va;
    std::vector<int64_t> shape = shape_of(big);
    py::array res = out.is_none() ? new_array(dt, shape) : check_product_out(out, dt, shape, fn);
    py::array tmp = res;
    View rv = direct_view(res);
    if (!out.is_none() && (may_overlap(rv, va) || may_overlap(rv, vb))) {
      tmp = new_array(dt, shape);
      rv = direct_view(tmp);
    }
    binary(BinOp::Mul, rv, broadcast_view(va, rv.ndim, rv.shape), broadcast_view(vb, rv.ndim, rv.shape));
    if (!tmp.is(res)) py::module_::import("numpy").attr("copyto")(res, tmp);
    return out.is_none() || res.ndim() == 0 ? maybe_scalar(res) : py::object(res);  // as the N-d case below
  }
  const DotDims d = dot_dims(va, vb, "");
  const std::vector<int64_t> shape = dot_shape(va, vb);
  py::array res = out.is_none() ? new_array(dt, shape) : check_product_out(out, dt, shape, fn);
  View rv = direct_view(res);
  py::array tmp = res;
  if (!out.is_none() && (may_overlap(rv, va) || may_overlap(rv, vb))) {
    tmp = new_array(dt, shape);  // out aliases an input: compute into a temporary, then copy
    rv = direct_view(tmp);
  }
  if (rv.size() > 0) {  // an empty result has nothing to write (and C-contiguous zero strides)
    NoGil nogil(product_flops(rv, d.K));
    dot_views(rv, va, vb, d);
  }
  if (!tmp.is(res)) py::module_::import("numpy").attr("copyto")(res, tmp);
  // vector . vector into a 0-d out: np.dot fills out and returns the value as a NumPy scalar.
  return out.is_none() || res.ndim() == 0 ? maybe_scalar(res) : py::object(res);
}

// ---- matmul --------------------------------------------------------------------------------------
struct MatmulDims {
  int ns = 0;  // stack rank
  int64_t stack[kMaxDims] = {};
  bool am = false, bn = false;
  int64_t M = 1, K = 0, N = 1;
};

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

// Stride of `v`'s stack dim i (of the broadcast stack of rank ns), 0 when broadcast.
int64_t stack_stride(const View& v, int core, int ns, int i) {
  const int s = std::max(v.ndim - core, 0);
  const int iv = i - (ns - s);
  if (iv < 0 || v.shape[iv] == 1) return 0;
  return v.strides[iv];
}

struct MatmulViews {
  BatchedOperand C, A, B;
};

// Batched operands of c = a @ b (any of them may be a gradient view of the same shape).
MatmulViews matmul_operands(const View& c, const View& a, const View& b, const MatmulDims& d) {
  MatmulViews r;
  r.C.data = c.data;
  r.A.data = a.data;
  r.B.data = b.data;
  for (int i = 0; i < d.ns; ++i) {
    r.A.bstrides[i] = stack_stride(a, 2, d.ns, i);
    r.B.bstrides[i] = stack_stride(b, 2, d.ns, i);
    r.C.bstrides[i] = c.shape[i] == 1 ? 0 : c.strides[i];
  }
  r.A.rs = d.am ? a.strides[a.ndim - 2] : 0;
  r.A.cs = a.strides[a.ndim - 1];
  r.B.rs = b.strides[d.bn ? b.ndim - 2 : 0];
  r.B.cs = d.bn ? b.strides[b.ndim - 1] : 0;
  r.C.rs = d.am ? c.strides[d.ns] : 0;
  r.C.cs = d.bn ? c.strides[c.ndim - 1] : 0;
  return r;
}

py::object matmul_call(const py::handle& a, const py::handle& b, py::handle out) {
  const char* fn = "matmul";
  if (py::isinstance<py::tuple>(out)) {  // np.matmul is a ufunc: out=(arr,) is the same as out=arr
    py::tuple t = py::reinterpret_borrow<py::tuple>(out);
    if (t.size() != 1) throw ValueError("pykernels.matmul: out must be an array or a 1-tuple of arrays");
    out = t[0];
  }
  Operand ops[2];
  const py::handle objs[2] = {a, b};
  const char* names[2] = {"a", "b"};
  const DType dt = parse_all(ops, objs, names, 2, "pykernels.matmul");
  const View &va = ops[0].view, &vb = ops[1].view;
  const MatmulDims d = matmul_dims(va, vb, fn);
  const std::vector<int64_t> shape = matmul_shape(d);
  py::array res =
      out.is_none() ? new_array(dt, shape) : check_product_out(out, dt, shape, "pykernels.matmul", true);
  py::array tmp = res;
  View rv;
  // A temporary when out is not addressable by the kernels (byte-swapped, unaligned), shares
  // memory with an input, or with itself (a zero stride over a dimension longer than 1: the
  // batched driver would read it as a sum over that dimension).
  bool use_tmp = !kernel_addressable(res) || res.dtype().num() != npy_type_num(dt);  // + another float dtype
  if (!use_tmp) {
    rv = direct_view(res);
    use_tmp = has_internal_overlap(rv) || (!out.is_none() && (may_overlap(rv, va) || may_overlap(rv, vb)));
  }
  if (use_tmp) {
    tmp = new_array(dt, shape);
    rv = direct_view(tmp);
  }
  if (rv.size() > 0) {
    NoGil nogil(product_flops(rv, d.K));
    const MatmulViews m = matmul_operands(rv, va, vb, d);
    gemm_batched(dt, d.ns, d.stack, d.M, d.N, d.K, m.C, m.A, m.B);
  }
  if (!tmp.is(res)) py::module_::import("numpy").attr("copyto")(res, tmp);
  return out.is_none() ? maybe_scalar(res) : py::object(res);
}

// ---- backward passes ---------------------------------------------------------------------------
py::object as_result(py::array a) { return maybe_scalar(std::move(a)); }

// sum of x * y over everything (0-d result) and x * s, for the 0-d dot cases.
py::array full_sum(const View& x) {
  std::vector<int64_t> ones(size_t(x.ndim), 1);
  py::array r = new_array(x.dtype, ones);
  View rv = direct_view(r);
  bool mask[kMaxDims];
  std::fill(mask, mask + kMaxDims, true);
  sum(rv, x, mask);
  return r.attr("reshape")(py::tuple());
}

py::array mul_to(const View& x, const View& y, const std::vector<int64_t>& shape) {
  py::array r = new_array(x.dtype, shape);
  View rv = direct_view(r);
  binary(BinOp::Mul, rv, broadcast_view(x, rv.ndim, rv.shape), broadcast_view(y, rv.ndim, rv.shape));
  return r;
}

void check_dout(const View& dout, const std::vector<int64_t>& expected, const char* fn, const char* op) {
  if (shape_of(dout) != expected)
    throw ValueError(std::string(fn) + ": dout has shape " + shp(dout) + " but " + op + "(a, b) has shape " +
                     shape_str(expected.data(), int(expected.size())));
}

py::tuple dot_backward_call(const py::handle& dout, const py::handle& a, const py::handle& b) {
  const char* fn = "pykernels.dot_backward";
  Operand ops[3];
  const py::handle objs[3] = {dout, a, b};
  const char* names[3] = {"dout", "a", "b"};
  const DType dt = parse_all(ops, objs, names, 3, fn);
  const View &vd = ops[0].view, &va = ops[1].view, &vb = ops[2].view;
  if (va.ndim == 0 || vb.ndim == 0) {
    const View& big = va.ndim == 0 ? vb : va;
    check_dout(vd, shape_of(big), fn, "dot");
    // out = a * b: d(a) = sum(dout * b) when a is 0-d, else dout * b (and symmetrically).
    py::array pa = mul_to(vd, vb, shape_of(vd));
    py::array pb = mul_to(vd, va, shape_of(vd));
    py::array da = va.ndim == 0 ? full_sum(direct_view(pa)) : pa;
    py::array db = vb.ndim == 0 ? full_sum(direct_view(pb)) : pb;
    return py::make_tuple(as_result(da), as_result(db));
  }
  const DotDims d = dot_dims(va, vb, "");
  check_dout(vd, dot_shape(va, vb), fn, "dot");
  py::array da = new_array(dt, shape_of(va)), db = new_array(dt, shape_of(vb));
  View vda = direct_view(da), vdb = direct_view(db);
  {
    NoGil nogil(2.0 * product_flops(vd, d.K));
    const int nb = d.la + d.lb;
    std::vector<int64_t> bshape(size_t(nb) + 1);
    const int dbl = d.la + (d.am ? 1 : 0);  // first of b's lead dims in dout
    const int64_t dM = d.am ? vd.strides[d.la] : 0, dN = d.bn ? vd.strides[vd.ndim - 1] : 0;
    const int64_t aM = d.am ? va.strides[va.ndim - 2] : 0, aK = va.strides[va.ndim - 1];
    const int64_t bK = vb.strides[d.bn ? vb.ndim - 2 : 0], bN = d.bn ? vb.strides[vb.ndim - 1] : 0;
    // da[i] (M,K) = sum_q dout[i,:,q,:] (M,N) . b[q]^T (N,K)
    BatchedOperand C, A, B;
    C.data = vda.data;
    A.data = vd.data;
    B.data = vb.data;
    for (int i = 0; i < d.la; ++i) {
      bshape[size_t(i)] = va.shape[i];
      C.bstrides[i] = vda.strides[i];
      A.bstrides[i] = vd.strides[i];
      B.bstrides[i] = 0;
    }
    for (int i = 0; i < d.lb; ++i) {
      bshape[size_t(d.la + i)] = vb.shape[i];
      C.bstrides[d.la + i] = 0;
      A.bstrides[d.la + i] = vd.strides[dbl + i];
      B.bstrides[d.la + i] = vb.strides[i];
    }
    C.rs = d.am ? vda.strides[vda.ndim - 2] : 0;
    C.cs = vda.strides[vda.ndim - 1];
    A.rs = dM;
    A.cs = dN;
    B.rs = bN;
    B.cs = bK;
    if (vda.size() > 0) gemm_batched(dt, nb, bshape.data(), d.M, d.K, d.N, C, A, B);
    // db[q] (K,N) = sum_i a[i]^T (K,M) . dout[i,:,q,:] (M,N)
    BatchedOperand C2, A2, B2;
    C2.data = vdb.data;
    A2.data = va.data;
    B2.data = vd.data;
    for (int i = 0; i < d.la; ++i) {
      C2.bstrides[i] = 0;
      A2.bstrides[i] = va.strides[i];
      B2.bstrides[i] = vd.strides[i];
    }
    for (int i = 0; i < d.lb; ++i) {
      C2.bstrides[d.la + i] = vdb.strides[i];
      A2.bstrides[d.la + i] = 0;
      B2.bstrides[d.la + i] = vd.strides[dbl + i];
    }
    C2.rs = vdb.strides[d.bn ? vdb.ndim - 2 : 0];
    C2.cs = d.bn ? vdb.strides[vdb.ndim - 1] : 0;
    A2.rs = aK;
    A2.cs = aM;
    B2.rs = dM;
    B2.cs = dN;
    if (vdb.size() > 0) gemm_batched(dt, nb, bshape.data(), d.K, d.N, d.M, C2, A2, B2);
  }
  return py::make_tuple(as_result(da), as_result(db));
}

py::tuple matmul_backward_call(const py::handle& dout, const py::handle& a, const py::handle& b) {
  const char* fn = "pykernels.matmul_backward";
  Operand ops[3];
  const py::handle objs[3] = {dout, a, b};
  const char* names[3] = {"dout", "a", "b"};
  const DType dt = parse_all(ops, objs, names, 3, fn);
  const View &vd = ops[0].view, &va = ops[1].view, &vb = ops[2].view;
  const MatmulDims d = matmul_dims(va, vb, "matmul");
  check_dout(vd, matmul_shape(d), fn, "matmul");
  py::array da = new_array(dt, shape_of(va)), db = new_array(dt, shape_of(vb));
  View vda = direct_view(da), vdb = direct_view(db);
  {
    NoGil nogil(2.0 * product_flops(vd, d.K));
    // Stack strides: the gradients get stride 0 where their operand was broadcast, so those
    // products are summed (a reduction dim of gemm_batched).
    BatchedOperand C, A, B;
    C.data = vda.data;
    A.data = vd.data;
    B.data = vb.data;
    BatchedOperand C2, A2, B2;
    C2.data = vdb.data;
    A2.data = va.data;
    B2.data = vd.data;
    for (int i = 0; i < d.ns; ++i) {
      const int64_t sd = d.stack[i] == 1 ? 0 : vd.strides[i];
      C.bstrides[i] = stack_stride(vda, 2, d.ns, i);
      A.bstrides[i] = sd;
      B.bstrides[i] = stack_stride(vb, 2, d.ns, i);
      C2.bstrides[i] = stack_stride(vdb, 2, d.ns, i);
      A2.bstrides[i] = stack_stride(va, 2, d.ns, i);
      B2.bstrides[i] = sd;
    }
    const int64_t dM = d.am ? vd.strides[d.ns] : 0, dN = d.bn ? vd.strides[vd.ndim - 1] : 0;
    // da (M,K) = dout (M,N) . b^T (N,K)
    C.rs = d.am ? vda.strides[vda.ndim - 2] : 0;
    C.cs = vda.strides[vda.ndim - 1];
    A.rs = dM;
    A.cs = dN;
    B.rs = d.bn ? vb.strides[vb.ndim - 1] : 0;
    B.cs = vb.strides[d.bn ? vb.ndim - 2 : 0];
    if (vda.size() > 0) gemm_batched(dt, d.ns, d.stack, d.M, d.K, d.N, C, A, B);
    // db (K,N) = a^T (K,M) . dout (M,N)
    C2.rs = vdb.strides[d.bn ? vdb.ndim - 2 : 0];
    C2.cs = d.bn ? vdb.strides[vdb.ndim - 1] : 0;
    A2.rs = va.strides[va.ndim - 1];
    A2.cs = d.am ? va.strides[va.ndim - 2] : 0;
    B2.rs = dM;
    B2.cs = dN;
    if (vdb.size() > 0) gemm_batched(dt, d.ns, d.stack, d.K, d.N, d.M, C2, A2, B2);
  }
  return py::make_tuple(as_result(da), as_result(db));
}

// ---- dense ---------------------------------------------------------------------------------------
bool parse_activation(const py::handle& act, const char* fn) {
  if (act.is_none()) return false;
  if (py::isinstance<py::str>(act)) {
    if (PyUnicode_CompareWithASCIIString(act.ptr(), "relu") == 0) return true;
    // repr(), not a UTF-8 copy: a str with lone surrogates has none
    throw ValueError(std::string(fn) + ": activation must be None or 'relu', got " + std::string(py::repr(act)));
  }
  throw TypeError(std::string(fn) + ": activation must be None or 'relu', got " + Py_TYPE(act.ptr())->tp_name);
}

void check_dense_shapes(const View& x, const View& w, const char* fn) {
  if (x.ndim != 2) throw ValueError(std::string(fn) + ": x must be 2-d (M,K), got shape " + shp(x));
  if (w.ndim != 2) throw ValueError(std::string(fn) + ": W must be 2-d (K,N), got shape " + shp(w));
  if (x.shape[1] != w.shape[0])
    throw ValueError(std::string(fn) + ": shapes " + shp(x) + " and " + shp(w) + " not aligned: " +
                     std::to_string(x.shape[1]) + " (dim 1) != " + std::to_string(w.shape[0]) + " (dim 0)");
}

py::object dense_call(const py::handle& x, const py::handle& w, const py::handle& b, const py::handle& activation,
                      const py::handle& out) {
  const char* fn = "pykernels.dense";
  const bool relu = parse_activation(activation, fn);
  Operand ops[3];
  const py::handle objs[3] = {x, w, b};
  const char* names[3] = {"x", "W", "b"};
  const int n = b.is_none() ? 2 : 3;
  const DType dt = parse_all(ops, objs, names, n, fn);
  const View &vx = ops[0].view, &vw = ops[1].view;
  check_dense_shapes(vx, vw, fn);
  const int64_t M = vx.shape[0], K = vx.shape[1], N = vw.shape[1];
  GemmOptions opt;
  opt.relu = relu;
  if (n == 3) {
    const View& vb = ops[2].view;
    if (vb.ndim != 1 || vb.shape[0] != N)
      throw ValueError(std::string(fn) + ": b must have shape (" + std::to_string(N) + ",), got " + shp(vb));
    opt.bias = vb.data;
    opt.bias_stride = vb.strides[0];
  }
  const std::vector<int64_t> shape = {M, N};
  py::array res = out.is_none() ? new_array(dt, shape) : check_product_out(out, dt, shape, fn);
  View rv = direct_view(res);
  py::array tmp = res;
  bool overlap = false;
  for (int i = 0; i < n; ++i) overlap = overlap || (!out.is_none() && may_overlap(rv, ops[i].view));
  if (overlap) {
    tmp = new_array(dt, shape);
    rv = direct_view(tmp);
  }
  {
    NoGil nogil(2.0 * double(M) * double(N) * double(K));
    gemm(dt, M, N, K, rv.data, rv.strides[0], rv.strides[1], vx.data, vx.strides[0], vx.strides[1], vw.data,
         vw.strides[0], vw.strides[1], opt);
  }
  if (!tmp.is(res)) py::module_::import("numpy").attr("copyto")(res, tmp);
  return std::move(res);
}

py::tuple dense_backward_call(const py::handle& dy, const py::handle& x, const py::handle& w, const py::handle& y,
                              const py::handle& activation, const py::handle& need_dx_h, const py::handle& dx_buf,
                              const py::handle& dw_buf, const py::handle& db_buf) {
  const char* fn = "pykernels.dense_backward";
  // A bool (or numpy.bool_): None or an array here is a mistake, not "no dx".
  if (!PyBool_Check(need_dx_h.ptr()) && !py::isinstance(need_dx_h, py::module_::import("numpy").attr("bool_")))
    throw TypeError(std::string(fn) + ": need_dx must be a bool, got " + Py_TYPE(need_dx_h.ptr())->tp_name);
  const bool need_dx = PyObject_IsTrue(need_dx_h.ptr()) == 1;
  const bool relu = parse_activation(activation, fn);
  if (relu && y.is_none())
    throw ValueError(std::string(fn) + ": activation='relu' needs the forward output y");
  Operand ops[4];
  const py::handle objs[4] = {dy, x, w, y};
  const char* names[4] = {"dy", "x", "W", "y"};
  const int n = relu ? 4 : 3;
  const DType dt = parse_all(ops, objs, names, n, fn);
  const View &vdy = ops[0].view, &vx = ops[1].view, &vw = ops[2].view;
  check_dense_shapes(vx, vw, fn);
  const int64_t M = vx.shape[0], K = vx.shape[1], N = vw.shape[1];
  if (vdy.ndim != 2 || vdy.shape[0] != M || vdy.shape[1] != N)
    throw ValueError(std::string(fn) + ": dy has shape " + shp(vdy) + " but dense(x, W) has shape (" +
                     std::to_string(M) + "," + std::to_string(N) + ")");
  const View* vy = relu ? &ops[3].view : nullptr;
  if (vy && shape_of(*vy) != shape_of(vdy))
    throw ValueError(std::string(fn) + ": y has shape " + shp(*vy) + " but dy has shape " + shp(vdy));

  auto out_buf = [&](const py::handle& h, const std::vector<int64_t>& shape, const char* name) {
    if (h.is_none()) return new_array(dt, shape);
    py::array a = check_buffer(h, dt, shape, fn, name);
    View v = direct_view(a);
    for (int i = 0; i < n; ++i)
      if (may_overlap(v, ops[i].view))
        throw ValueError(std::string(fn) + ": " + name + " overlaps the input '" + names[i] + "'");
    return a;
  };
  py::array dW = out_buf(dw_buf, {K, N}, "dW");
  py::array db = out_buf(db_buf, {N}, "db");
  py::array dx = null_array();  // not default-constructed: that would allocate an empty array
  if (need_dx) dx = out_buf(dx_buf, {M, K}, "dx");
  View vdW = direct_view(dW), vdb = direct_view(db);
  if (may_overlap(vdW, vdb)) throw ValueError(std::string(fn) + ": dW and db overlap");
  View vdx;
  if (need_dx) {
    vdx = direct_view(dx);
    if (may_overlap(vdx, vdW) || may_overlap(vdx, vdb)) throw ValueError(std::string(fn) + ": dx overlaps dW or db");
  }
  {
    NoGil nogil((need_dx ? 4.0 : 2.0) * double(M) * double(N) * double(K));
    // dW (K,N) = x^T (K,M) . dy' (M,N), dy' = dy masked by y > 0 while dy is packed; db = column
    // sums of dy' from the same packing pass.
    GemmOptions o1;
    if (vy) {
      o1.b_mask = vy->data;
      o1.b_mask_rs = vy->strides[0];
      o1.b_mask_cs = vy->strides[1];
    }
    o1.b_colsum = vdb.data;
    o1.b_colsum_stride = vdb.strides[0];
    gemm(dt, K, N, M, vdW.data, vdW.strides[0], vdW.strides[1], vx.data, vx.strides[1], vx.strides[0], vdy.data,
         vdy.strides[0], vdy.strides[1], o1);
    if (need_dx) {
      // dx (M,K) = dy' (M,N) . W^T (N,K), the mask applied while dy is packed as the A operand.
      GemmOptions o2;
      if (vy) {
        o2.a_mask = vy->data;
        o2.a_mask_rs = vy->strides[0];
        o2.a_mask_cs = vy->strides[1];
      }
      gemm(dt, M, K, N, vdx.data, vdx.strides[0], vdx.strides[1], vdy.data, vdy.strides[0], vdy.strides[1], vw.data,
           vw.strides[1], vw.strides[0], o2);
    }
  }
  return py::make_tuple(need_dx ? py::object(dx) : py::object(py::none()), dW, db);
}

py::array gemm_naive_call(const py::handle& a, const py::handle& b) {
  const char* fn = "pykernels._gemm_naive";
  Operand ops[2];
  const py::handle objs[2] = {a, b};
  const char* names[2] = {"a", "b"};
  const DType dt = parse_all(ops, objs, names, 2, fn);
  const View &va = ops[0].view, &vb = ops[1].view;
  if (va.ndim != 2 || vb.ndim != 2) throw ValueError(std::string(fn) + ": a and b must be 2-d");
  dot_dims(va, vb, "");
  py::array r = new_array(dt, {va.shape[0], vb.shape[1]});
  View rv = direct_view(r);
  gemm_naive(dt, va.shape[0], vb.shape[1], va.shape[1], rv.data, rv.strides[0], rv.strides[1], va.data,
             va.strides[0], va.strides[1], vb.data, vb.strides[0], vb.strides[1]);
  return r;
}

}  // namespace

void bind_linalg(py::module_& m) {
  // dot, matmul, dense and dense_backward are raw METH_FASTCALL functions (fastcall.hpp): pybind11's
  // dispatcher cost more per call than the kernel of a small product.
  def_fast(m, "dot", {"a", "b", "out"}, 2, "(a, b, out=None)",
        R"pbdoc(Dot product of two arrays with ``np.dot``'s rules for every rank.

vector . vector -> scalar (a NumPy scalar, like ``np.dot``), matrix . vector, vector . matrix,
matrix . matrix, N-d . 1-d (sum over the last axis of ``a`` and ``b``) and N-d . M-d:
``dot(a, b)[i,j,k,m] = sum(a[i,j,:] * b[k,:,m])``. A 0-d operand multiplies element-wise.
float32 and float64 (mixed inputs promote like NumPy); other dtypes raise TypeError. Any strides
(transposed, sliced, negative) are read directly by the packing step of the GEMM: no copy first.
``out`` must be a writeable C-contiguous, aligned, native-byte-order array of the result's dtype and
shape, as ``np.dot`` requires; if it overlaps an input the result is computed into a temporary
first. Deterministic for every thread count.

>>> import numpy as np, pykernels as pk
>>> a = np.arange(6.0).reshape(2, 3); b = np.arange(12.0).reshape(3, 4)
>>> np.array_equal(pk.dot(a, b), np.dot(a, b))
True
>>> float(pk.dot(np.array([1.0, 2.0]), np.array([3.0, 4.0])))
11.0
>>> pk.dot(np.ones((2, 3)), np.ones((4, 5)))
Traceback (most recent call last):
...
ValueError: shapes (2,3) and (4,5) not aligned: 3 (dim 1) != 4 (dim 0)
)pbdoc",
        [](const py::handle* a) { return dot_call(a[0], a[1], a[2]); });
  def_fast(m, "matmul", {"a", "b", "out"}, 2, "(a, b, out=None)",
        R"pbdoc(Matrix product with ``np.matmul`` (``@``) rules.

Stacks of matrices broadcast; a 1-d ``a`` gets a 1 prepended and a 1-d ``b`` a 1 appended, removed
again from the result; 0-d operands are an error, as in NumPy. float32/float64, any strides.
``out`` (as in ``np.matmul``) may have any layout (Fortran order, a strided or reversed view, even
byte-swapped or unaligned data) and any float dtype (the result is cast into it, NumPy's same_kind
rule), but must have the result's shape and be writeable; if it overlaps an input the result is
computed into a temporary first.

>>> import numpy as np, pykernels as pk
>>> a = np.ones((5, 2, 3), np.float32); b = np.ones((3, 4), np.float32)
>>> pk.matmul(a, b).shape
(5, 2, 4)
>>> float(pk.matmul(np.ones(3), np.ones(3)))
3.0
)pbdoc",
        [](const py::handle* a) { return matmul_call(a[0], a[1], a[2]); });
  m.def("dot_backward", &dot_backward_call, py::arg("dout"), py::arg("a"), py::arg("b"),
        R"pbdoc(Gradients of ``out = dot(a, b)``: returns ``(da, db)`` with the shapes of ``a`` and ``b``.

For matrices ``da = dout . b^T`` and ``db = a^T . dout``; the vector and N-d forms follow from
``dot``'s index rule (sums over the axes that ``dot`` broadcast). ``dout`` must have the shape of
``dot(a, b)``.

>>> import numpy as np, pykernels as pk
>>> a = np.ones((2, 3)); b = np.ones((3, 4)); dout = np.ones((2, 4))
>>> da, db = pk.dot_backward(dout, a, b)
>>> np.array_equal(da, dout @ b.T) and np.array_equal(db, a.T @ dout)
True
)pbdoc");
  m.def("matmul_backward", &matmul_backward_call, py::arg("dout"), py::arg("a"), py::arg("b"),
        R"pbdoc(Gradients of ``out = matmul(a, b)``: returns ``(da, db)`` with the shapes of ``a`` and ``b``.

``da = dout @ b^T``, ``db = a^T @ dout`` per stack element; where an operand's stack was broadcast,
its gradient is summed over the broadcast axes (in a fixed order: deterministic).

>>> import numpy as np, pykernels as pk
>>> a = np.ones((4, 2, 3)); b = np.ones((3, 5)); dout = np.ones((4, 2, 5))
>>> da, db = pk.matmul_backward(dout, a, b)
>>> da.shape, db.shape, float(db[0, 0])
((4, 2, 3), (3, 5), 8.0)
)pbdoc");
  def_fast(m, "dense", {"x", "W", "b", "activation", "out"}, 2, "(x, W, b=None, activation=None, out=None)",
        R"pbdoc(Fused dense layer: ``relu(x @ W + b)`` (or ``x @ W + b`` without activation) in one GEMM.

x is (M,K), W is (K,N), b is (N,) or None; activation is None or ``"relu"``. The bias and the relu
(``np.maximum(v, 0)``: NaN propagates) are applied in the micro-kernel's store, while the output
tile is still in registers, so there is no extra pass over the output.

>>> import numpy as np, pykernels as pk
>>> x = np.array([[1.0, -2.0]], np.float32); W = np.eye(2, dtype=np.float32)
>>> pk.dense(x, W, np.array([0.5, 0.5], np.float32), activation="relu")
array([[1.5, 0. ]], dtype=float32)
)pbdoc",
        [](const py::handle* a) { return dense_call(a[0], a[1], a[2], a[3], a[4]); });
  def_fast(m, "dense_backward", {"dy", "x", "W", "y", "activation", "need_dx", "dx", "dW", "db"}, 3,
        "(dy, x, W, y=None, activation=None, need_dx=True, dx=None, dW=None, db=None)",
        R"pbdoc(Gradients of :func:`dense`: returns ``(dx, dW, db)``.

With ``activation="relu"`` the mask ``y > 0`` (y = the forward output) is applied to ``dy`` while
``dy`` is packed for the GEMMs (no masked copy of dy is made), and ``db`` (the column sums of the
masked dy, accumulated in float64) comes from the same packing pass. ``dW = x^T dy'``,
``dx = dy' W^T``; with ``need_dx=False`` dx is skipped and returned as None (the first layer of a
network needs no input gradient). ``dx``, ``dW``, ``db`` may be preallocated buffers (ndarray of the
exact dtype and shape, writeable, C-contiguous, aligned, native byte order, not overlapping the
inputs), which are overwritten and returned, so a training loop allocates nothing per batch.

>>> import numpy as np, pykernels as pk
>>> x = np.ones((4, 3)); W = np.ones((3, 2)); y = pk.dense(x, W, activation="relu")
>>> dx, dW, db = pk.dense_backward(np.ones((4, 2)), x, W, y=y, activation="relu")
>>> dx.shape, dW.shape, db.tolist()
((4, 3), (3, 2), [4.0, 4.0])
>>> pk.dense_backward(np.ones((4, 2)), x, W, need_dx=False)[0] is None
True
)pbdoc",
        [](const py::handle* a) { return dense_backward_call(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]); },
        {{"need_dx", py::bool_(true)}});
  m.def("_gemm_naive", &gemm_naive_call, py::arg("a"), py::arg("b"), "Reference triple-loop GEMM (2-d only).");
  m.def(
      "_fma_peak_gflops",
      [](double seconds, int threads) {
        if (threads < 1) threads = num_threads();
        py::gil_scoped_release nogil;
        return fma_peak_gflops(seconds, threads);
      },
      py::arg("seconds") = 0.2, py::arg("threads") = 0,
      "Measured peak float32 FMA throughput (GFLOP/s) of the active ISA on `threads` threads (0: all).");
}

}  // namespace pk::py_bind
