// arena: request-scoped allocation for C++ servers.
//
// An Arena hands out memory for one request (or one connection, or one job)
// and takes all of it back at once in Reset() or its destructor. Underneath,
// blocks (64 KiB by default, aligned to their size) move between arenas, a
// per-thread cache and a process-wide lock-free depot, so the common path of
// Allocate touches no shared cache line and takes no lock.
//
// Threads. One thread uses an arena at a time: Allocate, TryAllocate, Create,
// Reset, resource(), stats() and the destructor are not thread-safe. The
// "owner" is the thread that last called Allocate/TryAllocate/Create or
// Reset; ownership may move between threads (an async server resuming a
// request elsewhere), provided the move itself is synchronized (a queue, a
// mutex) and never concurrent with use. Deallocate may be called from any
// thread at any time while the arena lives:
//   - on the owner it pushes onto a per-size-class free list of the arena,
//     reused by later allocations of that class;
//   - on any other thread it notes the chunk in that thread's batch for
//     the arena (an array outside the arena's memory: nothing is written
//     into the chunk); a batch goes to the arena's lock-free inbox (one CAS) once
//     it holds 32 chunks or 16 KiB, at once for a large mapping, when
//     another arena's batch needs its slot (16 per thread), and when the
//     thread calls FlushRemoteFrees, OnThreadIdle or Trim, or exits. The
//     owner drains the inbox (one exchange) on the first slow path that
//     would otherwise need new memory (or, while drains keep yielding runs
//     of contiguous chunks, on the slow path that finds the bump region
//     used up), and at Reset, and only then counts those bytes as freed.
//     An arena under a cap (ArenaOptions::max_bytes, a capped SharedArena,
//     Config::max_total_bytes) gets each remote free at once instead,
//     unbatched: its owner may need that chunk to stay under the cap.
//     Reset and destruction drop the batches still waiting for the memory
//     they took back, without touching it. Drained runs of contiguous
//     chunks (a consumer freeing in allocation order) become the bump
//     region again.
// A thread that handed the arena on counts as "other" once the new owner's
// first Allocate or Reset happened-before its Deallocate; a Deallocate racing
// with the hand-over itself is a data race (as any use during a move is).
// Deallocate of memory the arena already took back (after Reset, after
// destruction, or twice) is a use-after-free by the caller; debug builds
// abort with a message when the pointer's block no longer belongs to this
// arena, and AddressSanitizer builds report any touch of memory taken back.
//
// Memory. Reset() runs cleanups (Create'd objects' destructors) in reverse
// order, then returns every block to the calling thread's cache in
// O(blocks), not O(objects). Blocks are not pinned to the arena: a pooled
// arena does not keep the high-water mark of its largest request.
// Allocations above Config::large_threshold get a dedicated mapping, given
// back to the page source at Reset (or at their Deallocate), unless they fit
// in what is left of the current block. Failure (past ArenaOptions::max_bytes,
// past Config::max_total_bytes, or the OS refusing) makes Allocate throw
// std::bad_alloc and TryAllocate return nullptr; the arena stays usable.
//
// Alignment: any power of two up to block_size / 2 (32 KiB by default).
// Every pointer handed out is at least 16-byte aligned. Any other alignment
// (0, not a power of two, above block_size / 2) makes TryAllocate return
// nullptr and Allocate throw std::bad_alloc, on every path; the check costs
// nothing when the alignment is a compile-time constant.
//
// Thread identity. "The owner" is compared by a 64-bit id assigned to each
// thread on first use and never reused in the life of the process, so a
// thread created after the owner exited is "another thread".
#ifndef ARENA_ARENA_H_
#define ARENA_ARENA_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory_resource>
#include <new>
#include <type_traits>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "arena/config.h"
#include "arena/internal/remote.h"
#include "arena/internal/sanitizer.h"
#include "arena/internal/thread_token.h"
#include "arena/page_source.h"
#include "arena/stats.h"

