// Remote frees in batches (issue 11): a Deallocate on a thread other than
// the arena's owner neither pushes each chunk onto a line the owner reads
// nor writes into the chunk. The freeing thread notes the chunk and its
// bytes in its own batch for that arena (a RemoteBatch: an array in the
// runtime's memory, never the arena's; RemoteBatches, in its ThreadState)
// and delivers the whole batch with one compare-and-swap when it holds
// kMaxCount chunks or kMaxBytes, when the chunk is a large mapping, when
// another arena's batch needs the slot, and at the thread's exit,
// OnThreadIdle and FlushRemoteFrees. Per object, a remote free then writes
// only the thread's own batch; the shared lines are written once per batch.
//
// Why arrays and not links through the chunks: a link written by the
// freeing thread takes the chunk's line to that thread's core, and the
// owner's drain must fetch it back before it can even find the next chunk
// (the misses one after the other). With the chunks named in an array the
// freeing thread only read the chunk (if at all: its own code did), the
// owner reads four chunk addresses per line of the batch, and can ask for
// the lines of the chunks it is about to file well ahead.
//
// The hazard of deferring: the arena may be Reset or destroyed before the
// batch is delivered (the frees happened-before it, as the contract asks;
// the delivery did not). A delivery must then not reach the arena: its
// chunks are the arena's memory again, maybe another request's. So the
// batch goes to the arena's RemoteInbox, which is type-stable (never freed;
// the runtime recycles it for later arenas) and carries a generation:
//   - the batch records the generation its chunks were freed in;
//   - Reset and destruction end the generation (when a batch may exist)
//     and wait for deliveries in flight;
//   - Deliver announces itself (delivering), then checks the generation: a
//     batch of an ended generation is dropped (its memory went back with
//     the Reset, which counted nothing for it) and its RemoteBatch goes
//     back to the delivering thread's spares.
// The announce-then-check of Deliver against the end-then-wait of
// EndGeneration is a store-load (Dekker) pattern: both sides are seq_cst,
// so at least one sees the other; either the delivery sees the new
// generation, or EndGeneration sees it in flight and waits for it.
//
// Loose chunks: a free delivered alone (a large mapping; every free into a
// capped arena, see kDirect; a free on a thread without a state, or when
// no RemoteBatch can be had) and a batch shipped with fewer than
// kMinShipped chunks (a thread freeing into more arenas than it has slots,
// or flushing) go over as chunks linked through their own first 16 bytes
// (FreeChunk), on a second list of the inbox. They need no heap, so a
// RemoteBatch in flight always carries at least kMinShipped frees: the
// heap remote frees hold is at most sizeof(RemoteBatch) / kMinShipped
// bytes per free waiting for its owner's drain.
//
// RemoteBatch objects: each thread keeps a few spares (RemoteBatches);
// past kMaxSpares it gives half to the runtime's pool (its registry mutex,
// once per kMaxSpares / 2 batches), and takes from that pool, or makes new
// ones, when it has none. The owner's drain gives the batches it emptied
// to its own thread's spares. OnThreadIdle, once its thread sat idle for
// the release delay, gives the thread's spares to the pool;
// ReleaseIdleMemory frees the pooled batches no thread took for a whole
// interval (the pool's low-water mark), Trim all of them.
#ifndef ARENA_INTERNAL_REMOTE_H_
#define ARENA_INTERNAL_REMOTE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/base/optimization.h"
#include "arena/internal/sanitizer.h"

namespace arena {
namespace internal {

// A freed chunk, in its own first 16 bytes (every chunk has them): the
// owner's unsorted local frees (Arena::pending_), and loose remote frees.
struct FreeChunk {
  FreeChunk* next;
  std::size_t bytes;  // as the caller passed them to Deallocate
};

// Up to kMaxCount remote frees into one arena, in the order they were made.
// (16-byte entries, as operator new aligns them, never straddle a line.)
struct RemoteBatch {
  static constexpr std::uint32_t kMaxCount = 32;
  struct Entry {
    char* chunk;
    std::size_t bytes;  // as the caller passed them to Deallocate
  };
  Entry entries[kMaxCount];
  // The inbox's list (newest batch first) once delivered; a spare list
  // before.
  RemoteBatch* next = nullptr;
  std::uint32_t count = 0;  // set by the delivery
};

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

