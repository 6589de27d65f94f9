// Server: an HTTP/1.1 server whose request memory comes from arenas.
//
// One epoll event loop per worker thread (worker.h), each with its own
// listening socket on the same port; each connection is a state machine
// (connection.h). Sockets are non-blocking; keep-alive, pipelining, chunked
// bodies and `Expect: 100-continue` are handled. Each request's memory
// comes from the connection's arena (Reset once every queued response is
// written), from a fresh arena per request, or from the global heap
// (--allocator=malloc): the same handlers either way.
//
// Robustness against slow and hostile clients (every limit is a [server]
// key; every close and every 503 is counted by reason in /metrics):
//   - a malformed request gets its 4xx and only its connection is closed;
//   - a request head must arrive within header_timeout_ms of its first
//     byte, a body at min_body_rate or better (408 and close otherwise);
//     idle keep-alive connections close after idle_timeout_ms;
//   - output that makes no progress for send_timeout_ms closes its
//     connection; unsent responses pin memory (a connection arena pins
//     whole), and past max_pinned_bytes in all, new requests get 503
//     (not /metrics, /stats, /healthz);
//   - a request that allocates past request_memory_limit gets 503, and
//     /json refuses what cannot fit before doing the work;
//   - what a connection buffers is bounded: head, empty lines, chunk
//     extensions and trailers by max_header_bytes, unread pipelined input
//     by a fixed cap (then it is not read until served), unsent output by
//     max_pending_output (then it is not read until the client catches up);
//   - at max_connections the oldest connection still waiting for a request
//     head (of the accepting worker) is evicted for the newcomer; with none,
//     503. Out of descriptors, a spare one sheds the excess with 503, and a
//     worker that has no spare pauses accepting for a tick.
// No SIGPIPE (MSG_NOSIGNAL). An idle event loop calls arena::OnThreadIdle().
//
// Memory figures (/stats "memory", /metrics server_demo_*): a sampler
// thread, not a worker, reads every 10 ms the process RSS and the bytes of
// requests in flight (allocated and not yet freed, unsent responses
// included; the workers keep them as gauges) and computes the
// fragmentation P = F / S with S = RSS and F = RSS - live request bytes:
// the same footing for every allocator. It reports the latest sample, and
// the average and peak over the samples taken under load (requests were in
// flight or answered since the previous sample). Per request, each worker
// records what the request asked for and what its allocator held for it
// (a connection arena: the block bytes it added; a request arena: all it
// held; malloc: malloc_usable_size of each allocation) and the arena's
// slow paths: histograms in /stats "server.request_footprint".
//
// Lifetime: Start() once; Shutdown() from any thread (not a signal handler)
// stops accepting, lets in-flight requests finish within the deadline
// (their responses say "Connection: close") and closes the rest; Wait()
// joins the workers, from any thread and any number of threads at once
// (each returns once they are joined). The destructor does both.
// StatsJson, MetricsText and requests() may be called from any thread
// (relaxed snapshots).
#ifndef SERVER_DEMO_SERVER_H_
#define SERVER_DEMO_SERVER_H_

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "server_demo/handlers.h"
#include "server_demo/server_config.h"

namespace server_demo {

struct ServerShared;
class Worker;

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
  struct Totals;

  Totals Sum();
  std::string AllocatorJson();
  std::string MemoryJson();
  std::string FootprintJson(const Totals& t);
  void SampleLoop();

  const DemoConfig config_;
  std::unique_ptr<ServerShared> shared_;
  int port_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stopping_{false};
  // Wait() joins under join_mu_: a second caller blocks until the first
  // has joined every thread, then returns (a std::thread joined from two
  // threads at once hangs or throws).
  std::mutex join_mu_;
  bool joined_ = false;  // guarded by join_mu_

  // The sampler thread (see above). Its figures have one writer, the
  // sampler, and are read with relaxed loads: they synchronize nothing.
  std::thread sampler_;
  std::mutex sampler_mu_;  // guards sampler_stop_
  std::condition_variable sampler_cv_;
  bool sampler_stop_ = false;
  std::atomic<std::uint64_t> samples_{0};             // under load
  std::atomic<double> fragmentation_sum_{0};          // over samples_
  std::atomic<double> fragmentation_peak_{0};
  std::atomic<double> fragmentation_now_{0};
  std::atomic<std::uint64_t> rss_now_{0};
  std::atomic<std::int64_t> live_now_{0};
  std::atomic<std::int64_t> live_peak_{0};
};

}  // namespace server_demo

#endif  // SERVER_DEMO_SERVER_H_