namespace arena {

namespace internal {
struct BlockHeader;
struct FreeLists;
struct RetainAccount;
class Runtime;
class SharedBudget;
struct ThreadState;
}  // namespace internal

struct ArenaOptions {
  std::size_t max_bytes = 0;         // cap on this arena's block bytes; 0: none
  std::size_t first_block_hint = 0;  // 0: Config::first_block_hint
  // first_block_hint: bytes (whole blocks) taken from the thread cache at
  // the first slow path after construction and each Reset, so a large
  // request does not go back to the cache once per block. Below: size it
  // from the thread's recent requests instead (Config::adaptive_first_block;
  // kDefault follows the Config).
  enum class Adaptive : unsigned char { kDefault, kOn, kOff };
  Adaptive adaptive_first_block = Adaptive::kDefault;
};

class Arena;
class SharedArena;

// The arena as a std::pmr::memory_resource: do_allocate is Allocate,
// do_deallocate is Deallocate; equal only to itself. Owned by its Arena.
class ArenaResource final : public std::pmr::memory_resource {
 public:
  explicit ArenaResource(Arena* arena) : arena_(arena) {}
  Arena* arena() const { return arena_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  bool do_is_equal(const std::pmr::memory_resource& other) const
      noexcept override {
    return this == &other;
  }

  Arena* const arena_;
};

class Arena {
 public:
  Arena();                                    // process-wide depot, calling thread's cache
  explicit Arena(const ArenaOptions& options);
  Arena(const Arena&) = delete;               // neither copyable nor movable:
  Arena& operator=(const Arena&) = delete;    // blocks point back at their arena
  ~Arena();                                   // as Reset(), then the blocks go back

  // Aligned to `alignment`, a power of two; bytes == 0 gives a unique pointer.
  // Throws std::bad_alloc past max_bytes, past the process cap, or when the OS refuses.
  void* Allocate(std::size_t bytes,
                 std::size_t alignment = alignof(std::max_align_t)) {
    if (ABSL_PREDICT_TRUE(CanBumpFast(bytes, alignment))) return BumpFast(bytes);
    return AllocateSlowOrThrow(bytes, alignment);
  }
  // The same, returning nullptr instead of throwing.
  void* TryAllocate(std::size_t bytes,
                    std::size_t alignment = alignof(std::max_align_t)) noexcept {
    if (ABSL_PREDICT_TRUE(CanBumpFast(bytes, alignment))) return BumpFast(bytes);
    return AllocateSlow(bytes, alignment);
  }
  // Memory from this arena's Allocate/TryAllocate, same `bytes`; from any thread.
  // Not for objects made by Create (their destructors run at Reset).
  void Deallocate(void* p, std::size_t bytes) noexcept;

  // Constructs a T in the arena; a non-trivially-destructible T gets its
  // destructor run at Reset/~Arena, in reverse order of creation.
  template <class T, class... Args>
  T* Create(Args&&... args) {
    if constexpr (std::is_trivially_destructible<T>::value) {
      return ::new (Allocate(sizeof(T), alignof(T)))
          T(std::forward<Args>(args)...);
    } else {
      void* node = Allocate(sizeof(CleanupNode), alignof(CleanupNode));
      T* object = ::new (Allocate(sizeof(T), alignof(T)))
          T(std::forward<Args>(args)...);
      AddCleanup(node, object, [](void* o) { static_cast<T*>(o)->~T(); });
      return object;
    }
  }

  // Runs `cleanup(arg)` at Reset/~Arena, before objects Create'd earlier.
  void RegisterCleanup(void (*cleanup)(void*), void* arg) {
    AddCleanup(Allocate(sizeof(CleanupNode), alignof(CleanupNode)), arg,
               cleanup);
  }

  void Reset();  // cleanups in reverse order; O(blocks)

  std::pmr::memory_resource* resource() noexcept { return &resource_; }

