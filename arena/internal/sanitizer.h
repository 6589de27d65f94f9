// AddressSanitizer poisoning, written once.
//
// Under ASan the arena poisons the unused tail of every block it takes, and
// everything that Deallocate and Reset take back; Allocate unpoisons exactly
// the bytes it hands out, and Deallocate reports a free of poisoned memory.
// Block headers are never poisoned (a lock-free depot
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
// A free of memory that is poisoned (taken back by Reset, or freed already)
// is reported as ASan reports any touch of it: a read of its first poisoned
// byte, with the freeing stack. Needed because a remote Deallocate writes
// nothing into the chunk it frees, so no instrumented access would catch
// it. (Allocate unpoisons exactly the bytes it hands out, so a live
// allocation passes, unless its caller poisoned it: a caller must undo its
// own annotations before the free. Not caught: a zero-byte range, a large
// mapping freed remotely (never poisoned), and a chunk of 16 bytes or fewer
// whose first free went loose, which unpoisoned it to write its link.)
inline void CheckNotPoisoned(const void* p, std::size_t n) {
  if (void* bad = __asan_region_is_poisoned(const_cast<void*>(p), n)) {
    (void)*static_cast<const volatile char*>(bad);
  }
}
#else
inline constexpr bool kAsanEnabled = false;
inline void PoisonMemory(const void*, std::size_t) {}
inline void UnpoisonMemory(const void*, std::size_t) {}
inline void CheckNotPoisoned(const void*, std::size_t) {}
#endif

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_SANITIZER_H_
