// Element-wise kernels over N-d strided views with NumPy broadcasting, and the sum reductions that
// undo broadcasting in the backward pass.
#pragma once

#include <cstdint>

#include "pykernels/common.hpp"
#include "pykernels/dispatch.hpp"

namespace pk {

// NumPy's broadcasting rule for `count` shapes; writes the result shape, returns its rank.
// Throws ValueError("operands could not be broadcast together with shapes (3,4) (5,)").
int broadcast_shapes(int count, const int64_t* const* shapes, const int* ndims, int64_t* out_shape);

// v seen with rank `ndim` and shape `shape` (which v must broadcast to): leading dims prepended and
// stretched dims get stride 0.
View broadcast_view(const View& v, int ndim, const int64_t* shape);

// The iteration space of an element-wise op after steps 1-3 of the iterator (elementwise.cpp): size-1 dims
// dropped, dims ordered by the output's strides, dims contiguous for all operands merged. Shared
// with the CUDA kernels, which map a flat index to offsets with it (strided_index.hpp).
struct Iter3 {
  int nd = 0;
  int64_t shape[kMaxDims];
  int64_t st[3][kMaxDims];  // element strides of out, a, b
};
// Fills `it` from out, a, b (same rank and shape; a unary op passes x as a and b); false when the
// iteration space is empty.
bool coalesce3(Iter3& it, const View* const v[3]);

// out = op(a, b) element-wise. out, a and b have the same rank and shape (broadcast already applied
// through zero strides); one dtype for all three. out must not partially overlap a or b: it is either
// disjoint from them or exactly one of them (same data and strides). Parallel over contiguous ranges
// of the (coalesced) iteration space; bit-identical for every thread count.
void binary(BinOp op, const View& out, const View& a, const View& b);
template <class Op>  // an op of the registry (ops.hpp), e.g. binary<ops::Multiply>(out, a, b)
void binary(const View& out, const View& a, const View& b) {
  binary(binary_id<Op>(), out, a, b);
}

// out = op(x) element-wise, with the same contract (x broadcast to out's shape through zero strides;
// out disjoint from x or exactly x).
void unary(UnOp op, const View& out, const View& x);
template <class Op>  // e.g. unary<ops::Negative>(out, x)
void unary(const View& out, const View& x) {
  unary(unary_id<Op>(), out, x);
}

// Below this many float32 elements (half as many float64) an element-wise kernel runs on one thread;
// from it on, on 2 threads (each >= half of it): below it, handing work to a second thread costs
// more than the loop (measured with bench/grain.py). Where 2 threads start to win depends on how
// fast one core runs the loop from L2: an AMD Zen 5 core runs relu on 65536 in-cache floats about
// 2.5x faster than the Intel Xeon core measured, so the hand-off weighs more there.
constexpr int64_t kElementwiseGrain = 98304;  // Zen 5: 2 threads 0.78x at 65536, 1.19x at 98304
constexpr int64_t kElementwiseGrainOther = 32768;  // Xeon: 0.90x at 16384, 1.01x at 24576, 1.26x
                                                    // at 32768, 1.46x at 65536
int64_t elementwise_grain();  // by CPU vendor (AMD: kElementwiseGrain), or PYKERNELS_ELEMENTWISE_GRAIN
// Outputs of at least this many bytes use non-temporal stores (override: PYKERNELS_STREAM_MIN_BYTES).
constexpr int64_t kStreamMinBytes = int64_t(16) << 20;
int64_t stream_min_bytes();            // kStreamMinBytes, or PYKERNELS_STREAM_MIN_BYTES
void set_stream_min_bytes(int64_t n);  // for tests: run the streaming loops on small arrays

// Sum of x over the axes with reduce[axis] == true. `out` has x's rank, size 1 on the reduced axes
// (keepdims form, any strides) and x's dtype; overwritten, never read. float32 accumulates in
// double, float64 uses pairwise summation; the order of every sum depends only on the shapes, so the
// result is bit-identical for every thread count.
void sum(const View& out, const View& x, const bool* reduce);

}  // namespace pk
