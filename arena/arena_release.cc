// The arena's bulk free: Reset and destruction (ReleaseAll), the block a
// Reset keeps for the next request (retained_), the per-request footprint
// recorded there, and publishing the arena's figures to the calling
// thread's process counters. One translation unit, so that the recording
// and the publication inline into the bulk free that every request ends
// with.
#include <algorithm>
#include <atomic>
#include <cstdint>

#include "absl/base/attributes.h"
#include "arena/arena.h"
#include "arena/internal/block.h"
#include "arena/internal/budget.h"
#include "arena/internal/check.h"
#include "arena/internal/footprint.h"
#include "arena/internal/large.h"
#include "arena/internal/runtime.h"

namespace arena {

using internal::BlockHeader;
using internal::kBlockHeaderSize;
using internal::PoisonMemory;
using internal::ThreadCounters;
using internal::ThreadState;
using internal::UnpoisonMemory;

// The kept block (Arena::retained_): the block an arena kept at its last
// Reset, for its next request. It is the current block from the Reset on
// (cursor_ at its start), so the next request bumps into it on the fast
// path, through cache lines the last request warmed, with no slow path and
// no trip through the thread cache. While nothing was bumped from it
// (cursor_ at its start) it is not in blocks_ or block_bytes_ (the arena
// holds no request memory in it) and is published as retained bytes; once
// something was, the next slow path, Publish, Reset or destruction adopts it
// into blocks_ (AdoptRetained; stats() counts it as adopted). Keeping a
// block spends one of the thread's kMaxCredit credits (RetainAccount, in
// runtime.h), given back when the block is taken back on any thread, so
// idle arenas (10000 keep-alive connections) cannot pin more than that many
// blocks per live thread; destruction gives the block back.

// Inlined into ReleaseAll, which is inlined into Reset and ~Arena: every
// request ends here, and a destructor lets the compiler drop the resets.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Arena::RecordFootprint(
    ThreadState* local) noexcept {
  const std::size_t held = std::max(peak_held_, block_bytes_);
  if (held != 0) {  // an arena that held nothing served no request
    const std::size_t peak = std::min(std::max(peak_live_, live_bytes_), held);
    const std::uint64_t slow_paths = slow_allocations_ - slow_at_reset_;
    if (ABSL_PREDICT_TRUE(large_taken_ == 0 && local != nullptr &&
                          small_blocks_ <= internal::FootprintRecorder::kExactMax)) {
      // No large mapping since the last Reset (those before it were
      // unmapped then): held is exactly the small blocks.
      ARENA_DCHECK(held == small_blocks_ * block_size_,
                   "Arena: held bytes beside the small blocks");
      local->footprint.AddSmallOnly(small_blocks_, peak, held - peak, slow_paths);
    } else {
      internal::RequestFootprint f;
      f.values[internal::kPeakLiveBytes] = peak;
      f.values[internal::kHeldBytes] = held;
      f.values[internal::kWasteBytes] = held - peak;
      f.values[internal::kBlocks] = small_blocks_ + large_taken_;
      f.values[internal::kSlowPaths] = slow_paths;
      f.values[internal::kLargeAllocations] = large_taken_;
      runtime_->RecordRequest(local, f);
    }
    if (adaptive_ && local != nullptr) {
      local->adaptive.Record(small_blocks_ - spare_blocks_,
                             runtime_->config().adaptive_percentile);
    }
  }
  peak_live_ = peak_held_ = 0;
  slow_at_reset_ = slow_allocations_;
  large_taken_ = 0;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Arena::PublishTo(
    ThreadState* local) noexcept {
  AdoptRetained();
  auto delta = [](std::size_t now, std::size_t* published) {
    const auto d = static_cast<std::int64_t>(now) -
                   static_cast<std::int64_t>(*published);
    *published = now;
    return d;
  };
  const std::int64_t live = delta(live_bytes_, &published_live_);
  const std::int64_t held = delta(block_bytes_, &published_block_bytes_);
  const std::int64_t large = delta(large_bytes_, &published_large_bytes_);
  const std::int64_t retained = delta(retained_ != nullptr ? block_size_ : 0,
                                      &published_retained_bytes_);
  if (ABSL_PREDICT_TRUE(local != nullptr)) {
    // This thread's counters (one line; single writer): four plain adds,
    // cheaper than testing each delta.
    ThreadCounters& c = local->counters;
    auto add = [](std::atomic<std::int64_t>& counter, std::int64_t d) {
      counter.store(counter.load(std::memory_order_relaxed) + d,
                    std::memory_order_relaxed);
    };
    add(c.live_bytes, live);
    add(c.in_arena_bytes, held);
    add(c.large_bytes, large);
    add(c.retained_bytes, retained);
  } else {
    if (live != 0) runtime_->Count(local, &ThreadCounters::live_bytes, live);
    if (held != 0) runtime_->Count(local, &ThreadCounters::in_arena_bytes, held);
    if (large != 0) runtime_->Count(local, &ThreadCounters::large_bytes, large);
    if (retained != 0) {
      runtime_->Count(local, &ThreadCounters::retained_bytes, retained);
    }
  }
}

void Arena::Publish() noexcept { PublishTo(runtime_->Local()); }

// What both bulk frees reset once the request's memory is gone: live
// bytes, and every freed chunk (they lay in that memory).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Arena::ForgetRequest() noexcept {
  live_bytes_ = 0;
  free_ = nullptr;
  free_chunks_ = 0;
  pending_ = nullptr;
  file_frees_ = false;
  reuse_pops_ = 0;
  recycle_runs_ = 0;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Arena::ReleaseAll(bool keep_one) noexcept {
  // Reset makes the calling thread the owner (it may keep a block for the
  // next request); destruction only needs to for destructors, whose
  // Deallocate calls are then local frees (remote ones would be drained
  // below just the same).
  if (keep_one || cleanups_ != nullptr) ClaimOwnership();
  // Destructors may Deallocate into (or even Create in) this arena: run them
  // while every block is still here, until none is left.
  while (cleanups_ != nullptr) {
    CleanupNode* node = cleanups_;
    cleanups_ = node->next;
    node->destroy(node->object);
  }
  internal::BusyGuard guard(&busy_);
  // Remote frees die with the blocks. Batches still on their freeing
  // threads are ended first (after this no delivery writes into the
  // blocks); delivered ones are counted as freed. (A remote free that
  // happened-before this Reset is visible to the relaxed peeks; one racing
  // with it is the caller's use-after-free.)
  internal::RemoteInbox* inbox = inbox_.load(std::memory_order_acquire);
  if (inbox != nullptr) inbox->EndGeneration();
  if (internal::RemoteBatch* list =
          inbox == nullptr ? nullptr : inbox->Take()) {
    for (internal::RemoteBatch* b = list; b != nullptr; b = b->next) {
      deallocations_ += b->count;
    }
    RecycleBatches(list);
  }
  for (FreeChunk* c = inbox == nullptr ? nullptr : inbox->TakeLoose();
       c != nullptr;) {
    UnpoisonMemory(c, sizeof(FreeChunk));
    FreeChunk* next = c->next;
    ++deallocations_;
    c = next;
  }
  ThreadState* local = runtime_->Local();
  AdoptRetained();
  RecordFootprint(local);
  // Blocks go back as one list: O(blocks), one visit to each header (the
  // headers share a cache set, block_size apart: a visit often misses), so
  // the list's tail (the first block given back) goes with it and the
  // thread cache need not walk the list again.
  BlockHeader* head = nullptr;
  BlockHeader* tail = nullptr;
  std::size_t count = 0;
  auto give_back = [&](BlockHeader* b) {
    b->owner = nullptr;
    PoisonMemory(reinterpret_cast<char*>(b) + kBlockHeaderSize,
                 block_size_ - kBlockHeaderSize);
    b->next.store(head, std::memory_order_relaxed);
    if (head == nullptr) tail = b;
    head = b;
    ++count;
  };
  // A retained_ still set here was never bumped into (AdoptRetained above).
  if (!keep_one && retained_ != nullptr) {  // destruction: no block stays
    ReturnRetainCredit();
    give_back(retained_);
    retained_ = nullptr;
  }
  BlockHeader* blocks = blocks_;
  std::size_t seen = 0;
  // Reset: keep the current block for the next request (see retained_), if
  // this thread has credit left.
  std::uint64_t generation = 0;
  if (keep_one && blocks != nullptr && retained_ == nullptr &&
      budget_ == nullptr && local != nullptr && local->retain != nullptr &&
      local->retain->Take(&generation)) {
    retained_account_ = local->retain;
    retained_generation_ = generation;
    retained_by_ = internal::ThreadId();
    retained_ = blocks;
    blocks = blocks->next.load(std::memory_order_relaxed);
    retained_->next.store(nullptr, std::memory_order_relaxed);
    PoisonMemory(reinterpret_cast<char*>(retained_) + kBlockHeaderSize,
                 block_size_ - kBlockHeaderSize);
    ++seen;
  }
  auto give_back_list = [&](BlockHeader* list) {
    while (list != nullptr) {
      BlockHeader* next = list->next.load(std::memory_order_relaxed);
      give_back(list);
      ++seen;
      list = next;
    }
  };
  give_back_list(blocks);
  if (spare_ != nullptr) give_back_list(spare_);
  ARENA_DCHECK(seen == small_blocks_, "Arena: lost track of a block");
  runtime_->ReturnBlocks(local, head, tail, count);
  while (large_ != nullptr) {
    BlockHeader* next = large_->next.load(std::memory_order_relaxed);
    large_->owner = nullptr;
    runtime_->UnmapLarge(large_);
    large_ = next;
  }
  if (budget_ != nullptr) budget_->Give(block_bytes_);
  blocks_ = spare_ = nullptr;
  if (retained_ != nullptr) {
    // The kept block is current again: the next request starts on the fast
    // path. Its owner stays this arena (set when it was taken).
    cursor_ = RetainedStart();
    limit_ = reinterpret_cast<char*>(retained_) + block_size_;
  } else {
    cursor_ = limit_ = nullptr;
  }
  small_blocks_ = large_blocks_ = 0;
  block_bytes_ = large_bytes_ = 0;
  reserved_ = false;
  spare_blocks_ = 0;
  ForgetRequest();
  PublishTo(local);
}

Arena::~Arena() {
  ReleaseAll(/*keep_one=*/false);
  // Its generation ended in ReleaseAll (if a batch could exist): a batch
  // still on a freeing thread is dropped, whichever arena has it next.
  if (internal::RemoteInbox* inbox = inbox_.load(std::memory_order_acquire)) {
    runtime_->FreeInbox(inbox);
  }
  runtime_->Count(runtime_->Local(), &ThreadCounters::arenas_destroyed, 1);
}

// The common Reset: the arena holds only the block it kept at its last
// Reset (nothing adopted it: no slow path found it in use; no other block,
// no reservation, no large mapping since), the caller is the owner and the
// thread whose credit keeps the block, no cleanup is registered, no remote
// free waits, and the process figures still say what that Reset published
// (live 0, the block as retained bytes). Then the block simply stays kept:
// rewinding the cursor frees the request, with its footprint recorded as
// RecordFootprint would (one small block) and nothing to publish.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool Arena::RewindKeptBlock() noexcept {
  // retained_ != nullptr implies retained_by_ != kNoThread, so a thread
  // without an id (ThreadIdIfAssigned() == kNoThread) never passes. The
  // inbox's lists are peeked relaxed, as ReleaseAll does: a remote free that
  // happened-before this Reset is seen, delivered or still in a batch (and
  // sends Reset the full way, which counts it or ends its generation); one
  // racing with it is the caller's use-after-free.
  const std::uintptr_t held_beside =
      reinterpret_cast<std::uintptr_t>(blocks_) |
      reinterpret_cast<std::uintptr_t>(spare_) |
      reinterpret_cast<std::uintptr_t>(large_) |
      reinterpret_cast<std::uintptr_t>(cleanups_) | large_taken_ |
      peak_held_ | published_live_ | published_block_bytes_ |
      published_large_bytes_ | static_cast<std::uintptr_t>(reserved_);
  if (!(retained_ != nullptr && held_beside == 0 &&
        published_retained_bytes_ == block_size_ &&
        retained_by_ == owner_id_ &&
        owner_id_ == internal::ThreadIdIfAssigned() &&
        RemoteQuiet())) {
    return false;
  }
  ThreadState* local = runtime_->Local();
  if (ABSL_PREDICT_FALSE(local == nullptr)) return false;  // thread exiting
  internal::BusyGuard guard(&busy_);
  ARENA_DCHECK(small_blocks_ == 0 && block_bytes_ == 0 && large_bytes_ == 0 &&
                   limit_ == reinterpret_cast<char*>(retained_) + block_size_,
               "Arena: a kept block beside other memory at Reset");
  if (RetainedInUse()) {  // as AdoptRetained, then RecordFootprint
    const std::size_t peak =
        std::min(std::max(peak_live_, live_bytes_), block_size_);
    local->footprint.AddSmallOnly(1, peak, block_size_ - peak,
                                  slow_allocations_ - slow_at_reset_);
    if (adaptive_) {
      local->adaptive.Record(1, runtime_->config().adaptive_percentile);
    }
    PoisonMemory(RetainedStart(), block_size_ - kBlockHeaderSize);
  }
  peak_live_ = peak_held_ = 0;
  slow_at_reset_ = slow_allocations_;
  cursor_ = RetainedStart();
  ForgetRequest();
  ++resets_;
  runtime_->Count(local, &ThreadCounters::resets, 1);
  return true;
}

