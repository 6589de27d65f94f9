#include "server_demo/counting_resource.h"

#include <malloc.h>

#include <algorithm>
#include <new>

namespace server_demo {

void CountingResource::Begin(std::pmr::memory_resource* upstream, arena::Arena* arena,
                             std::size_t limit, std::size_t large_threshold) {
  upstream_ = upstream;
  arena_ = arena;
  limit_ = limit;
  large_threshold_ = large_threshold;
  used_ = small_ = large_ = 0;
  request_live_ = 0;
  peak_request_live_ = 0;
  usable_live_ = 0;
  held_at_begin_ = arena_ != nullptr ? arena_->stats().block_bytes : 0;
  peak_held_ = held_at_begin_;
}

std::size_t CountingResource::PeakHeld() {
  if (arena_ != nullptr) peak_held_ = std::max(peak_held_, arena_->stats().block_bytes);
  return peak_held_ - held_at_begin_;
}

void* CountingResource::do_allocate(std::size_t bytes, std::size_t alignment) {
  if (bytes > limit_ || used_ + bytes > limit_) throw std::bad_alloc();
  void* p = upstream_->allocate(bytes, alignment);
  used_ += bytes;
  if (bytes > large_threshold_) {
    ++large_;
  } else {
    small_ += bytes;
  }
  request_live_ += static_cast<std::int64_t>(bytes);
  if (request_live_ > static_cast<std::int64_t>(peak_request_live_)) {
    peak_request_live_ = static_cast<std::size_t>(request_live_);
  }
  if (arena_ == nullptr) {
    usable_live_ += static_cast<std::int64_t>(malloc_usable_size(p));
    if (usable_live_ > static_cast<std::int64_t>(peak_held_)) {
      peak_held_ = static_cast<std::size_t>(usable_live_);
    }
  }
  AddLive(static_cast<std::int64_t>(bytes));
  return p;
}

void CountingResource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
  if (arena_ != nullptr) {
    // Only a large deallocation gives blocks back before a Reset.
    if (bytes > large_threshold_) peak_held_ = std::max(peak_held_, arena_->stats().block_bytes);
  } else {
    usable_live_ -= static_cast<std::int64_t>(malloc_usable_size(p));
  }
  upstream_->deallocate(p, bytes, alignment);
  request_live_ -= static_cast<std::int64_t>(bytes);
  AddLive(-static_cast<std::int64_t>(bytes));
}

}  // namespace server_demo
