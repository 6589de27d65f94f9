// SharedArena: one request's memory for parallel tasks (oneTBB or threads).
//
// A SharedArena is one logical request arena that many threads allocate from
// at once, for handlers that fan work out with tbb::parallel_for or a
// tbb::task_group and keep the tasks' results until the request ends. Under
// it, every thread that touches it gets its own sub-arena (an arena::Arena,
// created on the thread's first use), so an Allocate is the Arena fast path
// (a bump pointer, no atomic read-modify-write, no lock) after one
// thread-local compare that finds the calling thread's sub-arena. Prefer a
// plain Arena when one thread at a time serves the request: it skips that
// lookup and keeps no per-thread state.
//
// Threads.
//   - Allocate, TryAllocate, Create, RegisterCleanup, resource() and its
//     allocations: from any number of threads at once.
//   - Deallocate: from any thread, for memory of this SharedArena that is
//     live (allocated and not yet freed); on the thread that allocated it, it
//     goes to that sub-arena's free lists, elsewhere into the freeing
//     thread's batch for that sub-arena, delivered to its lock-free inbox
//     (Arena's protocol, see arena.h).
//   - stats(): from any thread at any time, also while tasks run: a relaxed
//     snapshot summed over the sub-arenas, each field exact for some recent
//     instant of its sub-arena, not all for the same one (a best-effort
//     estimate while tasks run; exact once they are done).
//   - Reset() and the destructor: only when no task uses the arena any more,
//     and after everything the tasks did happened-before the call (the join
//     of parallel_for, task_group::wait, std::thread::join). Debug builds
//     abort when an Allocate, Deallocate or Create overlaps them on another
//     thread. Cleanups run by Reset may use the arena on the calling thread.
//   - Memory freed on another thread than its allocating one counts as freed
//     in stats() once the owning sub-arena drains it (its next slow path, or
//     Reset), as for Arena.
//
// Memory. Each sub-arena takes blocks from the calling thread's cache and the
// process-wide depot, exactly as an Arena does. Reset() first runs every
// cleanup of every sub-arena (in reverse order of creation within a thread;
// across threads, in no particular order), and only then gives every block
// back to the calling thread's cache, so a cleanup may free memory of any
// sub-arena. Sub-arenas are kept across Reset (a pooled SharedArena finds its
// threads' sub-arenas again) but hold no blocks after it. Blocks are not
// pinned to the SharedArena.
//
// Options. ArenaOptions::max_bytes caps the block bytes (blocks and large
// mappings) of the whole SharedArena, not of each sub-arena: a sub-arena
// reserves every block and large mapping from one shared atomic budget before
// it takes it, so racing threads never hold more than max_bytes together;
// past it Allocate throws std::bad_alloc and TryAllocate returns nullptr on
// every thread, and the arena stays usable. Room comes back per sub-arena: a
// sub-arena keeps the blocks it took until Reset (memory freed inside a
// block makes room in that block, for that thread), and a large allocation
// freed gives its bytes back to the cap at once on the thread that owns it,
// or when that sub-arena next drains its remote frees (its next slow path)
// or at Reset. So a cap needs headroom of about one block per thread that
// allocates. Sub-arenas make no first reservation beyond one block
// (first_block_hint and adaptive_first_block do not apply to them): one
// thread's hint would take shared room the others need.
//
// Thread identity. oneTBB's enumerable_thread_specific keys sub-arenas by
// the native thread id, which the OS reuses: a thread created after another
// exited may inherit its sub-arena. That is harmless: the sub-arena's owner
// is compared by arena's never-reused thread id, so the new thread takes it
// over on its first slow path, as an Arena handed between threads. Each
// thread that ever used the SharedArena keeps a sub-arena (an Arena object,
// no blocks after Reset) until destruction: Reset is O(blocks + threads).
//
// Lifetime. Neither copyable nor movable (blocks point back at their
// sub-arena). Destroying it is a Reset followed by the destruction of the
// sub-arenas; the SharedArena must outlive every use of its memory.
#ifndef ARENA_SHARED_ARENA_H_
#define ARENA_SHARED_ARENA_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <new>
#include <type_traits>
#include <utility>

#include <oneapi/tbb/enumerable_thread_specific.h>

#include "absl/base/optimization.h"
#include "arena/arena.h"
#include "arena/internal/budget.h"
#include "arena/internal/check.h"
#include "arena/stats.h"

