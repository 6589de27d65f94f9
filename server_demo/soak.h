// `server_demo soak`: a long run of the server under a route mix plus
// hostile clients, with the memory trend measured and checked.
//
// The server is this binary as `serve --port=0` in a child process (as for
// `compare`), so that its RSS is its own and its death is seen. This process
// drives it with:
//   - good clients: the load generator (load.h) over the route mix, in
//     segments of at most 5 s (so that a dead server is noticed);
//   - hostile clients, one thread: kSlowloris sockets that send a request
//     head one byte a second, kStalledReaders sockets with a tiny receive
//     buffer that pipeline kStalledRequests `GET /json?items=2000` and never
//     read, and kMalformedPerSecond malformed requests a second (a fixed
//     list, each with the status it must get). A hostile socket that the
//     server closes reconnects; a stalled reader is recycled by us after
//     send_timeout_ms + 2 s (the server's close is not visible to it: the
//     FIN waits behind the unread response; /stats counts send_timeout).
// Every second it samples the server's RSS (/proc/PID/statm), the
// allocator's mapped bytes and P (fragmentation under load, "now") from
// /stats, and writes one CSV row.
//
// Verdict (exit status 1 with a message on stderr and in the summary):
//   - the RSS slope after the warm-up exceeds `max_slope_pct` % per 10
//     minutes: least squares over the samples after the warm-up, as a
//     percentage of their mean RSS. Warm-up: 20 % of the run, but at least
//     30 s (or half the run when that is shorter than 60 s). With fewer
//     than 3 samples after it, no slope is computed;
//   - good clients saw errors other than 4xx and 503 (5xx other than 503,
//     connections closed under a request, connect failures);
//   - a malformed request got an answer other than its expected status or
//     503 (no answer, e.g. a reset, is counted but allowed);
//   - the server died, or did not exit with status 0 on SIGTERM at the end.
//
// Without a config file the server runs with the embedded defaults except
// header_timeout_ms = 3000 and send_timeout_ms = 5000, so that hostile
// clients are closed many times in a short run.
#ifndef SERVER_DEMO_SOAK_H_
#define SERVER_DEMO_SOAK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server_demo/load.h"

namespace server_demo {

struct SoakOptions {
  LoadOptions load;                // mix, connections, threads; host and port are filled in
  absl::Duration duration = absl::Minutes(10);
  std::string allocator = "arena";
  std::string arena_scope;         // empty: the config's
  std::string config_path;         // empty: the defaults with short hostile timeouts (above)
  std::int64_t send_timeout_ms = 5000;  // the server's, to pace the stalled readers
  int server_threads = 1;
  std::string csv;                 // one row per second; empty: none
  std::string plot;                // PNG drawn with gnuplot; empty: none
  double max_slope_pct = 1.0;      // RSS slope limit, % per 10 minutes
};

// Seconds of warm-up excluded from the slope, for a run of `duration_s`.
double SoakWarmupSeconds(double duration_s);

// Least-squares slope of `rss` over `t` (per second) as % of the mean of
// `rss` per 10 minutes; false when fewer than 3 points.
bool SlopePercentPer10Min(const std::vector<double>& t, const std::vector<double>& rss,
                          double* pct);

// Runs the soak and prints its summary; returns the exit status (0 pass,
// 1 fail).
int RunSoak(const SoakOptions& options);

}  // namespace server_demo

#endif  // SERVER_DEMO_SOAK_H_
