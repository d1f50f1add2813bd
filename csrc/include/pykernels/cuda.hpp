// Optional CUDA build of the kernels (PYKERNELS_CUDA=ON). Host functions take host Views, copy the
// memory span of each operand to the device, run the kernel and copy the output span back: a simple,
// correct offload of the same kernels, not yet a device-resident tensor API.
// cuda_emu:: runs the very same per-thread logic (device_logic.hpp) on the CPU; it is always built.
#pragma once

#include <cstdint>

#include "pykernels/common.hpp"
#include "pykernels/dispatch.hpp"

namespace pk {

bool cuda_compiled();
int cuda_device_count();  // 0 without a device or driver (never throws)

namespace cuda {
// Throws std::runtime_error naming the CUDA error (no device, out of memory, ...).
void binary(BinOp op, const View& out, const View& a, const View& b);
void unary(UnOp op, const View& out, const View& x);
// C (M,N) contiguous = act(A @ B + bias); bias may be null.
void gemm(const View& C, const View& A, const View& B, const View* bias, bool relu);
}  // namespace cuda

namespace cuda_emu {
void binary(BinOp op, const View& out, const View& a, const View& b);
void unary(UnOp op, const View& out, const View& x);
void gemm(const View& C, const View& A, const View& B, const View* bias, bool relu);
}  // namespace cuda_emu

}  // namespace pk
