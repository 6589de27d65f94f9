#include "arena/internal/free_lists.h"

#include "absl/numeric/bits.h"
#include "arena/internal/sanitizer.h"

namespace arena {
namespace internal {
namespace {
constexpr std::size_t kSmallClasses = 64;
}  // namespace

std::size_t FreeLists::ClassCeil(std::size_t size) {
  if (size <= 1024) return size / 16 - 1;
  const int e = 63 - absl::countl_zero(static_cast<std::uint64_t>(size));
  const std::size_t sub = (size >> (e - 2)) & 3;
  std::size_t index = kSmallClasses - 1 + (e - 10) * 4 + sub;
  if ((size & ((std::size_t{1} << (e - 2)) - 1)) != 0) ++index;
  return index;
}

void* FreeLists::Pop(std::size_t size) noexcept {
  const std::size_t first = ClassCeil(size);
  // The class and the next three (one power of two); larger chunks would
  // waste more than a fresh bump allocation costs.
  for (std::size_t c = first; c < first + 4 && c < kClasses; ++c) {
    if ((nonempty[c / 64] >> (c % 64) & 1) == 0) continue;
    Node* node = heads[c];
    UnpoisonMemory(node, sizeof(Node));
    heads[c] = node->next;
    if (node->next == nullptr) {
      nonempty[c / 64] &= ~(std::uint64_t{1} << (c % 64));
    }
    PoisonMemory(node, sizeof(Node));
    return node;
  }
  return nullptr;
}

void* FreeLists::PopFit(std::size_t min_size, std::size_t* size) noexcept {
  // The smallest class whose every chunk holds min_size bytes: the chunk
  // that fits with the least to spare (a mid-size run is used by the
  // requests it can serve, not left behind because a larger one exists).
  const std::size_t first = ClassCeil(min_size);
  std::size_t c = kClasses;
  for (std::size_t w = first / 64; w < kClasses / 64 && c == kClasses; ++w) {
    std::uint64_t bits = nonempty[w];
    if (w == first / 64) bits &= ~std::uint64_t{0} << (first % 64);
    if (bits != 0) c = w * 64 + absl::countr_zero(bits);
  }
  if (c == kClasses) return nullptr;
  Node* node = heads[c];
  UnpoisonMemory(node, sizeof(Node));
  heads[c] = node->next;
  *size = node->size;
  if (node->next == nullptr) {
    nonempty[c / 64] &= ~(std::uint64_t{1} << (c % 64));
  }
  PoisonMemory(node, sizeof(Node));
  return node;
}

}  // namespace internal
}  // namespace arena
