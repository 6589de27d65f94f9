#include "arena/internal/thread_cache.h"

#include "arena/internal/check.h"
#include "arena/internal/clock.h"

namespace arena {
namespace internal {

ThreadCache::ThreadCache(Depot* depot, std::size_t capacity)
    : depot_(depot), capacity_(capacity) {
  ARENA_CHECK(capacity_ >= depot_->batch_blocks(),
              "ThreadCache: capacity must be at least one depot batch");
}

ThreadCache::~ThreadCache() {
  if (count_ != 0) Flush(SteadyNowMs());
}

BlockHeader* ThreadCache::GetFromDepot() {
  Bump(misses_);
  BlockHeader* batch = nullptr;
  const std::size_t n = depot_->Acquire(&batch);
  if (n == 0) return nullptr;
  top_ = batch;
  SetCount(n);
  return PopTop();
}

void ThreadCache::Overflow(std::size_t total) {
  // Keep the most recently returned blocks (warm in this core's cache);
  // the older ones below go to the depot.
  const std::size_t keep = capacity_ - depot_->batch_blocks();
  BlockHeader* rest;
  if (keep == 0) {
    rest = top_;
    top_ = nullptr;
  } else {
    BlockHeader* last = top_;
    for (std::size_t i = 1; i < keep; ++i) {
      last = last->next.load(std::memory_order_relaxed);
    }
    rest = last->next.load(std::memory_order_relaxed);
    last->next.store(nullptr, std::memory_order_relaxed);
  }
  depot_->Release(rest, total - keep, SteadyNowMs());
  SetCount(keep);
}

std::size_t ThreadCache::Flush(std::int64_t now_ms) {
  const std::size_t n = count_;
  if (n != 0) depot_->Release(top_, n, now_ms);
  top_ = nullptr;
  SetCount(0);
  return n;
}

}  // namespace internal
}  // namespace arena
