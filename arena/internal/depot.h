// Depot: the process-wide store of free blocks, moved in batches.
//
// Hot stack: a lock-free Treiber stack of batches (lists of up to
// batch_blocks blocks linked by BlockHeader::next; batches linked by
// BlockHeader::next_batch). A thread moves a whole batch with one CAS, so the
// shared line is touched once per batch. ABA: the head word packs the batch
// pointer with a version counter (the tag) in every bit a block address
// leaves free: bits 0 .. log2(block_size) - 1 (blocks are aligned to their
// size) and bits 47 .. 63 (x86-64 user addresses are below 2^47), so
// TagBits = log2(block_size) + 17 bits: 30 at the 8 KiB minimum block, 33 at
// the 64 KiB default. Every successful push or pop (and a release pass, at
// most twice) bumps it, so a pop that read a stale `next_batch` fails its
// CAS unless a multiple of 2^TagBits head changes completed while it was
// preempted between its load and its CAS: at 8 KiB, 2^30 (about 1.07e9)
// depot operations, i.e. more than 20 s of uninterrupted depot traffic at
// 50 M operations per second (and the depot sees one per batch of blocks).
//
// Cold list: mutex-guarded list of blocks whose pages after the header were
// decommitted (idle batches, batches past max_bytes). Blocks are decommitted
// only once they are off the hot stack, so no lock-free reader loses links.
//
// Unmapping (Trim, destruction) waits until no pop is in flight: a pop may
// still read the header of a block it saw at the top a moment ago. That
// count is state a fork() child inherits from threads it does not have:
// the runtime's child handler calls ResetAfterForkInChild().
//
// Invariant: hot_blocks + cold_blocks == blocks held; every held block is in
// exactly one place. Thread-safety: every method may be called from any
// thread. Lifetime: the process depot is never destroyed; a test depot must
// outlive its users, and its destructor unmaps everything it holds.
#ifndef ARENA_INTERNAL_DEPOT_H_
#define ARENA_INTERNAL_DEPOT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "arena/internal/block.h"
#include "arena/internal/mutex.h"
#include "arena/page_source.h"

namespace arena {
namespace internal {

struct DepotOptions {
  std::size_t block_size = 64 * 1024;
  std::size_t batch_blocks = 8;
  std::size_t max_bytes = 256 * 1024 * 1024;  // committed hot bytes kept
};

struct DepotStats {
  std::size_t hot_blocks = 0;
  std::size_t cold_blocks = 0;
  std::uint64_t hits = 0;    // Acquire served from the hot stack or cold list
  std::uint64_t misses = 0;  // Acquire had to map fresh blocks
  std::uint64_t pushes = 0;  // batches released into the depot
  std::uint64_t released_bytes = 0;  // decommitted or unmapped
};

class Depot {
 public:
  Depot(PageSource* source, const DepotOptions& options);
  Depot(const Depot&) = delete;
  Depot& operator=(const Depot&) = delete;
  ~Depot();

  // Takes one batch (1 to batch_blocks blocks, linked by `next`, the last
  // one's `next` null) into *head and returns its length. Maps fresh blocks
  // when the depot is empty; returns 0 when none can be mapped.
  std::size_t Acquire(BlockHeader** head);

  // Gives `count` free blocks (linked by `next`) back, as batches of at most
  // batch_blocks. `now_ms` stamps them for idle release.
  void Release(BlockHeader* head, std::size_t count, std::int64_t now_ms);

  // Decommits every batch idle for at least `delay_ms`; returns the bytes.
  std::size_t ReleaseIdle(std::int64_t now_ms, std::int64_t delay_ms);

  // Unmaps every block the depot holds; returns the bytes.
  std::size_t Trim();

  // Maps one fresh block with its header set up, or nullptr.
  BlockHeader* MapBlock();

  DepotStats stats() const;
  PageSource* source() const { return source_; }
  std::size_t block_size() const { return block_size_; }
  std::size_t batch_blocks() const { return batch_blocks_; }

  // pthread_atfork support: hold the cold-list mutex across fork.
  void LockForFork() ABSL_EXCLUSIVE_LOCK_FUNCTION(mu_) { mu_.Lock(); }
  void UnlockAfterFork() ABSL_UNLOCK_FUNCTION(mu_) { mu_.Unlock(); }
  // In a fork() child, before UnlockAfterFork: the pops that were in flight
  // belong to threads that do not exist there and will never finish, and
  // the hot-block count may include a push or miss a pop that never
  // completed: count what the stack holds.
  void ResetAfterForkInChild();

  // Bits of the ABA tag for a block size (see above).
  static int TagBits(std::size_t block_size);
  // The tag, and setting it (keeping the head pointer); for tests.
  std::uint64_t TagForTesting() const;
  void SetTagForTesting(std::uint64_t tag);

  // Walks the structures and checks the invariant; for tests, when quiescent.
  bool CheckInvariantForTesting() const;

 private:
  void PushBatch(BlockHeader* head, std::size_t count, std::int64_t now_ms);
  std::size_t PopBatch(BlockHeader** head);
  std::size_t TakeCold(BlockHeader** head) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddCold(BlockHeader* head, std::size_t count)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  BlockHeader* TakeAllHot();
  // Puts back a chain of batches (linked by next_batch, top first, `tail`
  // its last) on top of the stack with one CAS, not counted as pushes.
  void SpliceHot(BlockHeader* top, BlockHeader* tail, std::size_t blocks);
  std::uint64_t Pack(BlockHeader* p, std::uint64_t tag) const;
  BlockHeader* PtrOf(std::uint64_t word) const {
    return reinterpret_cast<BlockHeader*>(word & ptr_mask_);
  }
  std::uint64_t TagOf(std::uint64_t word) const {
    return (word & low_mask_) | ((word >> kHighShift) << low_bits_);
  }
  static constexpr int kHighShift = 47;
  void WaitForPops();
  void UnmapList(BlockHeader* head, bool decommitted);

  // Hot line: the tagged head of the batch stack and the in-flight pops.
  alignas(64) std::atomic<std::uint64_t> head_{0};
  std::atomic<std::int64_t> pops_in_flight_{0};

  PageSource* const source_;
  const std::size_t block_size_;
  // The head word: tag bits 0 .. low_bits_ - 1 at the bottom, the pointer
  // in bits low_bits_ .. 46, the tag's upper bits in 47 .. 63.
  const int low_bits_;                // log2(block_size)
  const std::uint64_t low_mask_;      // (1 << low_bits_) - 1
  const std::uint64_t ptr_mask_;      // bits low_bits_ .. 46
  const std::size_t batch_blocks_;
  const std::size_t max_bytes_;

  // Statistics; relaxed, they synchronize nothing.
  alignas(64) std::atomic<std::size_t> hot_blocks_{0};
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> pushes_{0};
  std::atomic<std::uint64_t> released_bytes_{0};
  std::atomic<std::size_t> cold_count_{0};  // mirror of cold_blocks_ for stats

  mutable Mutex mu_;
  BlockHeader* cold_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::size_t cold_blocks_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_DEPOT_H_
