// Thread control and the one parallel loop every kernel uses.
//
// Threads: the count starts at omp_get_max_threads() (so OMP_NUM_THREADS and the CPUs the process
// may run on are honoured) and can be changed with set_num_threads(). A child created by fork() runs
// every kernel on one thread (the parent's worker threads do not exist in it).
//
// Work sharing (parallel.cpp): parallel_for cuts [0, n) into chunks that the calling thread and the
// pool's workers claim as they go, and the caller waits only for chunks that were claimed. So a
// worker that is not running (another process holds its core) costs nothing: the caller takes its
// chunks. A static split with a join would wait a scheduler time slice for it instead.
//
// Determinism: chunk boundaries depend only on n, the grain and the thread count, never
// on which thread runs a chunk, and kernels make every output element depend only on the input, never
// on the split; so results are bit-identical for every thread count and every schedule.
#pragma once

#include <cstdint>
#include <type_traits>

namespace pk {

int num_threads();            // threads a kernel may use now (1 in a forked child)
void set_num_threads(int n);  // n >= 1
int max_hw_threads();         // CPUs this process may run on (or 1 without OpenMP)
bool openmp_enabled();
bool in_forked_child();
int openmp_version();  // _OPENMP (e.g. 201511) or 0

// Chunks per thread parallel_for cuts its range into by default: a descheduled worker holds at most
// one small chunk, and the others finish the rest. Callers whose body repeats per-call set-up (the
// GEMM's small paths pack B per call) ask for 1.
constexpr int kChunksPerThread = 4;

// Runs body(begin, end) over contiguous pieces of [0, n) in parallel. A piece boundary is a multiple
// of `align` (so threads do not share cache lines of the output). Runs serially, without waking a
// worker, when n < grain, when one thread is allowed, or in a forked child.
template <class F>
void parallel_for(int64_t n, int64_t grain, int64_t align, F&& body, int chunks_per_thread = kChunksPerThread);

int threads_for(int64_t n, int64_t grain);  // how many threads parallel_for would use

// How the pool has behaved (for tests and benchmarks): regions run in parallel, chunks the caller
// ran itself, chunks workers ran, regions run serially because another caller held the pool, waits
// for a descheduled worker (stalls) and the regions then run on the caller alone (serial_regions).
struct PoolCounters {
  int64_t regions = 0, caller_chunks = 0, worker_chunks = 0, busy_fallbacks = 0, stalls = 0, serial_regions = 0;
  int64_t steered = 0;  // sleeping workers kept off the caller's CPU as a region woke them
  int64_t moved = 0;    // workers that found themselves on the caller's CPU and left it
};
PoolCounters pool_counters();
// Microseconds an idle worker spins before it sleeps (PYKERNELS_SPIN_US, default kDefaultSpinUs):
// back-to-back calls find it awake; a sleeping one costs a wake-up (a few microseconds) per region.
constexpr int kDefaultSpinUs = 100;
int spin_us();
void set_spin_us(int us);

namespace detail {
// Runs fn(ctx, c) for every chunk c < nchunks on up to nthreads threads (the caller included).
void run_chunks(int nthreads, int64_t nchunks, void (*fn)(void*, int64_t), void* ctx);
}

template <class F>
void parallel_for(int64_t n, int64_t grain, int64_t align, F&& body, int chunks_per_thread) {
  if (n <= 0) return;
  const int nt = threads_for(n, grain);
  if (nt <= 1) {
    body(int64_t(0), n);
    return;
  }
  struct Ctx {
    std::remove_reference_t<F>* body;
    int64_t n, align, units, nchunks;
  } ctx{&body, n, align < 1 ? 1 : align, 0, 0};
  ctx.units = (n + ctx.align - 1) / ctx.align;
  const int64_t want = int64_t(nt) * (chunks_per_thread < 1 ? 1 : chunks_per_thread);
  ctx.nchunks = ctx.units < want ? ctx.units : want;
  detail::run_chunks(
      nt, ctx.nchunks,
      [](void* p, int64_t c) {
        auto* x = static_cast<Ctx*>(p);
        // Even split in units of `align`: chunk c is units [c*units/nchunks, (c+1)*units/nchunks).
        const int64_t u0 = c * x->units / x->nchunks, u1 = (c + 1) * x->units / x->nchunks;
        const int64_t b = u0 * x->align;
        const int64_t e = u1 * x->align < x->n ? u1 * x->align : x->n;
        if (b < e) (*x->body)(b, e);
      },
      &ctx);
}

}  // namespace pk
