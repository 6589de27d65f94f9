#include "arena/testing/test_page_sources.h"

#include <cstdlib>
#include <cstring>

#include "arena/internal/check.h"
#include "arena/internal/sanitizer.h"

namespace arena {
namespace testing {

MallocPageSource::~MallocPageSource() {
  internal::MutexLock lock(&mu_);
  ARENA_CHECK(spans_.empty(),
              "MallocPageSource destroyed with spans still mapped: blocks leaked");
}

std::size_t MallocPageSource::outstanding_spans() const {
  internal::MutexLock lock(&mu_);
  return spans_.size();
}

void* MallocPageSource::DoMap(std::size_t bytes, std::size_t alignment) {
  // posix_memalign, not aligned_alloc: a large mapping's size is a multiple
  // of the page, not of the alignment (block_size).
  void* p = nullptr;
  if (posix_memalign(&p, alignment, bytes) != 0) return nullptr;
  internal::MutexLock lock(&mu_);
  spans_.insert(p);
  return p;
}

void MallocPageSource::DoUnmap(void* p, std::size_t bytes) {
  {
    internal::MutexLock lock(&mu_);
    ARENA_CHECK(spans_.erase(p) == 1,
                "MallocPageSource: Unmap of a span it did not map");
  }
  internal::UnpoisonMemory(p, bytes);
  std::free(p);
}

void MallocPageSource::DoDecommit(void* p, std::size_t bytes) {
  internal::UnpoisonMemory(p, bytes);
  std::memset(p, 0xdd, bytes);
  internal::PoisonMemory(p, bytes);
}

void* FaultInjectingPageSource::DoMap(std::size_t bytes, std::size_t alignment) {
  attempts_.fetch_add(1, std::memory_order_relaxed);
  if (failing_.load(std::memory_order_relaxed)) return nullptr;
  std::int64_t left = remaining_.load(std::memory_order_relaxed);
  while (left >= 0) {
    if (left == 0) return nullptr;
    if (remaining_.compare_exchange_weak(left, left - 1,
                                         std::memory_order_relaxed)) {
      break;
    }
  }
  return target_->Map(bytes, alignment);
}

void FaultInjectingPageSource::DoUnmap(void* p, std::size_t bytes) {
  target_->Unmap(p, bytes);
}

void FaultInjectingPageSource::DoDecommit(void* p, std::size_t bytes) {
  target_->Decommit(p, bytes);
}

}  // namespace testing
}  // namespace arena
