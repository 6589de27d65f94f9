// The library's clock: milliseconds of the steady clock, for idle stamps.
// A read costs tens of nanoseconds: hot paths read it only when they must.
#ifndef ARENA_INTERNAL_CLOCK_H_
#define ARENA_INTERNAL_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace arena {
namespace internal {

inline std::int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_CLOCK_H_
