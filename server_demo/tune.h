// The tuner's recommendation logic: from measured per-request histograms
// and process figures, recommended [arena] values, each with the measured
// reason, and the TOML snippet that loads them. A pure function of its
// input (no I/O, no clock): `server_demo tune` feeds it what a load run or
// a running server's /stats measured, and tests feed it synthetic
// histograms.
//
// The model (estimates, stated in the reasons as such):
//   - a request whose small allocations (<= large_threshold) total s bytes
//     fills ceil(s / (0.9 * block_size)) blocks; each block after the
//     first is one slow path, each large allocation one more, and the
//     slow paths the model does not explain (free-list reuse, ...) are
//     measured and carried over unchanged;
//   - memory: every block a request holds stays held while it is in
//     flight, so a config costs `concurrency` times the mean bytes a
//     request holds; the caches scale with block_size unless
//     thread_cache_blocks scales down with it (it does).
// block_size is chosen to take the fewest slow paths whose extra memory
// stays within `memory_budget` of the peak RSS; a change must save at
// least 5% of the slow paths (or 5% of the memory without costing slow
// paths) to be recommended. first_block_hint is the largest of the p90,
// p75, p50 blocks per request (when more than one block) whose extra held
// memory still fits the budget: it does not save slow paths (each block
// still starts with one) but takes the blocks from the thread cache in
// one trip.
#ifndef SERVER_DEMO_TUNE_H_
#define SERVER_DEMO_TUNE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "arena/config.h"
#include "arena/stats.h"

namespace server_demo {

struct TuneInput {
  arena::Config base;               // the config the figures were measured with
  arena::Histogram small_bytes;     // per request: bytes in allocations <= large_threshold
  arena::Histogram large_allocations;  // per request
  arena::Histogram slow_paths;      // per request, measured under `base`
  double peak_rss_bytes = 0;
  double peak_live_request_bytes = 0;
  int concurrency = 1;              // requests in flight at most (connections)
  int threads = 1;                  // server worker threads
  double thread_cache_misses_per_request = 0;  // depot trips
  double memory_budget = 0.10;      // extra memory allowed, fraction of peak RSS
};

struct Recommendation {
  std::string key;     // an [arena] key
  std::string value;   // as it appears in the TOML snippet
  std::string reason;  // the measured reason, one line
  bool changed = false;  // differs from the base config
};

struct TuneResult {
  arena::Config config;  // base with the recommendations applied (validated)
  std::vector<Recommendation> items;
  double slow_paths_before = 0;  // per request: measured
  double slow_paths_after = 0;   // per request: estimated
  double extra_bytes = 0;        // estimated extra memory held, all in-flight requests
};

TuneResult Recommend(const TuneInput& input);

// The full [arena] table of `config` (every key, sizes with units), after
// `comment` lines prefixed with "# ": loads with --config as printed.
std::string TuneSnippet(const arena::Config& config, const std::vector<std::string>& comment);

}  // namespace server_demo

#endif  // SERVER_DEMO_TUNE_H_