void Arena::Reset() {
  if (ABSL_PREDICT_TRUE(RewindKeptBlock())) return;
  ReleaseAll(/*keep_one=*/true);
  ++resets_;
  runtime_->Count(runtime_->Local(), &ThreadCounters::resets, 1);
}

void Arena::AdoptRetainedSlow() noexcept {
  // Invariant: while retained_ is set, it is the arena's only small block
  // and the current one (Reset left it so; NextBlock adopts before it
  // takes another).
  ARENA_DCHECK(blocks_ == nullptr && spare_ == nullptr && small_blocks_ == 0,
               "Arena: a retained block beside others");
  retained_->next.store(nullptr, std::memory_order_relaxed);
  blocks_ = retained_;
  retained_ = nullptr;
  ++small_blocks_;
  block_bytes_ += block_size_;
  ReturnRetainCredit();
}

void Arena::DropRetained() noexcept {
  ARENA_DCHECK(!RetainedInUse(), "Arena: dropping a kept block in use");
  ThreadState* local = runtime_->Local();
  ReturnRetainCredit();
  BlockHeader* block = retained_;
  retained_ = nullptr;
  cursor_ = limit_ = nullptr;
  block->owner = nullptr;
  block->next.store(nullptr, std::memory_order_relaxed);
  runtime_->ReturnBlocks(local, block, block, 1);
}

void Arena::ReturnRetainCredit() noexcept {
  // To the account of the thread that kept the block, from this thread or
  // any other (a request resumed elsewhere): before, only the keeping
  // thread gave it back, and a block taken back elsewhere left that
  // thread's credit spent for good.
  retained_account_->Give(retained_generation_);
  retained_account_ = nullptr;
  retained_by_ = internal::kNoThread;
}

}  // namespace arena
