// The arena's accounting: publishing its figures to the calling thread's
// process counters, recording each request's footprint at the bulk free,
// Arena::stats(), and the process-wide functions of arena.h.
#include <algorithm>

#include "arena/arena.h"
#include "arena/internal/check.h"
#include "arena/internal/footprint.h"
#include "arena/internal/runtime.h"

namespace arena {

using internal::Runtime;
using internal::ThreadCounters;
using internal::ThreadState;

void Arena::Publish() noexcept { PublishTo(runtime_->Local()); }

void Arena::PublishTo(ThreadState* local) noexcept {
  AdoptRetained();
  auto delta = [](std::size_t now, std::size_t* published) {
    const auto d = static_cast<std::int64_t>(now) -
                   static_cast<std::int64_t>(*published);
    *published = now;
    return d;
  };
  const std::int64_t live = delta(live_bytes_, &published_live_);
  const std::int64_t held = delta(block_bytes_, &published_block_bytes_);
  const std::int64_t large = delta(large_bytes_, &published_large_bytes_);
  const std::int64_t retained = delta(retained_ != nullptr ? block_size_ : 0,
                                      &published_retained_bytes_);
  if (ABSL_PREDICT_TRUE(local != nullptr)) {
    // This thread's counters (one line; single writer): four plain adds,
    // cheaper than testing each delta.
    ThreadCounters& c = local->counters;
    auto add = [](std::atomic<std::int64_t>& counter, std::int64_t d) {
      counter.store(counter.load(std::memory_order_relaxed) + d,
                    std::memory_order_relaxed);
    };
    add(c.live_bytes, live);
    add(c.in_arena_bytes, held);
    add(c.large_bytes, large);
    add(c.retained_bytes, retained);
  } else {
    if (live != 0) runtime_->Count(local, &ThreadCounters::live_bytes, live);
    if (held != 0) runtime_->Count(local, &ThreadCounters::in_arena_bytes, held);
    if (large != 0) runtime_->Count(local, &ThreadCounters::large_bytes, large);
    if (retained != 0) {
      runtime_->Count(local, &ThreadCounters::retained_bytes, retained);
    }
  }
}

void Arena::RecordFootprint(ThreadState* local) noexcept {
  const std::size_t held = std::max(peak_held_, block_bytes_);
  if (held != 0) {  // an arena that held nothing served no request
    const std::size_t peak = std::min(std::max(peak_live_, live_bytes_), held);
    const std::uint64_t slow_paths = slow_allocations_ - slow_at_reset_;
    if (ABSL_PREDICT_TRUE(large_taken_ == 0 && local != nullptr &&
                          small_blocks_ <= internal::FootprintRecorder::kExactMax)) {
      // No large mapping since the last Reset (those before it were
      // unmapped then): held is exactly the small blocks.
      ARENA_DCHECK(held == small_blocks_ * block_size_,
                   "Arena: held bytes beside the small blocks");
      local->footprint.AddSmallOnly(small_blocks_, peak, held - peak, slow_paths);
    } else {
      internal::RequestFootprint f;
      f.values[internal::kPeakLiveBytes] = peak;
      f.values[internal::kHeldBytes] = held;
      f.values[internal::kWasteBytes] = held - peak;
      f.values[internal::kBlocks] = small_blocks_ + large_taken_;
      f.values[internal::kSlowPaths] = slow_paths;
      f.values[internal::kLargeAllocations] = large_taken_;
      runtime_->RecordRequest(local, f);
    }
    if (adaptive_ && local != nullptr) {
      local->adaptive.Record(small_blocks_ - spare_blocks_,
                             runtime_->config().adaptive_percentile);
    }
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
