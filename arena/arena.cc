#include "arena/arena.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "arena/internal/block.h"
#include "arena/internal/budget.h"
#include "arena/internal/check.h"
#include "arena/internal/free_lists.h"
#include "arena/internal/large.h"
#include "arena/internal/runtime.h"

namespace arena {

using internal::BlockHeader;
using internal::BlockKind;
using internal::FreeLists;
using internal::kBlockHeaderSize;
using internal::PoisonMemory;
using internal::Runtime;
using internal::ThreadCounters;
using internal::ThreadState;
using internal::UnpoisonMemory;

namespace {

static_assert(internal::kBlockHeaderSize == 64, "Arena::kHeaderBytes");
using internal::kFreeListsTableSize;

// ArenaOptions::first_block_hint in blocks, rounded up; held to
// Config's limit (1 GiB) like the Config's own hint.
std::size_t HintBlocks(std::size_t hint, std::size_t block_size) {
  hint = std::min(hint, Config::kMaxFirstBlockHint);
  return (hint + block_size - 1) / block_size;
}

char* AlignUp(char* p, std::size_t alignment) {
  const auto v = reinterpret_cast<std::uintptr_t>(p);
  return reinterpret_cast<char*>((v + alignment - 1) & ~(alignment - 1));
}

}  // namespace

Arena::Arena() : Arena(ArenaOptions()) {}

Arena::Arena(const ArenaOptions& options)
    : runtime_(&Runtime::Get()),
      block_mask_(~(runtime_->config().block_size - 1)),
      block_size_(runtime_->config().block_size),
      large_threshold_(runtime_->config().large_threshold),
      options_(options),
      adaptive_(options.adaptive_first_block == ArenaOptions::Adaptive::kDefault
                    ? runtime_->config().adaptive_first_block
                    : options.adaptive_first_block == ArenaOptions::Adaptive::kOn),
      first_blocks_(options.first_block_hint != 0
                        ? HintBlocks(options.first_block_hint, block_size_)
                        : runtime_->first_blocks()),
      shared_block_mask_(block_mask_) {
  runtime_->Count(runtime_->Local(), &ThreadCounters::arenas_created, 1);
}

void Arena::ClaimOwnership() noexcept {
  const std::uint64_t id = internal::ThreadId();
  // Relaxed: an identity written only by the thread that becomes owner; the
  // hand-over itself is synchronized by the caller (see arena.h).
  if (owner_id_ != id) {
    owner_.store(id, std::memory_order_relaxed);
    owner_id_ = id;
  }
  owner_token_ = internal::ThreadToken();
}

// Reuse of a small freed chunk (issue 11: the larson workload allocates
// almost only from its free lists once its blocks are full), without the
// slow path's prologue and checks. Taken only where AllocateSlowPath would
// take the same chunk: the owner by id (free lists are owner-only; the
// caller's fast path compared tokens), an alignment the fast path takes
// (the slow path makes it 16), the arena filing its frees (file_frees_:
// the table made, nothing pending; set only by an owner, so owner_id_ is a
// real id, never a new thread's kNoThread), not recycling runs (see
// arena_remote.cc), the bump region too short, and a kept block in use
// adopted, as the slow path would. The chunk is the one PopFree would
// pop; a free list leaves it poisoned, this unpoisons `bytes`.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void* Arena::PopQuick(
    std::size_t bytes, std::size_t alignment) noexcept {
  // file_frees_ first: a request's arena (not filing) leaves at once.
  if (!(file_frees_ && alignment <= kGrain &&
        ((kFastAlignments >> alignment) & 1) != 0 &&
        bytes - 1 < FreeLists::kQuickMaxSize &&
        owner_id_ == internal::ThreadIdIfAssigned() &&
        (recycle_runs_ == 0 || free_chunks_ >= kMaxChunksWhileRecycling))) {
    return nullptr;
  }
  const std::size_t size = RoundUpGrain(bytes);
  if (size <= static_cast<std::size_t>(limit_ - cursor_)) return nullptr;
  std::size_t got = 0;
  char* p = static_cast<char*>(free_->PopQuick(size, &got));
  if (p == nullptr) return nullptr;
  --free_chunks_;
  ++reuse_pops_;
  if (got != size) FileChunk(p + size, got - size);  // as PopFree
  owner_token_ = internal::ThreadToken();  // as ClaimOwnership (same id)
  AdoptRetained();
  UnpoisonMemory(p, bytes);
  live_bytes_ += bytes;
  ++slow_allocations_;
  if (ABSL_PREDICT_FALSE(live_bytes_ > published_live_ + kPublishSlack)) {
    Publish();
  }
  return p;
}

