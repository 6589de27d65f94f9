// BlockHeader: the first 64 bytes of every block and every large mapping.
//
// A block is a span of block_size bytes aligned to block_size, so the header
// of any small allocation is `ptr & ~(block_size - 1)`. A large mapping (one
// allocation above large_threshold) is aligned to block_size as well and its
// single allocation starts within its first block_size bytes, so the same
// mask finds its header.
//
// Who owns a block: exactly one of {the depot's hot stack, the depot's cold
// list, one thread cache, one arena}. Only the owner writes the header,
// except that a lock-free depot pop may *read* `next_batch` of a block it
// does not own (it then fails its CAS); that is why the links are relaxed
// atomics, why headers are never poisoned, and why the header page is never
// decommitted while the block is mapped. Only Depot::Trim unmaps small
// blocks (after waiting for the pops in flight): the safety of a lock-free
// pop's read depends on it.
#ifndef ARENA_INTERNAL_BLOCK_H_
#define ARENA_INTERNAL_BLOCK_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/base/config.h"

namespace arena {
namespace internal {

enum class BlockKind : std::uint32_t { kSmall = 1, kLarge = 2 };

inline constexpr std::uint64_t kBlockMagic = 0xa5e9a0b10c4b10c4ull;

struct alignas(64) BlockHeader {
  // Link to the next block of the same list (an arena's blocks, a thread
  // cache, a depot batch, the cold list). Relaxed atomic: see the file
  // comment; ordering comes from the depot's CAS on its head.
  std::atomic<BlockHeader*> next{nullptr};
  // In a depot batch's first block: the next batch of the hot stack.
  std::atomic<BlockHeader*> next_batch{nullptr};
  // Previous large mapping of the owning arena (large mappings only).
  BlockHeader* prev = nullptr;
  std::uint64_t magic = kBlockMagic;
  // The arena holding this block; nullptr while free. Written by the arena
  // that takes the block, before it hands out any memory from it.
  const void* owner = nullptr;
  // Bytes of the whole span (block_size for small blocks).
  std::size_t size = 0;
  // In a depot batch's first block: when the batch was pushed (ms, steady).
  std::int64_t idle_since_ms = 0;
  BlockKind kind = BlockKind::kSmall;
  // In a depot batch's first block: blocks in the batch.
  std::uint32_t batch_count = 0;
};

static_assert(sizeof(BlockHeader) == 64, "BlockHeader must be one cache line");

inline constexpr std::size_t kBlockHeaderSize = sizeof(BlockHeader);

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_BLOCK_H_
