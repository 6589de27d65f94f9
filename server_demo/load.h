// A keep-alive HTTP load generator over loopback, and a one-shot client.
//
// RunLoad opens `connections` keep-alive connections spread over `threads`
// event loops; each connection sends one request, waits for the complete
// response (Content-Length framing), records the latency, and sends the
// next. It stops when `duration` passes or `requests` have been sent
// (0: duration only). Errors are responses with status >= 400 plus
// connection failures. Latency percentiles come from a log-linear
// histogram (within about 3%).
#ifndef SERVER_DEMO_LOAD_H_
#define SERVER_DEMO_LOAD_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server_demo/mix.h"

namespace server_demo {

struct LoadOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/hello";  // used when `mix` has no routes
  RouteMix mix;
  int connections = 64;
  int threads = 2;
  absl::Duration duration = absl::Seconds(10);
  std::uint64_t requests = 0;
  bool progress = true;  // a progress line on stderr every second
};

struct LoadResult {
  std::uint64_t requests = 0;  // complete responses
  std::uint64_t errors = 0;    // status >= 400 + connection errors
  std::uint64_t connection_errors = 0;
  std::uint64_t bytes = 0;     // response bytes received
  double seconds = 0;
  double requests_per_second = 0;
  double bytes_per_second = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  std::map<int, std::uint64_t> statuses;
  // Complete responses per route of the mix (one entry without a mix).
  std::vector<std::uint64_t> route_requests;
};

absl::StatusOr<LoadResult> RunLoad(const LoadOptions& options);
std::string LoadResultJson(const LoadResult& result);
std::string LoadResultText(const LoadResult& result);

// Splits "host:port". Errors say what was wrong.
absl::Status ParseHostPort(const std::string& target, std::string* host, int* port);

struct HttpReply {
  int status = 0;
  std::string headers;
  std::string body;
};
// One request on a fresh connection (blocking, with a 10 s timeout).
absl::StatusOr<HttpReply> HttpRequestOnce(const std::string& host, int port,
                                          const std::string& raw_request);
absl::StatusOr<HttpReply> HttpGet(const std::string& host, int port,
                                  const std::string& path);

}  // namespace server_demo

#endif  // SERVER_DEMO_LOAD_H_