namespace arena {

namespace internal {

// Debug builds check that Reset/destruction overlap no other use.
inline constexpr bool kSharedArenaDebug = ARENA_DEBUG_CHECKS != 0;

// The calling thread's last SharedArena sub-arena: the arena's id (never
// reused; 0 for none) and the sub-arena. Initial-exec TLS, trivially
// initialized: one %fs-relative load on the fast path.
struct SharedArenaTls {
  std::uint64_t id;
  void* sub;
};
extern __thread SharedArenaTls tls_shared_arena ARENA_TLS_INITIAL_EXEC;

}  // namespace internal

class SharedArena;

// The SharedArena as a std::pmr::memory_resource; equal only to itself.
// Thread-safe as SharedArena::Allocate/Deallocate. Owned by its SharedArena.
class SharedArenaResource final : public std::pmr::memory_resource {
 public:
  explicit SharedArenaResource(SharedArena* arena) : arena_(arena) {}
  SharedArena* arena() const { return arena_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  bool do_is_equal(const std::pmr::memory_resource& other) const
      noexcept override {
    return this == &other;
  }

  SharedArena* const arena_;
};

class SharedArena {
 public:
  SharedArena();
  explicit SharedArena(const ArenaOptions& options);
  SharedArena(const SharedArena&) = delete;
  SharedArena& operator=(const SharedArena&) = delete;
  // REQUIRES: no task uses the arena (see the file comment).
  ~SharedArena();

  // As Arena::Allocate, from any thread: the calling thread's sub-arena.
  // Throws std::bad_alloc past max_bytes (of the whole SharedArena), past
  // the process cap, or when the OS refuses.
  void* Allocate(std::size_t bytes,
                 std::size_t alignment = alignof(std::max_align_t)) {
    UseGuard guard(this);
    Sub* sub = Local();
    Arena& a = *sub;
    if (ABSL_PREDICT_TRUE(a.CanBumpFast(bytes, alignment))) {
      void* p = a.BumpFast(bytes);
      // Relaxed, single writer (the sub-arena's thread): statistics only.
      sub->live_bytes.store(a.live_bytes_, std::memory_order_relaxed);
      return p;
    }
    return AllocateSlowOrThrow(sub, bytes, alignment);
  }
  // The same, returning nullptr instead of throwing.
  void* TryAllocate(std::size_t bytes,
                    std::size_t alignment = alignof(std::max_align_t)) noexcept {
    UseGuard guard(this);
    Sub* sub = LocalOrNull();
    if (ABSL_PREDICT_FALSE(sub == nullptr)) return nullptr;
    Arena& a = *sub;
    if (ABSL_PREDICT_TRUE(a.CanBumpFast(bytes, alignment))) {
      void* p = a.BumpFast(bytes);
      sub->live_bytes.store(a.live_bytes_, std::memory_order_relaxed);
      return p;
    }
    return AllocateSlow(sub, bytes, alignment);
  }
  // Memory from this SharedArena's Allocate/TryAllocate (any thread's), same
  // `bytes`; from any thread. Not for objects made by Create.
  void Deallocate(void* p, std::size_t bytes) noexcept;

  // Constructs a T in the calling thread's sub-arena; a non-trivially-
  // destructible T gets its destructor run at Reset/~SharedArena.
  template <class T, class... Args>
  T* Create(Args&&... args) {
    UseGuard guard(this);
    Sub* sub = Local();
    T* object = sub->template Create<T>(std::forward<Args>(args)...);
    Mirror(sub);
    return object;
  }

  // Runs `cleanup(arg)` at Reset/~SharedArena, before the cleanups that the
  // calling thread registered earlier in this arena.
  void RegisterCleanup(void (*cleanup)(void*), void* arg) {
    UseGuard guard(this);
    Sub* sub = Local();
    sub->RegisterCleanup(cleanup, arg);
    Mirror(sub);
  }

  // REQUIRES: no task uses the arena (see the file comment). Runs every
  // cleanup, then gives every block back; O(blocks + threads).
  void Reset();

  std::pmr::memory_resource* resource() noexcept { return &resource_; }

  // Sums over the sub-arenas (relaxed; see the file comment). resets counts
  // this SharedArena's Resets; blocks counts each sub-arena's blocks.
  ArenaStats stats() const;

  const ArenaOptions& options() const { return options_; }

  // Block bytes reserved from the shared cap right now (all sub-arenas,
  // plus reservations in flight); at most max_bytes when that is set.
  std::size_t reserved_bytes() const { return budget_.used(); }

  // Sub-arenas created so far (threads that used this arena).
  std::size_t threads() const {
    return sub_count_.load(std::memory_order_relaxed);
  }

