// Page sources for tests (testonly; embedders may use them in theirs).
//
// MallocPageSource: one aligned_alloc per span, so AddressSanitizer and
// ThreadSanitizer see every span as a heap object; Decommit scribbles over the
// range (as MADV_DONTNEED would zero it) so code that relies on decommitted
// contents fails; the destructor checks that every span came back.
//
// FaultInjectingPageSource: forwards to another source and refuses maps on
// demand: all of them while failing, or every map after the next N.
//
// Thread-safety: all methods may be called from any thread.
#ifndef ARENA_TESTING_TEST_PAGE_SOURCES_H_
#define ARENA_TESTING_TEST_PAGE_SOURCES_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <set>

#include "absl/base/thread_annotations.h"
#include "arena/internal/mutex.h"
#include "arena/page_source.h"

namespace arena {
namespace testing {

class MallocPageSource final : public PageSource {
 public:
  MallocPageSource() = default;
  ~MallocPageSource() override;  // checks that every span was unmapped

  std::size_t outstanding_spans() const;

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
  mutable internal::Mutex mu_;
  std::set<void*> spans_ ABSL_GUARDED_BY(mu_);
};

class FaultInjectingPageSource final : public PageSource {
 public:
  explicit FaultInjectingPageSource(PageSource* target) : target_(target) {}

  // While true every Map fails.
  void set_failing(bool failing) {
    // Relaxed: a test switch; the test orders it with its own threads.
    failing_.store(failing, std::memory_order_relaxed);
  }
  // The next `n` maps succeed, every later one fails (until set_failing(false)).
  void FailAfter(std::int64_t n) {
    remaining_.store(n, std::memory_order_relaxed);
  }
  void Heal() {
    failing_.store(false, std::memory_order_relaxed);
    remaining_.store(-1, std::memory_order_relaxed);
  }
  std::int64_t attempts() const {
    return attempts_.load(std::memory_order_relaxed);
  }

  // The target's locks are held across fork as its own.
  void PrepareFork() override { target_->HoldForFork(); }
  void AfterForkParent() override { target_->ReleaseAfterForkParent(); }
  void AfterForkChild() override { target_->ReleaseAfterForkChild(); }

 protected:
  void* DoMap(std::size_t bytes, std::size_t alignment) override;
  void DoUnmap(void* p, std::size_t bytes) override;
  void DoDecommit(void* p, std::size_t bytes) override;

 private:
  PageSource* const target_;
  std::atomic<bool> failing_{false};
  std::atomic<std::int64_t> remaining_{-1};  // -1: no countdown
  std::atomic<std::int64_t> attempts_{0};
};

}  // namespace testing
}  // namespace arena

#endif  // ARENA_TESTING_TEST_PAGE_SOURCES_H_
