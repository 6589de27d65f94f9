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
    return TakeHead(c, nullptr);
  }
  return nullptr;
}

void* FreeLists::PopLargest(std::size_t min_size, std::size_t* size) noexcept {
  // The highest nonempty class, if its chunks all hold min_size bytes. (The
  // smallest fitting class instead made servers with growing buffers churn
  // through small regions: 10x slower in the demo's route mix.)
  std::size_t c = kClasses;
  if (nonempty[1] != 0) {
    c = 64 + 63 - absl::countl_zero(nonempty[1]);
  } else if (nonempty[0] != 0) {
    c = 63 - absl::countl_zero(nonempty[0]);
  }
  if (c < ClassCeil(min_size)) c = kClasses;
  if (c == kClasses) return nullptr;
  return TakeHead(c, size);
}

FreeLists::Node* FreeLists::TakeHead(std::size_t c, std::size_t* size) noexcept {
  Node* node = heads[c];
  UnpoisonMemory(node, sizeof(Node));
  heads[c] = node->next;
  if (size != nullptr) *size = node->size;
  if (node->next == nullptr) {
    nonempty[c / 64] &= ~(std::uint64_t{1} << (c % 64));
  }
  PoisonMemory(node, sizeof(Node));
  return node;
}

}  // namespace internal
}  // namespace arena
