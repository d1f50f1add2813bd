// Matrix products with NumPy's rules, forward and backward side by side: np.dot, np.matmul, the fused
// dense layer relu(x @ W + b) and their gradients, over strided Views. Pure C++ (no Python): the
// bindings (csrc/bindings/bind_linalg.cpp) parse, allocate and call one of these; a C++ caller can
// call them directly. Every function maps its ranks onto the GEMM (gemm.hpp): batch dimensions and
// one 2-d product per batch element, transposes as swapped strides (nothing is copied first).
//
// Conventions: outputs first, then inputs. Outputs are overwritten (beta = 0, never read) and must
// not overlap an input (the bindings compute into a temporary when a user's out= does); their shapes
// are the ones the *_shape functions return. Shape errors are pk::ValueError in NumPy's words.
// Results are bit-identical for every thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "pykernels/common.hpp"

namespace pk {

// ---- np.dot --------------------------------------------------------------------------------------
// dot(a, b)[i..., j..., n] = sum_k a[i..., m, k] * b[j..., k, n] for ndim >= 1 operands (the M and
// N dims exist when the operand has ndim >= 2); a 0-d operand multiplies element-wise.
struct DotDims {
  int la = 0, lb = 0;           // leading (batch) dims of a and b
  bool am = false, bn = false;  // a has an M dim (ndim >= 2), b has an N dim (ndim >= 2)
  int64_t M = 1, K = 0, N = 1;
};
// Validates the shapes (ndim >= 1 each; a result rank within kMaxDims) and returns the dims.
DotDims dot_dims(const View& a, const View& b);
// The result's shape (for a 0-d operand: the other operand's shape).
std::vector<int64_t> dot_shape(const View& a, const View& b);
// c = np.dot(a, b).
void dot(const View& c, const View& a, const View& b);
// Gradients of c = dot(a, b): da = dout . b^T and db = a^T . dout along dot's index rule (sums over
// the dims dot broadcast); for a 0-d a, da = sum(dout * b). da, db have the shapes of a, b.
void dot_backward(const View& da, const View& db, const View& dout, const View& a, const View& b);

// ---- np.matmul -----------------------------------------------------------------------------------
// Stacks broadcast; a 1-d a is (1,K) and a 1-d b is (K,1), the added dim removed from the result.
struct MatmulDims {
  int ns = 0;  // stack rank
  int64_t stack[kMaxDims] = {};
  bool am = false, bn = false;
  int64_t M = 1, K = 0, N = 1;
};
// Validates (0-d operands, core-dim mismatch, stacks that do not broadcast: NumPy's messages, which
// start with `fn`) and returns the dims.
MatmulDims matmul_dims(const View& a, const View& b, const char* fn = "matmul");
std::vector<int64_t> matmul_shape(const MatmulDims& d);
// c = a @ b. c may not have internal overlap (a zero stride over a dim longer than 1).
void matmul(const View& c, const View& a, const View& b);
// Gradients of c = a @ b: da = dout @ b^T, db = a^T @ dout per stack element, summed over the stack
// dims where the operand was broadcast (in a fixed order).
void matmul_backward(const View& da, const View& db, const View& dout, const View& a, const View& b);

// ---- fused dense layer ---------------------------------------------------------------------------
// x (M,K), W (K,N), b (N,) or null. Throws ValueError naming `fn` for any other shapes.
void dense_check(const View& x, const View& w, const View* b, const char* fn);
// y (M,N) = act(x @ W + b), act = relu (np.maximum(v, 0), NaN kept) or identity; the bias and the
// relu are applied in the GEMM's store, while the tile is in registers.
void dense_forward(const View& y, const View& x, const View& w, const View* b, bool relu);
// Gradients of y = dense_forward(x, W, b, relu): with y_relu (the forward output, or null without
// relu) the mask y_relu > 0 is applied to dy while dy is packed. dW (K,N) = x^T dy', db (N,) = the
// column sums of dy' (float64 accumulation, from the same packing pass), dx (M,K) = dy' W^T (skipped
// when dx is null). None of the outputs may overlap each other or an input.
void dense_backward(const View* dx, const View& dW, const View& db, const View& dy, const View& x, const View& w,
                    const View* y_relu);

// Multiply-adds of a product with output `c` and inner dimension K, times 2 (flops), for callers
// deciding whether the work is worth releasing a lock or starting threads for.
inline double product_flops(const View& c, int64_t K) { return 2.0 * double(c.size()) * double(K); }

}  // namespace pk
