// Stats: what one arena and the whole process hold, and how they render.
//
// Formulas (DESIGN.md):
//   fragmentation P = F / S with S = committed_bytes and
//   F = committed_bytes - live_bytes; 0 when S == 0, never NaN.
//   An arena's fragmentation is (block_bytes - live_bytes) / block_bytes.
//
// The process figures are sums of per-thread single-writer counters read with
// relaxed loads, plus the page source's and depot's counters, so a snapshot
// taken while other threads run is a best-effort estimate: each field is
// exact for some recent instant, not all for the same one. Arenas publish
// their live bytes to these sums when they take or return a block, when
// their count moved by 16 KiB, and at Reset, so the process `live_bytes`
// lags the arenas' own counts by at most a block (plus 16 KiB) each.
#ifndef ARENA_STATS_H_
#define ARENA_STATS_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace arena {

struct ArenaStats {
  std::size_t live_bytes = 0;    // requested bytes handed out and not freed
  std::size_t block_bytes = 0;   // bytes of blocks and large mappings held
  std::size_t blocks = 0;        // blocks and large mappings held
  std::size_t large_blocks = 0;  // of which dedicated large mappings
  std::uint64_t slow_allocations = 0;  // allocations that took the slow path
                                       // (new block, free-list reuse, large)
  std::uint64_t deallocations = 0;  // local and drained remote, since construction
  std::uint64_t resets = 0;
  double fragmentation = 0;      // (block_bytes - live_bytes) / block_bytes
};

struct ProcessStats {
  // Memory, in bytes.
  std::size_t mapped_bytes = 0;     // mapped from the OS (or the fixed region)
  std::size_t committed_bytes = 0;  // mapped minus decommitted
  std::size_t live_bytes = 0;       // handed to callers, not yet freed
  std::size_t in_arena_bytes = 0;   // blocks held by live arenas
  std::size_t cached_bytes = 0;     // committed free memory: caches, depot, large cache
  std::size_t thread_cache_bytes = 0;   // part of cached_bytes
  std::size_t depot_bytes = 0;          // part of cached_bytes
  std::size_t decommitted_bytes = 0;    // free blocks kept mapped, pages given back
  std::size_t large_bytes = 0;          // dedicated large mappings in arenas
  std::size_t large_cache_bytes = 0;    // freed large mappings kept for reuse
  // Traffic.
  std::uint64_t arenas_created = 0;
  std::uint64_t arenas_destroyed = 0;
  std::uint64_t resets = 0;
  std::uint64_t thread_cache_hits = 0;    // block taken from the thread cache
  std::uint64_t thread_cache_misses = 0;  // cache empty: went to the depot
  std::uint64_t depot_hits = 0;      // batch taken from the depot
  std::uint64_t depot_misses = 0;    // depot empty: blocks mapped
  std::uint64_t depot_pushes = 0;    // batches given to the depot
  std::uint64_t large_allocations = 0;
  std::uint64_t map_failures = 0;    // refused by the OS, the source or the cap
  std::uint64_t released_bytes = 0;  // decommitted or unmapped by release/trim
  std::uint64_t threads = 0;         // threads with a live cache
  // Derived.
  double fragmentation = 0;  // (committed - live) / committed; 0 when empty
};

// Fragmentation ratio (total - used) / total, 0 when total is 0; clamped to
// [0, 1] because the inputs are read at slightly different instants.
double FragmentationRatio(std::size_t total, std::size_t used);

// One JSON object, numbers as numbers.
std::string ToJson(const ArenaStats& stats);
std::string ToJson(const ProcessStats& stats);

// Prometheus text exposition, every metric named `arena_*` with HELP/TYPE.
std::string ToPrometheus(const ProcessStats& stats);

}  // namespace arena

#endif  // ARENA_STATS_H_