  // live_bytes, block_bytes, blocks, fragmentation (0 when block_bytes == 0).
  // Remote frees count once delivered and drained (see above).
  ArenaStats stats() const;

  const ArenaOptions& options() const { return options_; }

 private:
  struct CleanupNode {
    void (*destroy)(void*);
    void* object;
    CleanupNode* next;
  };
  using FreeChunk = internal::FreeChunk;  // a freed chunk, in its own memory
  static constexpr std::size_t kGrain = 16;
  static constexpr std::size_t kHeaderBytes = 64;  // internal::kBlockHeaderSize
  static constexpr std::size_t kPublishSlack = 16 * 1024;
  // A drained run of contiguous freed chunks at least this long may become
  // the bump region (see DrainRemote): a few allocations' worth, so that a
  // swap pays for its slow path.
  static constexpr std::size_t kMinBumpRun = 256;
  // Drained runs other than the one made the region wait whole in the free
  // lists only from this length on (see PushRun).
  static constexpr std::size_t kMinWholeRun = 16 * 1024;

  // Bytes a chunk takes: `bytes` rounded up to 16, at least 16.
  static std::size_t ChunkSize(std::size_t bytes) {
    return ((bytes | (bytes == 0)) + (kGrain - 1)) & ~(kGrain - 1);
  }

  // The fast path: the owner, an alignment of at most 16 (1, 2, 4, 8 or 16:
  // bit `alignment` of kFastAlignments), and room in the current block.
  // The cursor and the region's end are multiples of 16, so the room is
  // one, and bytes rounded up to 16 fit exactly when bytes fit:
  // `bytes - 1 < limit_ - cursor_` needs no rounding, is false for bytes ==
  // 0 (it wraps; zero-byte requests take the slow path and get 16 bytes),
  // and lets through no size whose rounding would wrap.
  // Chunks freed on the owner wait (pending_, then free lists) until the
  // bump region is used up: the slow path (PopQuick first) reuses them
  // before it takes a new block, and the fast path never looks at them.
  static std::size_t RoundUpGrain(std::size_t bytes) {
    return (bytes + (kGrain - 1)) & ~(kGrain - 1);
  }
  static constexpr std::uint32_t kFastAlignments =
      (1u << 1) | (1u << 2) | (1u << 4) | (1u << 8) | (1u << 16);
  static_assert(kGrain == 16, "kFastAlignments lists the powers of two <= 16");
  bool CanBumpFast(std::size_t bytes, std::size_t alignment) const noexcept {
    return alignment <= kGrain && ((kFastAlignments >> alignment) & 1) != 0 &&
           CanBumpFastAligned(bytes);
  }
  // The same for an alignment known to be a power of two <= 16.
  bool CanBumpFastAligned(std::size_t bytes) const noexcept {
    return owner_token_ == internal::ThreadToken() &&
           bytes - 1 < static_cast<std::size_t>(limit_ - cursor_);
  }
  void* BumpFast(std::size_t bytes) noexcept {
    char* p = cursor_;
    cursor_ = p + RoundUpGrain(bytes);
    live_bytes_ += bytes;
    internal::UnpoisonMemory(p, bytes);
    return p;
  }

