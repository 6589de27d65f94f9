// Runtime: process statistics and the release of idle memory (the
// background thread's loop, ReleaseIdleMemory, Trim, OnThreadIdle).
#include <algorithm>
#include <chrono>
#include <limits>
#include <thread>

#include "arena/internal/runtime.h"

namespace arena {
namespace internal {

ProcessStats Runtime::Stats() {
  ProcessStats s;
  const PageSourceStats ps = source_->stats();
  const DepotStats ds = depot_.stats();
  s.mapped_bytes = ps.mapped_bytes;
  s.committed_bytes = ps.committed_bytes;
  s.map_failures = ps.map_failures;
  const std::size_t bs = config_.block_size;
  s.depot_bytes = ds.hot_blocks * bs + ds.cold_blocks * PageSource::kPageSize;
  s.decommitted_bytes = ds.cold_blocks * (bs - PageSource::kPageSize);
  s.depot_hits = ds.hits;
  s.depot_misses = ds.misses;
  s.depot_pushes = ds.pushes;
  s.released_bytes = ds.released_bytes + large_cache_.released_bytes();
  std::int64_t live = 0, in_arena = 0, large = 0, created = 0, destroyed = 0,
               resets = 0, large_allocs = 0, retained = 0;
  auto add = [&](const ThreadCounters& c) {
    live += c.live_bytes.load(std::memory_order_relaxed);
    in_arena += c.in_arena_bytes.load(std::memory_order_relaxed);
    large += c.large_bytes.load(std::memory_order_relaxed);
    created += c.arenas_created.load(std::memory_order_relaxed);
    destroyed += c.arenas_destroyed.load(std::memory_order_relaxed);
    resets += c.resets.load(std::memory_order_relaxed);
    large_allocs += c.large_allocations.load(std::memory_order_relaxed);
    retained += c.retained_bytes.load(std::memory_order_relaxed);
  };
  {
    MutexLock lock(&registry_mu_);
    add(retired_);
    retired_footprint_.MergeInto(&s.footprint, config_.block_size);
    for (ThreadState* t = threads_; t != nullptr; t = t->next) {
      add(t->counters);
      t->footprint.MergeInto(&s.footprint, config_.block_size);
      s.adaptive_first_block_bytes =
          std::max(s.adaptive_first_block_bytes,
                   t->adaptive.chosen_blocks() * config_.block_size);
      s.thread_cache_bytes += t->cache.blocks_relaxed() * bs;
      s.thread_cache_hits += t->cache.hits();
      s.thread_cache_misses += t->cache.misses();
    }
    s.threads = thread_count_;
  }
  auto clamp = [](std::int64_t v) {
    return v < 0 ? std::size_t{0} : static_cast<std::size_t>(v);
  };
  s.live_bytes = clamp(live);
  s.in_arena_bytes = clamp(in_arena);
  s.large_bytes = clamp(large);
  s.arenas_created = clamp(created);
  s.arenas_destroyed = clamp(destroyed);
  s.resets = clamp(resets);
  s.large_allocations = clamp(large_allocs);
  s.large_cache_bytes = large_cache_.bytes();
  s.retained_bytes = clamp(retained);
  s.cached_bytes = s.thread_cache_bytes + s.depot_bytes + s.large_cache_bytes +
                   s.retained_bytes;
  s.fragmentation = FragmentationRatio(s.committed_bytes, s.live_bytes);
  return s;
}

std::size_t Runtime::ReleaseIdleMemory() {
  const std::int64_t now = NowMs();
  // Pooled batches no thread took since the last call. Heap, not mappings:
  // not in the figure.
  FreeBatchPool(/*idle_only=*/true);
  const std::size_t released =
      depot_.ReleaseIdle(now, config_.release_delay_ms) +
      large_cache_.Release(now - config_.release_delay_ms);
  // Ask threads whose caches sat idle for the delay to trim themselves (a
  // cache is private: only its thread may touch it, in OnThreadIdle).
  MutexLock lock(&registry_mu_);
  for (ThreadState* t = threads_; t != nullptr; t = t->next) {
    const std::uint64_t ops = t->cache.hits() + t->cache.misses();
    if (ops != t->seen_ops) {
      t->seen_ops = ops;
      t->quiet_since_ms = now;
    } else if (now - t->quiet_since_ms >= config_.release_delay_ms &&
               t->cache.blocks_relaxed() != 0) {
      t->trim_requested.store(true, std::memory_order_relaxed);
    }
  }
  return released;
}

std::size_t Runtime::Trim() {
  FlushRemoteFrees();
  FlushThreadCache();
  if (ThreadState* local = tls_thread_state) {
    GiveBatches(local->remote.TakeSpares());
  }
  FreeBatchPool(/*idle_only=*/false);  // heap, not mappings: not in the figure
  return depot_.Trim() +
         large_cache_.Release(std::numeric_limits<std::int64_t>::max());
}

std::size_t Runtime::FreeBatchPool(bool idle_only) {
  RemoteBatch* list;
  {
    MutexLock lock(&registry_mu_);
    // The stack's bottom `drop` batches: all, or those below the low-water
    // mark (untouched since the last idle call).
    const std::size_t drop = idle_only ? free_batches_low_ : free_batch_count_;
    RemoteBatch** cut = &free_batches_;
    for (std::size_t keep = free_batch_count_ - drop; keep > 0; --keep) {
      cut = &(*cut)->next;
    }
    list = *cut;
    *cut = nullptr;
    free_batch_count_ -= drop;
    free_batches_low_ = free_batch_count_;
  }
  std::size_t bytes = 0;
  while (list != nullptr) {
    RemoteBatch* next = list->next;
    delete list;
    batches_alive_.fetch_sub(1, std::memory_order_relaxed);
    bytes += sizeof(RemoteBatch);
    list = next;
  }
  return bytes;
}

std::size_t Runtime::FlushThreadCache() {
  ThreadState* local = Local();
  if (local == nullptr) return 0;
  return local->cache.Flush(NowMs()) * config_.block_size;
}

std::size_t Runtime::FlushRemoteFrees() {
  ThreadState* local = tls_thread_state;  // no batches without a state
  return local == nullptr ? 0 : local->remote.DeliverAll();
}

std::size_t Runtime::OnThreadIdle() {
  ThreadState* local = Local();
  if (local == nullptr) return 0;
  // Frees waiting in this thread's batches go to their arenas: an idle
  // thread must not hold other arenas' memory.
  local->remote.DeliverAll();
  const std::int64_t now = NowMs();
  const std::int64_t delay = config_.release_delay_ms;
  const std::uint64_t ops = local->cache.hits() + local->cache.misses();
  bool trim = local->trim_requested.exchange(false, std::memory_order_relaxed);
  if (ops != local->idle_ops) {
    local->idle_ops = ops;
    local->idle_since_ms = now;
  } else if (now - local->idle_since_ms >= delay) {
    trim = true;
  }
  std::size_t flushed = 0;
  // Idle for the delay: its spare batches go to the pool too, where the
  // release thread frees them once unused for an interval.
  if (trim) GiveBatches(local->remote.TakeSpares());
  if (trim && local->cache.blocks() != 0) {
    // These blocks already sat idle for the delay: stamp them so, so that
    // the depot may decommit them at once.
    flushed = local->cache.Flush(now - delay) * config_.block_size;
  }
  // Without a release thread in this process (not configured, or this is
  // a fork() child, which has none), the idle hook releases.
  if (!release_thread_running_.load(std::memory_order_relaxed)) {
    depot_.ReleaseIdle(now, delay);
    large_cache_.Release(now - delay);
  }
  return flushed;
}

void Runtime::ReleaseLoop() {
  for (;;) {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(config_.release_interval_ms));
    ReleaseIdleMemory();
  }
}

}  // namespace internal
}  // namespace arena
