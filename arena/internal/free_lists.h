// FreeLists: one arena's size-class lists of chunks freed on its owner.
//
// Chunk sizes are multiples of 16. Classes 0..63 are 16, 32, ..., 1024
// exactly; above 1024 each power of two has four classes with bounds
// (4 + sub) << (e - 2). A freed chunk goes to the class of the largest bound
// <= its size (ClassFloor); a request looks in the class of the smallest
// bound >= its size (ClassCeil) and the next three, so any chunk found there
// is big enough and at most about twice the request.
//
// Memory: the table lives in the arena's own memory (one chunk, taken when
// the arena first frees a chunk or files its pending frees) and the links
// and sizes in the freed chunks themselves; both die with the arena's blocks
// at Reset. Only `nonempty` is initialized: a head is read only when its bit
// is set. Under AddressSanitizer a listed
// chunk is poisoned except while the list itself reads or writes its link.
//
// Thread-safety: none; only the arena's owner touches its free lists.
#ifndef ARENA_INTERNAL_FREE_LISTS_H_
#define ARENA_INTERNAL_FREE_LISTS_H_

#include <cstddef>
#include <cstdint>

#include "arena/internal/sanitizer.h"

namespace arena {
namespace internal {

struct FreeLists {
  static constexpr std::size_t kClasses = 128;

  static std::size_t ClassFloor(std::size_t size) {
    if (size <= 1024) return size / 16 - 1;
    const int e = 63 - __builtin_clzll(size);
    return 63 + (e - 10) * 4 + ((size >> (e - 2)) & 3);
  }
  static std::size_t ClassCeil(std::size_t size);

  // Makes every list empty.
  void Clear() { nonempty[0] = nonempty[1] = 0; }

  // REQUIRES: size is a chunk size (a multiple of 16, >= 16) and
  // [chunk, chunk + size) was handed out and is now free.
  void Push(char* chunk, std::size_t size) noexcept {
    const std::size_t c = ClassFloor(size);
    auto* node = reinterpret_cast<Node*>(chunk);
    const bool had = (nonempty[c / 64] >> (c % 64) & 1) != 0;
    // The caller may have been handed fewer than 16 bytes of this chunk (the
    // rest stayed poisoned): unpoison exactly the node before writing it.
    UnpoisonMemory(node, sizeof(Node));
    node->next = had ? heads[c] : nullptr;
    node->size = size;
    heads[c] = node;
    nonempty[c / 64] |= std::uint64_t{1} << (c % 64);
    PoisonMemory(chunk, size);
  }

  // A chunk of at least `size` bytes (its class or the next three), or
  // nullptr. The chunk comes back poisoned (ASan); the caller unpoisons
  // what it hands out.
  void* Pop(std::size_t size) noexcept;

  // The chunk of the highest nonempty class if that class's chunks are all
  // at least `min_size` bytes (a whole freed run, to bump through), with
  // its exact size in *size; else nullptr. Poisoned as Pop's.
  void* PopLargest(std::size_t min_size, std::size_t* size) noexcept;

  struct Node;
  // Unlinks the head of nonempty class c (its size into *size if given).
  Node* TakeHead(std::size_t c, std::size_t* size) noexcept;

  struct Node {  // in the free chunk's first 16 bytes (chunks are >= 16)
    Node* next;
    std::size_t size;  // the chunk's exact size
  };
  std::uint64_t nonempty[kClasses / 64];
  Node* heads[kClasses];
};

// Bytes an arena bumps for its table (a chunk: a multiple of 16).
inline constexpr std::size_t kFreeListsTableSize =
    (sizeof(FreeLists) + 15) & ~std::size_t{15};

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_FREE_LISTS_H_
