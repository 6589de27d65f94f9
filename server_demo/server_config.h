// ServerConfig: the demo server's knobs, from the `[server]` table of the
// same TOML file whose `[arena]` table configures the library.
//
// Order, later wins: defaults, TOML file, ARENA_* environment (library keys
// only), command-line flags. Errors name the key, the value and the rule.
#ifndef SERVER_DEMO_SERVER_CONFIG_H_
#define SERVER_DEMO_SERVER_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "arena/config.h"

namespace server_demo {

struct ServerConfig {
  std::string bind = "127.0.0.1";
  int port = 8080;                 // 0 picks a free port
  int threads = 0;                 // 0: number of cores
  std::string allocator = "arena";           // "arena" or "malloc"
  std::string arena_scope = "connection";    // "connection" or "request"
  std::size_t max_header_bytes = 8 * 1024;   // 431 past it (also bounds empty
                                             // lines, chunk extensions, trailers)
  std::size_t max_body_bytes = 1 << 20;      // 413 past it
  std::size_t max_connections = 10000;       // 503 past it
  std::int64_t idle_timeout_ms = 30000;      // idle keep-alive connection closed
  std::int64_t header_timeout_ms = 10000;    // a request head must arrive within it (408)
  std::size_t min_body_rate = 1024;          // bytes/s a body must keep; 0: no check
  std::int64_t body_rate_window_ms = 10000;  // ... averaged over windows this long (408)
  std::int64_t send_timeout_ms = 30000;      // output stalled this long: closed
  std::int64_t shutdown_deadline_ms = 5000;  // in-flight requests finish within it
  std::size_t json_max_items = 50000;        // 400 past it
  std::size_t request_memory_limit = 64 << 20;  // 503 past it
  std::size_t max_pending_output = 1 << 20;  // stop reading a client past it
  std::size_t max_pinned_bytes = 256 << 20;  // memory held by unsent responses,
                                             // all connections; new requests 503 past it
};

struct DemoConfig {
  ServerConfig server;
  arena::Config arena;
};

// Parses `[server]` and `[arena]` of a TOML text over `base`, validated.
absl::StatusOr<DemoConfig> ParseDemoConfig(absl::string_view toml_text,
                                           const DemoConfig& base,
                                           absl::string_view origin);

absl::Status ValidateServerConfig(const ServerConfig& config);

// Writes `text` to a new file $TMPDIR/<prefix>XXXXXX (TMPDIR unset: /tmp)
// for a child server's --config; returns its path. The caller unlinks it.
absl::StatusOr<std::string> WriteTempConfigFile(absl::string_view prefix,
                                                absl::string_view text);

// The example config that ships in server_demo/server_demo.toml, compiled
// in: used when no --config is given.
extern const char kDefaultConfigToml[];

}  // namespace server_demo

#endif  // SERVER_DEMO_SERVER_CONFIG_H_