void* Arena::AllocateSlowOrThrow(std::size_t bytes, std::size_t alignment) {
  void* p = PopQuick(bytes, alignment);
  if (ABSL_PREDICT_TRUE(p != nullptr)) return p;
  p = AllocateSlowPath(bytes, alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* Arena::AllocateSlow(std::size_t bytes, std::size_t alignment) noexcept {
  void* p = PopQuick(bytes, alignment);
  if (ABSL_PREDICT_TRUE(p != nullptr)) return p;
  return AllocateSlowPath(bytes, alignment);
}

void* Arena::AllocateSlowPath(std::size_t bytes, std::size_t alignment) noexcept {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 ||
      alignment > block_size_ / 2) {
    return nullptr;
  }
  if (alignment < kGrain) alignment = kGrain;
  internal::BusyGuard guard(&busy_);
  ClaimOwnership();
  AdoptRetained();
  // Remote frees are drained only when the arena would otherwise need new
  // memory, or (recycling runs) when the bump region is used up: one
  // exchange then takes many chunks, instead of one contended exchange per
  // slow path. (Relaxed peek; the exchange acquires.)
  auto drain = [this](std::size_t need) {
    if (NothingDelivered()) return false;
    DrainRemote(need);
    return true;
  };
  void* p = nullptr;
  if (bytes > large_threshold_) {
    drain(0);
    p = AllocateLarge(bytes, alignment);
  } else if (cursor_ == nullptr && NothingDelivered()) {
    // No current block (a new arena, one Reset without keeping a block, or
    // one whose unused kept block went back: DropRetained):
    // the arena holds no small block, so no chunk to reuse and, with the
    // inbox empty, nothing to drain. Straight to a new block.
    ARENA_DCHECK(small_blocks_ == 0 && pending_ == nullptr && free_chunks_ == 0,
                 "Arena: no current block, but small blocks");
    p = BumpNewBlock(ChunkSize(bytes), alignment);
    if (p != nullptr) UnpoisonMemory(p, bytes);
  } else {
    // Room in the bump region first, then (while recycling runs) the next
    // run, then a freed chunk of the class (after draining remote frees if
    // need be), then the largest free chunk as a region, then a new block.
    const std::size_t size = ChunkSize(bytes);
    p = BumpCurrent(size, alignment);
    const bool reuse = alignment == kGrain;
    // While drains keep yielding runs (a consumer frees in the order we
    // allocated), the next bump region comes from the inbox or from
    // a run waiting in the free lists, before single chunks are popped:
    // memory bumped from a run comes back as a run, whereas chunks popped
    // one by one are scattered and come back as no run at all.
    if (p == nullptr && recycle_runs_ != 0 &&
        free_chunks_ < kMaxChunksWhileRecycling) {
      if (drain(size)) p = BumpCurrent(size, alignment);
      if (p == nullptr && reuse) p = BumpLargestFree(size, alignment);
    }
    if (p == nullptr && HasFreeChunks()) p = PopFree(size, alignment);
    if (p == nullptr && drain(size)) {
      // A drained chunk may have been the last of the current block (the
      // cursor moved back) or may fit this request: try both again before
      // asking for a new block, which a cap may refuse.
      p = BumpCurrent(size, alignment);
      if (p == nullptr && HasFreeChunks()) p = PopFree(size, alignment);
    }
    // The largest free chunk, if it can hold this one and a few more (a
    // run waiting whole, a region's rest), before the arena grows.
    if (p == nullptr) p = BumpLargestFree(size, alignment);
    if (p == nullptr) {
      p = BumpNewBlock(size, alignment);
      // A long-lived arena takes new memory only when no freed chunk holds
      // the request (PopFree splits any larger one). When that happens
      // while its lists hold many chunks (fragmentation: none of them is
      // large enough), it files the new block's rest too, rather than
      // bumping every following request through it while they wait (with
      // requests to 16 KiB the arena grew 3.6x faster). With few chunks
      // waiting (an arena that freed a list and allocates on), the rest
      // stays the bump region and the fast path serves what follows.
      if (p != nullptr && Splits() && free_chunks_ >= kFileRestAfterChunks &&
          limit_ - cursor_ >= static_cast<std::ptrdiff_t>(kGrain)) {
        FileChunk(cursor_, static_cast<std::size_t>(limit_ - cursor_));
        cursor_ = limit_;
      }
    }
    if (p != nullptr) UnpoisonMemory(p, bytes);
  }
  if (p != nullptr) {
    live_bytes_ += bytes;
    ++slow_allocations_;
  }
  // Publishing costs a few stores to this thread's counters: do it when a
  // block came or went, or when live bytes moved by 16 KiB.
  MaybePublish();
  return p;
}

void* Arena::BumpCurrent(std::size_t size, std::size_t alignment) noexcept {
  if (cursor_ == nullptr) return nullptr;
  char* p = AlignUp(cursor_, alignment);
  if (p <= limit_ && size <= static_cast<std::size_t>(limit_ - p)) {
    // An arena that files its frees files the alignment gap too (a
    // long-lived one would otherwise lose it for good).
    if (file_frees_ && p != cursor_) {
      FileChunk(cursor_, static_cast<std::size_t>(p - cursor_));
    }
    cursor_ = p + size;
    return p;
  }
  return nullptr;
}

void* Arena::BumpNewBlock(std::size_t size, std::size_t alignment) noexcept {
  BlockHeader* block = NextBlock();  // leaves the old region as it was
  if (block == nullptr) return nullptr;
  if (ABSL_PREDICT_FALSE(file_frees_)) FileRegionRest(block);
  block->next.store(blocks_, std::memory_order_relaxed);
  blocks_ = block;
  char* start = reinterpret_cast<char*>(block) + kBlockHeaderSize;
  limit_ = reinterpret_cast<char*>(block) + block_size_;
  PoisonMemory(start, limit_ - start);
  // Fits: size <= block_size / 2 and alignment <= block_size / 2.
  char* p = AlignUp(start, alignment);
  if (ABSL_PREDICT_FALSE(file_frees_) && p != start) {
    FileChunk(start, static_cast<std::size_t>(p - start));  // the gap
  }
  cursor_ = p + size;
  ARENA_DCHECK(cursor_ <= limit_, "BumpNewBlock: chunk larger than a block");
  return p;
}

BlockHeader* Arena::NextBlock() noexcept {
  if (spare_ != nullptr) {
    BlockHeader* block = spare_;
    spare_ = block->next.load(std::memory_order_relaxed);
    --spare_blocks_;
    return block;
  }
  AdoptRetained();
  if (options_.max_bytes != 0 && block_bytes_ + block_size_ > options_.max_bytes) {
    return nullptr;
  }
  ThreadState* local = runtime_->Local();
  BlockHeader* block = retained_;
  if (block != nullptr) {
    // The block kept at the last Reset, still empty (never for a SharedArena
    // sub-arena); one that was bumped into was adopted above.
    retained_ = nullptr;
    ReturnRetainCredit();
  } else {
    // A SharedArena's sub-arena reserves the block from the shared cap first.
    if (budget_ != nullptr && !budget_->TryTake(block_size_)) return nullptr;
    block = runtime_->TakeBlock(local);
    if (block == nullptr) {
      if (budget_ != nullptr) budget_->Give(block_size_);
      return nullptr;
    }
  }
  block->owner = this;
  ++small_blocks_;
  block_bytes_ += block_size_;
  if (!reserved_) {
    reserved_ = true;
    // The first reservation: first_block_hint, or what recent requests on
    // this thread needed (adaptive); take the rest of it now, in one go,
    // never past max_bytes (checked below) and never less than this block.
    // The blocks held already (this one, and the retained block this
    // request started in) count towards it.
    std::size_t hint_blocks = first_blocks_;
    if (adaptive_ && local != nullptr) {
      const std::size_t chosen = local->adaptive.chosen_blocks();
      if (chosen != 0) hint_blocks = chosen;
    }
    std::size_t want = hint_blocks > small_blocks_ ? hint_blocks - small_blocks_ : 0;
    for (; want > 0; --want) {
      if (options_.max_bytes != 0 &&
          block_bytes_ + block_size_ > options_.max_bytes) {
        break;
      }
      if (budget_ != nullptr && !budget_->TryTake(block_size_)) break;
      BlockHeader* extra = runtime_->TakeBlock(local);
      if (extra == nullptr) {
        if (budget_ != nullptr) budget_->Give(block_size_);
        break;
      }
      extra->owner = this;
      PoisonMemory(reinterpret_cast<char*>(extra) + kBlockHeaderSize,
                   block_size_ - kBlockHeaderSize);
      extra->next.store(spare_, std::memory_order_relaxed);
      spare_ = extra;
      ++spare_blocks_;
      ++small_blocks_;
      block_bytes_ += block_size_;
    }
  }
  return block;
}

void* Arena::AllocateLarge(std::size_t bytes, std::size_t alignment) noexcept {
  // The most the mapping may take: what max_bytes leaves. The runtime
  // neither maps nor hands out of its cache anything larger, so a cached
  // mapping up to twice the need cannot make a capped request fail.
  std::size_t most = std::numeric_limits<std::size_t>::max();
  if (options_.max_bytes != 0) {
    // The kept block (retained_, still unused: AllocateSlow adopted a used
    // one) stays current, so the fast path may bump into it later without a
    // check: it counts against the cap, or goes back if the cap needs its
    // room (with a block of margin for the mapping's rounding).
    std::size_t held = block_bytes_;
    if (retained_ != nullptr) {
      if (held + 2 * block_size_ + bytes > options_.max_bytes) {
        DropRetained();
      } else {
        held += block_size_;
      }
    }
    if (held >= options_.max_bytes) return nullptr;
    most = options_.max_bytes - held;
  }
  // A SharedArena's sub-arena: at most what the shared cap leaves now, and
  // reserved once the size is known (a racing sub-arena may have taken it).
  if (budget_ != nullptr) most = std::min(most, budget_->available());
  BlockHeader* block = runtime_->MapLarge(bytes, alignment, most);
  if (block == nullptr) return nullptr;
  if (budget_ != nullptr && !budget_->TryTake(block->size)) {
    runtime_->UnmapLarge(block);
    return nullptr;
  }
  ARENA_DCHECK(block->size <= most, "AllocateLarge: mapping past max_bytes");
  block->owner = this;
  internal::LinkLarge(&large_, block);
  ++large_taken_;
  ++large_blocks_;
  block_bytes_ += block->size;
  large_bytes_ += block->size;
  runtime_->Count(runtime_->Local(), &ThreadCounters::large_allocations, 1);
  char* p = AlignUp(reinterpret_cast<char*>(block) + kBlockHeaderSize, alignment);
  ARENA_DCHECK(reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(block) < block_size_,
               "AllocateLarge: pointer past the first block of its mapping");
  return p;
}

void* Arena::PopFree(std::size_t size, std::size_t alignment) noexcept {
  if (pending_ != nullptr) SortPending();
  if (free_chunks_ == 0) return nullptr;  // (also: no table, SortPending)
  if (alignment > kGrain) {
    // A freed chunk of this size that happens to be aligned (the twin of
    // this request, freed) first.
    if (void* twin = free_->PopAligned(size, alignment)) {
      --free_chunks_;
      ++reuse_pops_;
      return twin;
    }
  }
  // An aligned request takes a chunk with room to align inside it (chunks
  // start 16-aligned, so at most alignment - 16 bytes go before it).
  std::size_t got = 0;
  // A long-lived arena (Splits) splits any larger chunk before it grows; a
  // request's arena takes one at most about twice the size, else bumps.
  char* chunk = static_cast<char*>(
      free_->Pop(size + (alignment - kGrain), &got, Splits()));
  if (chunk == nullptr) return nullptr;
  --free_chunks_;
  ++reuse_pops_;
  char* p = AlignUp(chunk, alignment);
  const auto front = static_cast<std::size_t>(p - chunk);
  // What the request does not use goes back, or it would be lost until
  // Reset: the later Deallocate files only `size` bytes (a long-lived
  // arena with individual frees otherwise leaks the difference each time
  // its exact class is empty). Both pieces are multiples of 16.
  if (front != 0) FileChunk(chunk, front);
  if (got - front != size) FileChunk(p + size, got - front - size);
  return p;
}

void Arena::FileRegionRest(const BlockHeader* next) noexcept {
  // An arena that files its frees keeps what the old region had left
  // (cursors and region ends are multiples of 16), unless `next`, the block
  // about to be current, is the old region's own (the unused kept block,
  // which NextBlock reuses).
  if (cursor_ != limit_ &&
      (reinterpret_cast<std::uintptr_t>(cursor_) & block_mask_) !=
          reinterpret_cast<std::uintptr_t>(next)) {
    FileChunk(cursor_, static_cast<std::size_t>(limit_ - cursor_));
  }
}

void Arena::FileChunk(char* chunk, std::size_t size) noexcept {
  free_->Push(chunk, size);  // poisons the chunk
  ++free_chunks_;
}

bool Arena::MakeFreeLists() noexcept {
  // The table lives in the arena itself; without room, freed chunks simply
  // wait for Reset.
  char* table = static_cast<char*>(BumpCurrent(kFreeListsTableSize, kGrain));
  if (table == nullptr) {
    table = static_cast<char*>(BumpNewBlock(kFreeListsTableSize, kGrain));
  }
  if (table == nullptr) return false;
  InitFreeLists(table);
  return true;
}

void Arena::SortPending() noexcept {
  if (free_ == nullptr && !MakeFreeLists()) return;
  while (pending_ != nullptr) {
    FreeChunk* c = pending_;
    UnpoisonMemory(c, sizeof(FreeChunk));
    pending_ = c->next;
    free_->Push(reinterpret_cast<char*>(c), c->bytes);  // poisons the chunk
    ++free_chunks_;
  }
  // The arena reuses what it frees: from now to Reset, file each free at
  // once (see pending_).
  file_frees_ = true;
}

void Arena::DeallocateLarge(BlockHeader* block) noexcept {
  if (block_bytes_ > peak_held_) peak_held_ = block_bytes_;
  internal::UnlinkLarge(&large_, block);
  if (budget_ != nullptr) budget_->Give(block->size);
  --large_blocks_;
  block_bytes_ -= block->size;
  large_bytes_ -= block->size;
  runtime_->UnmapLarge(block);
  Publish();  // the mapping leaves in_arena_bytes at once
}

void Arena::AddCleanup(void* node_memory, void* object, void (*destroy)(void*)) {
  auto* node = static_cast<CleanupNode*>(node_memory);
  node->destroy = destroy;
  node->object = object;
  node->next = cleanups_;
  cleanups_ = node;
}

}  // namespace arena
