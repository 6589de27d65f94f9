// Runtime: the process-wide state behind every Arena.
//
// Holds the effective Config, the PageSource, the Depot, the registry of
// per-thread states (block cache + statistics counters), the counters of
// threads that exited, and the optional background release thread.
//
// Lifetime: started once (arena::Configure, or lazily by the first Arena with
// the defaults and ARENA_* environment overrides), constructed in static
// storage and never destroyed, so that threads and arenas that outlive main()
// can still return blocks to it. Thread-safety: every method may be called
// from any thread; Local() returns the calling thread's own state.
#ifndef ARENA_INTERNAL_RUNTIME_H_
#define ARENA_INTERNAL_RUNTIME_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/base/optimization.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "arena/config.h"
#include "arena/internal/block.h"
#include "arena/internal/check.h"
#include "arena/internal/depot.h"
#include "arena/internal/footprint.h"
#include "arena/internal/large.h"
#include "arena/internal/mutex.h"
#include "arena/internal/remote.h"
#include "arena/internal/thread_cache.h"
#include "arena/internal/thread_token.h"
#include "arena/page_source.h"
#include "arena/stats.h"

namespace arena {
namespace internal {

// Statistics of one thread. Single writer (that thread, with load + store);
// read by Stats() with relaxed loads; they synchronize nothing. The values
// are deltas: an arena that allocates on one thread and resets on another
// adds on the first and subtracts on the second; only the sum means much.
struct ThreadCounters {
  std::atomic<std::int64_t> live_bytes{0};
  std::atomic<std::int64_t> in_arena_bytes{0};
  std::atomic<std::int64_t> large_bytes{0};
  std::atomic<std::int64_t> arenas_created{0};
  std::atomic<std::int64_t> arenas_destroyed{0};
  std::atomic<std::int64_t> resets{0};
  std::atomic<std::int64_t> large_allocations{0};
  std::atomic<std::int64_t> retained_bytes{0};
};

using CounterField = std::atomic<std::int64_t> ThreadCounters::*;

// A thread's credit for blocks that arenas reset on it keep for their next
// request (Arena::retained_), so that idle arenas (10000 keep-alive
// connections) pin at most kMaxCredit blocks per live thread. A Reset that
// keeps a block takes a credit (Take) and remembers the account and its
// generation; whichever thread later takes the block back into use or
// gives it back (an arena handed to another thread included) gives the
// credit back to that account (Give), unless the account's thread has left
// since: Runtime::Unregister starts a new generation with full credit, and
// credits of the old one lapse. Invariant: per generation, credit + blocks
// kept with its credits <= kMaxCredit. Accounts are never freed (a giving
// thread may hold one whose thread left): the runtime recycles them for
// new threads. One word, generation << kCreditBits | credit (61 bits of
// generation: no wrap in the life of a process), on a line of its own
// (written by the thread's Resets and by threads taking its blocks back).
struct alignas(64) RetainAccount {
  static constexpr std::uint64_t kMaxCredit = 4;
  static constexpr int kCreditBits = 3;
  static constexpr std::uint64_t kCreditMask = (1u << kCreditBits) - 1;
  static_assert(kMaxCredit <= kCreditMask, "credit field too narrow");
  // Relaxed throughout: a count in one atomic word, publishing no data (the
  // kept blocks move with their arenas, whose hand-over the caller
  // synchronizes); its single modification order keeps credits from being
  // made or lost, and a generation change from being missed.
  std::atomic<std::uint64_t> word{kMaxCredit};
  RetainAccount* next_free = nullptr;  // Runtime's free list (registry_mu_)

