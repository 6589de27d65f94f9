// ThreadCache: one thread's private stash of free blocks.
//
// A stack of at most `capacity` blocks (linked by BlockHeader::next). When it
// runs dry it takes one batch from the depot; when a Put takes it past
// `capacity` it gives the blocks beyond `capacity - batch` back to the depot
// in batches. The gap of one batch between the two thresholds is the
// hysteresis of Bonwick's two magazines: a thread that alternates between
// taking and returning blocks never touches the depot.
//
// Thread-safety: Get, Put and Flush only on the owning thread; the counters
// may be read from any thread (relaxed, single-writer, statistics only).
// Lifetime: the process runtime keeps one per thread and flushes it to the
// depot when the thread exits, so no block is ever lost.
#ifndef ARENA_INTERNAL_THREAD_CACHE_H_
#define ARENA_INTERNAL_THREAD_CACHE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/base/optimization.h"
#include "arena/internal/block.h"
#include "arena/internal/depot.h"

namespace arena {
namespace internal {

class ThreadCache {
 public:
  ThreadCache(Depot* depot, std::size_t capacity);
  ThreadCache(const ThreadCache&) = delete;
  ThreadCache& operator=(const ThreadCache&) = delete;
  ~ThreadCache();  // Flush(now)

  // A free block, or nullptr when the depot has none and none can be mapped.
  BlockHeader* Get() {
    BlockHeader* block = TryGetCached();
    return ABSL_PREDICT_TRUE(block != nullptr) ? block : GetFromDepot();
  }
  // A block of this cache, or nullptr when it is empty (no depot trip).
  BlockHeader* TryGetCached() {
    if (ABSL_PREDICT_FALSE(top_ == nullptr)) return nullptr;
    Bump(hits_);
    return PopTop();
  }

  // Takes `count` blocks linked by `next` (the last one's `next` null).
  // Blocks that overflow to the depot are stamped idle since now: the clock
  // is read only then, not on every Put.
  void Put(BlockHeader* head, std::size_t count) {
    if (head == nullptr) return;
    BlockHeader* tail = head;
    while (BlockHeader* next = tail->next.load(std::memory_order_relaxed)) {
      tail = next;
    }
    Put(head, tail, count);
  }
  // The same, given the list's last block: no walk over the list (its
  // headers share a cache set, block_size apart; see Arena::ReleaseAll).
  // Overflow, when the cache goes past capacity, still walks what it keeps.
  void Put(BlockHeader* head, BlockHeader* tail, std::size_t count) {
    tail->next.store(top_, std::memory_order_relaxed);
    top_ = head;
    const std::size_t total = count_ + count;
    if (ABSL_PREDICT_FALSE(total > capacity_)) {
      Overflow(total);
    } else {
      SetCount(total);
    }
  }

  // Gives every block to the depot; returns how many.
  std::size_t Flush(std::int64_t now_ms);

  std::size_t blocks() const { return count_; }
  // Readable from any thread.
  std::size_t blocks_relaxed() const {
    return count_mirror_.load(std::memory_order_relaxed);
  }
  std::uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  std::uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }

 private:
  BlockHeader* GetFromDepot();   // the cache is empty: a batch from the depot
  void Overflow(std::size_t total);  // holds `total` > capacity_: trim
  BlockHeader* PopTop() {            // top_ is not null
    BlockHeader* block = top_;
    top_ = block->next.load(std::memory_order_relaxed);
    block->next.store(nullptr, std::memory_order_relaxed);
    SetCount(count_ - 1);
    return block;
  }
  void SetCount(std::size_t count) {
    count_ = count;
    count_mirror_.store(count, std::memory_order_relaxed);
  }
  static void Bump(std::atomic<std::uint64_t>& counter) {
    // Single writer: load + store, not an RMW. Statistics only.
    counter.store(counter.load(std::memory_order_relaxed) + 1,
                  std::memory_order_relaxed);
  }

  Depot* const depot_;
  const std::size_t capacity_;
  BlockHeader* top_ = nullptr;
  std::size_t count_ = 0;
  std::atomic<std::size_t> count_mirror_{0};
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
};

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_THREAD_CACHE_H_
