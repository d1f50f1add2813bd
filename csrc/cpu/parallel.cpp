// Thread-count state, fork detection and the single OpenMP parallel region used by parallel_for.
#include "pykernels/parallel.hpp"

#include <pthread.h>

#include <atomic>
#include <exception>
#include <stdexcept>
#include <string>

#ifdef PK_HAVE_OPENMP
#include <omp.h>
#endif

namespace pk {
namespace {

std::atomic<int> g_threads{0};  // 0 = not yet initialised
std::atomic<bool> g_forked{false};

void on_fork_child() { g_forked.store(true); }

int initial_threads() {
#ifdef PK_HAVE_OPENMP
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, on_fork_child);
    return true;
  }();
  (void)registered;
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace

int num_threads() {
  if (g_forked.load(std::memory_order_relaxed)) return 1;
  int t = g_threads.load(std::memory_order_relaxed);
  if (t == 0) {
    t = initial_threads();
    if (t < 1) t = 1;
    int expected = 0;
    if (!g_threads.compare_exchange_strong(expected, t)) t = expected;
  }
  return t;
}

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("number of threads must be >= 1, got " + std::to_string(n));
  initial_threads();  // make sure the fork handler is registered
  g_threads.store(n);
}

int max_hw_threads() {
#ifdef PK_HAVE_OPENMP
  return omp_get_num_procs();
#else
  return 1;
#endif
}

bool openmp_enabled() {
#ifdef PK_HAVE_OPENMP
  return true;
#else
  return false;
#endif
}

bool in_forked_child() { return g_forked.load(); }

int openmp_version() {
#ifdef _OPENMP
  return _OPENMP;
#else
  return 0;
#endif
}

int threads_for(int64_t n, int64_t grain) {
  int nt = num_threads();
  if (nt <= 1 || n < grain || grain <= 0) return 1;
  const int64_t by_size = n / grain;  // at least `grain` elements per thread
  if (by_size < nt) nt = by_size < 1 ? 1 : int(by_size);
  return nt;
}

namespace detail {
void run_parallel(int nthreads, void (*fn)(void*, int, int), void* ctx) {
#ifdef PK_HAVE_OPENMP
  // Exceptions must not escape an OpenMP region: capture the first and rethrow after the join.
  std::exception_ptr err = nullptr;
#pragma omp parallel num_threads(nthreads)
  {
    try {
      fn(ctx, omp_get_thread_num(), omp_get_num_threads());
    } catch (...) {
#pragma omp critical(pk_err)
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
#else
  (void)nthreads;
  fn(ctx, 0, 1);
#endif
}
}  // namespace detail

}  // namespace pk
