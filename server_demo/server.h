// Server: an HTTP/1.1 server whose request memory comes from arenas.
//
// One epoll event loop per worker thread, each with its own listening socket
// on the same port (SO_REUSEPORT: the kernel spreads connections). Sockets
// are non-blocking; keep-alive, pipelining, chunked bodies and
// `Expect: 100-continue` are handled. Each request's memory comes from the
// connection's arena (Reset once every queued response is written), from a
// fresh arena per request, or from the global heap (--allocator=malloc): the
// same handlers either way.
//
// Robustness: a malformed request gets its 4xx and the connection is closed;
// a request that allocates past request_memory_limit gets 503; the server
// goes on. No SIGPIPE (MSG_NOSIGNAL); accept survives EMFILE (a spare
// descriptor is given up to accept and close the excess connection); a
// client whose unsent output passes max_pending_output is not read until it
// catches up; each wake-up serves a bounded amount per connection; idle
// keep-alive connections close after idle_timeout_ms (408 if a request was
// half-sent). An idle event loop calls arena::OnThreadIdle().
//
// Lifetime: Start() once; Shutdown() from any thread (not a signal handler)
// stops accepting, lets in-flight requests finish within the deadline and
// closes the rest; Wait() joins the workers. The destructor does both.
#ifndef SERVER_DEMO_SERVER_H_
#define SERVER_DEMO_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server_demo/handlers.h"
#include "server_demo/server_config.h"

namespace server_demo {

class Server : public ServerView {
 public:
  explicit Server(const DemoConfig& config);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  absl::Status Start();
  int port() const { return port_; }
  const std::string& bind_address() const { return config_.server.bind; }

  void Shutdown();
  void Wait();

  std::string StatsJson() override;
  std::string MetricsText() override;

  // Requests served so far (all workers).
  std::uint64_t requests() const;

 private:
  class Worker;
  friend class Worker;
  struct Totals;

  Totals Sum();
  std::string AllocatorJson();

  const DemoConfig config_;
  int port_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<std::uint64_t> open_connections_{0};  // across workers
  std::atomic<bool> stopping_{false};
  bool joined_ = false;
};

}  // namespace server_demo

#endif  // SERVER_DEMO_SERVER_H_
