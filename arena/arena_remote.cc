// The arena's remote frees: Deallocate from any thread (remote frees into
// the thread's batches, internal/remote.h), the owner's drain of the
// delivered chunks, and the reuse of drained runs of contiguous chunks as
// bump regions (issue 11). Owner-only code except Deallocate; see arena.h
// for the threading contract and the fields' cache lines.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "arena/arena.h"
#include "arena/internal/block.h"
#include "arena/internal/budget.h"
#include "arena/internal/check.h"
#include "arena/internal/free_lists.h"
#include "arena/internal/remote.h"
#include "arena/internal/runtime.h"

namespace arena {

using internal::BlockHeader;
using internal::BlockKind;
using internal::FreeLists;
using internal::kFreeListsTableSize;
using internal::PoisonMemory;
using internal::UnpoisonMemory;

// Arena::recycle_runs_, credit for "drains yield runs": kRecycleCredit after
// a drain found a run of at least kMinBumpRun bytes, one less after each
// drain that did not. While nonzero and the free lists hold fewer than
// kMaxChunksWhileRecycling chunks, the slow path takes its next bump region
// from the inbox or a waiting run before it pops single chunks (see
// AllocateSlow). Zero keeps arenas with scattered frees on the pop-first
// path; the chunk bound makes a recycling arena use up the single chunks
// that runs leave behind instead of growing past them.

// The least large_threshold Config accepts (config.cc): smaller requests
// never get a large mapping.
constexpr std::size_t kMinLargeThreshold = 1024;

void Arena::InitFreeLists(char* table) noexcept {
  UnpoisonMemory(table, sizeof(FreeLists));
  free_ = reinterpret_cast<FreeLists*>(table);
  free_->Clear();
}

void Arena::PushFree(char* chunk, std::size_t size) noexcept {
  if (file_frees_) {
    // Straight to its list (poisons the chunk), where PopQuick finds it.
    free_->Push(chunk, size);
    ++free_chunks_;
  } else {
    PushPending(chunk, size);
  }
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Arena::PushPending(
    char* chunk, std::size_t size) noexcept {
  if (free_ == nullptr &&
      static_cast<std::size_t>(limit_ - cursor_) >= kFreeListsTableSize) {
    // Room for the table now, while the current block may have some: when
    // a slow path sorts these chunks the block is full, and a new block
    // just for the table would defeat the reuse. (The cursor is always a
    // multiple of kGrain; both are null without a current block.)
    InitFreeLists(cursor_);
    cursor_ += kFreeListsTableSize;
  }
  // Every chunk has room for the 16-byte header (size >= 16), but the
  // caller may have been handed fewer bytes: unpoison exactly what is
  // written.
  auto* c = reinterpret_cast<FreeChunk*>(chunk);
  UnpoisonMemory(c, sizeof(FreeChunk));
  c->next = pending_;
  c->bytes = size;
  pending_ = c;
  PoisonMemory(chunk, size);
}

void Arena::FileLocalFree(char* chunk, std::size_t size) noexcept {
  free_->Push(chunk, size);  // poisons the chunk
  ++free_chunks_;
  if (ABSL_PREDICT_FALSE(published_live_ > live_bytes_ + kPublishSlack)) {
    Publish();  // as DeallocateLocal
  }
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Arena::DeallocateLocal(
    void* p, std::size_t bytes, BlockHeader* block) noexcept {
  if (live_bytes_ > peak_live_) peak_live_ = live_bytes_;
  live_bytes_ -= bytes;
  ++deallocations_;
  char* chunk = static_cast<char*>(p);
  const std::size_t size = ChunkSize(bytes);
  // The block whose end closes the bump region is small (regions lie in
  // small blocks): only a chunk elsewhere needs its header's kind read (a
  // line the request has likely evicted).
  const bool current = reinterpret_cast<char*>(block) + block_size_ == limit_;
  if (current && chunk + size == cursor_) {
    // The most recent allocation: give it back to the bump pointer.
    cursor_ = chunk;
    PoisonMemory(chunk, size);
  } else if (ABSL_PREDICT_TRUE(current) || block->kind == BlockKind::kSmall) {
    if (file_frees_) {
      // Out of line (a tail call), so that this path stays a leaf without
      // a frame for a request's arena, which does not file.
      FileLocalFree(chunk, size);
      return;
    }
    PushPending(chunk, size);
  } else {
    DeallocateLarge(block);
    return;
  }
  // Local frees publish too, once live bytes fell by kPublishSlack since
  // the last publication: the process figures lag by at most a block plus
  // kPublishSlack.
  if (ABSL_PREDICT_FALSE(published_live_ > live_bytes_ + kPublishSlack)) {
    Publish();
  }
}

// Deallocate and ArenaResource::do_deallocate, each one call deep: a local
// free runs inline to its end, a remote one is a tail call.
template <bool kMayBeNull>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Arena::DeallocateInline(
    void* p, std::size_t bytes) noexcept {
  if (kMayBeNull && p == nullptr) return;
  auto* block = reinterpret_cast<BlockHeader*>(
      reinterpret_cast<std::uintptr_t>(p) & shared_block_mask_);
  ARENA_DCHECK(block->magic == internal::kBlockMagic && block->owner == this,
               "arena::Arena::Deallocate: the pointer is not held by this "
               "arena (freed after Reset, freed twice, or from another arena)");
  // Relaxed: identity only (see arena.h on hand-over).
  // A thread with no id yet (kNoThread) is never the owner: an arena that
  // handed out `p` has an owner, and owners have ids.
  if (owner_.load(std::memory_order_relaxed) == internal::ThreadIdIfAssigned()) {
    // The owner may read the bump fields: in the current block only what
    // lies below the cursor was handed out (after a Reset the kept block is
    // current again, owner and all, so this catches a free after Reset).
    ARENA_DCHECK(reinterpret_cast<char*>(block) + block_size_ != limit_ ||
                     static_cast<char*>(p) < cursor_,
                 "arena::Arena::Deallocate: the pointer is not held by this "
                 "arena (freed after Reset, freed twice, or from another "
                 "arena)");
    internal::CheckNotPoisoned(p, bytes);  // ASan builds: after Reset, or twice
    DeallocateLocal(p, bytes, block);
    return;
  }
  internal::CheckNotPoisoned(p, bytes);
  DeallocateRemote(p, bytes, block);
}

void Arena::Deallocate(void* p, std::size_t bytes) noexcept {
  DeallocateInline</*kMayBeNull=*/true>(p, bytes);
}

void ArenaResource::do_deallocate(void* p, std::size_t bytes, std::size_t) {
  // p came from do_allocate (memory_resource::deallocate's precondition),
  // which never returns null.
  arena_->DeallocateInline</*kMayBeNull=*/false>(p, bytes);
}

// A free from another thread goes into that thread's batch for this arena
// (internal/remote.h): per object it writes one entry of the thread's own
// batch, reading the arena's shared line (inbox_, beside owner_) and its
// inbox's epoch line, which stay shared; it writes nothing into the chunk,
// and the inbox's delivery line is written once per batch. This path is a
// leaf: whatever else it needs is a tail call.
void Arena::DeallocateRemote(void* p, std::size_t bytes,
                             BlockHeader* block) noexcept {
  char* chunk = static_cast<char*>(p);
  const std::size_t size = ChunkSize(bytes);
  // The chunk is free from here on (the owner's drain writes it, poisoned
  // or not, only through the free lists, which unpoison what they write).
  if (block->kind == BlockKind::kSmall) PoisonMemory(chunk, size);
  internal::RemoteInbox* inbox = inbox_.load(std::memory_order_acquire);
  internal::ThreadState* local = internal::tls_thread_state;
  // Up to the smallest large_threshold a chunk lies in a small block: only
  // larger ones need their block header read.
  if (ABSL_PREDICT_FALSE(inbox == nullptr || local == nullptr ||
                         (bytes > kMinLargeThreshold &&
                          block->kind != BlockKind::kSmall))) {
    DeallocateRemoteSlow(chunk, bytes, block);
    return;
  }
  local->remote.Add(inbox, inbox->epoch.load(std::memory_order_relaxed), chunk,
                    bytes, size);
}

// The first remote free of the arena (no inbox yet), the first free of a
// thread without a state, or a large mapping (its pages go back only once
// the owner drains it). A large mapping, or a chunk freed by a thread that
// cannot have a state (it is exiting, or no heap for one), is delivered
// alone, at once.
void Arena::DeallocateRemoteSlow(char* chunk, std::size_t bytes,
                                 BlockHeader* block) noexcept {
  internal::RemoteInbox* inbox = inbox_.load(std::memory_order_acquire);
  if (inbox == nullptr) {
    inbox = InstallInbox();
    // No heap for an inbox: the chunk stays with the arena, unused, until
    // its Reset or destruction takes every block back.
    if (inbox == nullptr) return;
  }
  const std::uint64_t epoch = inbox->epoch.load(std::memory_order_relaxed);
  // A thread that only frees has no state until here (made now). (The
  // runtime through Get(), not runtime_: that lies on the owner's bump
  // line, which a remote free must not read; so in InstallInbox.)
  internal::ThreadState* local = internal::Runtime::Get().Local();
  if (local != nullptr && block->kind == BlockKind::kSmall) {
    local->remote.Add(inbox, epoch, chunk, bytes, ChunkSize(bytes));
    return;
  }
  // Within this Deallocate, which happened-before any Reset that could end
  // the generation: no pending mark needed.
  internal::DeliverAlone(inbox, epoch, chunk, bytes);
}

internal::RemoteInbox* Arena::InstallInbox() noexcept {
  internal::Runtime& runtime = internal::Runtime::Get();
  internal::RemoteInbox* fresh = runtime.NewInbox();
  if (fresh == nullptr) return nullptr;
  if (options_.max_bytes != 0 ||
      (budget_ != nullptr &&
       budget_->limit() != std::numeric_limits<std::size_t>::max()) ||
      runtime.config().max_total_bytes != 0) {
    // A cap (its own, a SharedArena's, or the process's): no batching
    // (see kDirect). An uncapped SharedArena's budget only counts.
    fresh->epoch.fetch_or(internal::RemoteInbox::kDirect,
                          std::memory_order_relaxed);
  }
  internal::RemoteInbox* seen = nullptr;
  // Release/acquire: another freeing thread that installed first is seen
  // with its inbox (a pooled object, whose fields the runtime's mutex
  // published; the atomics need nothing).
  if (inbox_.compare_exchange_strong(seen, fresh, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
    return fresh;
  }
  runtime.FreeInbox(fresh);
  return seen;
}

// The owner takes every delivered batch with one exchange and walks their
// entries once. Accounting is summed over the walk and applied once
// (live_bytes_ falls by the bytes of every chunk taken; the peak is taken
// before, as a free would).
//
// Chunks are grouped into runs of address-contiguous chunks, consecutive in
// free order (oldest batch first; a consumer that frees in allocation order
// adds them in ascending address order; descending is taken too). Runs never cross a block: a
// block header lies between two blocks' chunks. A run that ends where the
// bump region starts moves the cursor back. Of the other runs, the longest
// is kept aside; when the walk ends it becomes the bump region if it is
// longer than what the region has left and can serve `need` (so the
// caller's retry bumps from it; a run it cannot serve is never swapped in
// only to be left behind for a new block). The old region's rest then goes
// to the free lists as one chunk. Every other chunk goes to its free list,
// as a local free would. A producer whose consumer frees in order thus
// allocates on the fast path through recycled memory, and the drain never
// touched those chunks' lines.
void Arena::DrainRemote(std::size_t need) noexcept {
  // Take acquires, pairing with the release CAS of each delivery: every
  // batch's entries and the freeing threads' last writes to the chunks are
  // visible.
  internal::RemoteInbox* inbox = inbox_.load(std::memory_order_acquire);
  if (inbox == nullptr) return;
  internal::RemoteBatch* newest = inbox->Take();
  FreeChunk* loose = inbox->TakeLoose();
  if (newest == nullptr && loose == nullptr) return;
  // Oldest batch first: the entries then come in the order the chunks were
  // freed, so a run continues from one batch into the next.
  internal::RemoteBatch* list = nullptr;
  while (newest != nullptr) {
    internal::RemoteBatch* next = newest->next;
    newest->next = list;
    list = newest;
    newest = next;
  }
  if (live_bytes_ > peak_live_) peak_live_ = live_bytes_;
  std::size_t freed = 0;
  std::uint64_t count = 0;
  Run run;   // the run being extended
  Run best;  // the longest finished run (not at the cursor)
  auto finish = [&] {
    if (run.count == 0) return;
    if (run.hi == cursor_) {
      cursor_ = run.lo;
      PoisonMemory(run.lo, static_cast<std::size_t>(run.hi - run.lo));
    } else if (run.hi - run.lo > best.hi - best.lo) {
      if (best.count != 0) PushRun(best);
      best = run;
    } else {
      PushRun(run);
    }
    run = Run{};
  };
  // One chunk: a large mapping is given back (and ends the run: it is not
  // a chunk), a small one extends the run or starts the next (`at`: where
  // it was found, for PushRun).
  auto take = [&](char* chunk, std::size_t bytes, const Run& at) {
    ++count;
    freed += bytes;
    auto* block = reinterpret_cast<BlockHeader*>(
        reinterpret_cast<std::uintptr_t>(chunk) & block_mask_);
    if (ABSL_PREDICT_FALSE(bytes > kMinLargeThreshold &&
                           block->kind == BlockKind::kLarge)) {
      finish();
      DeallocateLarge(block);
      return;
    }
    const std::size_t size = ChunkSize(bytes);
    if (chunk + size == run.lo) {
      run.lo = chunk;
      ++run.count;
    } else if (chunk == run.hi && run.hi != nullptr) {
      run.hi += size;
      ++run.count;
    } else {
      finish();
      run = at;
      run.count = 1;
      run.lo = chunk;
      run.hi = chunk + size;
    }
  };
  for (internal::RemoteBatch* batch = list; batch != nullptr;
       batch = batch->next) {
    const internal::RemoteBatch::Entry* entries = batch->entries;
    const std::uint32_t n = batch->count;
    // Most chunks go on to be written here (free-list links), in lines
    // the freeing thread may hold: ask for the first few with write intent
    // now, and for each next one kAhead entries early, so that their
    // transfers overlap this walk.
    constexpr std::uint32_t kAhead = 4;
    for (std::uint32_t i = 0; i < kAhead && i < n; ++i) {
      __builtin_prefetch(entries[i].chunk, 1);
    }
    for (std::uint32_t i = 0; i < n; ++i) {
      if (i + kAhead < n) __builtin_prefetch(entries[i + kAhead].chunk, 1);
      take(entries[i].chunk, entries[i].bytes, Run{batch, i, nullptr});
    }
  }
  finish();
  // Then the loose chunks (newest first), linked through themselves: their
  // runs are separate from the batches' (PushRun walks one kind).
  while (loose != nullptr) {
    UnpoisonMemory(loose, sizeof(FreeChunk));
    FreeChunk* next = loose->next;
    __builtin_prefetch(next, 1);
    take(reinterpret_cast<char*>(loose), loose->bytes, Run{nullptr, 0, loose});
    loose = next;
  }
  finish();
  const auto length = static_cast<std::size_t>(best.hi - best.lo);
  if (best.count > 1 && length >= kMinBumpRun) {
    recycle_runs_ = kRecycleCredit;
    if (length >= need && length > static_cast<std::size_t>(limit_ - cursor_)) {
      MakeRegion(best.lo, best.hi);
    } else {
      PushRun(best);
    }
  } else {
    if (recycle_runs_ != 0) --recycle_runs_;
    if (best.count != 0) PushRun(best);
  }
  // Every entry was read: the batches go to this thread's spares.
  if (list != nullptr) RecycleBatches(list);
  live_bytes_ -= freed;
  deallocations_ += count;
  if (ABSL_PREDICT_FALSE(published_live_ > live_bytes_ + kPublishSlack)) {
    Publish();
  }
}

void Arena::RecycleBatches(internal::RemoteBatch* list) noexcept {
  internal::ThreadState* local = internal::tls_thread_state;
  if (local != nullptr) {
    local->remote.Recycle(list);
  } else {
    runtime_->GiveBatches(list);
  }
}

void Arena::PushRun(const Run& run) noexcept {
  const auto length = static_cast<std::size_t>(run.hi - run.lo);
  if (run.count > 1 && length >= kMinWholeRun) {
    // Whole, as one chunk: a later slow path may bump through it (see
    // AllocateSlow), and a large request may take it. Shorter runs go in
    // chunk by chunk: whole, a mid-size run serves only requests of about
    // its own size (Pop looks one power of two up) and, under a FIFO
    // consumer, such runs piled up while the arena took new blocks (cold
    // review: 2x the blocks of per-chunk filing).
    PushFree(run.lo, length);
    return;
  }
  if (run.loose != nullptr) {
    // Loose: each chunk to its free list, reading its link first (PushFree
    // overwrites it).
    FreeChunk* c = run.loose;
    for (std::size_t n = run.count; n > 0; --n) {
      FreeChunk* next = c->next;
      PushFree(reinterpret_cast<char*>(c), ChunkSize(c->bytes));
      c = next;
    }
    return;
  }
  // Each chunk to its free list: the entries from run.start of run.batch
  // on, into the batches after it.
  const internal::RemoteBatch* batch = run.batch;
  std::uint32_t i = run.start;
  for (std::size_t n = run.count; n > 0; --n, ++i) {
    if (i == batch->count) {
      batch = batch->next;
      i = 0;
    }
    PushFree(batch->entries[i].chunk, ChunkSize(batch->entries[i].bytes));
  }
}

void Arena::MakeRegion(char* lo, char* hi) noexcept {
  // [lo, hi) becomes the bump region; the old region's rest (a multiple of
  // 16: cursors and region ends are 16-aligned) goes to the free lists.
  ARENA_DCHECK(((reinterpret_cast<std::uintptr_t>(lo) |
                 reinterpret_cast<std::uintptr_t>(hi)) & (kGrain - 1)) == 0,
               "Arena: a bump region off the 16-byte grain");
  char* old_cursor = cursor_;
  char* old_limit = limit_;
  cursor_ = lo;
  limit_ = hi;
  PoisonMemory(lo, static_cast<std::size_t>(hi - lo));
  if (free_ == nullptr) {
    // The table from the old rest if it fits (free memory about to go to
    // the lists anyway), else as PushFree would make it (from the new
    // region, or a new block: then the run waits for Reset; once per arena).
    const std::size_t table_size = kFreeListsTableSize;
    if (old_limit - old_cursor >= static_cast<std::ptrdiff_t>(table_size)) {
      InitFreeLists(old_cursor);
      old_cursor += table_size;
    } else {
      MakeFreeLists();
    }
  }
  if (old_limit - old_cursor >= static_cast<std::ptrdiff_t>(kGrain)) {
    PushFree(old_cursor, static_cast<std::size_t>(old_limit - old_cursor));
  }
}

void* Arena::BumpLargestFree(std::size_t size, std::size_t alignment) noexcept {
  if (pending_ != nullptr) SortPending();
  if (free_chunks_ == 0) return nullptr;
  std::size_t length = 0;
  // Room to align inside it: chunks start 16-aligned (a capped arena with
  // free memory refused aligned requests before).
  const std::size_t need = size + (alignment - kGrain);
  char* run = static_cast<char*>(
      free_->PopLargest(std::max(need, kMinBumpRun), &length));
  if (run == nullptr) return nullptr;
  --free_chunks_;
  MakeRegion(run, run + length);
  return BumpCurrent(size, alignment);  // fits: length >= need
}

}  // namespace arena
