// RouteMix: a weighted list of request paths for the load generator, parsed
// from the `--mix` syntax shared by `load`, `compare` and `tune`:
//
//   PATH[:WEIGHT][,PATH[:WEIGHT]...]     e.g. /json?items=50:8,/hello:10
//
// A PATH starts with '/'; WEIGHT is an integer from 1 to 1000000 (default
// 1). The weight is what follows the last ':' of an entry, so a path that
// itself holds a ':' must be given a weight. Whitespace around entries is
// ignored.
//
// The schedule is deterministic (smooth weighted round-robin): over every
// run of Period() picks each route appears exactly `weight` times, spread
// out rather than in bursts, so a short load already holds the real mix.
//
// A RouteMix is a plain value: thread-compatible, no shared state.
#ifndef SERVER_DEMO_MIX_H_
#define SERVER_DEMO_MIX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace server_demo {

struct RouteMix {
  struct Route {
    std::string path;
    std::uint32_t weight = 1;
  };
  std::vector<Route> routes;
  // One period of the schedule: indices into `routes`, each route
  // `weight` times. Filled by ParseRouteMix and SingleRoute.
  std::vector<std::uint32_t> schedule;

  std::size_t Period() const { return schedule.size(); }
  // The route index of pick number `n` (any n; wraps around the period).
  std::uint32_t Pick(std::uint64_t n) const { return schedule[n % schedule.size()]; }
  // "/json?items=50:8,/hello:10": the canonical text form (parses back).
  std::string ToString() const;
};

// Parses the syntax above. Errors name the entry and what is wrong with it.
absl::StatusOr<RouteMix> ParseRouteMix(absl::string_view spec);

// A mix of one path with weight 1.
RouteMix SingleRoute(const std::string& path);

}  // namespace server_demo

#endif  // SERVER_DEMO_MIX_H_
