// Thread-count state, fork detection and the worker pool behind parallel_for (parallel.hpp).
//
// The pool: workers (std::thread, started on first use, as many as the thread count needs) wait for
// a region's epoch to change, spinning for spin_us() and then sleeping on a condition variable. A
// region is a Job on the caller's stack: chunks are claimed with one fetch_add on job.next by the
// caller and by every worker that arrives in time; the caller runs chunks too and then waits for the
// claimed ones to finish (job.done), never for a worker that has not arrived. It then unpublishes the
// job and waits until no worker is inside it (`inside`: a worker counts itself in before it reads the
// job pointer; seq_cst on both sides, so a late worker either is counted or sees no job).
// Floating-point exception flags are per thread: each worker clears its flags before it runs a
// region's chunks, ORs what they raised into job.fpflags, and the caller raises that union in its
// own thread after the region (feraiseexcept), so the caller's flags say what a serial run would
// (NumPy's errstate checks the calling thread's flags after a loop).
// One region at a time: a second caller (another Python thread) that finds the pool busy runs its
// region on its own thread, which computes the same bits.
#include "pykernels/parallel.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cfenv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifdef PK_HAVE_OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PK_CPU_RELAX() _mm_pause()
#else
#define PK_CPU_RELAX() ((void)0)
#endif

namespace pk {
namespace {

std::atomic<int> g_threads{0};  // 0 = not yet initialised
std::atomic<bool> g_forked{false};
std::atomic<int> g_spin_us{-1};

void on_fork_child() { g_forked.store(true); }

// CPUs granted by a cgroup v2 CPU quota ("max" or "<quota> <period>" in /sys/fs/cgroup/cpu.max,
// e.g. a container limited to 1.5 CPUs: 2), 0 when there is none.
int cgroup_cpus() {
  std::FILE* f = std::fopen("/sys/fs/cgroup/cpu.max", "r");
  if (!f) return 0;
  char quota[32] = {0};
  long long period = 0;
  const int got = std::fscanf(f, "%31s %lld", quota, &period);
  std::fclose(f);
  if (got != 2 || period <= 0 || std::strcmp(quota, "max") == 0) return 0;
  const long long q = std::atoll(quota);
  return q > 0 ? int((q + period - 1) / period) : 0;
}

// The default thread count: OMP_NUM_THREADS, else the CPUs this process may run on
// (omp_get_max_threads() reads the affinity mask), capped by a cgroup CPU quota when there is one:
// more threads than the quota grants only queue behind each other.
int initial_threads() {
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, on_fork_child);
    return true;
  }();
  (void)registered;
#ifdef PK_HAVE_OPENMP
  int n = omp_get_max_threads();
#else
  int n = 1;
#endif
  const int quota = cgroup_cpus();
  if (quota > 0 && quota < n && !std::getenv("OMP_NUM_THREADS")) n = quota;
  return n;
}

using Clock = std::chrono::steady_clock;

// The flags NumPy reports (inexact is not one of them).
constexpr int kFpFlags = FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW | FE_INVALID;

struct Job {
  void (*fn)(void*, int64_t) = nullptr;
  void* ctx = nullptr;
  int64_t nchunks = 0;
  int max_workers = 0;  // workers allowed in (the region's thread count - 1)
  int caller_cpu = -1;  // the CPU the caller published the job from (sched_getcpu)
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::atomic<int> joined{0};
  std::atomic<bool> failed{false};
  std::atomic<int> fpflags{0};  // the FP exception flags the workers' chunks raised (kFpFlags)
  std::exception_ptr error;  // the first exception, set by whoever flips `failed`

  // Claims and runs chunks until none is left; returns how many it ran.
  int64_t work() {
    int64_t ran = 0;
    for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < nchunks;
         c = next.fetch_add(1, std::memory_order_relaxed)) {
      if (!failed.load(std::memory_order_relaxed)) {
        try {
          fn(ctx, c);
        } catch (...) {
          bool expected = false;
          if (failed.compare_exchange_strong(expected, true)) error = std::current_exception();
        }
      }
      ++ran;
      done.fetch_add(1, std::memory_order_release);
    }
    return ran;
  }
};

