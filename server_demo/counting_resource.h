// CountingResource: the memory resource every request of the demo server
// allocates through (see below).
#ifndef SERVER_DEMO_COUNTING_RESOURCE_H_
#define SERVER_DEMO_COUNTING_RESOURCE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory_resource>

#include "arena/arena.h"
#include "server_demo/metrics.h"

namespace server_demo {

// Counts what a request allocates and enforces the per-request cap; forwards
// to the request's arena or to the global heap. Owned by its connection,
// used on its worker thread only.
//
// Per request (since Begin): bytes asked for (used), of which in small
// allocations (<= large_threshold), the count of large ones, the peak of
// its bytes allocated and not freed (peak_live), and what its allocator
// held at most (peak_held): with an arena, the arena's block bytes, read
// before each large deallocation (the only thing that lowers them before a
// Reset) and at the end; on the heap, the peak of malloc_usable_size summed
// over its live allocations. Per connection: the bytes allocated and not
// yet freed ("live"), mirrored into the worker's gauge; memory that goes
// away without a deallocate (an arena's Reset or destruction) is taken off
// with DropLive.
class CountingResource final : public std::pmr::memory_resource {
 public:
  void SetLiveGauge(std::atomic<std::int64_t>* gauge) { gauge_ = gauge; }
  // `arena`: the arena behind `upstream`, or null for the heap.
  void Begin(std::pmr::memory_resource* upstream, arena::Arena* arena, std::size_t limit,
             std::size_t large_threshold);
  std::size_t used() const { return used_; }
  std::size_t limit() const { return limit_; }
  std::size_t small_bytes() const { return small_; }
  std::size_t large_allocations() const { return large_; }
  std::size_t peak_live() const { return peak_request_live_; }
  // REQUIRES: called at the end of the request.
  std::size_t PeakHeld();
  std::int64_t live() const { return live_; }
  void DropLive(std::int64_t bytes) { AddLive(-bytes); }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
    return this == &o;
  }
  void AddLive(std::int64_t d) {
    live_ += d;
    if (gauge_ != nullptr) ServerMetrics::AddSigned(*gauge_, d);
  }
  std::pmr::memory_resource* upstream_ = std::pmr::new_delete_resource();
  arena::Arena* arena_ = nullptr;
  std::atomic<std::int64_t>* gauge_ = nullptr;
  std::size_t limit_ = 0;
  std::size_t large_threshold_ = SIZE_MAX;
  std::size_t used_ = 0;
  std::size_t small_ = 0;
  std::size_t large_ = 0;
  std::int64_t request_live_ = 0;  // may dip below 0: frees of earlier requests
  std::size_t peak_request_live_ = 0;
  std::size_t held_at_begin_ = 0;  // the arena's block bytes at Begin
  std::size_t peak_held_ = 0;      // arena: block bytes; heap: usable bytes live
  std::int64_t usable_live_ = 0;
  std::int64_t live_ = 0;
};

}  // namespace server_demo

#endif  // SERVER_DEMO_COUNTING_RESOURCE_H_