  // One credit, and the generation it came from; false when none is left.
  bool Take(std::uint64_t* generation) noexcept {
    std::uint64_t w = word.load(std::memory_order_relaxed);
    do {
      if ((w & kCreditMask) == 0) return false;
    } while (!word.compare_exchange_weak(w, w - 1, std::memory_order_relaxed,
                                         std::memory_order_relaxed));
    *generation = w >> kCreditBits;
    return true;
  }
  // Gives back a credit Take returned with `generation`; dropped if the
  // account has moved on to a new thread.
  void Give(std::uint64_t generation) noexcept {
    std::uint64_t w = word.load(std::memory_order_relaxed);
    while ((w >> kCreditBits) == generation) {
      // Full credit in the same generation: a credit given back twice.
      ARENA_DCHECK((w & kCreditMask) < kMaxCredit,
                   "arena: a kept block's credit given back twice");
      if ((w & kCreditMask) >= kMaxCredit) return;
      if (word.compare_exchange_weak(w, w + 1, std::memory_order_relaxed,
                                     std::memory_order_relaxed)) {
        return;
      }
    }
  }
  // Unregister: a new generation with full credit (owner-less: the thread
  // left; a racing Give of the old generation is overwritten or lapses).
  void Renew() noexcept {
    const std::uint64_t next =
        (word.load(std::memory_order_relaxed) >> kCreditBits) + 1;
    word.store((next << kCreditBits) | kMaxCredit, std::memory_order_relaxed);
  }
};

struct ThreadState {
  explicit ThreadState(Depot* depot, std::size_t capacity)
      : cache(depot, capacity) {}
  ThreadCache cache;
  ThreadCounters counters;
  FootprintRecorder footprint;
  AdaptiveSizer adaptive;
  // Set by the release thread when this cache sat idle for the release
  // delay; read and cleared by the owner in OnThreadIdle. Relaxed: a hint.
  std::atomic<bool> trim_requested{false};
  // This thread's credit for blocks kept across Reset (see RetainAccount);
  // null when it could not get one (no heap): it keeps no block.
  RetainAccount* retain = nullptr;
  // This thread's remote frees not yet delivered (see remote.h).
  RemoteBatches remote;
  // Owner-only bookkeeping for OnThreadIdle.
  std::uint64_t idle_ops = 0;
  std::int64_t idle_since_ms = 0;
  // Release-thread bookkeeping, guarded by the registry mutex.
  std::uint64_t seen_ops = 0;
  std::int64_t quiet_since_ms = 0;
  // Registry links, guarded by the registry mutex.
  ThreadState* prev = nullptr;
  ThreadState* next = nullptr;
};

// The calling thread's state while it is alive; null before first use and
// once the thread exits. Initial-exec TLS: one %fs-relative load.
extern __thread ThreadState* tls_thread_state ARENA_TLS_INITIAL_EXEC;

class Runtime {
 public:
  // The process runtime, started with defaults + environment if needed.
  static Runtime& Get() {
    // Acquire pairs with the release store in Start: the runtime's fields
    // are fully constructed before anyone sees the pointer.
    Runtime* rt = instance_.load(std::memory_order_acquire);
    return rt != nullptr ? *rt : StartDefault();
  }
  static Runtime* GetIfStarted() {
    return instance_.load(std::memory_order_acquire);
  }
  // arena::Configure. `source` (may be null: mmap) must live forever.
  static absl::Status Start(const Config& config, PageSource* source);

  const Config& config() const { return config_; }
  // config().first_block_hint in blocks, rounded up (computed once).
  std::size_t first_blocks() const { return first_blocks_; }
  PageSource* source() const { return source_; }
  Depot* depot() { return &depot_; }

  // The calling thread's state, created on first use; nullptr once the
  // thread has begun to exit (its cache is gone: use the depot directly).
  ThreadState* Local() {
    ThreadState* state = tls_thread_state;
    return ABSL_PREDICT_TRUE(state != nullptr) ? state : LocalSlow();
  }

  // A free block for an arena, from `local`'s cache or (local == nullptr)
  // straight from the depot; nullptr when memory is exhausted.
  // Inline while the thread's cache has one (the common case).
  BlockHeader* TakeBlock(ThreadState* local) {
    if (ABSL_PREDICT_TRUE(local != nullptr)) {
      if (BlockHeader* block = local->cache.TryGetCached()) return block;
    }
    return TakeBlockSlow(local);
  }
  // Gives back `count` free blocks linked by `next`, from `head` to `tail`.
  void ReturnBlocks(ThreadState* local, BlockHeader* head, BlockHeader* tail,
                    std::size_t count) {
    if (count == 0) return;
    if (ABSL_PREDICT_TRUE(local != nullptr)) {
      local->cache.Put(head, tail, count);
    } else {
      depot_.Release(head, count, NowMs());
    }
  }

  // A dedicated mapping of at most `most` bytes for one allocation of
  // `bytes` aligned to `alignment` (at most block_size / 2); nullptr on
  // failure. Never allocates from the heap.
  BlockHeader* MapLarge(std::size_t bytes, std::size_t alignment,
                        std::size_t most);
  // Gives a large mapping back: kept in the large cache (within
  // large_cache_bytes) or unmapped. Never allocates from the heap.
  void UnmapLarge(BlockHeader* block);

