// Logic shared by the CUDA kernels (csrc/cuda/kernels.cu) and their CPU emulation
// (csrc/cpu/cuda_emulation.cpp): everything a CUDA thread computes is a PK_HD function here, so the
// index math, the element-wise semantics and the tiled GEMM are tested on a machine without a GPU.
//
// Element-wise: thread i maps flat index i of the coalesced iteration space (Iter3) to the three
// operand offsets and applies the op's f, the very function the CPU loops run (ops.hpp).
// GEMM: 16x16 output tile per block, one output element per thread; per K-tile every thread loads
// one element of A and one of B into shared memory (gemm_load), the block synchronises, every
// thread accumulates its dot product over the tile (gemm_compute), and finally writes its element
// with the bias + relu epilogue (gemm_store). The emulation runs the phases in the same order, with a
// loop over threads standing in for __syncthreads().
#pragma once

#include <cstdint>

#include "pykernels/dispatch.hpp"
#include "pykernels/elementwise.hpp"
#include "pykernels/ops.hpp"  // PK_HD, the ops' f

namespace pk::device {

PK_HD inline void offsets3(const Iter3& it, int64_t flat, int64_t off[3]) {
  off[0] = off[1] = off[2] = 0;
  for (int i = it.nd - 1; i >= 0; --i) {
    const int64_t idx = flat % it.shape[i];
    flat /= it.shape[i];
    off[0] += idx * it.st[0][i];
    off[1] += idx * it.st[1][i];
    off[2] += idx * it.st[2][i];
  }
}

// Op is an op of the registry (ops.hpp); the host instantiates one kernel per op (visit_op).
template <class T, class Op>
PK_HD inline void binary_element(const Iter3& it, T* out, const T* a, const T* b, int64_t flat) {
  int64_t off[3];
  offsets3(it, flat, off);
  out[off[0]] = Op::f(a[off[1]], b[off[2]]);
}

// A unary op runs on the same iteration space with x as both inputs (coalesce3 of out, x, x).
template <class T, class Op>
PK_HD inline void unary_element(const Iter3& it, T* out, const T* x, int64_t flat) {
  int64_t off[3];
  offsets3(it, flat, off);
  out[off[0]] = Op::f(x[off[1]]);
}

constexpr int kTile = 16;

// C (M,N) contiguous = act(A (M,K) @ B (K,N) + bias); A and B through signed element strides.
template <class T>
struct GemmArgs {
  const T* A;
  const T* B;
  const T* bias;  // (N,) or nullptr
  T* C;
  int64_t M, N, K;
  int64_t sam, sak, sbk, sbn;
  bool relu;
};

// Thread (tx, ty) of block (bx, by) loads A[row, k0+tx] and B[k0+ty, col] (0 outside the matrices).
template <class T>
PK_HD inline void gemm_load(T* As, T* Bs, const GemmArgs<T>& g, int64_t bx, int64_t by, int tx, int ty, int64_t k0) {
  const int64_t row = by * kTile + ty, col = bx * kTile + tx;
  const int64_t ka = k0 + tx, kb = k0 + ty;
  As[ty * kTile + tx] = (row < g.M && ka < g.K) ? g.A[row * g.sam + ka * g.sak] : T(0);
  Bs[ty * kTile + tx] = (kb < g.K && col < g.N) ? g.B[kb * g.sbk + col * g.sbn] : T(0);
}

template <class T>
PK_HD inline void gemm_compute(T& acc, const T* As, const T* Bs, int tx, int ty) {
  for (int k = 0; k < kTile; ++k) acc += As[ty * kTile + k] * Bs[k * kTile + tx];
}

template <class T>
PK_HD inline void gemm_store(const GemmArgs<T>& g, int64_t bx, int64_t by, int tx, int ty, T acc) {
  const int64_t row = by * kTile + ty, col = bx * kTile + tx;
  if (row >= g.M || col >= g.N) return;
  if (g.bias) acc += g.bias[col];
  if (g.relu) acc = (acc > T(0) || acc != acc) ? acc : T(0);
  g.C[row * g.N + col] = acc;
}

}  // namespace pk::device
