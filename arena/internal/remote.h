// Remote frees in batches (issue 11): a Deallocate on a thread other than
// the arena's owner no longer pushes each chunk onto a line the owner reads.
// The freeing thread links the chunk into its own batch for that arena
// (RemoteBatches, in its ThreadState) and delivers the whole batch with one
// compare-and-swap when it holds kMaxCount chunks or kMaxBytes, when the
// chunk is a large mapping, when another arena's batch needs the slot, and
// at the thread's exit, OnThreadIdle and FlushRemoteFrees. Per object, a
// remote free then writes only the chunk itself and the thread's own batch;
// the shared lines are written once per batch.
//
// The hazard of deferring: the arena may be Reset or destroyed before the
// batch is delivered (the frees happened-before it, as the contract asks;
// the delivery did not). A delivery must then neither write into the
// chunks (their memory is the arena's again, maybe another request's) nor
// touch the arena. So the batch goes to the arena's RemoteInbox, which is
// type-stable (never freed; the runtime recycles it for later arenas) and
// carries a generation:
//   - the batch records the generation its chunks were freed in;
//   - Reset and destruction end the generation (when a batch may exist)
//     and wait for deliveries in flight;
//   - Deliver announces itself (delivering), then checks the generation: a
//     batch of an ended generation is dropped untouched (its memory went
//     back with the Reset, which counted nothing for it).
// The announce-then-check of Deliver against the end-then-wait of
// EndGeneration is a store-load (Dekker) pattern: both sides are seq_cst,
// so at least one sees the other; either the delivery sees the new
// generation, or EndGeneration sees it in flight and waits for it.
#ifndef ARENA_INTERNAL_REMOTE_H_
#define ARENA_INTERNAL_REMOTE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/base/optimization.h"

namespace arena {
namespace internal {

// A freed chunk, in its own first 16 bytes (every chunk has them).
struct FreeChunk {
  FreeChunk* next;
  // As the caller passed them to Deallocate. A chunk of a small block that
  // travelled in a remote batch (RemoteBatches::Append) has them in the low
  // 32 bits (a small block is at most 64 MiB) and a read-ahead hint in the
  // high 32: see SkipHint.
  std::size_t bytes;
};

// The read-ahead hint of a batched chunk: the signed distance, in 16-byte
// grains, from the chunk to the one kSkipAhead links further down its batch,
// or 0 (none: the batch's last kSkipAhead chunks, or a distance that does
// not fit in 32 bits). The owner drains a delivered list by following
// `next` through lines another core wrote, one miss after the other; the
// hint lets it ask for the line kSkipAhead chunks ahead while it works on
// this one, so that that many misses overlap. Only a hint: it is
// prefetched, never dereferenced, so a wrong one costs time, not safety.
inline constexpr std::uint32_t kSkipAhead = 4;
inline constexpr int kBatchBytesBits = 32;

inline std::uint64_t SkipHint(const FreeChunk* chunk, const FreeChunk* ahead) {
  // Fewer than kSkipAhead chunks behind: no hint. (Not "out of range": an
  // arena over a region below 32 GiB, a FixedRegionPageSource, is within
  // 32 bits of grains of address 0; cold review.)
  if (ahead == nullptr) return 0;
  // Chunks are 16-aligned (every pointer handed out is).
  const std::int64_t grains = (reinterpret_cast<std::intptr_t>(ahead) -
                               reinterpret_cast<std::intptr_t>(chunk)) >> 4;
  return grains == static_cast<std::int32_t>(grains)
             ? static_cast<std::uint64_t>(static_cast<std::uint32_t>(grains))
                   << kBatchBytesBits
             : 0;
}
// The two halves of a batched small chunk's `bytes` word.
inline std::size_t BatchedBytes(std::uint64_t word) {
  return static_cast<std::uint32_t>(word);
}
inline const char* SkipTarget(const FreeChunk* chunk, std::uint64_t word) {
  const auto grains = static_cast<std::int32_t>(word >> kBatchBytesBits);
  return grains == 0 ? nullptr
                     : reinterpret_cast<const char*>(chunk) +
                           static_cast<std::intptr_t>(grains) * 16;
}

// Where other threads deliver an arena's remote frees. Created by the first
// remote free of the arena (Runtime::NewInbox), given back by its
// destructor, never freed.
struct alignas(64) RemoteInbox {
  static constexpr std::uint64_t kPending = 1;
  static constexpr std::uint64_t kDirect = 2;
  static constexpr int kGenerationShift = 2;
  // generation << kGenerationShift | kDirect | kPending. Read by every
  // remote free (the generation its batch records); written by the owner
  // when it ends a generation, and once per generation by the first free
  // that may start a batch (kPending: "a batch of this generation may
  // exist", so that a Reset with no remote free since the last one does not
  // write this line). kDirect, for the life of one arena: its frees are
  // delivered one by one, at once, never batched (an arena under a cap:
  // its own max_bytes, a capped SharedArena's, or the process's
  // max_total_bytes; its owner may need a freed chunk to stay within it,
  // and it cannot pull frees out of other threads' batches).
  std::atomic<std::uint64_t> epoch{0};
  RemoteInbox* next_free = nullptr;  // Runtime's pool (its registry mutex)

