// The side-by-side runs behind `server_demo compare` and `tune --apply`:
// each run starts this binary as `serve --port=0` in a child process, drives
// it with the load generator, reads its /stats (the server's own sampler
// measured the memory figures under load), waits for the idle release,
// reads its RSS, and stops it with SIGTERM.
//
// Single-threaded use from main(); a run's poller thread (for --plot) is
// joined before the run returns.
#ifndef SERVER_DEMO_COMPARE_H_
#define SERVER_DEMO_COMPARE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server_demo/load.h"

namespace server_demo {

struct RunSpec {
  std::string allocator = "arena";  // "arena" or "malloc"
  std::string config_path;          // --config for the server; empty: embedded
  int server_threads = 1;
  LoadOptions load;                 // host and port are filled in
  bool series = false;              // sample RSS and P every 100 ms (--plot)
  std::string label;                // for progress lines
};

struct SeriesPoint {
  double seconds = 0;
  double rss_mib = 0;
  double fragmentation = 0;  // P now, as the server's sampler last saw it
};

struct RunFigures {
  double rps = 0, p99_us = 0, errors = 0;
  double slow_paths_per_request = 0;  // arena only
  double request_waste = 0;           // (held - requested) / held
  double p_avg = 0, p_peak = 0;       // P = (RSS - live) / RSS under load
  double peak_rss_kib = 0, peak_live_kib = 0, rss_over_live = 0;
  double rss_after_kib = 0;           // after the idle release
  double bytes_per_request = 0;
  double thread_cache_misses_per_request = 0;  // arena only
  std::string stats;                  // /stats at the end of the load
  std::vector<SeriesPoint> series;
};

absl::StatusOr<RunFigures> RunServerUnderLoad(const RunSpec& spec);

struct CompareRow {
  const char* name;
  double RunFigures::*field;
  bool higher_is_better;
  const char* format;
  bool arena_only;
  const char* definition;  // one line under the table
};
// The rows of `compare` (and of `tune --apply`), in order.
const std::vector<CompareRow>& CompareRows();

double Median(std::vector<double> v);
double MedianOf(const std::vector<RunFigures>& runs, double RunFigures::*field);

// A two-column table of medians, `left` and `right` named by the headers,
// of the rows whose names are in `only` (all when empty), with a ratio
// column oriented so that above 1 means `left` is better, and the
// definitions under it. `right_first`: print the right column first.
std::string CompareTable(const std::vector<RunFigures>& left, const std::vector<RunFigures>& right,
                         const char* left_name, const char* right_name, bool right_is_malloc,
                         const std::vector<std::string>& only = {}, bool right_first = false);

// Draws RSS and P over time for each run with gnuplot into `png`.
absl::Status PlotSeries(const std::string& png, const std::string& title,
                        const std::vector<std::pair<std::string, const RunFigures*>>& runs);

}  // namespace server_demo

#endif  // SERVER_DEMO_COMPARE_H_
