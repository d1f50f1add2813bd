// CUDA build of the element-wise kernels (one instantiation per op of the registry, ops.hpp) and a tiled GEMM with the dense epilogue. The per-thread
// logic is in device_logic.hpp and is the same code the CPU emulation (cuda_emulation.cpp) runs in the
// tests. Host wrappers copy each operand's memory span to the device (strides, including negative
// and zero ones, are kept as they are), run, and copy the output span back.
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "pykernels/cuda.hpp"
#include "pykernels/device_logic.hpp"

namespace pk {

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

// Byte range [lo, hi) spanned by a view.
void span(const View& v, const char*& lo, const char*& hi) {
  const int64_t esz = dtype_size(v.dtype);
  int64_t a = 0, b = 0;
  for (int i = 0; i < v.ndim; ++i) {
    const int64_t ext = (v.shape[i] - 1) * v.strides[i];
    if (ext < 0) a += ext; else b += ext;
  }
  lo = static_cast<const char*>(v.data) + a * esz;
  hi = static_cast<const char*>(v.data) + (b + 1) * esz;
}

// A device copy of a view's span; `ptr` addresses the view's element (0,...,0) on the device.
struct DeviceSpan {
  char* base = nullptr;
  void* ptr = nullptr;
  const char* lo = nullptr;
  size_t bytes = 0;
  explicit DeviceSpan(const View& v) {
    const char* hi;
    span(v, lo, hi);
    bytes = size_t(hi - lo);
    check(cudaMalloc(&base, bytes), "cudaMalloc");
    check(cudaMemcpy(base, lo, bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D");
    ptr = base + (static_cast<const char*>(v.data) - lo);
  }
  void copy_back() { check(cudaMemcpy(const_cast<char*>(lo), base, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H"); }
  ~DeviceSpan() { cudaFree(base); }
  DeviceSpan(const DeviceSpan&) = delete;
  DeviceSpan& operator=(const DeviceSpan&) = delete;
};

template <class T, class Op>
__global__ void binary_kernel(Iter3 it, int64_t total, T* out, const T* a, const T* b) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    device::binary_element<T, Op>(it, out, a, b, i);
}

template <class T, class Op>
__global__ void unary_kernel(Iter3 it, int64_t total, T* out, const T* x) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    device::unary_element<T, Op>(it, out, x, i);
}

template <class T>
__global__ void gemm_kernel(device::GemmArgs<T> g) {
  using device::kTile;
  __shared__ T As[kTile * kTile];
  __shared__ T Bs[kTile * kTile];
  const int tx = threadIdx.x, ty = threadIdx.y;
  T acc = T(0);
  for (int64_t k0 = 0; k0 < g.K; k0 += kTile) {
    device::gemm_load(As, Bs, g, blockIdx.x, blockIdx.y, tx, ty, k0);
    __syncthreads();
    device::gemm_compute(acc, As, Bs, tx, ty);
    __syncthreads();
  }
  device::gemm_store(g, blockIdx.x, blockIdx.y, tx, ty, acc);
}

template <class T>
void binary_t(BinOp op, const View& out, const View& a, const View& b) {
  const View* v[3] = {&out, &a, &b};
  Iter3 it;
  if (!coalesce3(it, v)) return;
  int64_t total = 1;
  for (int i = 0; i < it.nd; ++i) total *= it.shape[i];
  DeviceSpan dout(out), da(a), db(b);
  const int threads = 256;
  const int blocks = int(std::min<int64_t>((total + threads - 1) / threads, 65535));
  visit_op(BinaryOps{}, int(op), [&](auto o) {
    binary_kernel<T, decltype(o)><<<blocks, threads>>>(it, total, static_cast<T*>(dout.ptr),
                                                        static_cast<const T*>(da.ptr), static_cast<const T*>(db.ptr));
  });
  check(cudaGetLastError(), "binary_kernel launch");
  check(cudaDeviceSynchronize(), "binary_kernel");
  dout.copy_back();
}

template <class T>
void unary_t(UnOp op, const View& out, const View& x) {
  const View* v[3] = {&out, &x, &x};
  Iter3 it;
  if (!coalesce3(it, v)) return;
  int64_t total = 1;
  for (int i = 0; i < it.nd; ++i) total *= it.shape[i];
  DeviceSpan dout(out), dx(x);
  const int threads = 256;
  const int blocks = int(std::min<int64_t>((total + threads - 1) / threads, 65535));
  visit_op(UnaryOps{}, int(op), [&](auto o) {
    unary_kernel<T, decltype(o)><<<blocks, threads>>>(it, total, static_cast<T*>(dout.ptr), static_cast<const T*>(dx.ptr));
  });
  check(cudaGetLastError(), "unary_kernel launch");
  check(cudaDeviceSynchronize(), "unary_kernel");
  dout.copy_back();
}

template <class T>
void gemm_t(const View& C, const View& A, const View& B, const View* bias, bool relu) {
  using device::kTile;
  if (C.size() == 0) return;
  DeviceSpan dc(C), da(A), dbm(B);
  DeviceSpan* dbias = nullptr;
  if (bias) dbias = new DeviceSpan(*bias);
  device::GemmArgs<T> g{static_cast<const T*>(da.ptr), static_cast<const T*>(dbm.ptr),
                        dbias ? static_cast<const T*>(dbias->ptr) : nullptr, static_cast<T*>(dc.ptr),
                        A.shape[0], B.shape[1], A.shape[1], A.strides[0], A.strides[1], B.strides[0], B.strides[1],
                        relu};
  dim3 block(kTile, kTile), grid(unsigned((g.N + kTile - 1) / kTile), unsigned((g.M + kTile - 1) / kTile));
  gemm_kernel<T><<<grid, block>>>(g);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  delete dbias;
  check(e, "gemm_kernel");
  dc.copy_back();
}

}  // namespace

bool cuda_compiled() { return true; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

namespace cuda {
void binary(BinOp op, const View& out, const View& a, const View& b) {
  if (out.dtype == DType::f32) binary_t<float>(op, out, a, b);
  else binary_t<double>(op, out, a, b);
}
void unary(UnOp op, const View& out, const View& x) {
  if (out.dtype == DType::f32) unary_t<float>(op, out, x);
  else unary_t<double>(op, out, x);
}
void gemm(const View& C, const View& A, const View& B, const View* bias, bool relu) {
  if (C.dtype == DType::f32) gemm_t<float>(C, A, B, bias, relu);
  else gemm_t<double>(C, A, B, bias, relu);
}
}  // namespace cuda

}  // namespace pk
