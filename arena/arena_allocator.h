// ArenaAllocator: an STL allocator over an arena (included by arena.h;
// include arena.h, not this file).
#ifndef ARENA_ARENA_ALLOCATOR_H_
#define ARENA_ARENA_ALLOCATOR_H_

#include <cstddef>
#include <limits>
#include <new>
#include <type_traits>

namespace arena {

class Arena;

// An STL allocator over an Arena& (or, as ArenaAllocator<T, SharedArena>, a
// SharedArena&: see shared_arena.h); equal iff same arena. deallocate goes to
// the arena's Deallocate, so containers that shrink or rehash give memory
// back to the arena's free lists. Works with std containers and
// absl::flat_hash_map. ArenaT is a template parameter, not an interface: the
// calls are direct (and inlined) for either arena type. Thread-safe as the
// arena's Allocate/Deallocate are.
template <class T, class ArenaT = Arena>
class ArenaAllocator {
 public:
  using value_type = T;
  using arena_type = ArenaT;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  using is_always_equal = std::false_type;
  // Explicit (allocator_traits would deduce the same from <T, ArenaT>).
  template <class U>
  struct rebind {
    using other = ArenaAllocator<U, ArenaT>;
  };

  explicit ArenaAllocator(ArenaT& arena) noexcept : arena_(&arena) {}
  template <class U>
  ArenaAllocator(const ArenaAllocator<U, ArenaT>& other) noexcept  // NOLINT: rebind
      : arena_(other.arena()) {}

  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) {
      throw std::bad_array_new_length();
    }
    return static_cast<T*>(arena_->Allocate(n * sizeof(T), alignof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    arena_->Deallocate(p, n * sizeof(T));
  }

  ArenaT* arena() const noexcept { return arena_; }

  template <class U>
  friend bool operator==(const ArenaAllocator& a,
                         const ArenaAllocator<U, ArenaT>& b) noexcept {
    return a.arena() == b.arena();
  }
  template <class U>
  friend bool operator!=(const ArenaAllocator& a,
                         const ArenaAllocator<U, ArenaT>& b) noexcept {
    return a.arena() != b.arena();
  }

 private:
  ArenaT* arena_;
};

}  // namespace arena

#endif  // ARENA_ARENA_ALLOCATOR_H_