  // The slow path: PopQuick, else AllocateSlowPath (arena.cc).
  void* AllocateSlow(std::size_t bytes, std::size_t alignment) noexcept;
  void* AllocateSlowOrThrow(std::size_t bytes, std::size_t alignment);
  void* AllocateSlowPath(std::size_t bytes, std::size_t alignment) noexcept;
  // A freed chunk of at most FreeLists::kQuickMaxSize bytes, reused with
  // the fewest checks; nullptr where AllocateSlowPath must decide.
  void* PopQuick(std::size_t bytes, std::size_t alignment) noexcept;
  void* BumpCurrent(std::size_t size, std::size_t alignment) noexcept;
  void* BumpNewBlock(std::size_t size, std::size_t alignment) noexcept;
  // The largest free chunk becomes the bump region if it holds at least
  // max(size + alignment - 16, kMinBumpRun) bytes; then bumps `size` from
  // it at `alignment`.
  void* BumpLargestFree(std::size_t size, std::size_t alignment) noexcept;
  void* AllocateLarge(std::size_t bytes, std::size_t alignment) noexcept;
  internal::BlockHeader* NextBlock() noexcept;
  bool HasFreeChunks() const noexcept {
    return free_chunks_ != 0 || pending_ != nullptr;
  }
  // A freed chunk holding `size` bytes at `alignment`; what it has beyond
  // them (the gap before an aligned start, the tail) goes back to the lists.
  void* PopFree(std::size_t size, std::size_t alignment) noexcept;
  ABSL_ATTRIBUTE_NOINLINE void FileChunk(char* chunk,
                                         std::size_t size) noexcept;  // REQUIRES: free_
  // Before `next` becomes current: the old region's rest to the free lists.
  ABSL_ATTRIBUTE_NOINLINE void FileRegionRest(
      const internal::BlockHeader* next) noexcept;
  // A long-lived arena, reusing what it frees: filing its frees, and past
  // kSplitAfterPops reuses of freed chunks since construction or Reset (a
  // request's arena makes a few). It then reuses before it grows (see
  // PopFree, AllocateSlowPath).
  static constexpr std::uint64_t kSplitAfterPops = 1024;
  static constexpr std::size_t kFileRestAfterChunks = 64;  // see AllocateSlowPath
  bool Splits() const noexcept {
    return file_frees_ && reuse_pops_ >= kSplitAfterPops;
  }
  // To its free list once file_frees_, else onto pending_ (the table made
  // now if the bump region has room for it).
  void PushFree(char* chunk, std::size_t size) noexcept;
  void PushPending(char* chunk, std::size_t size) noexcept;  // the else
  // A local free while filing: to its list, then DeallocateLocal's publish.
  ABSL_ATTRIBUTE_NOINLINE void FileLocalFree(char* chunk,
                                             std::size_t size) noexcept;
  void SortPending() noexcept;  // pending_ into free_ (the table made first)
  // Deallocate's body, also ArenaResource::do_deallocate's (arena_remote.cc).
  template <bool kMayBeNull>
  void DeallocateInline(void* p, std::size_t bytes) noexcept;
  void DeallocateLocal(void* p, std::size_t bytes,
                       internal::BlockHeader* block) noexcept;
  ABSL_ATTRIBUTE_NOINLINE void DeallocateRemote(
      void* p, std::size_t bytes, internal::BlockHeader* block) noexcept;
  ABSL_ATTRIBUTE_NOINLINE void DeallocateRemoteSlow(
      char* chunk, std::size_t bytes, internal::BlockHeader* block) noexcept;
  // The inbox of a first remote free (made and installed by whichever
  // freeing thread gets there first); nullptr when the heap is exhausted.
  internal::RemoteInbox* InstallInbox() noexcept;
  // The owner: no remote free waits and none may (see RemoteInbox::Quiet).
  bool RemoteQuiet() const noexcept {
    const internal::RemoteInbox* in = inbox_.load(std::memory_order_acquire);
    return in == nullptr || in->Quiet();
  }
  // The owner: no delivered remote free waits to be drained.
  bool NothingDelivered() const noexcept {
    const internal::RemoteInbox* in = inbox_.load(std::memory_order_acquire);
    return in == nullptr || in->Empty();
  }
  ABSL_ATTRIBUTE_NOINLINE void DeallocateLarge(
      internal::BlockHeader* block) noexcept;
  // Takes the delivered remote frees; `need`: the chunk size the caller is
  // about to bump (0: none). See arena.cc.
  void DrainRemote(std::size_t need) noexcept;
  // Address-contiguous chunks of drained remote frees: `count` chunks,
  // the entries from `start` of `batch` on, into the batches after it in
  // the drain's list, or the loose chunks from `loose` on (a large mapping
  // in between ends a run), covering [lo, hi).
  struct Run {
    internal::RemoteBatch* batch = nullptr;
    std::uint32_t start = 0;
    FreeChunk* loose = nullptr;  // instead: loose chunks from this one on
    std::uint32_t count = 0;
    char* lo = nullptr;
    char* hi = nullptr;
  };
  // A short run: each chunk to its free list; a long one: as one chunk.
  void PushRun(const Run& run) noexcept;
  // Drained batches, to the calling thread's spares (or the runtime's pool).
  void RecycleBatches(internal::RemoteBatch* list) noexcept;
  void MakeRegion(char* lo, char* hi) noexcept;  // REQUIRES: [lo, hi) free
  bool MakeFreeLists() noexcept;  // false: no memory for the table
  // REQUIRES: ChunkSize(sizeof(FreeLists)) free bytes at `table`.
  void InitFreeLists(char* table) noexcept;
  void ClaimOwnership() noexcept;
  // Publishes when a block came or went (the kept one too) or live bytes
  // moved by 16 KiB.
  void MaybePublish() noexcept {
    if (block_bytes_ != published_block_bytes_ ||
        live_bytes_ + kPublishSlack - published_live_ > 2 * kPublishSlack ||
        (retained_ == nullptr) != (published_retained_bytes_ == 0)) {
      Publish();
    }
  }
  void Publish() noexcept;
  void PublishTo(internal::ThreadState* local) noexcept;  // local: Local()
  void AddCleanup(void* node, void* object, void (*destroy)(void*));
  // Reset (keep_one: may keep the current block, see retained_) and
  // destruction (gives everything back).
  void ReleaseAll(bool keep_one) noexcept;
  // Reset's common case: only the kept block was bumped into (see
  // arena_release.cc); false where ReleaseAll must run.
  bool RewindKeptBlock() noexcept;
  void ForgetRequest() noexcept;  // live bytes and freed chunks, at both
  void RecordFootprint(internal::ThreadState* local) noexcept;
  // retained_ with something bumped from it joins blocks_ (see retained_).
  void AdoptRetained() noexcept {
    if (ABSL_PREDICT_FALSE(RetainedInUse())) AdoptRetainedSlow();
  }
  void AdoptRetainedSlow() noexcept;
  // retained_'s credit back to the account it came from (see
  // internal::RetainAccount), from whichever thread.
  void ReturnRetainCredit() noexcept;
  void DropRetained() noexcept;  // an unused kept block back to the cache
  bool RetainedInUse() const noexcept {
    return retained_ != nullptr && cursor_ != RetainedStart();
  }
  char* RetainedStart() const noexcept {
    return reinterpret_cast<char*>(retained_) + kHeaderBytes;
  }

