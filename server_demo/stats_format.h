// Rendering and reading back the server's histograms and numbers: the JSON
// of /stats (written here, read by `compare` and `tune`, which may talk to
// a server over the network) and the Prometheus text of /metrics.
//
// Histograms are arena::Histogram (the library's bucket layout). In JSON:
//   {"count":N,"sum":S,"mean":M,"p50":..,"p90":..,"p99":..,"max":..,
//    "buckets":[[LE,COUNT],...]}   (non-empty buckets, LE = upper bound)
// so that a reader rebuilds the exact histogram. Stateless functions,
// thread-compatible.
#ifndef SERVER_DEMO_STATS_FORMAT_H_
#define SERVER_DEMO_STATS_FORMAT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "arena/config.h"
#include "arena/stats.h"

namespace server_demo {

std::string HistogramJson(const arena::Histogram& h);

// Prometheus histogram `name` (buckets up to the highest non-empty one,
// then +Inf; _sum, _count) with HELP and TYPE lines.
std::string HistogramPrometheus(const arena::Histogram& h, absl::string_view name,
                                absl::string_view help);

// The histogram in the object that follows "key": inside the object that
// follows "section": (section may be empty: the whole text).
absl::StatusOr<arena::Histogram> ParseHistogramJson(absl::string_view json,
                                                    absl::string_view section,
                                                    absl::string_view key);

// The number after "key": inside the object that follows "section": (the
// first one after it); 0 when absent.
double JsonNumber(absl::string_view json, absl::string_view section, absl::string_view key);

// `later` minus `earlier`, bucket by bucket (for a window between two
// reads); max is the later max.
arena::Histogram Subtract(const arena::Histogram& later, const arena::Histogram& earlier);

// The [arena] values of `config` as one JSON object, {"block_size":65536,
// ...} (every key of arena::ConfigToToml), and back from the first
// "arena_config" object of a /stats text (keys it lacks keep `fallback`'s
// values; a result that does not validate gives `fallback`).
std::string ArenaConfigJson(const arena::Config& config);
arena::Config ArenaConfigFromStats(absl::string_view stats, const arena::Config& fallback);

// "210 KiB", "1.5 MiB", "512 B".
std::string HumanBytes(double bytes);
// "256KiB", "2MiB", "4096": a TOML size the config loader reads back
// exactly (whole units only).
std::string TomlBytes(std::size_t bytes);

}  // namespace server_demo

#endif  // SERVER_DEMO_STATS_FORMAT_H_
