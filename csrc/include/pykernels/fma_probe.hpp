// The machine's FMA peak, measured: what the benchmarks (bench/run.py, show_config) quote the GEMM's
// GFLOP/s against. Not used by any kernel.
#pragma once

namespace pk {

// Runs independent float32 FMA chains for about `seconds` on `threads` threads with the widest
// vectors the active ISA allows (AVX-512, AVX2+FMA or scalar); returns GFLOP/s (2 flops per FMA).
double fma_peak_gflops(double seconds, int threads);

}  // namespace pk
