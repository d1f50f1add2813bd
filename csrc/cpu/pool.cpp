// Large-output block cache (see pool.hpp). Blocks are rounded up to 2 MiB (transparent huge pages are
// asked for on Linux, as NumPy does for its large allocations). A request takes the smallest cached
// block that is at least as large and at most a quarter (+ 2 MiB) larger; released blocks go to the
// back of the list and the oldest are freed first when the cap is exceeded.
#include "pykernels/pool.hpp"

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace pk {
namespace {

constexpr size_t kRound = size_t(2) << 20;

struct Block {
  void* p;
  size_t cap;
};

struct Pool {
  std::mutex mu;
  std::vector<Block> blocks;  // oldest first
  size_t bytes = 0;
  size_t cap;
  size_t hits = 0, misses = 0;
  Pool() {
    size_t mb = 128;
    if (const char* env = std::getenv("PYKERNELS_POOL_MB")) {
      char* end = nullptr;
      const long long v = std::strtoll(env, &end, 10);
      if (end != env && v >= 0) mb = size_t(v);
    }
    cap = mb << 20;
  }
  void trim() {  // mu held
    size_t i = 0;
    while (bytes > cap && i < blocks.size()) {
      std::free(blocks[i].p);
      bytes -= blocks[i].cap;
      ++i;
    }
    blocks.erase(blocks.begin(), blocks.begin() + std::ptrdiff_t(i));
  }
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: arrays may release blocks during interpreter exit
  return *p;
}

}  // namespace

void* pool_acquire(size_t bytes, size_t* capacity) {
  Pool& pl = pool();
  {
    std::lock_guard<std::mutex> lock(pl.mu);
    size_t best = pl.blocks.size();
    for (size_t i = 0; i < pl.blocks.size(); ++i) {
      const size_t c = pl.blocks[i].cap;
      if (c >= bytes && c <= bytes + bytes / 4 + kRound && (best == pl.blocks.size() || c < pl.blocks[best].cap))
        best = i;
    }
    if (best != pl.blocks.size()) {
      const Block b = pl.blocks[best];
      pl.blocks.erase(pl.blocks.begin() + std::ptrdiff_t(best));
      pl.bytes -= b.cap;
      ++pl.hits;
      *capacity = b.cap;
      return b.p;
    }
    ++pl.misses;
  }
  const size_t cap = (bytes + kRound - 1) / kRound * kRound;
  void* p = std::aligned_alloc(64, cap);
  if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Only the 2 MiB-aligned part of the block can use huge pages; madvise on the whole block is fine.
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + kRound - 1) / kRound * kRound;
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + cap) / kRound * kRound;
  if (hi > lo) (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#endif
  *capacity = cap;
  return p;
}

void pool_release(void* p, size_t capacity) {
  if (!p) return;
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mu);
  if (capacity > pl.cap) {
    std::free(p);
    return;
  }
  pl.blocks.push_back(Block{p, capacity});
  pl.bytes += capacity;
  pl.trim();
}

PoolStats pool_stats() {
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mu);
  PoolStats s;
  s.cached_blocks = pl.blocks.size();
  s.cached_bytes = pl.bytes;
  s.cap_bytes = pl.cap;
  s.hits = pl.hits;
  s.misses = pl.misses;
  return s;
}

void pool_set_cap(size_t bytes) {
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mu);
  pl.cap = bytes;
  pl.trim();
}

}  // namespace pk
