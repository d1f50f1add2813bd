// pk::gemm against OpenBLAS's sgemm/dgemm (the library NumPy ships) from C++, without Python in the
// way: interleaved rounds (OpenBLAS, then pykernels), the median over calls in each round, then the
// median over 9 rounds. A development tool for 10% questions about the GEMM (bench/RESULTS.md cites
// it where it says "C++ harness"); the tables come from the pytest-benchmark suites.
//
// Build (from the repository root, after `pip install --no-build-isolation -Cbuild-dir=build .`):
//   OB=$(python -c "import numpy, glob, os; print(glob.glob(os.path.dirname(numpy.__file__) + '.libs/libscipy_openblas*.so')[0])")
//   g++ -O2 -std=c++17 -Icsrc/include bench/native/gemm_vs_openblas.cpp
//       build/CMakeFiles/pk_kernels.dir/csrc/cpu/*.o build/CMakeFiles/pk_kernels.dir/csrc/cpu/gemm/*.o
//       -fopenmp "$OB" -Wl,-rpath,"$(dirname "$OB")"
//       -o /tmp/gemm_vs_openblas          (one command)
// Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /tmp/gemm_vs_openblas M N K THREADS
//   environment: F64=1 (double), TA=1 / TB=1 (A / B transposed, as x.T / W.T views).
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "pykernels/gemm.hpp"
#include "pykernels/parallel.hpp"

// NumPy's wheels bundle OpenBLAS as scipy-openblas64 (64-bit integers, prefixed symbols).
extern "C" void scipy_cblas_sgemm64_(int, int, int, long, long, long, float, const float*, long, const float*, long,
                                     float, float*, long);
extern "C" void scipy_cblas_dgemm64_(int, int, int, long, long, long, double, const double*, long, const double*,
                                     long, double, double*, long);
extern "C" void scipy_openblas_set_num_threads64_(int);

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

template <class T>
T* alloc(size_t n) {  // 2 MiB aligned and advised huge, like NumPy's large arrays
  const size_t bytes = (n * sizeof(T) + (2u << 20) - 1) / (2u << 20) * (2u << 20);
  T* p = static_cast<T*>(std::aligned_alloc(2u << 20, bytes));
  madvise(p, bytes, MADV_HUGEPAGE);
  for (size_t i = 0; i < n; ++i) p[i] = T((i * 7919) % 1000) / T(1000) - T(0.5);
  return p;
}

template <class T>
void run(long M, long N, long K, int nt, bool ta, bool tb) {
  T *A = alloc<T>(size_t(M * K)), *B = alloc<T>(size_t(K * N)), *C = alloc<T>(size_t(M * N));
  const long lda = ta ? M : K, ldb = tb ? K : N;
  const int cta = ta ? 112 : 111, ctb = tb ? 112 : 111;  // CblasTrans / CblasNoTrans
  const pk::DType dt = sizeof(T) == 4 ? pk::DType::f32 : pk::DType::f64;
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const int reps = std::max(3, std::min(2000, int(1e10 / flops)));
  std::vector<double> res[2];
  for (int round = 0; round < 9; ++round) {
    for (int v = 0; v < 2; ++v) {
      std::vector<double> ts;
      for (int r = 0; r < reps; ++r) {
        const double t = now();
        if (v == 1)
          pk::gemm(dt, M, N, K, C, N, 1, A, ta ? 1 : K, ta ? M : 1, B, tb ? 1 : N, tb ? K : 1);
        else if constexpr (sizeof(T) == 4)
          scipy_cblas_sgemm64_(101, cta, ctb, M, N, K, 1.f, A, lda, B, ldb, 0.f, C, N);
        else
          scipy_cblas_dgemm64_(101, cta, ctb, M, N, K, 1.0, A, lda, B, ldb, 0.0, C, N);
        ts.push_back(now() - t);
      }
      std::sort(ts.begin(), ts.end());
      res[v].push_back(flops / ts[ts.size() / 2] / 1e9);
      if (v == 0) {  // let OpenBLAS's spinning workers park (see bench/README.md)
        const double t = now();
        while (now() - t < 0.2) {
        }
      }
    }
  }
  for (auto& r : res) std::sort(r.begin(), r.end());
  std::printf("%ldx%ldx%ld %s%s%s threads=%d  OpenBLAS %.1f  pykernels %.1f GFLOP/s  ratio %.3f\n", M, N, K,
              sizeof(T) == 4 ? "f32" : "f64", ta ? " A^T" : "", tb ? " B^T" : "", nt, res[0][4], res[1][4],
              res[1][4] / res[0][4]);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s M N K THREADS  (env F64=1, TA=1, TB=1)\n", argv[0]);
    return 2;
  }
  const long M = std::atol(argv[1]), N = std::atol(argv[2]), K = std::atol(argv[3]);
  const int nt = std::atoi(argv[4]);
  scipy_openblas_set_num_threads64_(nt);
  pk::set_num_threads(nt);
  const bool ta = std::getenv("TA") != nullptr, tb = std::getenv("TB") != nullptr;
  if (std::getenv("F64"))
    run<double>(M, N, K, nt, ta, tb);
  else
    run<float>(M, N, K, nt, ta, tb);
  return 0;
}
