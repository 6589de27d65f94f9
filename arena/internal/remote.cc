// Remote-free batches and their delivery; see remote.h.
#include "arena/internal/remote.h"

#include <chrono>
#include <thread>

namespace arena {
namespace internal {

bool RemoteInbox::Deliver(std::uint64_t generation, FreeChunk* first,
                          FreeChunk* last) noexcept {
  // Announce, then check (seq_cst both, against EndGeneration's seq_cst
  // store then load): if the generation read here is still `generation`,
  // EndGeneration's wait sees this delivery and waits for its end, so the
  // chunks are still the arena's free memory while this writes into them.
  delivering.fetch_add(1, std::memory_order_seq_cst);
  const bool current =
      Generation(epoch.load(std::memory_order_seq_cst)) == generation;
  if (current) {
    FreeChunk* h = head.load(std::memory_order_relaxed);
    do {
      last->next = h;
      // Release: the chunks' links and sizes, and the freeing threads'
      // last writes to them, to the owner's acquire exchange (Take).
    } while (!head.compare_exchange_weak(h, first, std::memory_order_release,
                                         std::memory_order_relaxed));
  }
  // Release: this delivery's writes to the chunks happen-before an
  // EndGeneration that reads the count this leaves (then reuses them).
  delivering.fetch_sub(1, std::memory_order_release);
  return current;
}

void RemoteInbox::EndGeneration() noexcept {
  const std::uint64_t e = epoch.load(std::memory_order_relaxed);
  // No batch of this generation was started (every free that starts one
  // marks kPending first, and happened-before this call): nothing to end.
  if ((e & kPending) == 0) return;
  epoch.store((Generation(e) + 1) << kGenerationShift | (e & kDirect),
              std::memory_order_seq_cst);
  // A delivery in flight announced itself before it checked the
  // generation: wait for it (a handful of instructions, unless its thread
  // was preempted there). Deliveries that start from now on see the new
  // generation and leave at once.
  // Past a while, sleep rather than yield: a yield does not let a
  // lower-priority delivering thread run on this CPU (real-time policies).
  for (int spins = 0; delivering.load(std::memory_order_seq_cst) != 0;) {
    if (spins < 1024) ++spins;
    if (spins < 64) continue;
    if (spins < 1024) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

void RemoteBatches::Start(Batch& b, RemoteInbox* inbox, std::uint64_t epoch,
                          FreeChunk* chunk, std::size_t size) noexcept {
  if ((epoch & RemoteInbox::kDirect) != 0) {
    // Never batched (see kDirect): within this Deallocate, which
    // happened-before any Reset that could end the generation.
    chunk->next = nullptr;
    inbox->Deliver(RemoteInbox::Generation(epoch), chunk, chunk);
    return;
  }
  if (b.count != 0) Deliver(b);
  if ((epoch & RemoteInbox::kPending) == 0) {
    // Relaxed: this free happened-before any Reset that ends the
    // generation (the caller's contract), which therefore sees the mark.
    inbox->epoch.fetch_or(RemoteInbox::kPending, std::memory_order_relaxed);
    epoch |= RemoteInbox::kPending;
  }
  chunk->next = nullptr;
  b.inbox = inbox;
  b.epoch = epoch;
  b.first = b.last = chunk;
  b.ahead[0] = chunk;
  b.count = 1;
  b.bytes = size;
  if (size >= kMaxBytes) Deliver(b);
}

std::size_t RemoteBatches::Deliver(Batch& b) noexcept {
  const std::size_t count = b.count;
  const bool delivered = b.inbox->Deliver(RemoteInbox::Generation(b.epoch),
                                          b.first, b.last);
  b = Batch{};
  return delivered ? count : 0;
}

std::size_t RemoteBatches::DeliverAll() noexcept {
  std::size_t delivered = 0;
  for (Batch& b : slots_) {
    if (b.count != 0) delivered += Deliver(b);
  }
  return delivered;
}

}  // namespace internal
}  // namespace arena
