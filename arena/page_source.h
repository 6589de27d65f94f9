// PageSource: where arena blocks come from.
//
// A PageSource maps spans of memory aligned to a power of two (the block
// size), gives their physical pages back while keeping the address range
// (Decommit), and unmaps them. The base class does the accounting (mapped and
// committed bytes, map calls and failures) and enforces an optional cap on
// mapped bytes; subclasses implement the three Do* hooks.
//
// Implementations here:
//   MmapPageSource         anonymous mmap / madvise(MADV_DONTNEED) / munmap.
//   FixedRegionPageSource  carves spans out of one region the embedder hands
//                          in; makes no OS calls at all.
// Test doubles (a malloc-backed source and a fault-injecting wrapper) are in
// arena/testing/.
//
// Thread-safety: every method may be called from any thread concurrently.
// Lifetime: a PageSource handed to arena::Configure must outlive every arena
// and every thread that uses the library (in practice: never destroy it).
#ifndef ARENA_PAGE_SOURCE_H_
#define ARENA_PAGE_SOURCE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <shared_mutex>

#include "absl/base/thread_annotations.h"
#include "arena/internal/mutex.h"

namespace arena {

struct PageSourceStats {
  std::size_t mapped_bytes = 0;     // mapped and not yet unmapped
  std::size_t committed_bytes = 0;  // mapped minus decommitted
  std::uint64_t map_calls = 0;      // successful Map calls
  std::uint64_t map_failures = 0;   // refused by the cap or by the source
  std::uint64_t unmap_calls = 0;
  std::uint64_t decommit_calls = 0;
};

class PageSource {
 public:
  PageSource() = default;
  PageSource(const PageSource&) = delete;
  PageSource& operator=(const PageSource&) = delete;
  virtual ~PageSource();

  // Maps `bytes` (a multiple of kPageSize) aligned to `alignment` (a power of
  // two, at least kPageSize). Returns nullptr when the source refuses or when
  // mapping would take mapped bytes past the cap. The memory is committed.
  void* Map(std::size_t bytes, std::size_t alignment);

  // REQUIRES: [p, p + bytes) is a whole span returned by Map, fully committed
  // (Recommit what was decommitted first). Gives the range back.
  void Unmap(void* p, std::size_t bytes);

  // REQUIRES: page-aligned sub-range of a mapped span. Gives the physical
  // pages back; the range stays mapped and its contents are unspecified.
  void Decommit(void* p, std::size_t bytes);

  // Accounting only: the caller is about to reuse a decommitted range (pages
  // come back on first touch).
  void Recommit(std::size_t bytes);

  // Caps mapped bytes; 0 means no cap. Map fails instead of exceeding it.
  void set_max_mapped_bytes(std::size_t bytes) {
    // Relaxed: a configuration value read by Map; it publishes nothing else.
    max_mapped_.store(bytes, std::memory_order_relaxed);
  }
  std::size_t max_mapped_bytes() const {
    return max_mapped_.load(std::memory_order_relaxed);
  }

  // A consistent-enough snapshot: each counter is read with a relaxed load,
  // so the fields may be from slightly different instants.
  PageSourceStats stats() const;

  // fork() support. Map, Unmap and Decommit hold a shared lock across their
  // reservation, the Do* call and the accounting; HoldForFork takes it
  // exclusively (so no call is half done when the process forks), then
  // calls the subclass hook PrepareFork; ReleaseAfterFork{Parent,Child} call
  // AfterFork{Parent,Child} and release it. The runtime's pthread_atfork
  // handlers call them after taking their own locks (and before releasing
  // them), so a source with a lock of its own takes it in PrepareFork and
  // releases it in both After hooks: the child never inherits it held by a
  // thread it does not have, nor a reservation that never completes. The
  // hooks are no-ops by default. A source that forwards to another (see
  // FaultInjectingPageSource) calls the other's Hold/Release functions.
  void HoldForFork();
  void ReleaseAfterForkParent();
  void ReleaseAfterForkChild();
  virtual void PrepareFork() {}
  virtual void AfterForkParent() {}
  virtual void AfterForkChild() {}

  static constexpr std::size_t kPageSize = 4096;

 protected:
  virtual void* DoMap(std::size_t bytes, std::size_t alignment) = 0;
  virtual void DoUnmap(void* p, std::size_t bytes) = 0;
  virtual void DoDecommit(void* p, std::size_t bytes) = 0;

 private:
  // All counters are statistics or reservations; they synchronize no data.
  std::atomic<std::size_t> mapped_{0};
  std::atomic<std::size_t> committed_{0};
  std::atomic<std::size_t> max_mapped_{0};
  std::atomic<std::uint64_t> map_calls_{0};
  std::atomic<std::uint64_t> map_failures_{0};
  std::atomic<std::uint64_t> unmap_calls_{0};
  std::atomic<std::uint64_t> decommit_calls_{0};
  // Shared by Map/Unmap/Decommit, exclusive across fork (HoldForFork).
  std::shared_mutex fork_mu_;
};

// Anonymous private mappings from the kernel. Alignment is obtained by mapping
// `bytes + alignment` and unmapping the unaligned head and tail.
class MmapPageSource final : public PageSource {
 public:
  MmapPageSource() = default;
  ~MmapPageSource() override = default;

 protected:
  void* DoMap(std::size_t bytes, std::size_t alignment) override;
  void DoUnmap(void* p, std::size_t bytes) override;
  void DoDecommit(void* p, std::size_t bytes) override;
};

// Serves spans from one caller-owned region [base, base + size), first fit,
// coalescing on Unmap, under a mutex (held across fork: see PrepareFork).
// The bookkeeping lives in the region itself: each free span starts with
// its length and a link to the next free span (by address), so Map and
// Unmap never allocate from the heap; they touch the first page of the
// free spans they walk. No OS calls: Decommit only counts (the embedder
// owns the memory), unless `madvise_on_decommit` is set and the region is
// an anonymous mapping.
// REQUIRES: the region outlives this object, is writable, and nothing else
// uses it; base is kPageSize-aligned.
class FixedRegionPageSource final : public PageSource {
 public:
  FixedRegionPageSource(void* base, std::size_t size,
                        bool madvise_on_decommit = false);
  ~FixedRegionPageSource() override = default;

  // Bytes of the region not handed out.
  std::size_t free_bytes() const;

  void PrepareFork() override ABSL_NO_THREAD_SAFETY_ANALYSIS { mu_.Lock(); }
  void AfterForkParent() override ABSL_NO_THREAD_SAFETY_ANALYSIS {
    mu_.Unlock();
  }
  void AfterForkChild() override ABSL_NO_THREAD_SAFETY_ANALYSIS {
    mu_.Unlock();
  }

 protected:
  void* DoMap(std::size_t bytes, std::size_t alignment) override;
  void DoUnmap(void* p, std::size_t bytes) override;
  void DoDecommit(void* p, std::size_t bytes) override;

 private:
  // At the start of every free span (spans are whole pages).
  struct FreeSpan {
    FreeSpan* next;      // the next free span by address
    std::size_t length;  // bytes of this span
  };

  const std::uintptr_t base_;
  const std::size_t size_;
  const bool madvise_on_decommit_;
  mutable internal::Mutex mu_;
  // Sorted by address; adjacent spans are always merged.
  FreeSpan* free_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace arena

#endif  // ARENA_PAGE_SOURCE_H_
