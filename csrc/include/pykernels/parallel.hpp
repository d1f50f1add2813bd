// Thread control and the one parallel loop every kernel uses.
//
// Threads: OpenMP. The count starts at omp_get_max_threads() (so OMP_NUM_THREADS is honoured) and can
// be changed with set_num_threads(). A child created by fork() after the parent used OpenMP runs every
// kernel on one thread: libgomp's thread pool does not survive fork and a child that enters a parallel
// region can hang (GCC bug 60035), so after a fork we never enter one.
//
// Determinism: parallel_for splits [0, n) into contiguous ranges; kernels make every output element
// depend only on the input, never on the split, so results are bit-identical for every thread count.
#pragma once

#include <cstdint>
#include <type_traits>

namespace pk {

int num_threads();            // threads a kernel may use now (1 in a forked child)
void set_num_threads(int n);  // n >= 1
int max_hw_threads();         // omp_get_num_procs() (or 1 without OpenMP)
bool openmp_enabled();
bool in_forked_child();
int openmp_version();  // _OPENMP (e.g. 201511) or 0

// Runs body(begin, end) over contiguous pieces of [0, n) in parallel. A piece boundary is a multiple
// of `align` (so threads do not share cache lines of the output). Runs serially, without entering
// an OpenMP region, when n < grain, when one thread is allowed, or in a forked child.
template <class F>
void parallel_for(int64_t n, int64_t grain, int64_t align, F&& body);

int threads_for(int64_t n, int64_t grain);  // how many threads parallel_for would use

namespace detail {
void run_parallel(int nthreads, void (*fn)(void*, int, int), void* ctx);
}

template <class F>
void parallel_for(int64_t n, int64_t grain, int64_t align, F&& body) {
  if (n <= 0) return;
  const int nt = threads_for(n, grain);
  if (nt <= 1) {
    body(int64_t(0), n);
    return;
  }
  struct Ctx {
    std::remove_reference_t<F>* body;
    int64_t n, align;
  } ctx{&body, n, align < 1 ? 1 : align};
  detail::run_parallel(
      nt,
      [](void* p, int t, int nthreads) {
        auto* c = static_cast<Ctx*>(p);
        // Even split in units of `align`; the last thread takes the remainder.
        const int64_t units = (c->n + c->align - 1) / c->align;
        const int64_t per = units / nthreads, extra = units % nthreads;
        const int64_t u0 = t * per + (t < extra ? t : extra);
        const int64_t u1 = u0 + per + (t < extra ? 1 : 0);
        const int64_t b = u0 * c->align;
        const int64_t e = u1 * c->align < c->n ? u1 * c->align : c->n;
        if (b < e) (*c->body)(b, e);
      },
      &ctx);
}

}  // namespace pk
