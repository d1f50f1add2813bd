// CPU emulation of the CUDA kernels: the per-thread functions of device_logic.hpp run in loops over
// the grid, in the order the GPU's barriers impose. Used by tests on machines without a GPU, and as
// the reference the CUDA build is compared with where a GPU exists.
#include <vector>

#include "pykernels/cuda.hpp"
#include "pykernels/device_logic.hpp"

namespace pk {

#ifndef PK_HAVE_CUDA
bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
namespace cuda {
static void not_built() {
  throw std::runtime_error("pykernels was built without CUDA (rebuild with PYKERNELS_CUDA=ON and nvcc)");
}
void binary(BinOp, const View&, const View&, const View&) { not_built(); }
void unary(UnOp, const View&, const View&) { not_built(); }
void gemm(const View&, const View&, const View&, const View*, bool) { not_built(); }
}  // namespace cuda
#endif

namespace cuda_emu {

template <class T>
static void binary_t(BinOp op, const View& out, const View& a, const View& b) {
  const View* v[3] = {&out, &a, &b};
  Iter3 it;
  if (!coalesce3(it, v)) return;
  int64_t total = 1;
  for (int i = 0; i < it.nd; ++i) total *= it.shape[i];
  visit_op(BinaryOps{}, int(op), [&](auto o) {
    for (int64_t i = 0; i < total; ++i)  // grid-stride loop, one "thread" per element
      device::binary_element<T, decltype(o)>(it, static_cast<T*>(out.data), static_cast<const T*>(a.data),
                                             static_cast<const T*>(b.data), i);
  });
}

void binary(BinOp op, const View& out, const View& a, const View& b) {
  if (out.dtype == DType::f32)
    binary_t<float>(op, out, a, b);
  else
    binary_t<double>(op, out, a, b);
}

template <class T>
static void unary_t(UnOp op, const View& out, const View& x) {
  const View* v[3] = {&out, &x, &x};
  Iter3 it;
  if (!coalesce3(it, v)) return;
  int64_t total = 1;
  for (int i = 0; i < it.nd; ++i) total *= it.shape[i];
  visit_op(UnaryOps{}, int(op), [&](auto o) {
    for (int64_t i = 0; i < total; ++i)
      device::unary_element<T, decltype(o)>(it, static_cast<T*>(out.data), static_cast<const T*>(x.data), i);
  });
}

void unary(UnOp op, const View& out, const View& x) {
  if (out.dtype == DType::f32)
    unary_t<float>(op, out, x);
  else
    unary_t<double>(op, out, x);
}

template <class T>
static void gemm_t(const View& C, const View& A, const View& B, const View* bias, bool relu) {
  using device::kTile;
  device::GemmArgs<T> g{static_cast<const T*>(A.data), static_cast<const T*>(B.data),
                        bias ? static_cast<const T*>(bias->data) : nullptr, static_cast<T*>(C.data),
                        A.shape[0], B.shape[1], A.shape[1], A.strides[0], A.strides[1], B.strides[0], B.strides[1],
                        relu};
  const int64_t gx = (g.N + kTile - 1) / kTile, gy = (g.M + kTile - 1) / kTile;
  std::vector<T> As(kTile * kTile), Bs(kTile * kTile), acc(kTile * kTile);
  for (int64_t by = 0; by < gy; ++by)
    for (int64_t bx = 0; bx < gx; ++bx) {
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t k0 = 0; k0 < g.K; k0 += kTile) {
        for (int ty = 0; ty < kTile; ++ty)
          for (int tx = 0; tx < kTile; ++tx) device::gemm_load(As.data(), Bs.data(), g, bx, by, tx, ty, k0);
        // __syncthreads()
        for (int ty = 0; ty < kTile; ++ty)
          for (int tx = 0; tx < kTile; ++tx) device::gemm_compute(acc[ty * kTile + tx], As.data(), Bs.data(), tx, ty);
        // __syncthreads()
      }
      for (int ty = 0; ty < kTile; ++ty)
        for (int tx = 0; tx < kTile; ++tx) device::gemm_store(g, bx, by, tx, ty, acc[ty * kTile + tx]);
    }
}

void gemm(const View& C, const View& A, const View& B, const View* bias, bool relu) {
  if (C.dtype == DType::f32)
    gemm_t<float>(C, A, B, bias, relu);
  else
    gemm_t<double>(C, A, B, bias, relu);
}

}  // namespace cuda_emu
}  // namespace pk
