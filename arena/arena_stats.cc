// Arena::stats() and the process-wide functions of arena.h. (Publishing to
// the process counters and the footprint record: arena_release.cc.)
#include <algorithm>

#include "arena/arena.h"
#include "arena/internal/runtime.h"

namespace arena {

using internal::Runtime;

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

std::size_t FlushRemoteFrees() { return Runtime::Get().FlushRemoteFrees(); }

std::size_t Trim() { return Runtime::Get().Trim(); }

}  // namespace arena
