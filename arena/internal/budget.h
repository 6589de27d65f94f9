// SharedBudget: one cap on the block bytes of several arenas.
//
// A SharedArena gives each of its per-thread sub-arenas a pointer to one
// SharedBudget. A sub-arena reserves from it when it takes memory (a block
// before taking it; a large mapping, which may be up to twice the need when
// it comes from the large cache, right after mapping it, never more than
// available() allows, unmapping it again if the reservation fails) and gives
// the bytes back when it returns that memory (Reset, destruction, the owner's
// Deallocate or drain of a large allocation), so that
// `used() <= limit()` holds at every instant however many threads race:
// every change is one atomic read-modify-write on `used_`, and a reservation
// that would pass the limit is refused without changing it.
//
// Invariant: used() == sum over the sub-arenas of their block_bytes, plus
// reservations in flight (taken, memory not yet obtained or given back).
//
// Thread-safety: every method may be called from any thread. Lifetime: owned
// by the SharedArena, which destroys it after every sub-arena. A plain Arena
// has no budget (a null pointer, looked at on slow paths only).
#ifndef ARENA_INTERNAL_BUDGET_H_
#define ARENA_INTERNAL_BUDGET_H_

#include <atomic>
#include <cstddef>
#include <limits>

namespace arena {
namespace internal {

class SharedBudget {
 public:
  // limit == 0: no cap (used() still counts).
  explicit SharedBudget(std::size_t limit)
      : limit_(limit == 0 ? std::numeric_limits<std::size_t>::max() : limit) {}
  SharedBudget(const SharedBudget&) = delete;
  SharedBudget& operator=(const SharedBudget&) = delete;

  // Reserves `bytes`; false (and nothing reserved) when that would pass the
  // limit. Relaxed: the budget is a counter that publishes no memory; the
  // atomicity of the CAS alone keeps used_ <= limit_ (a total order of
  // modifications), and the memory itself is handed over by the depot.
  bool TryTake(std::size_t bytes) noexcept {
    std::size_t used = used_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_ - used) return false;
    } while (!used_.compare_exchange_weak(used, used + bytes,
                                          std::memory_order_relaxed,
                                          std::memory_order_relaxed));
    return true;
  }

  // Gives back bytes taken earlier. Relaxed, as TryTake.
  void Give(std::size_t bytes) noexcept {
    used_.fetch_sub(bytes, std::memory_order_relaxed);
  }

  // What a TryTake could get now (a snapshot; racing takers may shrink it).
  std::size_t available() const noexcept {
    return limit_ - used_.load(std::memory_order_relaxed);
  }
  std::size_t used() const noexcept {
    return used_.load(std::memory_order_relaxed);
  }
  std::size_t limit() const noexcept { return limit_; }

 private:
  const std::size_t limit_;
  std::atomic<std::size_t> used_{0};
};

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_BUDGET_H_
