#include "arena/internal/depot.h"

#include <new>
#include <thread>

#include "absl/numeric/bits.h"
#include "arena/internal/check.h"
#include "arena/internal/sanitizer.h"

namespace arena {
namespace internal {
namespace {
int Log2(std::size_t v) {
  return 63 - absl::countl_zero(static_cast<std::uint64_t>(v));
}
}  // namespace

int Depot::TagBits(std::size_t block_size) {
  return Log2(block_size) + (64 - kHighShift);
}

std::uint64_t Depot::Pack(BlockHeader* p, std::uint64_t tag) const {
  return reinterpret_cast<std::uintptr_t>(p) | (tag & low_mask_) |
         ((tag >> low_bits_) << kHighShift);
}

std::uint64_t Depot::TagForTesting() const {
  return TagOf(head_.load(std::memory_order_relaxed));
}

void Depot::SetTagForTesting(std::uint64_t tag) {
  std::uint64_t old = head_.load(std::memory_order_relaxed);
  // Release/acquire as a push: the head's batch stays published.
  while (!head_.compare_exchange_weak(old, Pack(PtrOf(old), tag),
                                      std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
  }
}

Depot::Depot(PageSource* source, const DepotOptions& options)
    : source_(source),
      block_size_(options.block_size),
      low_bits_(Log2(options.block_size)),
      low_mask_((std::uint64_t{1} << low_bits_) - 1),
      ptr_mask_(((std::uint64_t{1} << kHighShift) - 1) & ~low_mask_),
      batch_blocks_(options.batch_blocks),
      max_bytes_(options.max_bytes) {
  ARENA_CHECK(block_size_ >= 2 * PageSource::kPageSize &&
                  (block_size_ & (block_size_ - 1)) == 0,
              "Depot: block_size must be a power of two of at least 8 KiB");
  ARENA_CHECK(batch_blocks_ >= 1, "Depot: batch_blocks must be at least 1");
}

Depot::~Depot() { Trim(); }

BlockHeader* Depot::MapBlock() {
  void* p = source_->Map(block_size_, block_size_);
  if (p == nullptr) return nullptr;
  ARENA_CHECK((reinterpret_cast<std::uintptr_t>(p) & ~ptr_mask_) == 0,
              "Depot: a block address does not fit the tagged head (not "
              "aligned to block_size, or at or above 2^47)");
  auto* block = ::new (p) BlockHeader();
  block->size = block_size_;
  block->kind = BlockKind::kSmall;
  return block;
}

std::size_t Depot::Acquire(BlockHeader** head) {
  std::size_t n = PopBatch(head);
  if (n == 0) {
    MutexLock lock(&mu_);
    // ReleaseIdle holds every hot batch for a moment under mu_: look again.
    n = PopBatch(head);
    if (n == 0) n = TakeCold(head);
  }
  if (n != 0) {
    hits_.fetch_add(1, std::memory_order_relaxed);
    return n;
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  BlockHeader* list = nullptr;
  std::size_t got = 0;
  for (; got < batch_blocks_; ++got) {
    BlockHeader* block = MapBlock();
    if (block == nullptr) break;
    block->next.store(list, std::memory_order_relaxed);
    list = block;
  }
  *head = list;
  return got;
}

void Depot::Release(BlockHeader* head, std::size_t count, std::int64_t now_ms) {
  while (head != nullptr) {
    BlockHeader* tail = head;
    std::size_t n = 1;
    while (n < batch_blocks_) {
      BlockHeader* next = tail->next.load(std::memory_order_relaxed);
      if (next == nullptr) break;
      tail = next;
      ++n;
    }
    BlockHeader* rest = tail->next.load(std::memory_order_relaxed);
    tail->next.store(nullptr, std::memory_order_relaxed);
    // Approximate cap: concurrent releases may overshoot it by a batch each.
    const std::size_t hot_bytes =
        hot_blocks_.load(std::memory_order_relaxed) * block_size_;
    if (hot_bytes + n * block_size_ > max_bytes_) {
      for (BlockHeader* b = head; b != nullptr;
           b = b->next.load(std::memory_order_relaxed)) {
        source_->Decommit(reinterpret_cast<char*>(b) + PageSource::kPageSize,
                          block_size_ - PageSource::kPageSize);
        released_bytes_.fetch_add(block_size_ - PageSource::kPageSize,
                                  std::memory_order_relaxed);
      }
      MutexLock lock(&mu_);
      AddCold(head, n);
    } else {
      PushBatch(head, n, now_ms);
    }
    head = rest;
    count -= n;
  }
  ARENA_DCHECK(count == 0, "Depot::Release: count does not match the list");
}

void Depot::PushBatch(BlockHeader* head, std::size_t count,
                      std::int64_t idle_since_ms) {
  head->batch_count = static_cast<std::uint32_t>(count);
  head->idle_since_ms = idle_since_ms;
  pushes_.fetch_add(1, std::memory_order_relaxed);
  hot_blocks_.fetch_add(count, std::memory_order_relaxed);
  std::uint64_t old = head_.load(std::memory_order_relaxed);
  do {
    head->next_batch.store(PtrOf(old), std::memory_order_relaxed);
    // Release on success: publishes the batch's links, count and stamp (and
    // everything written into its blocks) to the pop that acquires it.
  } while (!head_.compare_exchange_weak(old, Pack(head, TagOf(old) + 1),
                                        std::memory_order_release,
                                        std::memory_order_relaxed));
}

std::size_t Depot::PopBatch(BlockHeader** out) {
  // seq_cst increment and head load: with Trim's seq_cst exchange of the head
  // and load of pops_in_flight_, either Trim sees this pop in flight or this
  // pop sees the head after Trim emptied it (a store-load pattern).
  pops_in_flight_.fetch_add(1, std::memory_order_seq_cst);
  std::uint64_t old = head_.load(std::memory_order_seq_cst);
  BlockHeader* top;
  for (;;) {
    top = PtrOf(old);
    if (top == nullptr) break;
    // May read a block another thread popped and reuses meanwhile; the
    // version in `old` is then stale and the CAS below fails.
    BlockHeader* below = top->next_batch.load(std::memory_order_relaxed);
    // Acquire on success pairs with PushBatch's release; on failure the
    // reloaded head is dereferenced next, so acquire as well.
    if (head_.compare_exchange_weak(old, Pack(below, TagOf(old) + 1),
                                    std::memory_order_acquire,
                                    std::memory_order_acquire)) {
      break;
    }
  }
  // Release: this pop's header reads happen-before Trim's unmap, which
  // acquires the counter.
  pops_in_flight_.fetch_sub(1, std::memory_order_release);
  if (top == nullptr) return 0;
  const std::size_t count = top->batch_count;
  hot_blocks_.fetch_sub(count, std::memory_order_relaxed);
  *out = top;
  return count;
}

BlockHeader* Depot::TakeAllHot() {
  std::uint64_t old = head_.load(std::memory_order_relaxed);
  // seq_cst: see PopBatch. Acquire side pairs with PushBatch's release.
  while (!head_.compare_exchange_weak(old, Pack(nullptr, TagOf(old) + 1),
                                      std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
  }
  BlockHeader* all = PtrOf(old);
  for (BlockHeader* b = all; b != nullptr;
       b = b->next_batch.load(std::memory_order_relaxed)) {
    hot_blocks_.fetch_sub(b->batch_count, std::memory_order_relaxed);
  }
  return all;
}

void Depot::WaitForPops() {
  // Acquire pairs with PopBatch's release decrement.
  while (pops_in_flight_.load(std::memory_order_seq_cst) != 0) {
    std::this_thread::yield();
  }
  std::atomic_thread_fence(std::memory_order_acquire);
}

std::size_t Depot::TakeCold(BlockHeader** head) {
  BlockHeader* list = nullptr;
  std::size_t n = 0;
  while (n < batch_blocks_ && cold_ != nullptr) {
    BlockHeader* b = cold_;
    cold_ = b->next.load(std::memory_order_relaxed);
    b->next.store(list, std::memory_order_relaxed);
    list = b;
    source_->Recommit(block_size_ - PageSource::kPageSize);
    ++n;
  }
  cold_blocks_ -= n;
  cold_count_.store(cold_blocks_, std::memory_order_relaxed);
  *head = list;
  return n;
}

void Depot::AddCold(BlockHeader* head, std::size_t count) {
  BlockHeader* tail = head;
  while (BlockHeader* next = tail->next.load(std::memory_order_relaxed)) {
    tail = next;
  }
  tail->next.store(cold_, std::memory_order_relaxed);
  cold_ = head;
  cold_blocks_ += count;
  cold_count_.store(cold_blocks_, std::memory_order_relaxed);
}

std::size_t Depot::ReleaseIdle(std::int64_t now_ms, std::int64_t delay_ms) {
  MutexLock lock(&mu_);
  // Take the whole stack (one tag step), decommit the old batches, and put
  // the young ones back in their order with one splice (one more step):
  // a pass costs at most two tag steps and counts no push, however many
  // young batches it inspects.
  BlockHeader* all = TakeAllHot();
  BlockHeader* young = nullptr;  // top first, as they were
  BlockHeader* young_tail = nullptr;
  std::size_t young_blocks = 0;
  std::size_t released = 0;
  while (all != nullptr) {
    BlockHeader* batch = all;
    all = batch->next_batch.load(std::memory_order_relaxed);
    if (now_ms - batch->idle_since_ms >= delay_ms) {
      const std::size_t n = batch->batch_count;
      for (BlockHeader* b = batch; b != nullptr;
           b = b->next.load(std::memory_order_relaxed)) {
        source_->Decommit(reinterpret_cast<char*>(b) + PageSource::kPageSize,
                          block_size_ - PageSource::kPageSize);
        released += block_size_ - PageSource::kPageSize;
      }
      AddCold(batch, n);
    } else {
      batch->next_batch.store(nullptr, std::memory_order_relaxed);
      if (young_tail == nullptr) {
        young = batch;
      } else {
        young_tail->next_batch.store(batch, std::memory_order_relaxed);
      }
      young_tail = batch;
      young_blocks += batch->batch_count;
    }
  }
  if (young != nullptr) SpliceHot(young, young_tail, young_blocks);
  released_bytes_.fetch_add(released, std::memory_order_relaxed);
  return released;
}

void Depot::SpliceHot(BlockHeader* top, BlockHeader* tail, std::size_t blocks) {
  hot_blocks_.fetch_add(blocks, std::memory_order_relaxed);
  std::uint64_t old = head_.load(std::memory_order_relaxed);
  do {
    tail->next_batch.store(PtrOf(old), std::memory_order_relaxed);
    // Release on success: as PushBatch, publishes the chain's links.
  } while (!head_.compare_exchange_weak(old, Pack(top, TagOf(old) + 1),
                                        std::memory_order_release,
                                        std::memory_order_relaxed));
}

void Depot::UnmapList(BlockHeader* head, bool decommitted) {
  while (head != nullptr) {
    BlockHeader* next = head->next.load(std::memory_order_relaxed);
    if (decommitted) source_->Recommit(block_size_ - PageSource::kPageSize);
    UnpoisonMemory(head, block_size_);
    source_->Unmap(head, block_size_);
    head = next;
  }
}

std::size_t Depot::Trim() {
  MutexLock lock(&mu_);
  BlockHeader* all = TakeAllHot();
  // A pop that saw one of these batches on top may still read its header.
  WaitForPops();
  std::size_t bytes = 0;
  while (all != nullptr) {
    BlockHeader* batch = all;
    all = batch->next_batch.load(std::memory_order_relaxed);
    bytes += batch->batch_count * block_size_;
    UnmapList(batch, /*decommitted=*/false);
  }
  // Cold blocks were on the hot stack once; the wait above covers them too.
  bytes += cold_blocks_ * PageSource::kPageSize;
  UnmapList(cold_, /*decommitted=*/true);
  cold_ = nullptr;
  cold_blocks_ = 0;
  cold_count_.store(0, std::memory_order_relaxed);
  released_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  return bytes;
}

void Depot::ResetAfterForkInChild() {
  // Relaxed throughout: the child has one thread.
  pops_in_flight_.store(0, std::memory_order_relaxed);
  std::size_t hot = 0;
  for (BlockHeader* b = PtrOf(head_.load(std::memory_order_relaxed));
       b != nullptr; b = b->next_batch.load(std::memory_order_relaxed)) {
    hot += b->batch_count;
  }
  hot_blocks_.store(hot, std::memory_order_relaxed);
}

DepotStats Depot::stats() const {
  DepotStats s;
  s.hot_blocks = hot_blocks_.load(std::memory_order_relaxed);
  s.cold_blocks = cold_count_.load(std::memory_order_relaxed);
  s.hits = hits_.load(std::memory_order_relaxed);
  s.misses = misses_.load(std::memory_order_relaxed);
  s.pushes = pushes_.load(std::memory_order_relaxed);
  s.released_bytes = released_bytes_.load(std::memory_order_relaxed);
  return s;
}

bool Depot::CheckInvariantForTesting() const {
  MutexLock lock(&mu_);
  std::size_t hot = 0;
  for (BlockHeader* b = PtrOf(head_.load(std::memory_order_acquire));
       b != nullptr; b = b->next_batch.load(std::memory_order_relaxed)) {
    std::size_t in_batch = 0;
    for (BlockHeader* x = b; x != nullptr;
         x = x->next.load(std::memory_order_relaxed)) {
      if (x->magic != kBlockMagic || x->owner != nullptr) return false;
      ++in_batch;
    }
    if (in_batch != b->batch_count || in_batch > batch_blocks_) return false;
    hot += in_batch;
  }
  std::size_t cold = 0;
  for (BlockHeader* b = cold_; b != nullptr;
       b = b->next.load(std::memory_order_relaxed)) {
    if (b->magic != kBlockMagic) return false;
    ++cold;
  }
  return hot == hot_blocks_.load(std::memory_order_relaxed) &&
         cold == cold_blocks_;
}

}  // namespace internal
}  // namespace arena
