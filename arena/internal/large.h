// Large allocations: one dedicated mapping per allocation above
// Config::large_threshold, the arena's list of them, and the process-wide
// cache of freed mappings.
//
// A large mapping starts with a BlockHeader (kind kLarge, size = bytes of
// the whole mapping) and is aligned to block_size, so `p & ~(block_size - 1)`
// of its one allocation finds the header, as for small blocks.
//
// LargeCache keeps freed mappings (up to `capacity` bytes) for later large
// allocations, in one intrusive list in the mappings' own headers, sorted by
// size and newest first within a size: it never allocates from the heap, so
// it may be used on noexcept paths (Reset, Deallocate). A request takes the
// smallest cached mapping of at least its need and at most twice its size
// and at most the caller's limit (an arena's remaining max_bytes); large
// allocations are rare and the cache holds few mappings, so a mutex and a
// linear walk are fine. Thread-safety: every method may be called from any
// thread. Lifetime: the runtime's, never destroyed.
#ifndef ARENA_INTERNAL_LARGE_H_
#define ARENA_INTERNAL_LARGE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "arena/internal/block.h"
#include "arena/internal/mutex.h"
#include "arena/page_source.h"

namespace arena {
namespace internal {

// Bytes to map for a mapping that must hold `need` bytes: page-rounded, then
// up to one of 8 classes per power of two (at most 12.5% over) so that a
// cached mapping fits later requests; but never past `limit` when the
// page-rounded need fits under it. Returns 0 when even that does not fit.
std::size_t LargeMappingSize(std::size_t need, std::size_t limit);

// An arena's large mappings: a doubly linked list through next/prev.
void LinkLarge(BlockHeader** head, BlockHeader* block);
void UnlinkLarge(BlockHeader** head, BlockHeader* block);

class LargeCache {
 public:
  LargeCache(PageSource* source, std::size_t capacity)
      : source_(source), capacity_(capacity) {}
  LargeCache(const LargeCache&) = delete;
  LargeCache& operator=(const LargeCache&) = delete;

  // A cached mapping of at least `need` bytes and at most `most` bytes, or
  // nullptr. The mapping's header is reset; its memory is unspecified.
  BlockHeader* Take(std::size_t need, std::size_t most) ABSL_LOCKS_EXCLUDED(mu_);

  // Keeps the (unpoisoned) mapping when it fits in the capacity; false when
  // it does not (the caller unmaps it).
  bool Put(BlockHeader* block, std::int64_t now_ms) ABSL_LOCKS_EXCLUDED(mu_);

  // Unmaps the mappings idle since `cutoff_ms` or earlier (all of them when
  // cutoff_ms is the maximum); returns their bytes. In a fork() child,
  // mappings another thread was unmapping at the fork stay mapped, and
  // counted, but unreachable.
  std::size_t Release(std::int64_t cutoff_ms) ABSL_LOCKS_EXCLUDED(mu_);

  // Statistics, relaxed.
  std::size_t bytes() const {
    return bytes_mirror_.load(std::memory_order_relaxed);
  }
  std::uint64_t released_bytes() const {
    return released_bytes_.load(std::memory_order_relaxed);
  }

  // pthread_atfork support: hold the mutex across fork.
  void LockForFork() ABSL_EXCLUSIVE_LOCK_FUNCTION(mu_) { mu_.Lock(); }
  void UnlockAfterFork() ABSL_UNLOCK_FUNCTION(mu_) { mu_.Unlock(); }

 private:
  PageSource* const source_;
  const std::size_t capacity_;
  Mutex mu_;
  // Sorted by size ascending, the most recently freed first within a size;
  // linked through BlockHeader::next.
  BlockHeader* head_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Statistics only; they synchronize nothing.
  std::atomic<std::size_t> bytes_mirror_{0};
  std::atomic<std::uint64_t> released_bytes_{0};
};

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_LARGE_H_
