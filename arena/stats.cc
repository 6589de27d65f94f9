#include "arena/stats.h"

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

std::string Number(double v) {
  if (!std::isfinite(v)) return "0";
  if (v == std::floor(v) && std::fabs(v) < 9e15) {
    return absl::StrCat(static_cast<long long>(v));
  }
  return absl::StrFormat("%.6g", v);
}

}  // namespace

double FragmentationRatio(std::size_t total, std::size_t used) {
  if (total == 0) return 0.0;
  if (used >= total) return 0.0;
  return static_cast<double>(total - used) / static_cast<double>(total);
}

std::string ToJson(const ArenaStats& s) {
  return absl::StrCat(
      "{\"live_bytes\":", s.live_bytes, ",\"block_bytes\":", s.block_bytes,
      ",\"blocks\":", s.blocks, ",\"large_blocks\":", s.large_blocks,
      ",\"slow_allocations\":", s.slow_allocations, ",\"deallocations\":",
      s.deallocations, ",\"resets\":", s.resets,
      ",\"fragmentation\":", Number(s.fragmentation), "}");
}

std::string ToJson(const ProcessStats& s) {
  std::string out = "{";
  for (const Field& f : kFields) {
    absl::StrAppend(&out, "\"", f.name, "\":", Number(f.get(s)), ",");
  }
  absl::StrAppend(&out, "\"fragmentation\":", Number(s.fragmentation), "}");
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
  return out;
}

}  // namespace arena