  // Adds `delta` to a counter of `local` (single writer: load + store) or,
  // when the thread is exiting, of the retired totals (fetch_add).
  void Count(ThreadState* local, CounterField field, std::int64_t delta) {
    if (ABSL_PREDICT_TRUE(local != nullptr)) {
      std::atomic<std::int64_t>& c = local->counters.*field;
      c.store(c.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
    } else {
      (retired_.*field).fetch_add(delta, std::memory_order_relaxed);
    }
  }

  // Records one request's footprint (an arena's Reset or destruction) on
  // `local` (or, for an exiting thread, on the retired totals).
  void RecordRequest(ThreadState* local, const RequestFootprint& footprint) {
    if (ABSL_PREDICT_TRUE(local != nullptr)) {
      local->footprint.Add(footprint);
    } else {
      retired_footprint_.AddShared(footprint);
    }
  }

  ProcessStats Stats();
  std::size_t ReleaseIdleMemory();
  std::size_t Trim();
  std::size_t OnThreadIdle();
  std::size_t FlushThreadCache();
  // Delivers the calling thread's remote-free batches; returns the chunks.
  std::size_t FlushRemoteFrees();

  // An inbox for an arena's remote frees (its generation already past any
  // batch of its earlier arenas); nullptr when the heap is exhausted.
  RemoteInbox* NewInbox();
  // Back to the pool, from a destructor that ended its generation.
  void FreeInbox(RemoteInbox* inbox);
  // Remote-free batches (remote.h): up to `want` (at least 1) as a list by
  // `next`, from the pool or new, their number in *got (if not null);
  // nullptr when the pool is empty and the heap exhausted.
  RemoteBatch* TakeBatches(std::uint32_t want, std::uint32_t* got);
  // A list by `next` of batches no thread holds, to the pool.
  void GiveBatches(RemoteBatch* list);
  // RemoteBatch objects alive (made and not yet freed by FreeBatchPool).
  std::size_t BatchesAliveForTesting() const {
    return batches_alive_.load(std::memory_order_relaxed);
  }
  // Frees the pool's batches (Trim; with idle_only, ReleaseIdleMemory: only
  // those no thread took since the last such call, the pool's low-water
  // mark); returns their bytes. (Heap: not counted in those calls' figures.)
  std::size_t FreeBatchPool(bool idle_only);

  static std::int64_t NowMs();

  // Called once per thread at its exit: flushes its cache to the depot and
  // folds its counters into the retired totals.
  static void RetireThread(ThreadState* state);

  // pthread_atfork hooks. Lock order: the start mutex (taken by the caller),
  // registry_mu_, the large cache, the depot, then the page source's own
  // (PageSource::PrepareFork); released in reverse order. The child first
  // forgets what the threads it does not have left in flight.
  void ForkPrepareImpl();
  void ForkAfterInParentImpl();
  void ForkAfterInChildImpl();

  // The next start of the background release thread fails as if
  // pthread_create returned EAGAIN. For tests (resource limits cannot make
  // thread creation fail for root).
  static void FailNextThreadStartForTesting();

 private:
  Runtime(const Config& config, PageSource* source);
  static Runtime& StartDefault();
  ThreadState* LocalSlow();
  BlockHeader* TakeBlockSlow(ThreadState* local);  // TakeBlock's depot path
  void Register(ThreadState* state);
  void ReleaseLoop();
  static void* ReleaseThreadMain(void* runtime);
  // Folds a thread's counters into retired_ and unlinks it from the
  // registry; its retain account goes back to free_accounts_.
  void Unregister(ThreadState* state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(registry_mu_);

  static std::atomic<Runtime*> instance_;

  const Config config_;
  const std::size_t first_blocks_;
  PageSource* const source_;
  Depot depot_;

  Mutex registry_mu_;
  ThreadState* threads_ ABSL_GUARDED_BY(registry_mu_) = nullptr;
  // Threads of the parent a fork() child does not have: kept reachable (not
  // freed: their caches may be mid-update), no longer counted.
  ThreadState* orphans_ ABSL_GUARDED_BY(registry_mu_) = nullptr;
  // Retain accounts of threads that left, each in a new generation with
  // full credit, for the next threads (see RetainAccount: never freed).
  RetainAccount* free_accounts_ ABSL_GUARDED_BY(registry_mu_) = nullptr;
  // Remote-free inboxes: allocated kInboxesPerChunk at a time, never freed
  // (a late delivery may still read one; see remote.h); free ones pooled.
  static constexpr std::size_t kInboxesPerChunk = 64;
  struct InboxChunk {
    RemoteInbox inboxes[kInboxesPerChunk];
    InboxChunk* next = nullptr;
  };
  InboxChunk* inbox_chunks_ ABSL_GUARDED_BY(registry_mu_) = nullptr;
  RemoteInbox* free_inboxes_ ABSL_GUARDED_BY(registry_mu_) = nullptr;
  // Spare remote-free batches beyond the threads' own: a stack, so the
  // batches below the fewest it held since the last FreeBatchPool(true)
  // (free_batches_low_) sat unused all that time.
  RemoteBatch* free_batches_ ABSL_GUARDED_BY(registry_mu_) = nullptr;
  std::size_t free_batch_count_ ABSL_GUARDED_BY(registry_mu_) = 0;
  std::size_t free_batches_low_ ABSL_GUARDED_BY(registry_mu_) = 0;
  // RemoteBatch objects made and not yet freed. Relaxed: a figure for tests.
  std::atomic<std::size_t> batches_alive_{0};
  LargeCache large_cache_;
  std::size_t thread_count_ ABSL_GUARDED_BY(registry_mu_) = 0;
  // True while the background release thread runs in this process: false
  // in a fork() child, where OnThreadIdle then releases. Relaxed: a hint.
  std::atomic<bool> release_thread_running_{false};
  // Counters folded in from exited threads, and counts made by threads
  // that are exiting; multi-writer (fetch_add), statistics only.
  ThreadCounters retired_;
  FootprintRecorder retired_footprint_;
};

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_RUNTIME_H_