  // Written once per delivered batch; read by the owner's drains.
  // The delivered chunks, newest batch first: the owner takes them all with
  // one exchange (acquire, pairing with Deliver's release CAS).
  alignas(64) std::atomic<FreeChunk*> head{nullptr};
  // Deliveries between their announcement and their end.
  std::atomic<std::uint32_t> delivering{0};

  static std::uint64_t Generation(std::uint64_t epoch_word) {
    return epoch_word >> kGenerationShift;
  }

  // Pushes the batch first..last (linked by next; last's link is set here)
  // if `generation` is still current. Returns false when it was dropped.
  bool Deliver(std::uint64_t generation, FreeChunk* first,
               FreeChunk* last) noexcept;

  // The owner, at Reset and destruction: if a batch of the current
  // generation may exist, starts a new generation and waits until no
  // delivery is in flight. Afterwards no batch of an earlier generation
  // reaches `head` or writes into a chunk.
  void EndGeneration() noexcept;

  // The owner: true when nothing waits (no delivered chunk, no generation
  // to end). Relaxed peeks, as for any remote free: what happened-before
  // the caller is seen.
  bool Quiet() const noexcept {
    return head.load(std::memory_order_relaxed) == nullptr &&
           (epoch.load(std::memory_order_relaxed) & kPending) == 0;
  }

  // The owner: every delivered chunk (nullptr if none).
  FreeChunk* Take() noexcept {
    if (head.load(std::memory_order_relaxed) == nullptr) return nullptr;
    return head.exchange(nullptr, std::memory_order_acquire);
  }
};

// One thread's batches, one per recently freed-to inbox (direct-mapped by
// the inbox's address). Used by that thread only. Arena::DeallocateRemote
// adds to a batch inline (Slot, then Append) and leaves the rest here.
class RemoteBatches {
 public:
  static constexpr std::size_t kSlots = 16;
  static constexpr std::uint32_t kMaxCount = 32;
  static constexpr std::size_t kMaxBytes = 16 * 1024;

  struct Batch {
    RemoteInbox* inbox = nullptr;
    std::uint64_t epoch = 0;     // the inbox's epoch word (kPending set)
    FreeChunk* first = nullptr;  // newest
    FreeChunk* last = nullptr;   // oldest: its link is set on delivery
    std::uint32_t count = 0;
    std::size_t bytes = 0;
    // The last kSkipAhead chunks appended: ahead[n % kSkipAhead] is the
    // chunk appended when count was n (see SkipHint).
    FreeChunk* ahead[kSkipAhead] = {};
  };

  Batch& Slot(const RemoteInbox* inbox) noexcept {
    return slots_[(reinterpret_cast<std::uintptr_t>(inbox) /
                   sizeof(RemoteInbox)) % kSlots];
  }
  // Adds `chunk` (its bytes set by the caller), of `size` bytes, to `b`,
  // which holds the batch of the chunk's inbox and current epoch (the
  // caller checked): true when the batch is now full (deliver it).
  static bool Append(Batch& b, FreeChunk* chunk, std::size_t size) noexcept {
    FreeChunk*& ahead = b.ahead[b.count % kSkipAhead];
    chunk->bytes |= SkipHint(chunk, ahead);
    ahead = chunk;
    chunk->next = b.first;
    b.first = chunk;
    b.bytes += size;
    return ++b.count >= kMaxCount || b.bytes >= kMaxBytes;
  }
  // The rest of an add, when Slot(inbox) holds another arena's batch, one
  // of an ended generation (dropped by Deliver without touching its
  // chunks), or none: delivers what it held, marks the inbox pending
  // (`epoch` is the word the caller read), starts a batch with `chunk`.
  // For a kDirect inbox it only delivers `chunk`, alone.
  void Start(Batch& b, RemoteInbox* inbox, std::uint64_t epoch,
             FreeChunk* chunk, std::size_t size) noexcept;

  // Adds `chunk` (its bytes set by the caller), of `size` bytes, freed in
  // the epoch `epoch` (read just now) of `inbox`; delivers the batch when
  // it is full.
  void Add(RemoteInbox* inbox, std::uint64_t epoch, FreeChunk* chunk,
           std::size_t size) noexcept {
    Batch& b = Slot(inbox);
    if (ABSL_PREDICT_FALSE(b.inbox != inbox || b.epoch != epoch)) {
      Start(b, inbox, epoch, chunk, size);
    } else if (ABSL_PREDICT_FALSE(Append(b, chunk, size))) {
      Deliver(b);
    }
  }

  // Delivers and empties `b` (count != 0); returns the chunks delivered
  // (0 when dropped).
  static std::size_t Deliver(Batch& b) noexcept;

  // Delivers every batch (thread exit, OnThreadIdle, FlushRemoteFrees).
  // Returns the chunks delivered (dropped ones not counted).
  std::size_t DeliverAll() noexcept;

 private:
  Batch slots_[kSlots];
};

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_REMOTE_H_
