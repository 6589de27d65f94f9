#include "arena/internal/free_lists.h"

#include "absl/numeric/bits.h"
#include "arena/internal/sanitizer.h"

namespace arena {
namespace internal {
std::size_t FreeLists::ClassCeil(std::size_t size) {
  if (size <= 1024) return size / 16 - 1;
  const int e = 63 - absl::countl_zero(static_cast<std::uint64_t>(size));
  std::size_t index = kExactClasses + (e - 10) * 4 + ((size >> (e - 2)) & 3);
  if ((size & ((std::size_t{1} << (e - 2)) - 1)) != 0) ++index;
  return index;
}

std::size_t FreeLists::LowestNonempty(std::size_t from,
                                      std::size_t to) const noexcept {
  if (to > kClasses) to = kClasses;
  while (from < to) {
    const std::uint64_t word = nonempty[from / 64] >> (from % 64);
    if (word != 0) {
      const std::size_t c = from + static_cast<std::size_t>(absl::countr_zero(word));
      return c < to ? c : kClasses;
    }
    from = (from / 64 + 1) * 64;
  }
  return kClasses;
}

void FreeLists::PushSpanning(std::size_t c, char* chunk,
                             std::size_t size) noexcept {
  auto* node = reinterpret_cast<Node*>(chunk);
  UnpoisonMemory(node, sizeof(Node));
  node->size = size;
  node->next = nullptr;
  if (Nonempty(c)) {
    // Into the group of its size: second, so the group's first chunk (which
    // links the groups) stays where it is.
    Node* group = heads[c];
    for (int i = 0; i < kGroupScan && group != nullptr; ++i) {
      UnpoisonMemory(group, sizeof(Node));
      Node* next_group = group->next_group;
      if (group->size == size) {
        node->next = group->next;
        node->next_group = nullptr;
        group->next = node;
        PoisonMemory(group, sizeof(Node));
        PoisonMemory(chunk, size);
        return;
      }
      PoisonMemory(group, sizeof(Node));
      group = next_group;
    }
    node->next_group = heads[c];  // a new group, first
  } else {
    node->next_group = nullptr;
    nonempty[c / 64] |= std::uint64_t{1} << (c % 64);
  }
  heads[c] = node;
  PoisonMemory(chunk, size);
}

FreeLists::Node* FreeLists::TakeFromGroup(std::size_t c, Node* prev_group,
                                          Node* group,
                                          std::size_t* got) noexcept {
  UnpoisonMemory(group, sizeof(Node));
  *got = group->size;
  Node* taken = group->next;
  if (taken != nullptr) {
    // The group keeps its first chunk: take the second.
    UnpoisonMemory(taken, sizeof(Node));
    group->next = taken->next;
    PoisonMemory(taken, sizeof(Node));
    PoisonMemory(group, sizeof(Node));
    return taken;
  }
  // The group's only chunk: unlink the group.
  Node* next_group = group->next_group;
  PoisonMemory(group, sizeof(Node));
  if (prev_group == nullptr) {
    heads[c] = next_group;
    if (next_group == nullptr) nonempty[c / 64] &= ~(std::uint64_t{1} << (c % 64));
  } else {
    UnpoisonMemory(prev_group, sizeof(Node));
    prev_group->next_group = next_group;
    PoisonMemory(prev_group, sizeof(Node));
  }
  return group;
}

FreeLists::Node* FreeLists::TakeAny(std::size_t c, std::size_t* got) noexcept {
  if (c < kExactClasses) {
    *got = (c + 1) * 16;
    return TakeExact(c);
  }
  return TakeSmallest(c, 0, got);
}

FreeLists::Node* FreeLists::FindGroup(std::size_t c, std::size_t size,
                                      Node** prev_group,
                                      std::size_t* group_size) noexcept {
  // The smallest group of at least `size` bytes among the first kGroupScan
  // (the exact size ends the walk).
  Node* best = nullptr;
  Node* prev = nullptr;
  Node* group = heads[c];
  for (int i = 0; i < kGroupScan && group != nullptr; ++i) {
    UnpoisonMemory(group, sizeof(Node));
    const std::size_t this_size = group->size;
    Node* next_group = group->next_group;
    PoisonMemory(group, sizeof(Node));
    if (this_size >= size && (best == nullptr || this_size < *group_size)) {
      best = group;
      *prev_group = prev;
      *group_size = this_size;
      if (this_size == size) break;
    }
    prev = group;
    group = next_group;
  }
  return best;
}

FreeLists::Node* FreeLists::TakeSmallest(std::size_t c, std::size_t size,
                                         std::size_t* got) noexcept {
  // What is left of larger chunks then serves larger requests later.
  Node* prev_group = nullptr;
  std::size_t group_size = 0;
  Node* group = FindGroup(c, size, &prev_group, &group_size);
  if (group == nullptr) return nullptr;
  return TakeFromGroup(c, prev_group, group, got);
}

void* FreeLists::Pop(std::size_t size, std::size_t* got,
                     bool any_larger) noexcept {
  const std::size_t first = ClassCeil(size);
  const std::size_t own = ClassFloor(size);
  if (own != first && Nonempty(own)) {
    // `size` lies between two bounds of a spanning class: the smallest of
    // its groups that holds it (its own size when there is one).
    if (Node* node = TakeSmallest(own, size, got)) return node;
  }
  // The lowest nonempty class from the ceiling: up to about twice `size`
  // (the class and the next three: 48 bytes more below 1 KiB, one power of
  // two above), else, with any_larger, any class above.
  const std::size_t near_end = first + 4;
  std::size_t c = LowestNonempty(first, near_end);
  if (c == kClasses && any_larger) c = LowestNonempty(near_end, kClasses);
  if (c == kClasses) return nullptr;
  return TakeAny(c, got);
}

void* FreeLists::PopAligned(std::size_t size, std::size_t alignment) noexcept {
  const std::size_t c = ClassFloor(size);
  if (!Nonempty(c)) return nullptr;
  auto aligned = [alignment](const Node* node) {
    return (reinterpret_cast<std::uintptr_t>(node) & (alignment - 1)) == 0;
  };
  if (c < kExactClasses) {
    Node* prev = nullptr;
    Node* node = heads[c];
    for (int i = 0; i < kAlignedScan && node != nullptr; ++i) {
      UnpoisonMemory(node, kExactNodeBytes);
      Node* next = node->next;
      PoisonMemory(node, kExactNodeBytes);
      if (aligned(node)) {
        if (prev == nullptr) {
          heads[c] = next;
          if (next == nullptr) nonempty[c / 64] &= ~(std::uint64_t{1} << (c % 64));
        } else {
          UnpoisonMemory(prev, kExactNodeBytes);
          prev->next = next;
          PoisonMemory(prev, kExactNodeBytes);
        }
        return node;
      }
      prev = node;
      node = next;
    }
    return nullptr;
  }
  // The group of this size, then its chunks.
  Node* prev_group = nullptr;
  std::size_t group_size = 0;
  Node* group = FindGroup(c, size, &prev_group, &group_size);
  if (group == nullptr || group_size != size) return nullptr;
  UnpoisonMemory(group, sizeof(Node));
  if (aligned(group)) {
    Node* second = group->next;
    if (second == nullptr) {
      PoisonMemory(group, sizeof(Node));
      std::size_t got = 0;
      return TakeFromGroup(c, prev_group, group, &got);  // the group goes
    }
    // The second chunk heads the group now.
    UnpoisonMemory(second, sizeof(Node));
    second->next_group = group->next_group;
    PoisonMemory(second, sizeof(Node));
    PoisonMemory(group, sizeof(Node));
    if (prev_group == nullptr) {
      heads[c] = second;
    } else {
      UnpoisonMemory(prev_group, sizeof(Node));
      prev_group->next_group = second;
      PoisonMemory(prev_group, sizeof(Node));
    }
    return group;
  }
  Node* prev = group;
  Node* node = group->next;
  PoisonMemory(group, sizeof(Node));
  for (int i = 0; i < kAlignedScan && node != nullptr; ++i) {
    UnpoisonMemory(node, sizeof(Node));
    Node* next = node->next;
    PoisonMemory(node, sizeof(Node));
    if (aligned(node)) {
      UnpoisonMemory(prev, sizeof(Node));
      prev->next = next;
      PoisonMemory(prev, sizeof(Node));
      return node;
    }
    prev = node;
    node = next;
  }
  return nullptr;
}

void* FreeLists::PopLargest(std::size_t min_size, std::size_t* size) noexcept {
  // The highest nonempty class, if its chunks all hold min_size bytes. (The
  // smallest fitting class instead made servers with growing buffers churn
  // through small regions: 10x slower in the demo's route mix.)
  std::size_t c = kClasses;
  for (std::size_t w = kWords; w-- > 0;) {
    if (nonempty[w] != 0) {
      c = w * 64 + 63 - static_cast<std::size_t>(absl::countl_zero(nonempty[w]));
      break;
    }
  }
  if (c == kClasses || c < ClassCeil(min_size)) return nullptr;
  return TakeAny(c, size);
}

}  // namespace internal
}  // namespace arena
