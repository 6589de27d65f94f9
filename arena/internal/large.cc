#include "arena/internal/large.h"

#include "absl/numeric/bits.h"

namespace arena {
namespace internal {

std::size_t LargeMappingSize(std::size_t need, std::size_t limit) {
  constexpr std::size_t kPage = PageSource::kPageSize;
  const std::size_t size = (need + kPage - 1) & ~(kPage - 1);
  if (size > limit) return 0;
  if (size <= 8 * kPage) return size;
  const int e = 63 - absl::countl_zero(static_cast<std::uint64_t>(size));
  const std::size_t step = std::size_t{1} << (e - 3);
  const std::size_t rounded = (size + step - 1) & ~(step - 1);
  return rounded <= limit ? rounded : size;
}

void LinkLarge(BlockHeader** head, BlockHeader* block) {
  block->prev = nullptr;
  block->next.store(*head, std::memory_order_relaxed);
  if (*head != nullptr) (*head)->prev = block;
  *head = block;
}

void UnlinkLarge(BlockHeader** head, BlockHeader* block) {
  BlockHeader* next = block->next.load(std::memory_order_relaxed);
  if (block->prev != nullptr) {
    block->prev->next.store(next, std::memory_order_relaxed);
  } else {
    *head = next;
  }
  if (next != nullptr) next->prev = block->prev;
  block->prev = nullptr;
  block->next.store(nullptr, std::memory_order_relaxed);
}

BlockHeader* LargeCache::Take(std::size_t need, std::size_t most) {
  MutexLock lock(&mu_);
  BlockHeader* prev = nullptr;
  for (BlockHeader* b = head_; b != nullptr;
       prev = b, b = b->next.load(std::memory_order_relaxed)) {
    if (b->size < need) continue;
    // The list is sorted: this is the smallest that is big enough.
    if (b->size > most) return nullptr;
    BlockHeader* next = b->next.load(std::memory_order_relaxed);
    if (prev == nullptr) {
      head_ = next;
    } else {
      prev->next.store(next, std::memory_order_relaxed);
    }
    bytes_ -= b->size;
    bytes_mirror_.store(bytes_, std::memory_order_relaxed);
    b->next.store(nullptr, std::memory_order_relaxed);
    b->prev = nullptr;
    b->owner = nullptr;
    return b;
  }
  return nullptr;
}

bool LargeCache::Put(BlockHeader* block, std::int64_t now_ms) {
  const std::size_t size = block->size;
  MutexLock lock(&mu_);
  if (bytes_ + size > capacity_) return false;
  block->owner = nullptr;
  block->prev = nullptr;
  block->idle_since_ms = now_ms;
  BlockHeader* prev = nullptr;
  BlockHeader* at = head_;
  while (at != nullptr && at->size < size) {
    prev = at;
    at = at->next.load(std::memory_order_relaxed);
  }
  block->next.store(at, std::memory_order_relaxed);
  if (prev == nullptr) {
    head_ = block;
  } else {
    prev->next.store(block, std::memory_order_relaxed);
  }
  bytes_ += size;
  bytes_mirror_.store(bytes_, std::memory_order_relaxed);
  return true;
}

std::size_t LargeCache::Release(std::int64_t cutoff_ms) {
  BlockHeader* doomed = nullptr;
  std::size_t bytes = 0;
  {
    MutexLock lock(&mu_);
    BlockHeader* prev = nullptr;
    for (BlockHeader* b = head_; b != nullptr;) {
      BlockHeader* next = b->next.load(std::memory_order_relaxed);
      if (b->idle_since_ms <= cutoff_ms) {
        if (prev == nullptr) {
          head_ = next;
        } else {
          prev->next.store(next, std::memory_order_relaxed);
        }
        b->next.store(doomed, std::memory_order_relaxed);
        doomed = b;
        bytes += b->size;
      } else {
        prev = b;
      }
      b = next;
    }
    bytes_ -= bytes;
    bytes_mirror_.store(bytes_, std::memory_order_relaxed);
  }
  while (doomed != nullptr) {
    BlockHeader* next = doomed->next.load(std::memory_order_relaxed);
    source_->Unmap(doomed, doomed->size);
    doomed = next;
  }
  released_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  return bytes;
}

}  // namespace internal
}  // namespace arena
