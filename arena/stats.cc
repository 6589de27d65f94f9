#include "arena/stats.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace arena {
namespace {

// One table drives both renderings of ProcessStats.
struct Field {
  const char* name;
  const char* help;
  bool counter;  // Prometheus type: counter (monotonic) or gauge.
  double (*get)(const ProcessStats&);
};

#define ARENA_FIELD(member, counter, help)                        \
  Field {                                                         \
    #member, help, counter, [](const ProcessStats& s) -> double { \
      return static_cast<double>(s.member);                       \
    }                                                             \
  }

const Field kFields[] = {
    ARENA_FIELD(mapped_bytes, false, "Bytes mapped from the page source."),
    ARENA_FIELD(committed_bytes, false, "Mapped bytes minus decommitted bytes."),
    ARENA_FIELD(live_bytes, false, "Bytes handed to callers and not freed."),
    ARENA_FIELD(in_arena_bytes, false, "Bytes of blocks held by live arenas."),
    ARENA_FIELD(cached_bytes, false,
                "Committed free blocks in thread caches and the depot."),
    ARENA_FIELD(thread_cache_bytes, false, "Free blocks in thread caches."),
    ARENA_FIELD(depot_bytes, false, "Committed free blocks in the depot."),
    ARENA_FIELD(decommitted_bytes, false,
                "Free blocks still mapped whose pages were given back."),
    ARENA_FIELD(large_bytes, false, "Dedicated large mappings held by arenas."),
    ARENA_FIELD(large_cache_bytes, false, "Freed large mappings kept for reuse."),
    ARENA_FIELD(retained_bytes, false,
                "Blocks reset arenas keep for their next request."),
    ARENA_FIELD(arenas_created, true, "Arenas constructed."),
    ARENA_FIELD(arenas_destroyed, true, "Arenas destroyed."),
    ARENA_FIELD(resets, true, "Arena resets."),
    ARENA_FIELD(thread_cache_hits, true, "Blocks served by a thread cache."),
    ARENA_FIELD(thread_cache_misses, true,
                "Thread cache refills from the depot."),
    ARENA_FIELD(depot_hits, true, "Batches served by the depot."),
    ARENA_FIELD(depot_misses, true, "Depot refills that had to map blocks."),
    ARENA_FIELD(depot_pushes, true, "Batches returned to the depot."),
    ARENA_FIELD(large_allocations, true, "Allocations given their own mapping."),
    ARENA_FIELD(map_failures, true, "Maps refused by the OS, source or cap."),
    ARENA_FIELD(released_bytes, true, "Bytes decommitted or unmapped."),
    ARENA_FIELD(threads, false, "Threads with a live block cache."),
};

#undef ARENA_FIELD

// The footprint histograms, by name, for both renderings.
struct Footprint {
  const char* name;
  const char* help;
  const Histogram FootprintStats::*member;
};

const Footprint kFootprints[] = {
    {"peak_live_bytes", "Most requested bytes live at once in one request.",
     &FootprintStats::peak_live_bytes},
    {"held_bytes", "Most block and large-mapping bytes one request held.",
     &FootprintStats::held_bytes},
    {"waste_bytes", "Held minus peak live bytes of one request.",
     &FootprintStats::waste_bytes},
    {"blocks", "Blocks and large mappings one request took.",
     &FootprintStats::blocks},
    {"slow_paths", "Allocations of one request that took the slow path.",
     &FootprintStats::slow_paths},
    {"large_allocations", "Allocations of one request given their own mapping.",
     &FootprintStats::large_allocations},
};

std::string Number(double v) {
  if (!std::isfinite(v)) return "0";
  if (v == std::floor(v) && std::fabs(v) < 9e15) {
    return absl::StrCat(static_cast<long long>(v));
  }
  return absl::StrFormat("%.6g", v);
}

}  // namespace

std::uint64_t Histogram::UpperBound(int bucket) {
  if (bucket <= 8) return static_cast<std::uint64_t>(bucket < 0 ? 0 : bucket);
  const int k = bucket - 9;
  const int e = 3 + k / 4;
  const std::uint64_t sub = k % 4;
  return (5 + sub) << (e - 2);
}

void Histogram::Add(std::uint64_t value) {
  ++buckets[BucketOf(value)];
  ++count;
  sum += value;
  max = std::max(max, value);
}

