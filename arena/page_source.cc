#include "arena/page_source.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "arena/internal/check.h"

namespace arena {

PageSource::~PageSource() = default;

void* PageSource::Map(std::size_t bytes, std::size_t alignment) {
  ARENA_CHECK(bytes > 0 && bytes % kPageSize == 0,
              "PageSource::Map: size must be a positive multiple of 4 KiB");
  ARENA_CHECK(alignment >= kPageSize && (alignment & (alignment - 1)) == 0,
              "PageSource::Map: alignment must be a power of two >= 4 KiB");
  std::shared_lock<std::shared_mutex> fork_guard(fork_mu_);
  // Reserve first so that two racing maps cannot both pass the cap. Relaxed:
  // the reservation is a counter, not a publication.
  const std::size_t before = mapped_.fetch_add(bytes, std::memory_order_relaxed);
  const std::size_t cap = max_mapped_.load(std::memory_order_relaxed);
  if (cap != 0 && before + bytes > cap) {
    mapped_.fetch_sub(bytes, std::memory_order_relaxed);
    map_failures_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  void* p = DoMap(bytes, alignment);
  if (p == nullptr) {
    mapped_.fetch_sub(bytes, std::memory_order_relaxed);
    map_failures_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  ARENA_CHECK(reinterpret_cast<std::uintptr_t>(p) % alignment == 0,
              "PageSource::DoMap returned a misaligned span");
  committed_.fetch_add(bytes, std::memory_order_relaxed);
  map_calls_.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void PageSource::Unmap(void* p, std::size_t bytes) {
  std::shared_lock<std::shared_mutex> fork_guard(fork_mu_);
  DoUnmap(p, bytes);
  committed_.fetch_sub(bytes, std::memory_order_relaxed);
  mapped_.fetch_sub(bytes, std::memory_order_relaxed);
  unmap_calls_.fetch_add(1, std::memory_order_relaxed);
}

void PageSource::Decommit(void* p, std::size_t bytes) {
  if (bytes == 0) return;
  std::shared_lock<std::shared_mutex> fork_guard(fork_mu_);
  DoDecommit(p, bytes);
  committed_.fetch_sub(bytes, std::memory_order_relaxed);
  decommit_calls_.fetch_add(1, std::memory_order_relaxed);
}

void PageSource::HoldForFork() {
  fork_mu_.lock();
  PrepareFork();
}

void PageSource::ReleaseAfterForkParent() {
  AfterForkParent();
  fork_mu_.unlock();
}

void PageSource::ReleaseAfterForkChild() {
  AfterForkChild();
  // Not unlock(): glibc's rwlock counts readers before they wait, so the
  // child's copy may still count the parent's threads that were queued for
  // it. The child has one thread and this is the only holder: start afresh
  // (a pthread rwlock owns no resources to release).
  ::new (&fork_mu_) std::shared_mutex();
}

void PageSource::Recommit(std::size_t bytes) {
  committed_.fetch_add(bytes, std::memory_order_relaxed);
}

PageSourceStats PageSource::stats() const {
  PageSourceStats s;
  s.mapped_bytes = mapped_.load(std::memory_order_relaxed);
  s.committed_bytes = committed_.load(std::memory_order_relaxed);
  s.map_calls = map_calls_.load(std::memory_order_relaxed);
  s.map_failures = map_failures_.load(std::memory_order_relaxed);
  s.unmap_calls = unmap_calls_.load(std::memory_order_relaxed);
  s.decommit_calls = decommit_calls_.load(std::memory_order_relaxed);
  return s;
}

void* MmapPageSource::DoMap(std::size_t bytes, std::size_t alignment) {
  const int prot = PROT_READ | PROT_WRITE;
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  if (alignment <= kPageSize) {
    void* p = mmap(nullptr, bytes, prot, flags, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  // Over-map by the alignment, then trim the unaligned head and the tail.
  const std::size_t span = bytes + alignment;
  void* raw = mmap(nullptr, span, prot, flags, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + alignment - 1) & ~(alignment - 1);
  const std::size_t head = aligned - start;
  const std::size_t tail = span - head - bytes;
  if (head != 0) munmap(raw, head);
  if (tail != 0) munmap(reinterpret_cast<void*>(aligned + bytes), tail);
  return reinterpret_cast<void*>(aligned);
}

void MmapPageSource::DoUnmap(void* p, std::size_t bytes) {
  ARENA_CHECK(munmap(p, bytes) == 0, "munmap failed");
}

void MmapPageSource::DoDecommit(void* p, std::size_t bytes) {
  // MADV_DONTNEED keeps the range mapped; the next touch faults in zeroes.
  ARENA_CHECK(madvise(p, bytes, MADV_DONTNEED) == 0, "madvise failed");
}

FixedRegionPageSource::FixedRegionPageSource(void* base, std::size_t size,
                                             bool madvise_on_decommit)
    : base_(reinterpret_cast<std::uintptr_t>(base)),
      size_(size),
      madvise_on_decommit_(madvise_on_decommit) {
  ARENA_CHECK(base_ % kPageSize == 0,
              "FixedRegionPageSource: base must be 4 KiB-aligned");
  const std::size_t usable = size - size % kPageSize;
  internal::MutexLock lock(&mu_);
  if (usable > 0) free_ = ::new (base) FreeSpan{nullptr, usable};
}

std::size_t FixedRegionPageSource::free_bytes() const {
  internal::MutexLock lock(&mu_);
  std::size_t total = 0;
  for (const FreeSpan* f = free_; f != nullptr; f = f->next) total += f->length;
  return total;
}

void* FixedRegionPageSource::DoMap(std::size_t bytes, std::size_t alignment) {
  internal::MutexLock lock(&mu_);
  for (FreeSpan** link = &free_; *link != nullptr; link = &(*link)->next) {
    FreeSpan* span = *link;
    const auto start = reinterpret_cast<std::uintptr_t>(span);
    const std::uintptr_t end = start + span->length;
    const std::uintptr_t aligned = (start + alignment - 1) & ~(alignment - 1);
    if (aligned < start || aligned > end || bytes > end - aligned) continue;
    const std::uintptr_t taken_end = aligned + bytes;
    FreeSpan* after = span->next;
    if (taken_end < end) {  // the tail stays free
      after = ::new (reinterpret_cast<void*>(taken_end))
          FreeSpan{span->next, end - taken_end};
    }
    if (aligned > start) {  // the head stays free
      span->length = aligned - start;
      span->next = after;
    } else {
      *link = after;
    }
    return reinterpret_cast<void*>(aligned);
  }
  return nullptr;
}

void FixedRegionPageSource::DoUnmap(void* p, std::size_t bytes) {
  const auto start = reinterpret_cast<std::uintptr_t>(p);
  ARENA_CHECK(start >= base_ && start + bytes <= base_ + size_,
              "FixedRegionPageSource: Unmap of a span outside the region");
  internal::MutexLock lock(&mu_);
  FreeSpan* prev = nullptr;
  FreeSpan* next = free_;
  while (next != nullptr && reinterpret_cast<std::uintptr_t>(next) < start) {
    prev = next;
    next = next->next;
  }
  ARENA_CHECK(prev == nullptr ||
                  reinterpret_cast<std::uintptr_t>(prev) + prev->length <= start,
              "FixedRegionPageSource: Unmap of a span that is already free");
  ARENA_CHECK(next == nullptr ||
                  start + bytes <= reinterpret_cast<std::uintptr_t>(next),
              "FixedRegionPageSource: Unmap of a span that is already free");
  FreeSpan* span;
  if (prev != nullptr &&
      reinterpret_cast<std::uintptr_t>(prev) + prev->length == start) {
    span = prev;  // merge with the span before
    span->length += bytes;
  } else {
    span = ::new (p) FreeSpan{next, bytes};
    if (prev == nullptr) {
      free_ = span;
    } else {
      prev->next = span;
    }
  }
  if (next != nullptr &&
      reinterpret_cast<std::uintptr_t>(span) + span->length ==
          reinterpret_cast<std::uintptr_t>(next)) {
    span->length += next->length;  // merge with the span after
    span->next = next->next;
  }
}

void FixedRegionPageSource::DoDecommit(void* p, std::size_t bytes) {
  if (madvise_on_decommit_) {
    ARENA_CHECK(madvise(p, bytes, MADV_DONTNEED) == 0, "madvise failed");
  }
}

}  // namespace arena
