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

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace arena {

// A log-spaced histogram of non-negative integers (bytes or counts).
//
// Bucket 0 holds 0; buckets 1..8 hold 1..8 exactly; above, each power of two
// has four buckets, so a bucket's upper bound is at most 25% above its
// lower bound. Bucket i holds the values v with UpperBound(i - 1) < v <=
// UpperBound(i) (Prometheus `le` semantics); values above 2^48 go to the
// last bucket. count, sum and max are exact; percentiles are bucket upper
// bounds (capped at max), so they overstate by at most 25%.
struct Histogram {
  static constexpr int kBuckets = 1 + 8 + 45 * 4;

  static constexpr int BucketOf(std::uint64_t value) {
    if (value <= 8) return static_cast<int>(value);
    // Past 2^48 everything goes to the last bucket: clamping w there (a
    // conditional move, no branch) gives e = 47 and the top sub-bucket.
    constexpr std::uint64_t kTop = (std::uint64_t{1} << 48) - 1;
    const std::uint64_t w = value - 1 < kTop ? value - 1 : kTop;
    const int e = 63 - __builtin_clzll(w);  // w >= 8: e >= 3
    // = 9 + (e - 3) * 4 + the two bits below the leading one.
    return 4 * e - 3 + static_cast<int>((w >> (e - 2)) & 3);
  }
  static std::uint64_t UpperBound(int bucket);

  void Add(std::uint64_t value);
  void Merge(const Histogram& other);
  // The smallest bucket bound b with at least q * count values <= b
  // (0 < q <= 1), capped at max; 0 when empty.
  std::uint64_t Percentile(double q) const;
  double Mean() const { return count == 0 ? 0.0 : double(sum) / double(count); }

  std::array<std::uint64_t, kBuckets> buckets{};
  std::uint64_t count = 0;
  std::uint64_t sum = 0;
  std::uint64_t max = 0;
};

// What arenas held per request, recorded at every Reset and destruction of
// an arena that held memory since the previous one ("a request" is what an
// arena held between two of those).
struct FootprintStats {
  Histogram peak_live_bytes;    // most requested bytes live at once
  Histogram held_bytes;         // most block + large-mapping bytes held
  Histogram waste_bytes;        // held_bytes - peak_live_bytes
  Histogram blocks;             // blocks and large mappings taken
  Histogram slow_paths;         // allocations that took the slow path
  Histogram large_allocations;  // allocations given their own mapping
};

struct ArenaStats {
  std::size_t live_bytes = 0;    // requested bytes handed out and not freed
  std::size_t block_bytes = 0;   // bytes of blocks and large mappings held
  std::size_t blocks = 0;        // blocks and large mappings held
  std::size_t large_blocks = 0;  // of which dedicated large mappings
  std::size_t retained_bytes = 0;  // a block kept since the last Reset for
                                   // the next request; not in block_bytes
  std::uint64_t slow_allocations = 0;  // allocations that took the slow path
                                       // (new block, free-list reuse, large)
  std::uint64_t deallocations = 0;  // local and drained remote, since construction
                                    // (remote frees still in their thread's
                                    // batch at Reset are dropped, not counted)
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
  std::size_t retained_bytes = 0;       // blocks reset arenas keep for their
                                        // next request (part of cached_bytes)
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
  std::uint64_t released_bytes = 0;  // decommitted or unmapped: idle release,
                                     // Trim, the depot's depot_max_bytes
                                     // overflow, the large cache's release
  std::uint64_t threads = 0;         // threads with a live cache
  // First reservation adaptive_first_block now gives new arenas: the
  // largest over this process's threads; 0 when adaptive sizing is off or
  // no thread has seen a request yet.
  std::size_t adaptive_first_block_bytes = 0;
  // Per-request footprints (see FootprintStats), merged over threads.
  FootprintStats footprint;
  // Derived.
  double fragmentation = 0;  // (committed - live) / committed; 0 when empty
};

// Fragmentation ratio (total - used) / total, 0 when total is 0; clamped to
// [0, 1] because the inputs are read at slightly different instants.
double FragmentationRatio(std::size_t total, std::size_t used);

// One JSON object, numbers as numbers. The process object has a
// "footprint" object with one entry per histogram: count, sum, mean, p50,
// p90, p99, max.
std::string ToJson(const ArenaStats& stats);
std::string ToJson(const ProcessStats& stats);

// Prometheus text exposition, every metric named `arena_*` with HELP/TYPE;
// the footprints as histograms `arena_request_<name>_bucket{le="..."}`,
// `_sum` and `_count` (buckets up to the highest one in use, then +Inf).
std::string ToPrometheus(const ProcessStats& stats);

}  // namespace arena

#endif  // ARENA_STATS_H_