  // Written once per delivery; read by the owner's drains.
  // The delivered batches, newest first, and the loose chunks (linked
  // through FreeChunk::next), newest first: the owner takes each list with
  // one exchange (acquire, pairing with the delivery's release CAS).
  alignas(64) std::atomic<RemoteBatch*> head{nullptr};
  std::atomic<FreeChunk*> loose{nullptr};
  // Deliveries between their announcement and their end.
  std::atomic<std::uint32_t> delivering{0};

  static std::uint64_t Generation(std::uint64_t epoch_word) {
    return epoch_word >> kGenerationShift;
  }

 private:
  template <class Push>
  bool Announced(std::uint64_t generation, Push push) noexcept;
  void PushLoose(FreeChunk* first, FreeChunk* last) noexcept;

 public:
  // Pushes `batch` (its count set) if `generation` is still current.
  // Returns false when it was dropped (the batch is the caller's again).
  bool Deliver(std::uint64_t generation, RemoteBatch* batch) noexcept;
  // Pushes `chunk` (its bytes set; its link is set here) to the loose
  // list if `generation` is still current. False when it was dropped.
  bool DeliverLoose(std::uint64_t generation, FreeChunk* chunk) noexcept;
  // Pushes the n chunks of `entries` to the loose list, each linked through
  // its own first 16 bytes, if `generation` is still current: the chunks
  // are written only then (a dropped batch's chunks may be another
  // request's memory). False when they were dropped.
  bool DeliverLoose(std::uint64_t generation, const RemoteBatch::Entry* entries,
                    std::uint32_t n) noexcept;

  // The owner, at Reset and destruction: if a batch of the current
  // generation may exist, starts a new generation and waits until no
  // delivery is in flight. Afterwards no batch of an earlier generation
  // reaches `head`.
  void EndGeneration() noexcept;

  // The owner: true when nothing waits (no delivered batch, no generation
  // to end). Relaxed peeks, as for any remote free: what happened-before
  // the caller is seen.
  bool Quiet() const noexcept {
    return Empty() && (epoch.load(std::memory_order_relaxed) & kPending) == 0;
  }
  // The owner: nothing delivered waits (relaxed peeks).
  bool Empty() const noexcept {
    return head.load(std::memory_order_relaxed) == nullptr &&
           loose.load(std::memory_order_relaxed) == nullptr;
  }

  // The owner: every delivered batch (nullptr if none).
  RemoteBatch* Take() noexcept {
    if (head.load(std::memory_order_relaxed) == nullptr) return nullptr;
    return head.exchange(nullptr, std::memory_order_acquire);
  }
  // The owner: every loose chunk delivered (nullptr if none).
  FreeChunk* TakeLoose() noexcept {
    if (loose.load(std::memory_order_relaxed) == nullptr) return nullptr;
    return loose.exchange(nullptr, std::memory_order_acquire);
  }
};

// One thread's batches, one per recently freed-to inbox (direct-mapped by
// the inbox's address), and its spare RemoteBatch objects. Used by that
// thread only. Arena::DeallocateRemote adds to a batch inline (Add) and
// leaves the rest here.
class RemoteBatches {
 public:
  static constexpr std::size_t kSlots = 16;
  static constexpr std::uint32_t kMaxCount = RemoteBatch::kMaxCount;
  static constexpr std::size_t kMaxBytes = 16 * 1024;
  static constexpr std::uint32_t kMaxSpares = 16;
  // A batch with fewer chunks goes over loose (see the file comment).
  static constexpr std::uint32_t kMinShipped = 8;

