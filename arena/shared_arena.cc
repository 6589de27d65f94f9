#include "arena/shared_arena.h"

#include <limits>

#include "arena/internal/block.h"
#include "arena/internal/check.h"
#include "arena/internal/thread_token.h"

namespace arena {

namespace internal {
__thread SharedArenaTls tls_shared_arena ARENA_TLS_INITIAL_EXEC = {0, nullptr};
}  // namespace internal

namespace {

// SharedArena ids: never reused in the life of the process, so a thread's
// cached entry for a destroyed SharedArena never matches a new one. Starts
// at 1: 0 is the empty cache entry. Relaxed: a unique number, nothing more.
std::atomic<std::uint64_t> next_shared_arena_id{1};

constexpr std::int64_t kResetting = std::numeric_limits<std::int64_t>::min() / 2;

// The options of every sub-arena: the SharedArena's, without the cap (the
// shared budget enforces it for all of them together).
// A sub-arena's options: no cap of its own (the shared budget caps them
// all), and no first reservation beyond one block: one thread's hint
// (first_block_hint, adaptive sizing) would otherwise reserve spare blocks
// from the shared cap that other threads then cannot have.
ArenaOptions SubOptions(ArenaOptions options) {
  options.max_bytes = 0;
  options.first_block_hint = 1;
  options.adaptive_first_block = ArenaOptions::Adaptive::kOff;
  return options;
}

}  // namespace

SharedArena::Sub::Sub(SharedArena* parent_arena)
    : Arena(SubOptions(parent_arena->options_)), parent(parent_arena) {
  budget_ = &parent_arena->budget_;
}

SharedArena::SharedArena() : SharedArena(ArenaOptions()) {}

SharedArena::SharedArena(const ArenaOptions& options)
    : options_(options),
      id_(next_shared_arena_id.fetch_add(1, std::memory_order_relaxed)),
      block_mask_(~(CurrentConfig().block_size - 1)),
      budget_(options.max_bytes),
      subs_(this) {}

SharedArena::~SharedArena() {
  BeginExclusive();
  RunCleanups();
  // Each sub-arena's ~Arena gives its blocks to this thread's cache and its
  // bytes back to budget_; inside the exclusive section, so that the debug
  // check covers it too.
  subs_.clear();
  subs_head_.store(nullptr, std::memory_order_relaxed);
  EndExclusive();
}

SharedArena::Sub* SharedArena::LocalSlow() {
  bool exists = false;
  Sub& sub = subs_.local(exists);
  if (!exists) {
    Sub* head = subs_head_.load(std::memory_order_relaxed);
    do {
      sub.next = head;
      // Release: publishes the constructed sub-arena (and `next`) to the
      // acquire load of stats() and Reset that walk the list.
    } while (!subs_head_.compare_exchange_weak(head, &sub,
                                               std::memory_order_release,
                                               std::memory_order_relaxed));
    sub_count_.fetch_add(1, std::memory_order_relaxed);
  }
  internal::tls_shared_arena = {id_, &sub};
  return &sub;
}

void* SharedArena::AllocateSlow(Sub* sub, std::size_t bytes,
                                std::size_t alignment) noexcept {
  void* p = static_cast<Arena*>(sub)->AllocateSlow(bytes, alignment);
  Mirror(sub);
  return p;
}

void* SharedArena::AllocateSlowOrThrow(Sub* sub, std::size_t bytes,
                                       std::size_t alignment) {
  void* p = AllocateSlow(sub, bytes, alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void SharedArena::Deallocate(void* p, std::size_t bytes) noexcept {
  if (p == nullptr) return;
  UseGuard guard(this);
  const auto* block = reinterpret_cast<const internal::BlockHeader*>(
      reinterpret_cast<std::uintptr_t>(p) & block_mask_);
  ARENA_DCHECK(block->magic == internal::kBlockMagic && block->owner != nullptr,
               "arena::SharedArena::Deallocate: the pointer is not held by an "
               "arena (freed after Reset, or freed twice)");
  // Every block of this SharedArena belongs to one of its sub-arenas.
  Sub* sub = static_cast<Sub*>(
      static_cast<Arena*>(const_cast<void*>(block->owner)));
  ARENA_DCHECK(sub->parent == this,
               "arena::SharedArena::Deallocate: the pointer belongs to "
               "another arena");
  sub->Deallocate(p, bytes);
  // On the sub-arena's owner the free changed its counters (a remote free
  // counts when the owner drains it). Relaxed: identity only, as in
  // Arena::Deallocate; a thread without an id is never an owner.
  if (sub->owner_.load(std::memory_order_relaxed) ==
      internal::ThreadIdIfAssigned()) {
    Mirror(sub);
  }
}

void SharedArena::Mirror(Sub* sub) noexcept {
  const Arena& a = *sub;
  // Relaxed stores by the single writer; statistics only.
  sub->live_bytes.store(a.live_bytes_, std::memory_order_relaxed);
  sub->block_bytes.store(a.block_bytes_, std::memory_order_relaxed);
  sub->blocks.store(a.small_blocks_ + a.large_blocks_, std::memory_order_relaxed);
  sub->large_blocks.store(a.large_blocks_, std::memory_order_relaxed);
  sub->slow_allocations.store(a.slow_allocations_, std::memory_order_relaxed);
  sub->deallocations.store(a.deallocations_, std::memory_order_relaxed);
}

void SharedArena::RunCleanups() {
  // Every cleanup of every sub-arena runs before any block goes back, so a
  // destructor may free memory of any sub-arena. A cleanup may register
  // more (in this thread's sub-arena): repeat until a pass finds none.
  // Acquire pairs with the release CAS in LocalSlow.
  bool ran = true;
  while (ran) {
    ran = false;
    for (Sub* sub = subs_head_.load(std::memory_order_acquire); sub != nullptr;
         sub = sub->next) {
      while (sub->cleanups_ != nullptr) {
        Arena::CleanupNode* node = sub->cleanups_;
        sub->cleanups_ = node->next;
        node->destroy(node->object);
        ran = true;
      }
    }
  }
}

void SharedArena::Reset() {
  BeginExclusive();
  RunCleanups();
  // Acquire pairs with the release CAS in LocalSlow.
  for (Sub* sub = subs_head_.load(std::memory_order_acquire); sub != nullptr;
       sub = sub->next) {
    sub->Reset();  // the calling thread becomes the sub-arena's owner
    Mirror(sub);
  }
  resets_.store(resets_.load(std::memory_order_relaxed) + 1,
                std::memory_order_relaxed);
  EndExclusive();
}

ArenaStats SharedArena::stats() const {
  ArenaStats s;
  // Acquire pairs with the release CAS in LocalSlow: every sub-arena seen
  // is fully constructed. The mirrors are relaxed (statistics only).
  for (const Sub* sub = subs_head_.load(std::memory_order_acquire);
       sub != nullptr; sub = sub->next) {
    s.live_bytes += sub->live_bytes.load(std::memory_order_relaxed);
    s.block_bytes += sub->block_bytes.load(std::memory_order_relaxed);
    s.blocks += sub->blocks.load(std::memory_order_relaxed);
    s.large_blocks += sub->large_blocks.load(std::memory_order_relaxed);
    s.slow_allocations += sub->slow_allocations.load(std::memory_order_relaxed);
    s.deallocations += sub->deallocations.load(std::memory_order_relaxed);
  }
  s.resets = resets_.load(std::memory_order_relaxed);
  s.fragmentation = FragmentationRatio(s.block_bytes, s.live_bytes);
  return s;
}

// Debug checks. Relaxed throughout: the count only detects overlap (its
// modification order alone shows a use inside an exclusive section); the
// caller's own synchronization (a join) orders correct uses.
void SharedArena::EnterUse() noexcept {
  const std::int64_t before = users_.fetch_add(1, std::memory_order_relaxed);
  ARENA_CHECK(before >= 0 || exclusive_thread_.load(std::memory_order_relaxed) ==
                                 internal::ThreadId(),
              "arena::SharedArena used by a task during Reset or destruction");
}

void SharedArena::ExitUse() noexcept {
  users_.fetch_sub(1, std::memory_order_relaxed);
}

void SharedArena::BeginExclusive() noexcept {
  if (!internal::kSharedArenaDebug) return;
  std::int64_t idle = 0;
  ARENA_CHECK(users_.compare_exchange_strong(idle, kResetting,
                                             std::memory_order_relaxed,
                                             std::memory_order_relaxed),
              "arena::SharedArena Reset or destroyed while a task uses it");
  exclusive_thread_.store(internal::ThreadId(), std::memory_order_relaxed);
}

void SharedArena::EndExclusive() noexcept {
  if (!internal::kSharedArenaDebug) return;
  exclusive_thread_.store(0, std::memory_order_relaxed);
  users_.fetch_sub(kResetting, std::memory_order_relaxed);
}

}  // namespace arena