  // Hot: read or written by every Allocate.
  // The bump region [cursor_, limit_): the tail of the newest block, or a
  // run of contiguous remotely freed chunks that DrainRemote made the region
  // (so a producer/consumer pair recycles memory on the fast path). Either
  // way it lies in one of blocks_ and holds no live chunk.
  char* cursor_ = nullptr;       // next free byte of the bump region
  char* limit_ = nullptr;        // end of the bump region
  // The owner's thread token, for the fast path (see thread_token.h: the
  // token may be reused by a new thread; ownership itself is owner_'s id).
  const void* owner_token_ = nullptr;
  std::size_t live_bytes_ = 0;

  // Warm: slow paths.
  internal::Runtime* const runtime_;
  const std::uintptr_t block_mask_;
  const std::size_t block_size_;
  const std::size_t large_threshold_;
  // A plain copy of owner_ (owner-only), so that claiming on every slow
  // path does not read the remote-free cache line.
  std::uint64_t owner_id_ = internal::kNoThread;
  const ArenaOptions options_;
  internal::BlockHeader* blocks_ = nullptr;  // small blocks, current first
  internal::BlockHeader* spare_ = nullptr;   // reserved, not yet used
  // The block this arena kept at its last Reset, for its next request: the
  // current block from the Reset on, counted as held once bumped into, at
  // most RetainAccount::kMaxCredit per live thread. See arena_release.cc.
  internal::BlockHeader* retained_ = nullptr;
  // The thread whose Reset kept retained_ (Reset rewinds the block in place
  // only there), and the account and generation of the credit it spent.
  std::uint64_t retained_by_ = internal::kNoThread;
  internal::RetainAccount* retained_account_ = nullptr;
  std::uint64_t retained_generation_ = 0;
  internal::BlockHeader* large_ = nullptr;   // large mappings (doubly linked)
  std::size_t small_blocks_ = 0;   // in blocks_ and spare_
  std::size_t large_blocks_ = 0;
  std::size_t block_bytes_ = 0;    // small_blocks_ * block_size + large bytes
  std::size_t large_bytes_ = 0;
  bool reserved_ = false;          // first reservation taken since Reset
  const bool adaptive_;            // first reservation from AdaptiveSizer
  // first_block_hint (options_, else Config's, which the runtime divides
  // once) in blocks, rounded up: no division on the first slow path.
  const std::size_t first_blocks_;
  std::size_t spare_blocks_ = 0;   // blocks in spare_
  CleanupNode* cleanups_ = nullptr;
  // Chunks freed on the owner: first pushed here unsorted (link and chunk
  // size in the chunk's first 16 bytes, which every chunk has), filed into
  // the size-class lists of free_ when a slow path wants to reuse one
  // (SortPending). A request that frees a few buffers (a growing vector)
  // and then Resets pays four stores per free, and no sorting. From that
  // first sort to Reset, file_frees_: frees go straight to their lists,
  // where PopQuick finds them (an arena that reuses what it frees, as a
  // long-lived one with individual frees does, files each chunk once).
  FreeChunk* pending_ = nullptr;
  internal::FreeLists* free_ = nullptr;  // in the arena's own memory
  std::size_t free_chunks_ = 0;    // chunks in free_
  bool file_frees_ = false;        // implies free_ != nullptr, no pending_
  std::uint64_t reuse_pops_ = 0;   // freed chunks reused since Reset
  // Credit for "drains yield runs" (see AllocateSlow and arena_remote.cc).
  static constexpr unsigned char kRecycleCredit = 4;
  static constexpr std::size_t kMaxChunksWhileRecycling = 256;
  unsigned char recycle_runs_ = 0;
  std::uint64_t slow_allocations_ = 0;  // allocations that took the slow path
  std::uint64_t deallocations_ = 0;
  std::uint64_t resets_ = 0;
  // This request's footprint (since construction or the last Reset), for
  // the per-request histograms. The peaks are taken where the figures fall
  // (a free, a large unmap, Reset), never on the bump fast path.
  std::size_t peak_live_ = 0;
  std::size_t peak_held_ = 0;
  std::uint64_t slow_at_reset_ = 0;
  std::uint64_t large_taken_ = 0;
  // What this arena last added to the process counters (see Publish).
  std::size_t published_live_ = 0;
  std::size_t published_block_bytes_ = 0;
  std::size_t published_large_bytes_ = 0;
  std::size_t published_retained_bytes_ = 0;
  std::atomic<int> busy_{0};  // debug builds: check against concurrent use
  ArenaResource resource_{this};
  // SharedArena (shared_arena.h) drives its per-thread sub-arenas through
  // the private fast path and gives them its cap: new blocks and large
  // mappings are reserved from *budget_ too. Null for a plain Arena; read
  // on slow paths only.
  friend class SharedArena;
  friend class ArenaResource;
  internal::SharedBudget* budget_ = nullptr;