  RemoteBatches() = default;
  // Its spares, and any batch not delivered (RetireThread delivers them
  // first; their frees are then left with their arenas), go to the
  // runtime's pool.
  ~RemoteBatches();
  RemoteBatches(const RemoteBatches&) = delete;
  RemoteBatches& operator=(const RemoteBatches&) = delete;

  // A batch being filled: inbox != nullptr iff batch != nullptr, and then
  // count >= 1.
  struct Slot {
    RemoteInbox* inbox = nullptr;
    std::uint64_t epoch = 0;        // the inbox's epoch word (kPending set)
    RemoteBatch* batch = nullptr;
    std::uint32_t count = 0;
    std::uint32_t bytes = 0;        // chunk bytes, at most kMaxBytes + a chunk
  };

  // Adds `chunk` (freed with `bytes`, of chunk size `size`, small: at most
  // 64 MiB), freed in the epoch `epoch` (read just now) of `inbox`;
  // delivers the batch when it is full. Without a RemoteBatch to start one
  // (no heap) the chunk is delivered alone, loose.
  void Add(RemoteInbox* inbox, std::uint64_t epoch, char* chunk,
           std::size_t bytes, std::size_t size) noexcept {
    Slot& s = slots_[(reinterpret_cast<std::uintptr_t>(inbox) /
                      sizeof(RemoteInbox)) % kSlots];
    if (ABSL_PREDICT_FALSE(s.inbox != inbox || s.epoch != epoch)) {
      Start(s, inbox, epoch, chunk, bytes, size);
      return;
    }
    s.batch->entries[s.count] = RemoteBatch::Entry{chunk, bytes};
    s.bytes += static_cast<std::uint32_t>(size);
    if (ABSL_PREDICT_FALSE(++s.count >= kMaxCount || s.bytes >= kMaxBytes)) {
      Deliver(s);
    }
  }

  // Delivers every batch (thread exit, OnThreadIdle, FlushRemoteFrees).
  // Returns the chunks delivered (dropped ones not counted).
  std::size_t DeliverAll() noexcept;

  // The drain's emptied batches (a list by `next`), to the spares.
  void Recycle(RemoteBatch* list) noexcept;

  // Every spare, for the runtime's pool (thread exit, OnThreadIdle); none
  // left here.
  RemoteBatch* TakeSpares() noexcept;

 private:
  // The rest of an add, when the slot holds another arena's batch, one of
  // an ended generation (dropped by Deliver), or none: delivers what it
  // held, marks the inbox pending (`epoch` is the word the caller read),
  // starts a batch with `chunk`. For a kDirect inbox it only delivers
  // `chunk`, alone.
  void Start(Slot& s, RemoteInbox* inbox, std::uint64_t epoch, char* chunk,
             std::size_t bytes, std::size_t size) noexcept;
  // Delivers and empties `s` (count != 0), loose below kMinShipped
  // chunks; returns the chunks delivered (0 when dropped).
  std::size_t Deliver(Slot& s) noexcept;
  // A spare RemoteBatch (from the runtime's pool or new when none is left
  // here), or nullptr when the heap is exhausted.
  RemoteBatch* NewBatch() noexcept;
  void Spare(RemoteBatch* batch) noexcept;

  Slot slots_[kSlots];
  RemoteBatch* spares_ = nullptr;
  std::uint32_t spare_count_ = 0;
};

// Delivers `chunk` (freed with `bytes`) alone and loose, at once: a large
// mapping, a kDirect inbox's free, a free on a thread without a state, or
// one without a RemoteBatch. The generation is `epoch`'s, read within the
// Deallocate, which happened-before any Reset that could end it. Writes
// the chunk's first 16 bytes (unpoisoned for it; the rest stays as is).
inline void DeliverAlone(RemoteInbox* inbox, std::uint64_t epoch, char* chunk,
                         std::size_t bytes) noexcept {
  auto* c = reinterpret_cast<FreeChunk*>(chunk);
  UnpoisonMemory(c, sizeof(FreeChunk));
  c->bytes = bytes;
  inbox->DeliverLoose(RemoteInbox::Generation(epoch), c);
}

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_REMOTE_H_
