// The arena's accounting: publishing its figures to the calling thread's
// process counters, recording each request's footprint at the bulk free,
// Arena::stats(), and the process-wide functions of arena.h.
#include <algorithm>

#include "arena/arena.h"
#include "arena/internal/footprint.h"
#include "arena/internal/runtime.h"

namespace arena {

using internal::Runtime;
using internal::ThreadCounters;
using internal::ThreadState;

void Arena::Publish() noexcept {
  AdoptRetained();
  ThreadState* local = runtime_->Local();
  auto delta = [](std::size_t now, std::size_t* published) {
    const auto d = static_cast<std::int64_t>(now) -
                   static_cast<std::int64_t>(*published);
    *published = now;
    return d;
  };
  if (const std::int64_t d = delta(live_bytes_, &published_live_)) {
    runtime_->Count(local, &ThreadCounters::live_bytes, d);
  }
  if (const std::int64_t d = delta(block_bytes_, &published_block_bytes_)) {
    runtime_->Count(local, &ThreadCounters::in_arena_bytes, d);
  }
  if (const std::int64_t d = delta(large_bytes_, &published_large_bytes_)) {
    runtime_->Count(local, &ThreadCounters::large_bytes, d);
  }
  if (const std::int64_t d = delta(retained_ != nullptr ? block_size_ : 0,
                                   &published_retained_bytes_)) {
    runtime_->Count(local, &ThreadCounters::retained_bytes, d);
  }
}

void Arena::RecordFootprint(ThreadState* local) noexcept {
  const std::size_t held = std::max(peak_held_, block_bytes_);
  if (held != 0) {  // an arena that held nothing served no request
    const std::size_t peak = std::min(std::max(peak_live_, live_bytes_), held);
    internal::RequestFootprint f;
    f.values[internal::kPeakLiveBytes] = peak;
    f.values[internal::kHeldBytes] = held;
    f.values[internal::kWasteBytes] = held - peak;
    f.values[internal::kBlocks] = small_blocks_ + large_taken_;
    f.values[internal::kSlowPaths] = slow_allocations_ - slow_at_reset_;
    f.values[internal::kLargeAllocations] = large_taken_;
    runtime_->RecordRequest(local, f, small_blocks_ - spare_blocks_, adaptive_);
  }
  peak_live_ = peak_held_ = 0;
  slow_at_reset_ = slow_allocations_;
  large_taken_ = 0;
}

ArenaStats Arena::stats() const {
  ArenaStats s;
  // The kept block counts as held once something was bumped from it (what
  // AdoptRetained will do at the next slow path).
  const bool adopted = RetainedInUse();
  s.live_bytes = live_bytes_;
  s.block_bytes = block_bytes_ + (adopted ? block_size_ : 0);
  s.blocks = small_blocks_ + large_blocks_ + (adopted ? 1 : 0);
  s.large_blocks = large_blocks_;
  s.retained_bytes = retained_ != nullptr && !adopted ? block_size_ : 0;
  s.slow_allocations = slow_allocations_;
  s.deallocations = deallocations_;
  s.resets = resets_;
  s.fragmentation = FragmentationRatio(s.block_bytes, live_bytes_);
  return s;
}

absl::Status Configure(const Config& config) {
  return Runtime::Start(config, nullptr);
}

absl::Status Configure(const Config& config, PageSource* source) {
  return Runtime::Start(config, source);
}

const Config& CurrentConfig() { return Runtime::Get().config(); }

ProcessStats GlobalStats() { return Runtime::Get().Stats(); }

std::size_t ReleaseIdleMemory() { return Runtime::Get().ReleaseIdleMemory(); }

std::size_t OnThreadIdle() { return Runtime::Get().OnThreadIdle(); }

std::size_t FlushThreadCache() { return Runtime::Get().FlushThreadCache(); }

std::size_t Trim() { return Runtime::Get().Trim(); }

}  // namespace arena
