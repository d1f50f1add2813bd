// A cache of large output buffers. A kernel that returns a new array of tens of MB per call would
// otherwise have the OS map, page-fault and zero fresh memory every time (glibc hands blocks of
// 32 MB and more straight back to the OS on free): at 1e7 float32 elements that is about as long as
// the kernel itself. Blocks of at least kPoolMinBytes that the caller releases are kept, up to a byte
// cap (PYKERNELS_POOL_MB, default 128; 0 turns the cache off), and handed out again for a request of
// about the same size. Pure C++; the bindings wrap a block in a NumPy array whose base object
// releases it (csrc/bindings/array_cast.cpp).
#pragma once

#include <cstddef>

namespace pk {

constexpr size_t kPoolMinBytes = size_t(16) << 20;

// A block of at least `bytes` (64-byte aligned); *capacity receives its real size. Throws
// std::bad_alloc when memory is exhausted.
void* pool_acquire(size_t bytes, size_t* capacity);
// Gives a block from pool_acquire back: kept for reuse while the cache is under its cap, else freed.
void pool_release(void* p, size_t capacity);

struct PoolStats {
  size_t cached_blocks = 0, cached_bytes = 0, cap_bytes = 0, hits = 0, misses = 0;
};
PoolStats pool_stats();
// New cap in bytes (0: keep nothing); cached blocks beyond it are freed at once.
void pool_set_cap(size_t bytes);

}  // namespace pk
