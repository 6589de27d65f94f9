// AddressSanitizer poisoning, written once.
//
// Under ASan the arena poisons the unused tail of every block it takes, and
// everything that Deallocate and Reset take back; Allocate unpoisons exactly
// the bytes it hands out. Block headers are never poisoned (a lock-free depot
// pop may read a header's link at any time). Without ASan these are no-ops.
#ifndef ARENA_INTERNAL_SANITIZER_H_
#define ARENA_INTERNAL_SANITIZER_H_

#include <cstddef>

#include "absl/base/config.h"

#ifdef ABSL_HAVE_ADDRESS_SANITIZER
#include <sanitizer/asan_interface.h>
#endif

namespace arena {
namespace internal {

#ifdef ABSL_HAVE_ADDRESS_SANITIZER
inline constexpr bool kAsanEnabled = true;
inline void PoisonMemory(const void* p, std::size_t n) {
  ASAN_POISON_MEMORY_REGION(p, n);
}
inline void UnpoisonMemory(const void* p, std::size_t n) {
  ASAN_UNPOISON_MEMORY_REGION(p, n);
}
#else
inline constexpr bool kAsanEnabled = false;
inline void PoisonMemory(const void*, std::size_t) {}
inline void UnpoisonMemory(const void*, std::size_t) {}
#endif

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_SANITIZER_H_