 private:
  // A thread's sub-arena and the relaxed mirrors of its counters that
  // stats() reads from other threads. Single writer: the sub-arena's owner
  // (its thread, or the thread running Reset); relaxed stores that
  // synchronize nothing.
  class Sub final : public Arena {
   public:
    explicit Sub(SharedArena* parent);
    SharedArena* const parent;
    Sub* next = nullptr;  // SharedArena::subs_ list; set before publication
    // Mirrors for stats(), written by the owner on every Allocate: their own
    // line, away from the line of the Arena base that remote frees read.
    alignas(64) std::atomic<std::size_t> live_bytes{0};
    std::atomic<std::size_t> block_bytes{0};
    std::atomic<std::size_t> blocks{0};
    std::atomic<std::size_t> large_blocks{0};
    std::atomic<std::uint64_t> slow_allocations{0};
    std::atomic<std::uint64_t> deallocations{0};
  };

  // Debug builds: counts calls in flight (Allocate, Deallocate, Create)
  // against Reset/destruction, which swing the count from 0 to
  // kResetting for their duration.
  class UseGuard {
   public:
    explicit UseGuard(SharedArena* arena) : arena_(arena) {
      if (internal::kSharedArenaDebug) arena_->EnterUse();
    }
    ~UseGuard() {
      if (internal::kSharedArenaDebug) arena_->ExitUse();
    }

   private:
    SharedArena* const arena_;
  };

  // The calling thread's sub-arena: the thread-local one-entry cache, else
  // the enumerable_thread_specific lookup (creating it on first use).
  Sub* Local() {
    const internal::SharedArenaTls& tls = internal::tls_shared_arena;
    if (ABSL_PREDICT_TRUE(tls.id == id_)) return static_cast<Sub*>(tls.sub);
    return LocalSlow();
  }
  // As Local(), for noexcept paths: nullptr when the thread's sub-arena
  // cannot be allocated (oneTBB allocates it with operator new).
  Sub* LocalOrNull() noexcept {
    const internal::SharedArenaTls& tls = internal::tls_shared_arena;
    if (ABSL_PREDICT_TRUE(tls.id == id_)) return static_cast<Sub*>(tls.sub);
    try {
      return LocalSlow();
    } catch (...) {
      return nullptr;
    }
  }
  Sub* LocalSlow();
  void* AllocateSlow(Sub* sub, std::size_t bytes, std::size_t alignment) noexcept;
  void* AllocateSlowOrThrow(Sub* sub, std::size_t bytes, std::size_t alignment);
  // Copies the sub-arena's counters to its mirrors; on its owner.
  static void Mirror(Sub* sub) noexcept;
  // Runs the cleanups of every sub-arena until none is left.
  void RunCleanups();
  void EnterUse() noexcept;
  void ExitUse() noexcept;
  void BeginExclusive() noexcept;
  void EndExclusive() noexcept;

  const ArenaOptions options_;
  const std::uint64_t id_;  // never reused; the key of tls_shared_arena
  const std::uintptr_t block_mask_;
  // Declared before subs_: the sub-arenas give their bytes back to it when
  // they are destroyed.
  internal::SharedBudget budget_;
  // Every sub-arena, newest first. Pushed with a release CAS after the
  // sub-arena is constructed; walked after an acquire load by stats() and
  // Reset, so a walker sees only fully constructed sub-arenas. Entries live
  // as long as subs_.
  std::atomic<Sub*> subs_head_{nullptr};
  std::atomic<std::size_t> sub_count_{0};     // statistics only
  std::atomic<std::uint64_t> resets_{0};      // statistics only
  // Debug builds: calls in flight, or kResetting; and the thread running
  // Reset/destruction (its cleanups may use the arena).
  std::atomic<std::int64_t> users_{0};
  std::atomic<std::uint64_t> exclusive_thread_{0};
  SharedArenaResource resource_{this};
  // The sub-arenas. ets_no_key: a lock-free lookup keyed by the native
  // thread id, no OS TLS key per SharedArena (a server may keep thousands).
  tbb::enumerable_thread_specific<Sub, std::allocator<Sub>, tbb::ets_no_key>
      subs_;
};

inline void* SharedArenaResource::do_allocate(std::size_t bytes,
                                              std::size_t alignment) {
  return arena_->Allocate(bytes, alignment);
}
inline void SharedArenaResource::do_deallocate(void* p, std::size_t bytes,
                                               std::size_t) {
  arena_->Deallocate(p, bytes);
}

// An STL allocator over a SharedArena (thread-safe as the arena is).
template <class T>
using SharedArenaAllocator = ArenaAllocator<T, SharedArena>;

}  // namespace arena

#endif  // ARENA_SHARED_ARENA_H_
