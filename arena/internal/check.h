// Always-on and debug-only assertions for the arena library.
//
// Debian's Abseil (20220623) has no absl/log, so these two small macros stand
// in for ABSL_CHECK / ABSL_DCHECK: ARENA_CHECK guards cold paths in every
// build; ARENA_DCHECK guards hot paths and compiles away under NDEBUG (the
// `opt` config). A failed check prints the file, line, condition and message
// to stderr and aborts.
#ifndef ARENA_INTERNAL_CHECK_H_
#define ARENA_INTERNAL_CHECK_H_

#include <atomic>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"

namespace arena {
namespace internal {

[[noreturn]] ABSL_ATTRIBUTE_NOINLINE void CheckFailed(const char* file, int line,
                                                      const char* condition,
                                                      const char* message);

}  // namespace internal
}  // namespace arena

#define ARENA_CHECK(condition, message)                                      \
  do {                                                                       \
    if (ABSL_PREDICT_FALSE(!(condition))) {                                  \
      ::arena::internal::CheckFailed(__FILE__, __LINE__, #condition, message); \
    }                                                                        \
  } while (false)

#ifdef NDEBUG
#define ARENA_DEBUG_CHECKS 0
#define ARENA_DCHECK(condition, message) \
  do {                                   \
    if (false) {                         \
      (void)(condition);                 \
    }                                    \
  } while (false)
#else
#define ARENA_DEBUG_CHECKS 1
#define ARENA_DCHECK(condition, message) ARENA_CHECK(condition, message)
#endif

namespace arena {
namespace internal {

// Debug-build guard against two threads inside one arena's slow paths.
class BusyGuard {
 public:
  explicit BusyGuard(std::atomic<int>* busy) : busy_(busy) {
#if ARENA_DEBUG_CHECKS
    // Acquire/release: a correct hand-over between threads is ordered by
    // the caller; this only catches overlap, it synchronizes nothing extra.
    ARENA_CHECK(busy_->exchange(1, std::memory_order_acquire) == 0,
                "arena::Arena used by two threads at once (Allocate, Reset "
                "or destruction concurrent with another use)");
#endif
  }
  ~BusyGuard() {
#if ARENA_DEBUG_CHECKS
    busy_->store(0, std::memory_order_release);
#endif
  }

 private:
  std::atomic<int>* const busy_;
};

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_CHECK_H_
