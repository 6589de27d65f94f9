// Remote-free batches and their delivery; see remote.h.
#include "arena/internal/remote.h"

#include <chrono>
#include <thread>

#include "arena/internal/runtime.h"

namespace arena {
namespace internal {

// Every delivery: announce, then check (seq_cst both, against
// EndGeneration's seq_cst store then load): if the generation read here is
// still `generation`, EndGeneration's wait sees this delivery and waits for
// its end, so what `push` writes (into the chunks too, for loose ones)
// happens while they are still the arena's free memory, and reaches the
// inbox before the owner's Reset takes what is there.
template <class Push>
bool RemoteInbox::Announced(std::uint64_t generation, Push push) noexcept {
  delivering.fetch_add(1, std::memory_order_seq_cst);
  const bool current =
      Generation(epoch.load(std::memory_order_seq_cst)) == generation;
  if (current) push();
  // Release: this delivery's writes happen-before an EndGeneration that
  // reads the count this leaves (then takes what the lists hold).
  delivering.fetch_sub(1, std::memory_order_release);
  return current;
}

bool RemoteInbox::Deliver(std::uint64_t generation, RemoteBatch* batch) noexcept {
  return Announced(generation, [&] {
    RemoteBatch* h = head.load(std::memory_order_relaxed);
    do {
      batch->next = h;
      // Release: the batch's entries and count, and the freeing threads'
      // last writes to the chunks, to the owner's acquire exchange (Take).
    } while (!head.compare_exchange_weak(h, batch, std::memory_order_release,
                                         std::memory_order_relaxed));
  });
}

void RemoteInbox::PushLoose(FreeChunk* first, FreeChunk* last) noexcept {
  FreeChunk* h = loose.load(std::memory_order_relaxed);
  do {
    last->next = h;
    // Release: the chunks' links and sizes, to TakeLoose's acquire.
  } while (!loose.compare_exchange_weak(h, first, std::memory_order_release,
                                        std::memory_order_relaxed));
}

bool RemoteInbox::DeliverLoose(std::uint64_t generation,
                               FreeChunk* chunk) noexcept {
  return Announced(generation, [&] { PushLoose(chunk, chunk); });
}

bool RemoteInbox::DeliverLoose(std::uint64_t generation,
                               const RemoteBatch::Entry* entries,
                               std::uint32_t n) noexcept {
  return Announced(generation, [&] {
    FreeChunk* first = nullptr;
    FreeChunk* last = nullptr;
    for (std::uint32_t i = 0; i < n; ++i) {
      auto* c = reinterpret_cast<FreeChunk*>(entries[i].chunk);
      // Poisoned by its Deallocate: unpoison exactly the link and size.
      UnpoisonMemory(c, sizeof(FreeChunk));
      c->bytes = entries[i].bytes;
      c->next = first;
      if (last == nullptr) last = c;
      first = c;
    }
    PushLoose(first, last);
  });
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

void RemoteBatches::Start(Slot& s, RemoteInbox* inbox, std::uint64_t epoch,
                          char* chunk, std::size_t bytes,
                          std::size_t size) noexcept {
  if ((epoch & RemoteInbox::kDirect) != 0) {
    // Never batched (see kDirect).
    DeliverAlone(inbox, epoch, chunk, bytes);
    return;
  }
  if (s.count != 0) Deliver(s);
  RemoteBatch* batch = NewBatch();
  if (batch == nullptr) {  // no heap for a batch: this one goes loose
    DeliverAlone(inbox, epoch, chunk, bytes);
    return;
  }
  if ((epoch & RemoteInbox::kPending) == 0) {
    // Relaxed: this free happened-before any Reset that ends the
    // generation (the caller's contract), which therefore sees the mark.
    inbox->epoch.fetch_or(RemoteInbox::kPending, std::memory_order_relaxed);
    epoch |= RemoteInbox::kPending;
  }
  batch->entries[0] = RemoteBatch::Entry{chunk, bytes};
  s.inbox = inbox;
  s.epoch = epoch;
  s.batch = batch;
  s.count = 1;
  s.bytes = static_cast<std::uint32_t>(size);
  if (size >= kMaxBytes) Deliver(s);
}

std::size_t RemoteBatches::Deliver(Slot& s) noexcept {
  const std::uint32_t count = s.count;
  RemoteBatch* batch = s.batch;
  const std::uint64_t generation = RemoteInbox::Generation(s.epoch);
  bool delivered;
  if (count < kMinShipped) {
    // Loose: the batch stays here (see the file comment).
    delivered = s.inbox->DeliverLoose(generation, batch->entries, count);
    Spare(batch);
  } else {
    batch->count = count;
    delivered = s.inbox->Deliver(generation, batch);
    if (!delivered) Spare(batch);
  }
  s = Slot{};
  return delivered ? count : 0;
}

std::size_t RemoteBatches::DeliverAll() noexcept {
  std::size_t delivered = 0;
  for (Slot& s : slots_) {
    if (s.count != 0) delivered += Deliver(s);
  }
  return delivered;
}

RemoteBatches::~RemoteBatches() {
  for (Slot& s : slots_) {
    if (s.batch != nullptr) {
      s.batch->next = spares_;
      spares_ = s.batch;
    }
  }
  if (spares_ != nullptr) Runtime::Get().GiveBatches(TakeSpares());
}

RemoteBatch* RemoteBatches::NewBatch() noexcept {
  if (spares_ == nullptr) {
    spares_ = Runtime::Get().TakeBatches(kMaxSpares / 2, &spare_count_);
    if (spares_ == nullptr) return nullptr;
  }
  RemoteBatch* batch = spares_;
  spares_ = batch->next;
  --spare_count_;
  batch->next = nullptr;
  return batch;
}

void RemoteBatches::Spare(RemoteBatch* batch) noexcept {
  batch->next = spares_;
  spares_ = batch;
  if (++spare_count_ <= kMaxSpares) return;
  // Half to the runtime's pool, for threads that free more than they drain.
  RemoteBatch* last = spares_;
  for (std::uint32_t n = 1; n < kMaxSpares / 2; ++n) last = last->next;
  RemoteBatch* give = spares_;
  spares_ = last->next;
  last->next = nullptr;
  spare_count_ -= kMaxSpares / 2;
  Runtime::Get().GiveBatches(give);
}

void RemoteBatches::Recycle(RemoteBatch* list) noexcept {
  while (list != nullptr) {
    RemoteBatch* next = list->next;
    Spare(list);
    list = next;
  }
}

RemoteBatch* RemoteBatches::TakeSpares() noexcept {
  RemoteBatch* spares = spares_;
  spares_ = nullptr;
  spare_count_ = 0;
  return spares;
}

}  // namespace internal
}  // namespace arena
