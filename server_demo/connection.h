// Connection: one client's state machine in the demo server: reading,
// incremental parsing, the request's memory, the queue of responses, the
// deadlines (header, body rate, send, idle) and the memory its unsent
// responses pin. The event loop (worker.h) owns every Connection and calls
// it when its socket is ready, when it is on the ready list, and on each
// sweep; a call that returns false has closed the connection's protocol
// side (close_reason() says why) and the loop closes the socket.
//
// Thread-safety: a Connection and its LoopContext belong to one worker
// thread and are used by it alone; the only state shared with other
// threads is ServerShared (atomics) and the handlers' ServerView.
#ifndef SERVER_DEMO_CONNECTION_H_
#define SERVER_DEMO_CONNECTION_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "arena/arena.h"
#include "server_demo/counting_resource.h"
#include "server_demo/handlers.h"
#include "server_demo/http.h"
#include "server_demo/metrics.h"
#include "server_demo/server_config.h"

namespace server_demo {

std::int64_t NowMs();  // steady clock, milliseconds

class Worker;

// State shared by every worker of one Server; lives as long as the Server.
struct ServerShared {
  ServerShared(const DemoConfig& c, ServerView* v) : config(c), view(v) {}
  const DemoConfig& config;
  ServerView* const view;
  // Open connections, all workers; relaxed: a counter checked against
  // max_connections, it publishes nothing.
  std::atomic<std::uint64_t> open_connections{0};
  // Bytes pinned by unsent responses, all workers (see Connection); relaxed:
  // a budget gauge, it publishes nothing. Signed: a connection's decrease
  // may be summed before another's increase.
  std::atomic<std::int64_t> pinned_bytes{0};
  // Connections admitted past max_connections on the promise of an eviction
  // by another worker, and not yet paid back: by that eviction, or (when the
  // other worker had nothing it could evict) by the next close anywhere.
  // At most 2 per worker, so open_connections <= max_connections + 2 x
  // workers. Relaxed: a counter checked against its bound, it publishes
  // nothing.
  std::atomic<int> evictions_in_flight{0};
  // The part of evictions_in_flight whose eviction failed: paid back by
  // closes (CloseConnection). Relaxed, as above.
  std::atomic<int> eviction_debt{0};
  // Every worker; set before any worker thread starts, then read-only.
  std::vector<Worker*> workers;
  // Serializes taking descriptors (accept4, re-opening a spare): the
  // workers share one descriptor table, and a spare descriptor given up to
  // shed a connection must not be taken by another worker's accept.
  // Guards no data.
  std::mutex descriptor_mu;
};

// What a worker's connections share with their event loop.
struct LoopContext {
  const ServerConfig* config = nullptr;
  ServerShared* shared = nullptr;
  ServerMetrics* metrics = nullptr;
  int epoll_fd = -1;
  bool draining = false;   // shutting down: answer in-flight requests, then close
  std::vector<int> ready;  // fds with buffered requests left to serve
};

class Connection {
 public:
  Connection(LoopContext* loop, int fd, std::int64_t now);
  ~Connection();  // releases its responses and its pinned bytes; not the fd
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }
  CloseReason close_reason() const { return close_reason_; }

  // epoll reported `events`. Returns false if the connection is done.
  bool OnEvents(std::uint32_t events, std::int64_t now);
  // Taken off the ready list: serves more buffered requests.
  bool OnReady(std::int64_t now);
  // Deadlines: header, body rate, send, idle. Returns false if expired.
  bool CheckDeadlines(std::int64_t now);
  // Shutting down: whether nothing is in flight (it can close at once).
  bool IdleForShutdown() const;
  // At max_connections: whether this one waits for a request head (may be
  // evicted), and since when.
  bool Evictable() const;
  std::int64_t waiting_since() const;
  // Evicted to make room: a 408 if a head was half-sent.
  void Evict();

 private:
  struct Pending {  // a response waiting to be written, and its memory
    std::unique_ptr<arena::Arena> request_arena;  // arena_scope = "request"
    std::pmr::string* wire = nullptr;             // null: static `data`
    const char* data = nullptr;
    std::size_t size = 0;
    std::size_t written = 0;
    std::size_t pinned = 0;  // request scope / malloc: memory it holds
    std::int64_t live = 0;   // request scope: its bytes still allocated
  };

  const ServerConfig& cfg() const { return *loop_->config; }
  std::size_t InputCap() const;
  bool Read(std::int64_t now);
  bool Process(std::int64_t now);
  // One request from the buffered input: false when nothing more can be
  // served now. `*consumed`: input bytes used so far.
  bool ServeOne(std::size_t* consumed, std::int64_t now);
  // Records what the request just served cost its allocator.
  void RecordFootprint(const Pending& p);
  bool Flush(std::int64_t now);
  void Queue(Pending&& p, std::int64_t now);
  void QueueStatic(absl::string_view bytes, std::int64_t now);
  void Release(Pending& p);
  void ResetArena();  // connection scope: every response written
  void SyncPinned();
  void UpdateInterest();
  void UpdateTimers(std::int64_t now);
  void Finish(CloseReason reason);  // no more requests on this connection
  bool Close(CloseReason reason);   // returns false
  void SendBestEffort(absl::string_view bytes);

  LoopContext* const loop_;
  const int fd_;
  std::string in_;  // received, not yet consumed by the parser
  RequestParser parser_;
  std::deque<Pending> out_;    // responses in request order
  std::size_t out_bytes_ = 0;  // unsent bytes in out_
  std::size_t out_pinned_ = 0;  // sum of out_[i].pinned
  std::int64_t pinned_ = 0;    // this connection's share of ServerShared::pinned_bytes
  std::unique_ptr<arena::Arena> arena_;  // arena_scope = "connection"
  CountingResource memory_;
  std::uint64_t slow_at_begin_ = 0;  // connection arena's slow paths at the request's start
  bool reading_ = true;          // EPOLLIN registered
  bool want_write_ = false;      // EPOLLOUT registered
  bool continue_sent_ = false;   // "100 Continue" sent for the pending request
  bool queued_ = false;          // on the loop's ready list
  bool more_ = false;            // complete requests may be buffered
  bool peer_eof_ = false;        // the client will send nothing more
  bool finished_ = false;        // no more requests: close once out_ is empty
  CloseReason finish_reason_ = CloseReason::kDone;
  CloseReason close_reason_ = CloseReason::kDone;
  std::int64_t last_active_ms_;       // idle clock: accepted, or output drained
  std::int64_t head_start_ms_ = 0;    // first byte of an incomplete head; 0: none
  std::int64_t send_progress_ms_ = 0; // output last moved (or was queued)
  std::int64_t window_start_ms_ = 0;  // body-rate window; 0: not in a body
  std::size_t window_bytes_ = 0;      // bytes received in that window
};

}  // namespace server_demo

#endif  // SERVER_DEMO_CONNECTION_H_