  // Read by every Deallocate on any thread, written only when ownership
  // moves: a line of its own, so that a local Deallocate (which reads it)
  // does not miss on a line remote Deallocates keep writing, and
  // remote Deallocates keep it shared instead of stealing it from the owner.
  // The owner's thread id; written (rarely, relaxed) by a thread that
  // becomes the owner.
  alignas(64) std::atomic<std::uint64_t> owner_{internal::kNoThread};
  // block_mask_ again, for Deallocate: block_mask_ itself shares a line with
  // the bump fields, and a remote free reading it would take that line away
  // from the owner at every free.
  const std::uintptr_t shared_block_mask_;
  // Where other threads deliver their batches of frees (see
  // internal/remote.h): null until the first remote free installs one
  // (release CAS; everyone loads it acquire, so that the inbox the
  // installing thread made is seen whole: the owner may peek at it while
  // the first remote free installs it; cold review). Written once per
  // arena, read by every remote free; given back to the runtime by the
  // destructor.
  std::atomic<internal::RemoteInbox*> inbox_{nullptr};
};

inline void* ArenaResource::do_allocate(std::size_t bytes,
                                        std::size_t alignment) {
  // std::pmr's alignment is a power of two (allocate's precondition): only
  // its size needs checking. (AllocateSlow validates it again.)
  if (ABSL_PREDICT_TRUE(alignment <= Arena::kGrain &&
                        arena_->CanBumpFastAligned(bytes))) {
    return arena_->BumpFast(bytes);
  }
  return arena_->AllocateSlowOrThrow(bytes, alignment);
}

// Starts the process runtime with `config` (validated). Once, before the
// first arena; the same config again is fine, a different one is an error
// (FailedPrecondition naming the differing keys). Without a call, the first
// arena starts the runtime with the defaults plus ARENA_* environment
// overrides. This does not read the environment: use ApplyEnvironment.
absl::Status Configure(const Config& config);
// The same, with memory from `source` (never destroyed; e.g. a
// FixedRegionPageSource over memory the embedder owns).
absl::Status Configure(const Config& config, PageSource* source);

// The config the runtime runs with (starting it if needed).
const Config& CurrentConfig();

// Process-wide figures; see stats.h for the formulas and their accuracy.
ProcessStats GlobalStats();

// Decommits depot batches idle for release_delay_ms and asks threads whose
// caches sat idle that long to trim them (at their next OnThreadIdle).
// The background release thread (Config::background_release) calls this
// every release_interval_ms. Also frees the heap of the spare remote-free
// batches that no thread took back since the last call. Returns the bytes
// decommitted.
std::size_t ReleaseIdleMemory();

// The hook for an idle event loop (call it when a wait times out): flushes
// the calling thread's cache to the depot if the release thread asked for
// it or if the cache saw no traffic for release_delay_ms, and (without the
// background thread) releases idle depot batches. Returns bytes flushed.
std::size_t OnThreadIdle();

// Gives every block of the calling thread's cache to the depot now.
std::size_t FlushThreadCache();

// Delivers the frees this thread made into other threads' arenas that still
// wait in its batches (see Deallocate), so that their owners can reuse the
// memory. Exiting threads, OnThreadIdle and Trim do it too. Returns how many
// chunks went.
std::size_t FlushRemoteFrees();

// Flushes the calling thread's cache and remote frees, then unmaps every
// free block in the depot and frees the spare remote-free batches of the
// runtime's pool and this thread. Other threads' caches are theirs to
// flush. Returns bytes released (of mappings).
std::size_t Trim();

}  // namespace arena

// ArenaAllocator<T, ArenaT = Arena>, the STL allocator over an arena: its
// own header (it needs only the declaration of Arena), part of this API.
#include "arena/arena_allocator.h"  // IWYU pragma: export

#endif  // ARENA_ARENA_H_