class Pool {
 public:
  static Pool& get() {
    static Pool* pool = new Pool();  // never destroyed: workers may outlive static destructors
    return *pool;
  }

  void run(int nthreads, int64_t nchunks, void (*fn)(void*, int64_t), void* ctx) {
    std::unique_lock<std::mutex> region(region_mu_, std::try_to_lock);
    if (!region.owns_lock()) {  // another thread's region is running: this one runs here
      busy_fallbacks_.fetch_add(1, std::memory_order_relaxed);
      for (int64_t c = 0; c < nchunks; ++c) fn(ctx, c);
      return;
    }
    ensure_workers(nthreads - 1);
    Job job;
    job.fn = fn;
    job.ctx = ctx;
    job.nchunks = nchunks;
    job.max_workers = nthreads - 1;
    job.caller_cpu = sched_getcpu();
    job_.store(&job, std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_seq_cst) > 0) steer_sleepers(job.caller_cpu);  // else all spin
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lk(sleep_mu_);
      sleep_cv_.notify_all();
    }
    const auto t0 = Clock::now();
    const int64_t mine = job.work();
    const auto t1 = Clock::now();
    wait_until([&] { return job.done.load(std::memory_order_acquire) >= nchunks; });
    note_wait(t1 - t0, Clock::now() - t1);
    job_.store(nullptr, std::memory_order_seq_cst);
    wait_until([&] { return inside_.load(std::memory_order_seq_cst) == 0; });
    if (const int fp = job.fpflags.load(std::memory_order_relaxed)) std::feraiseexcept(fp);
    regions_.fetch_add(1, std::memory_order_relaxed);
    caller_chunks_.fetch_add(mine, std::memory_order_relaxed);
    worker_chunks_.fetch_add(nchunks - mine, std::memory_order_relaxed);
    if (job.failed.load()) std::rethrow_exception(job.error);
  }

  // True while regions should run on the calling thread alone (see note_wait).
  bool backing_off() const {
    return Clock::now().time_since_epoch().count() < serial_until_.load(std::memory_order_relaxed);
  }

  PoolCounters counters() const {
    PoolCounters c;
    c.regions = regions_.load();
    c.caller_chunks = caller_chunks_.load();
    c.worker_chunks = worker_chunks_.load();
    c.busy_fallbacks = busy_fallbacks_.load();
    c.stalls = stalls_.load();
    c.serial_regions = serial_regions_.load();
    c.steered = steered_.load();
    c.moved = moved_.load();
    return c;
  }

  void count_serial() { serial_regions_.fetch_add(1, std::memory_order_relaxed); }

 private:
  // Spins for a while (the usual wait: a worker finishing its chunk), then sleeps in short steps: a
  // worker that was descheduled mid-chunk can then be moved to this core, which is idle meanwhile.
  template <class Pred>
  static void wait_until(Pred ready) {
    const auto spin_end = Clock::now() + std::chrono::microseconds(50);
    int polls = 0;
    while (!ready()) {
      PK_CPU_RELAX();
      if (++polls % 64 == 0 && Clock::now() >= spin_end) {
        while (!ready()) std::this_thread::sleep_for(std::chrono::microseconds(20));
        return;
      }
    }
  }

  // A worker that claimed a chunk and then lost its core (another process runs there) makes the
  // caller wait for it far longer than the caller's own share took. After such a stall the regions
  // run on the calling thread alone for a while, and back to the pool at once when that time is up:
  // on a busy core one thread is what the work gets anyway, and it never waits for a time slice.
  // How long depends on how recent the previous stall is. A lone stall (none in the second before)
  // backs off for 1 ms: on an idle machine one is common (on a 2-vCPU VM about one per process,
  // ~4 ms, a scheduler tick), and 10 ms of serial regions after it cost more than the stall did (half
  // of a hundred 2-thread calls of a 1e6 tanh ran serially: _core._thread_pool_counters()
  // ["serial_regions"]). Stalls within a second of each other mean a busy core: 10 ms, then doubling
  // up to 1 s (bench/load.py measures calls next to a busy core).
  void note_wait(Clock::duration own, Clock::duration waited) {
    const auto limit = std::max<Clock::duration>(std::chrono::microseconds(200), 4 * own);
    if (waited <= limit) return;
    stalls_.fetch_add(1, std::memory_order_relaxed);
    const auto now = Clock::now();
    const bool recent = now - last_stall_ < std::chrono::seconds(1);
    last_stall_ = now;
    backoff_ms_ = !recent ? 1 : std::min(1000, std::max(10, backoff_ms_ * 2));
    serial_until_.store((now + std::chrono::milliseconds(backoff_ms_)).time_since_epoch().count(),
                        std::memory_order_relaxed);
  }

  // One pool thread. `asleep` is true while it waits on the condition variable. `excluded` is the
  // CPU taken out of its CPU set while it is active (-1: none), `saved` the set it had before
  // (restored when it sleeps). `saved` is written by the worker, or by a caller while the worker
  // sleeps (the condition variable's mutex orders the two).
  struct Worker {
    pthread_t handle{};
    std::atomic<bool> asleep{false};  // a new thread is placed by avoid_caller when it joins
    std::atomic<int> excluded{-1};
    cpu_set_t saved{};
  };

  void ensure_workers(int n) {
    while (int(workers_.size()) < n) {
      Worker* w = new Worker();  // never freed, like the pool: the thread runs until the process ends
      // the epoch as of now: a region published before the thread first runs is still its to join
      std::thread t([this, w, e = epoch_.load(std::memory_order_acquire)] { loop(w, e); });
      w->handle = t.native_handle();
      t.detach();
      workers_.push_back(w);
    }
  }

  // Keeping workers off the caller's CPU. A worker on the caller's CPU only time-shares with it and
  // arrives after the caller has run every chunk: the region runs at one core's speed although
  // another core is idle. The scheduler puts it there (wake-affine placement of a woken thread, and
  // kernels that pack threads onto few vCPUs move a spinning one there), so:
  //  * before it wakes sleeping workers, the caller takes its own CPU out of their CPU sets;
  //  * a worker that joins a region from the caller's CPU takes that CPU out of its set (and so
  //    leaves it), as does one whose set still excludes a CPU the caller has left;
  //  * a worker gets its own set back when it goes to sleep.
  // So while regions come back to back, the workers stay off the caller's CPU; between spells they
  // may go anywhere. A set of one CPU, or one without the caller's, is left alone (the user's
  // pinning wins). One pthread_setaffinity_np per change (the caller's CPU rarely changes). A busy
  // CPU cannot hold a region up: the caller never waits for a worker that has not arrived.
  static bool narrow(Worker* w, int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return false;
    if (w->excluded.load(std::memory_order_acquire) < 0 &&
        pthread_getaffinity_np(w->handle, sizeof w->saved, &w->saved) != 0)
      return false;
    if (!CPU_ISSET(cpu, &w->saved) || CPU_COUNT(&w->saved) < 2) return false;
    cpu_set_t others = w->saved;
    CPU_CLR(cpu, &others);
    if (pthread_setaffinity_np(w->handle, sizeof others, &others) != 0) return false;
    w->excluded.store(cpu, std::memory_order_seq_cst);
    return true;
  }

  // Every sleeping worker, not only as many as the region wants: the notify wakes them all, and
  // whichever arrives first joins.
  void steer_sleepers(int caller_cpu) {
    for (Worker* w : workers_) {
      if (!w->asleep.load(std::memory_order_seq_cst) || w->excluded.load(std::memory_order_relaxed) == caller_cpu)
        continue;
      if (narrow(w, caller_cpu)) steered_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void avoid_caller(Worker* self, int caller_cpu) {
    const int ex = self->excluded.load(std::memory_order_acquire);
    if (sched_getcpu() == caller_cpu) {
      if (narrow(self, caller_cpu)) moved_.fetch_add(1, std::memory_order_relaxed);
    } else if (ex >= 0 && ex != caller_cpu) {
      narrow(self, caller_cpu);
    }
  }

  static void free_cpus(Worker* self) {
    if (self->excluded.load(std::memory_order_acquire) < 0) return;
    pthread_setaffinity_np(pthread_self(), sizeof self->saved, &self->saved);
    self->excluded.store(-1, std::memory_order_seq_cst);
  }

  void loop(Worker* self, uint64_t seen) {
    self->asleep.store(false, std::memory_order_seq_cst);
    while (true) {
      // Wait for the next region: spin (back-to-back regions find the worker awake), then sleep.
      const auto spin_end = Clock::now() + std::chrono::microseconds(spin_us());
      int polls = 0;
      while (epoch_.load(std::memory_order_acquire) == seen) {
        PK_CPU_RELAX();
        if (++polls % 64 == 0 && Clock::now() >= spin_end) {
          free_cpus(self);
          std::unique_lock<std::mutex> lk(sleep_mu_);
          sleeping_.fetch_add(1, std::memory_order_seq_cst);
          self->asleep.store(true, std::memory_order_seq_cst);
          sleep_cv_.wait(lk, [&] { return epoch_.load(std::memory_order_seq_cst) != seen; });
          self->asleep.store(false, std::memory_order_seq_cst);
          sleeping_.fetch_sub(1, std::memory_order_seq_cst);
          break;
        }
      }
      seen = epoch_.load(std::memory_order_acquire);
      inside_.fetch_add(1, std::memory_order_seq_cst);
      Job* job = job_.load(std::memory_order_seq_cst);
      // Join only while chunks are left and the region wants more threads.
      if (job && job->next.load(std::memory_order_relaxed) < job->nchunks &&
          job->joined.fetch_add(1, std::memory_order_relaxed) < job->max_workers) {
        avoid_caller(self, job->caller_cpu);
        std::feclearexcept(kFpFlags);
        job->work();
        if (const int fp = std::fetestexcept(kFpFlags)) job->fpflags.fetch_or(fp, std::memory_order_relaxed);
      }
      inside_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }

  std::mutex region_mu_;  // one region at a time
  std::atomic<Job*> job_{nullptr};
  std::atomic<uint64_t> epoch_{0};
  std::atomic<int> inside_{0};
  std::atomic<int> sleeping_{0};
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  std::vector<Worker*> workers_;  // grows under region_mu_
  std::atomic<int64_t> regions_{0}, caller_chunks_{0}, worker_chunks_{0}, busy_fallbacks_{0};
  std::atomic<int64_t> stalls_{0}, serial_regions_{0}, steered_{0}, moved_{0};
  int backoff_ms_ = 0;              // under region_mu_
  Clock::time_point last_stall_{};  // under region_mu_
  std::atomic<Clock::rep> serial_until_{0};
};

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

int spin_us() {
  int v = g_spin_us.load(std::memory_order_relaxed);
  if (v < 0) {
    v = kDefaultSpinUs;
    if (const char* e = std::getenv("PYKERNELS_SPIN_US")) {
      const long x = std::strtol(e, nullptr, 10);
      if (x >= 0 && x <= 1000000) v = int(x);
    }
    g_spin_us.store(v, std::memory_order_relaxed);
  }
  return v;
}

void set_spin_us(int us) {
  if (us < 0 || us > 1000000) throw std::invalid_argument("spin time must be in [0, 1000000] us, got " + std::to_string(us));
  g_spin_us.store(us);
}

PoolCounters pool_counters() { return Pool::get().counters(); }

namespace detail {
void run_chunks(int nthreads, int64_t nchunks, void (*fn)(void*, int64_t), void* ctx) {
  if (nthreads <= 1 || nchunks <= 1 || g_forked.load(std::memory_order_relaxed)) {
    for (int64_t c = 0; c < nchunks; ++c) fn(ctx, c);
    return;
  }
  Pool& pool = Pool::get();
  if (pool.backing_off()) {
    pool.count_serial();
    for (int64_t c = 0; c < nchunks; ++c) fn(ctx, c);
    return;
  }
  pool.run(nthreads, nchunks, fn, ctx);
}
}  // namespace detail

}  // namespace pk