void Histogram::Merge(const Histogram& other) {
  for (int i = 0; i < kBuckets; ++i) buckets[i] += other.buckets[i];
  count += other.count;
  sum += other.sum;
  max = std::max(max, other.max);
}

std::uint64_t Histogram::Percentile(double q) const {
  if (count == 0) return 0;
  q = std::min(std::max(q, 0.0), 1.0);
  // The rank of the q-quantile, 1-based: at least one value.
  const auto rank = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count))));
  std::uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets[i];
    if (seen >= rank) return std::min(UpperBound(i), max);
  }
  return max;
}

double FragmentationRatio(std::size_t total, std::size_t used) {
  if (total == 0) return 0.0;
  if (used >= total) return 0.0;
  return static_cast<double>(total - used) / static_cast<double>(total);
}

std::string ToJson(const ArenaStats& s) {
  return absl::StrCat(
      "{\"live_bytes\":", s.live_bytes, ",\"block_bytes\":", s.block_bytes,
      ",\"blocks\":", s.blocks, ",\"large_blocks\":", s.large_blocks,
      ",\"retained_bytes\":", s.retained_bytes,
      ",\"slow_allocations\":", s.slow_allocations, ",\"deallocations\":",
      s.deallocations, ",\"resets\":", s.resets,
      ",\"fragmentation\":", Number(s.fragmentation), "}");
}

std::string ToJson(const ProcessStats& s) {
  std::string out = "{";
  for (const Field& f : kFields) {
    absl::StrAppend(&out, "\"", f.name, "\":", Number(f.get(s)), ",");
  }
  absl::StrAppend(&out, "\"adaptive_first_block_bytes\":",
                  s.adaptive_first_block_bytes, ",\"footprint\":{");
  const char* sep = "";
  for (const Footprint& f : kFootprints) {
    const Histogram& h = s.footprint.*f.member;
    absl::StrAppend(&out, sep, "\"", f.name, "\":{\"count\":", h.count,
                    ",\"sum\":", h.sum, ",\"mean\":", Number(h.Mean()),
                    ",\"p50\":", h.Percentile(0.5), ",\"p90\":",
                    h.Percentile(0.9), ",\"p99\":", h.Percentile(0.99),
                    ",\"max\":", h.max, "}");
    sep = ",";
  }
  absl::StrAppend(&out, "},\"fragmentation\":", Number(s.fragmentation), "}");
  return out;
}

std::string ToPrometheus(const ProcessStats& s) {
  std::string out;
  for (const Field& f : kFields) {
    const std::string name =
        f.counter ? absl::StrCat("arena_", f.name, "_total")
                  : absl::StrCat("arena_", f.name);
    absl::StrAppend(&out, "# HELP ", name, " ", f.help, "\n# TYPE ", name, " ",
                    f.counter ? "counter" : "gauge", "\n", name, " ",
                    Number(f.get(s)), "\n");
  }
  absl::StrAppend(&out,
                  "# HELP arena_fragmentation_ratio (committed - live) / "
                  "committed.\n# TYPE arena_fragmentation_ratio gauge\n"
                  "arena_fragmentation_ratio ",
                  Number(s.fragmentation), "\n");
  absl::StrAppend(&out,
                  "# HELP arena_adaptive_first_block_bytes First reservation "
                  "adaptive sizing gives new arenas (largest over threads).\n"
                  "# TYPE arena_adaptive_first_block_bytes gauge\n"
                  "arena_adaptive_first_block_bytes ",
                  s.adaptive_first_block_bytes, "\n");
  for (const Footprint& f : kFootprints) {
    const Histogram& h = s.footprint.*f.member;
    const std::string name = absl::StrCat("arena_request_", f.name);
    absl::StrAppend(&out, "# HELP ", name, " ", f.help, "\n# TYPE ", name,
                    " histogram\n");
    int last = 0;
    for (int i = 0; i < Histogram::kBuckets; ++i) {
      if (h.buckets[i] != 0) last = i;
    }
    std::uint64_t cumulative = 0;
    for (int i = 0; i <= last; ++i) {
      cumulative += h.buckets[i];
      absl::StrAppend(&out, name, "_bucket{le=\"", Histogram::UpperBound(i),
                      "\"} ", cumulative, "\n");
    }
    absl::StrAppend(&out, name, "_bucket{le=\"+Inf\"} ", h.count, "\n", name,
                    "_sum ", h.sum, "\n", name, "_count ", h.count, "\n");
  }
  return out;
}

}  // namespace arena
