// FreeLists: one arena's size-class lists of chunks freed on its owner.
//
// Chunk sizes are multiples of 16. Classes 0..63 are 16, 32, ..., 1024, one
// size each ("exact"); from 64 on each power of two from 1024 has four
// classes with bounds (4 + sub) << (e - 2) ("spanning": a class holds
// chunks of up to span / 16 sizes). 128 classes: the table (1040 bytes)
// fits in what is left of most blocks, so a capped arena can make it. A freed chunk goes to the class of the
// largest bound <= its size (ClassFloor). A request takes, in order: in its
// own spanning class, the smallest chunk that holds it; then a chunk of the
// lowest nonempty class from the class of the smallest bound >= its size
// (ClassCeil), up to about twice the request (any class above for an
// arena that splits: see Pop); what the request does not use goes back.
//
// A spanning class is a list of size groups: the first chunk of each group
// links the next group (Node::next_group) and the group's other chunks
// (Node::next), all of one size. So a request that lies between two bounds
// finds a chunk of its own size, or the smallest larger one, by walking
// the groups (at most kGroupScan of them), not every chunk. Without that,
// a long-lived arena with individual frees of sizes above 1 KiB never got
// back the chunks of the largest sizes it used (they sat in a class its
// requests did not look in) and grew without bound.
//
// Memory: the table lives in the arena's own memory (one chunk, taken when
// the arena first frees a chunk or files its pending frees) and the links
// and sizes in the freed chunks themselves; both die with the arena's blocks
// at Reset. Only `nonempty` is initialized: a head is read only when its bit
// is set. Under AddressSanitizer a listed chunk is poisoned except while
// the list itself reads or writes its node.
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
  // Exact classes, then 4 per power of two from 2^10 to 2^25 (chunks lie
  // in blocks of at most 64 MiB).
  static constexpr std::size_t kExactClasses = 64;  // 16 to 1024 B
  static constexpr std::size_t kClasses = kExactClasses + 16 * 4;
  static constexpr std::size_t kWords = kClasses / 64;
  // Most groups a spanning class's push or pop walks (every size of the
  // classes below 8 KiB). Past it a push starts a new group (a size may
  // then have two) and a pop looks no further.
  static constexpr int kGroupScan = 64;

  // In the free chunk itself. Chunks of exact classes (>= 16 B) use the
  // first two fields; chunks of spanning classes (> 1024 B) all three.
  struct Node {
    Node* next;        // the next chunk of the class (spanning: of the group)
    std::size_t size;  // the chunk's exact size
    Node* next_group;  // spanning classes, a group's first chunk: next group
  };
  static constexpr std::size_t kExactNodeBytes = 2 * sizeof(void*);

  static std::size_t ClassFloor(std::size_t size) {
    if (size <= 1024) return size / 16 - 1;
    const int e = 63 - __builtin_clzll(size);
    return kExactClasses + (e - 10) * 4 + ((size >> (e - 2)) & 3);
  }
  static std::size_t ClassCeil(std::size_t size);

  // Makes every list empty.
  void Clear() {
    for (std::uint64_t& word : nonempty) word = 0;
  }

  bool Nonempty(std::size_t c) const {
    return (nonempty[c / 64] >> (c % 64) & 1) != 0;
  }

  // REQUIRES: size is a chunk size (a multiple of 16, >= 16) and
  // [chunk, chunk + size) was handed out and is now free.
  void Push(char* chunk, std::size_t size) noexcept {
    const std::size_t c = ClassFloor(size);
    if (c >= kExactClasses) {
      PushSpanning(c, chunk, size);
      return;
    }
    auto* node = reinterpret_cast<Node*>(chunk);
    // The caller may have been handed fewer than 16 bytes of this chunk (the
    // rest stayed poisoned): unpoison exactly the node before writing it.
    UnpoisonMemory(node, kExactNodeBytes);
    node->next = Nonempty(c) ? heads[c] : nullptr;
    node->size = size;
    heads[c] = node;
    nonempty[c / 64] |= std::uint64_t{1} << (c % 64);
    PoisonMemory(chunk, size);
  }

  // A chunk of at least `size` bytes (see the file comment; with
  // any_larger, of any class above, not only up to about twice `size`), its
  // exact size in *got; or nullptr. The chunk comes back poisoned (ASan);
  // the caller unpoisons what it hands out and files what it does not use.
  void* Pop(std::size_t size, std::size_t* got, bool any_larger) noexcept;

  // A chunk of exactly `size` bytes that starts at a multiple of
  // `alignment` (a request aligned past 16 whose earlier twin was freed:
  // without it such a request always took alignment - 16 bytes more), among
  // the first kAlignedScan of its size; or nullptr. Poisoned as Pop's.
  void* PopAligned(std::size_t size, std::size_t alignment) noexcept;
  static constexpr int kAlignedScan = 8;

  // Pop for a chunk size of at most kQuickMaxSize, inline: the class and the
  // next three then lie among the exact classes, in the first bitmap word,
  // so one shift finds the lowest nonempty of the four. The same chunk as
  // Pop; its size (the class's) in *got.
  static constexpr std::size_t kQuickMaxSize = 61 * 16;  // class 60
  void* PopQuick(std::size_t size, std::size_t* got) noexcept {
    const std::size_t c = size / 16 - 1;
    const std::uint64_t four = (nonempty[0] >> c) & 0xF;
    if (four == 0) return nullptr;
    const std::size_t taken = c + static_cast<std::size_t>(__builtin_ctzll(four));
    *got = (taken + 1) * 16;
    return TakeExact(taken);
  }

  // A chunk of the highest nonempty class if that class's chunks are all
  // at least `min_size` bytes (a whole freed run, to bump through), with
  // its exact size in *size; else nullptr. Poisoned as Pop's.
  void* PopLargest(std::size_t min_size, std::size_t* size) noexcept;

  std::uint64_t nonempty[kClasses / 64];
  Node* heads[kClasses];

 private:
  // Unlinks the head of nonempty exact class c.
  Node* TakeExact(std::size_t c) noexcept {
    Node* node = heads[c];
    UnpoisonMemory(node, kExactNodeBytes);
    heads[c] = node->next;
    // The new head is the next pop of this class: its line, often last
    // written long ago or by another core (a drained remote free), is asked
    // for now rather than when that pop needs its link.
    __builtin_prefetch(node->next, 1);
    if (node->next == nullptr) {
      nonempty[c / 64] &= ~(std::uint64_t{1} << (c % 64));
    }
    PoisonMemory(node, kExactNodeBytes);
    return node;
  }
  void PushSpanning(std::size_t c, char* chunk, std::size_t size) noexcept;
  // A chunk of the group whose first chunk is `group` (after `prev_group`,
  // or the class's first group when null) in nonempty spanning class c.
  Node* TakeFromGroup(std::size_t c, Node* prev_group, Node* group,
                      std::size_t* got) noexcept;
  // The lowest nonempty class in [from, to), or kClasses.
  std::size_t LowestNonempty(std::size_t from, std::size_t to) const noexcept;
  // A chunk of nonempty class c (spanning: of its smallest group), its size
  // in *got.
  Node* TakeAny(std::size_t c, std::size_t* got) noexcept;
  // The first chunk of the smallest group of nonempty spanning class c
  // that holds `size` bytes (its size in *group_size, the group before it
  // in *prev_group, null for the first), or nullptr.
  Node* FindGroup(std::size_t c, std::size_t size, Node** prev_group,
                  std::size_t* group_size) noexcept;
  // A chunk of the smallest group of nonempty spanning class c that holds
  // `size` bytes, or nullptr.
  Node* TakeSmallest(std::size_t c, std::size_t size, std::size_t* got) noexcept;
};

// Bytes an arena bumps for its table (a chunk: a multiple of 16).
inline constexpr std::size_t kFreeListsTableSize =
    (sizeof(FreeLists) + 15) & ~std::size_t{15};

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_FREE_LISTS_H_
