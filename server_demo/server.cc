#include "server_demo/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <new>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "arena/arena.h"
#include "server_demo/metrics.h"

namespace server_demo {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             Clock::now().time_since_epoch())
      .count();
}

constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kReadBudget = 256 * 1024;  // bytes read per wake-up
constexpr int kRequestBudget = 64;                // requests per wake-up
constexpr int kTickMs = 100;

// Sent when the server cannot build a response in the request's memory.
constexpr absl::string_view kOverloaded =
    "HTTP/1.1 503 Service Unavailable\r\nServer: arena-demo\r\n"
    "Content-Type: text/plain\r\nContent-Length: 45\r\nConnection: close\r\n\r\n"
    "request exceeded the per-request memory cap\r\n";
constexpr absl::string_view kTooManyConnections =
    "HTTP/1.1 503 Service Unavailable\r\nServer: arena-demo\r\n"
    "Content-Type: text/plain\r\nContent-Length: 21\r\nConnection: close\r\n\r\n"
    "too many connections\n";

// Counts what a request allocates and enforces the per-request cap; forwards
// to the request's arena or to the global heap. Owned by its connection.
class CountingResource final : public std::pmr::memory_resource {
 public:
  void Begin(std::pmr::memory_resource* upstream, std::size_t limit) {
    upstream_ = upstream;
    limit_ = limit;
    used_ = 0;
  }
  std::size_t used() const { return used_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (bytes > limit_ || used_ + bytes > limit_) throw std::bad_alloc();
    void* p = upstream_->allocate(bytes, alignment);
    used_ += bytes;
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    upstream_->deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
    return this == &o;
  }
  std::pmr::memory_resource* upstream_ = std::pmr::new_delete_resource();
  std::size_t limit_ = 0;
  std::size_t used_ = 0;
};

// A response waiting to be written, and the memory it lives in.
struct Pending {
  std::unique_ptr<arena::Arena> request_arena;  // arena_scope = "request"
  std::pmr::string* wire = nullptr;             // null: static `data`
  const char* data = nullptr;
  std::size_t size = 0;
  std::size_t written = 0;
};

struct Connection {
  int fd = -1;
  std::string in;                     // received, not yet consumed
  std::deque<Pending> out;            // responses in request order
  std::size_t out_bytes = 0;          // unsent bytes in `out`
  std::unique_ptr<arena::Arena> arena;  // arena_scope = "connection"
  CountingResource memory;
  bool close_after_write = false;
  bool reading = true;                // EPOLLIN registered
  bool want_write = false;            // EPOLLOUT registered
  bool continue_sent = false;         // "100 Continue" sent for the pending request
  bool queued = false;                // in the worker's ready list
  bool no_more_requests = false;      // after an error or "Connection: close"
  std::int64_t last_active_ms = 0;
};

int SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

}  // namespace

class Server::Worker {
 public:
  Worker(Server* server, int index) : server_(server), index_(index) {}
  ~Worker() {
    if (thread_.joinable()) thread_.join();
    for (auto& [fd, conn] : conns_) CloseNow(conn.get(), /*erase=*/false);
    if (listen_fd_ >= 0) close(listen_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    if (spare_fd_ >= 0) close(spare_fd_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
  }

  absl::Status Listen(const std::string& bind, int* port) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(*port));
    if (inet_pton(AF_INET, bind.c_str(), &addr.sin_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("bind address '", bind, "' is not an IPv4 address"));
    }
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return absl::UnavailableError(absl::StrCat("bind ", bind, ":", *port, ": ", strerror(errno)));
    }
    if (listen(listen_fd_, 1024) != 0) {
      return absl::UnavailableError(absl::StrCat("listen: ", strerror(errno)));
    }
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    *port = ntohs(addr.sin_port);
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0) return absl::InternalError("epoll/eventfd failed");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_fd_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
    ev.data.fd = wake_fd_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    return absl::OkStatus();
  }

  void StartThread() { thread_ = std::thread([this] { Run(); }); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  void Wake() {
    const std::uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }

  ServerMetrics& metrics() { return metrics_; }

 private:
  const ServerConfig& cfg() const { return server_->config_.server; }
  bool arena_mode() const { return cfg().allocator == "arena"; }

  void Run() {
    std::vector<epoll_event> events(256);
    std::int64_t last_sweep = NowMs();
    std::int64_t deadline = 0;
    int idle_ticks = 0;
    for (;;) {
      const int timeout = ready_.empty() ? kTickMs : 0;
      const int n = epoll_wait(epoll_fd_, events.data(), events.size(), timeout);
      if (n < 0 && errno != EINTR) break;
      const std::int64_t now = NowMs();
      if (n <= 0 && ready_.empty()) {
        // A wait timed out with nothing to do: trim this thread's cache.
        if (++idle_ticks >= 2) arena::OnThreadIdle();
      } else {
        idle_ticks = 0;
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listen_fd_) {
          AcceptSome();
        } else if (fd == wake_fd_) {
          std::uint64_t v;
          (void)!read(wake_fd_, &v, sizeof(v));
          if (!draining_) {
            draining_ = true;
            deadline = now + cfg().shutdown_deadline_ms;
            epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
            close(listen_fd_);
            listen_fd_ = -1;
            CloseIdle();
          }
        } else {
          auto it = conns_.find(fd);
          if (it == conns_.end()) continue;
          Connection* c = it->second.get();
          const std::uint32_t e = events[i].events;
          if (e & EPOLLOUT) {
            if (!Flush(c)) continue;
          }
          if (e & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
            if (!OnReadable(c)) continue;
          }
        }
      }
      // Connections that still had complete requests buffered.
      std::vector<int> ready;
      ready.swap(ready_);
      for (int fd : ready) {
        auto it = conns_.find(fd);
        if (it == conns_.end()) continue;  // closed meanwhile
        it->second->queued = false;
        Process(it->second.get());
      }
      if (now - last_sweep >= kTickMs) {
        last_sweep = now;
        SweepIdle(now);
      }
      if (draining_) {
        CloseIdle();
        if (conns_.empty() || now >= deadline) break;
      }
    }
    std::vector<Connection*> all;
    for (auto& [fd, conn] : conns_) all.push_back(conn.get());
    for (Connection* c : all) CloseNow(c);
  }

  void AcceptSome() {
    for (int i = 0; i < 64; ++i) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        ServerMetrics::Add(metrics_.accept_errors, 1);
        if ((errno == EMFILE || errno == ENFILE) && spare_fd_ >= 0) {
          // Out of descriptors: give up the spare to accept and shed one
          // connection, so the listen queue does not wake us forever.
          close(spare_fd_);
          const int victim = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
          if (victim >= 0) {
            send(victim, kTooManyConnections.data(), kTooManyConnections.size(),
                 MSG_NOSIGNAL | MSG_DONTWAIT);
            close(victim);
          }
          spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        return;
      }
      if (server_->open_connections_.fetch_add(1, std::memory_order_relaxed) >=
          cfg().max_connections) {
        server_->open_connections_.fetch_sub(1, std::memory_order_relaxed);
        ServerMetrics::Add(metrics_.connections_refused, 1);
        metrics_.CountStatus(503);
        send(fd, kTooManyConnections.data(), kTooManyConnections.size(),
             MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
        continue;
      }
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto conn = std::make_unique<Connection>();
      conn->fd = fd;
      conn->last_active_ms = NowMs();
      if (arena_mode() && cfg().arena_scope == "connection") {
        arena::ArenaOptions options;
        options.max_bytes = cfg().request_memory_limit + (1 << 20);
        conn->arena = std::make_unique<arena::Arena>(options);
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd;
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
      ServerMetrics::Add(metrics_.connections_total, 1);
      ServerMetrics::Add(metrics_.connections_open, 1);
      conns_.emplace(fd, std::move(conn));
    }
  }

  void UpdateInterest(Connection* c) {
    epoll_event ev{};
    ev.events = (c->reading ? EPOLLIN | EPOLLRDHUP : 0) | (c->want_write ? EPOLLOUT : 0);
    ev.data.fd = c->fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev);
  }

  // Returns false if the connection was closed.
  bool OnReadable(Connection* c) {
    if (!c->reading) return true;
    std::size_t total = 0;
    bool eof = false;
    while (total < kReadBudget) {
      const std::size_t old = c->in.size();
      c->in.resize(old + kReadChunk);
      const ssize_t n = recv(c->fd, &c->in[old], kReadChunk, 0);
      if (n <= 0) {
        c->in.resize(old);
        if (n == 0) eof = true;
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) eof = true;
        break;
      }
      c->in.resize(old + n);
      total += n;
      if (static_cast<std::size_t>(n) < kReadChunk) break;
    }
    ServerMetrics::Add(metrics_.bytes_in, total);
    if (total > 0) c->last_active_ms = NowMs();
    if (eof) {
      // The client is done sending: answer what is complete, then close.
      c->close_after_write = true;
      c->reading = false;
      if (!Process(c)) return false;
      if (c->out.empty()) {
        CloseNow(c);
        return false;
      }
      UpdateInterest(c);
      return true;
    }
    return Process(c);
  }

  void Release(Connection* c, Pending& p) {
    if (p.wire != nullptr && !arena_mode()) {
      p.wire->~basic_string();
      c->memory.deallocate(p.wire, sizeof(std::pmr::string), alignof(std::pmr::string));
    }
    p.wire = nullptr;
    p.request_arena.reset();
  }

  void Queue(Connection* c, Pending&& p) {
    c->out_bytes += p.size - p.written;
    c->out.push_back(std::move(p));
  }

  void QueueStatic(Connection* c, absl::string_view bytes) {
    Pending p;
    p.data = bytes.data();
    p.size = bytes.size();
    Queue(c, std::move(p));
  }

  // Parses and answers buffered requests, within the per-wake-up budget.
  // Returns false if the connection was closed.
  bool Process(Connection* c) {
    const HttpLimits limits{cfg().max_header_bytes, cfg().max_body_bytes};
    std::size_t consumed = 0;
    int served = 0;
    while (!c->no_more_requests) {
      const absl::string_view input(c->in.data() + consumed, c->in.size() - consumed);
      if (input.empty()) break;
      if (served >= kRequestBudget || c->out_bytes > cfg().max_pending_output) {
        if (!c->queued && c->out_bytes <= cfg().max_pending_output) {
          c->queued = true;
          ready_.push_back(c->fd);
        }
        break;
      }
      const auto start = Clock::now();
      // The request's memory.
      Pending p;
      std::pmr::memory_resource* upstream = std::pmr::new_delete_resource();
      if (arena_mode()) {
        if (c->arena != nullptr) {
          upstream = c->arena->resource();
        } else {
          arena::ArenaOptions options;
          options.max_bytes = cfg().request_memory_limit + (1 << 20);
          p.request_arena = std::make_unique<arena::Arena>(options);
          upstream = p.request_arena->resource();
        }
      }
      c->memory.Begin(upstream, cfg().request_memory_limit);
      int status = 0;
      bool fatal = false;  // the framing is lost: answer and close
      try {
        HttpRequest request(&c->memory);
        const ParseResult r = ParseRequest(input, limits, &c->memory, &request);
        if (r.status == ParseStatus::kIncomplete) {
          if (r.send_continue && !c->continue_sent) {
            c->continue_sent = true;
            QueueStatic(c, "HTTP/1.1 100 Continue\r\n\r\n");
          }
          break;
        }
        p.wire = ::new (c->memory.allocate(sizeof(std::pmr::string), alignof(std::pmr::string)))
            std::pmr::string(&c->memory);
        if (r.status == ParseStatus::kError) {
          status = r.error_status;
          AppendResponse(p.wire, status, "text/plain",
                         absl::StrCat(r.error_message, "\n"), false, false);
          fatal = true;
          consumed = c->in.size();
        } else {
          consumed += r.consumed;
          c->continue_sent = false;
          const HandlerContext context{&cfg(), server_};
          status = HandleRequest(request, &c->memory, context, p.wire);
          // "Connection: close", HTTP/1.0 without keep-alive, or shutting
          // down: answer this one, then close.
          if (!request.keep_alive || draining_) {
            c->close_after_write = true;
            c->no_more_requests = true;
          }
        }
      } catch (const std::bad_alloc&) {
        if (p.wire != nullptr && !arena_mode()) {
          p.wire->~basic_string();
          c->memory.deallocate(p.wire, sizeof(std::pmr::string), alignof(std::pmr::string));
        }
        p.wire = nullptr;
        p.request_arena.reset();
        status = 503;
        fatal = true;
        consumed = c->in.size();
        QueueStatic(c, kOverloaded);
      }
      if (p.wire != nullptr) {
        p.data = p.wire->data();
        p.size = p.wire->size();
        Queue(c, std::move(p));
      }
      ++served;
      metrics_.CountStatus(status);
      ServerMetrics::Add(metrics_.requests, 1);
      ServerMetrics::Add(metrics_.request_memory_bytes, c->memory.used());
      metrics_.latency_us.Record(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()));
      if (fatal) {
        c->close_after_write = true;
        c->no_more_requests = true;
        break;
      }
    }
    if (consumed != 0) c->in.erase(0, consumed);
    // Stop reading a client that does not read its responses.
    const bool should_read = !c->close_after_write && c->out_bytes <= cfg().max_pending_output;
    if (should_read != c->reading) {
      c->reading = should_read;
      UpdateInterest(c);
    }
    return Flush(c);
  }

  // Writes queued responses. Returns false if the connection was closed.
  bool Flush(Connection* c) {
    while (!c->out.empty()) {
      iovec iov[64];
      int n = 0;
      for (auto it = c->out.begin(); it != c->out.end() && n < 64; ++it, ++n) {
        iov[n].iov_base = const_cast<char*>(it->data + it->written);
        iov[n].iov_len = it->size - it->written;
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = n;
      const ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        CloseNow(c);
        return false;
      }
      ServerMetrics::Add(metrics_.bytes_out, w);
      c->last_active_ms = NowMs();
      std::size_t left = w;
      c->out_bytes -= left;
      while (left > 0) {
        Pending& front = c->out.front();
        const std::size_t rest = front.size - front.written;
        if (left < rest) {
          front.written += left;
          left = 0;
        } else {
          left -= rest;
          Release(c, front);
          c->out.pop_front();
        }
      }
    }
    if (c->out.empty()) {
      // Every response written: the connection's request memory goes back
      // in one Reset.
      if (c->arena != nullptr) c->arena->Reset();
      if (c->close_after_write) {
        CloseNow(c);
        return false;
      }
    }
    const bool want_write = !c->out.empty();
    bool changed = want_write != c->want_write;
    c->want_write = want_write;
    const bool should_read = !c->close_after_write && c->out_bytes <= cfg().max_pending_output;
    if (should_read != c->reading) {
      c->reading = should_read;
      changed = true;
      if (should_read && !c->in.empty() && !c->queued) {
        c->queued = true;
        ready_.push_back(c->fd);
      }
    }
    if (changed) UpdateInterest(c);
    return true;
  }

  void SweepIdle(std::int64_t now) {
    std::vector<Connection*> expired;
    for (auto& [fd, conn] : conns_) {
      if (conn->out.empty() && now - conn->last_active_ms >= cfg().idle_timeout_ms) {
        expired.push_back(conn.get());
      }
    }
    for (Connection* c : expired) {
      if (!c->in.empty()) {
        // Half a request, then silence: 408.
        metrics_.CountStatus(408);
        static constexpr absl::string_view k408 =
            "HTTP/1.1 408 Request Timeout\r\nServer: arena-demo\r\nContent-Type: text/plain\r\n"
            "Content-Length: 16\r\nConnection: close\r\n\r\nrequest timeout\n";
        send(c->fd, k408.data(), k408.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      CloseNow(c);
    }
  }

  // While draining: close connections with nothing in flight.
  void CloseIdle() {
    std::vector<Connection*> idle;
    for (auto& [fd, conn] : conns_) {
      if (conn->out.empty() && conn->in.empty()) idle.push_back(conn.get());
    }
    for (Connection* c : idle) CloseNow(c);
  }

  void CloseNow(Connection* c, bool erase = true) {
    for (Pending& p : c->out) Release(c, p);
    c->out.clear();
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
    close(c->fd);
    server_->open_connections_.fetch_sub(1, std::memory_order_relaxed);
    ServerMetrics::Add(metrics_.connections_open, static_cast<std::uint64_t>(-1));
    if (erase) conns_.erase(c->fd);
  }

  Server* const server_;
  const int index_;
  int epoll_fd_ = -1;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  int spare_fd_ = -1;
  bool draining_ = false;
  std::thread thread_;
  absl::flat_hash_map<int, std::unique_ptr<Connection>> conns_;
  std::vector<int> ready_;  // fds with complete requests still buffered
  ServerMetrics metrics_;
};

Server::Server(const DemoConfig& config) : config_(config) {}

Server::~Server() {
  Shutdown();
  Wait();
}

absl::Status Server::Start() {
  int threads = config_.server.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  int port = config_.server.port;
  for (int i = 0; i < threads; ++i) {
    auto w = std::make_unique<Worker>(this, i);
    absl::Status s = w->Listen(config_.server.bind, &port);
    if (!s.ok()) return s;
    workers_.push_back(std::move(w));
  }
  port_ = port;
  for (auto& w : workers_) w->StartThread();
  return absl::OkStatus();
}

void Server::Shutdown() {
  if (stopping_.exchange(true)) return;
  for (auto& w : workers_) w->Wake();
}

void Server::Wait() {
  if (joined_) return;
  for (auto& w : workers_) w->Join();
  joined_ = true;
}

std::uint64_t Server::requests() const {
  std::uint64_t n = 0;
  for (auto& w : workers_) n += w->metrics().requests.load(std::memory_order_relaxed);
  return n;
}

std::string Server::AllocatorJson() {
  // heap_fragmentation covers the whole process: glibc's heap (connection
  // buffers, bookkeeping) plus, in arena mode, the arena library's memory.
  const struct mallinfo2 mi = mallinfo2();
  if (config_.server.allocator == "arena") {
    const arena::ProcessStats ps = arena::GlobalStats();
    const std::string json = arena::ToJson(ps);
    const double heap = arena::FragmentationRatio(
        ps.committed_bytes + mi.arena + mi.hblkhd, ps.live_bytes + mi.uordblks + mi.hblkhd);
    return absl::StrCat("{\"kind\":\"arena\",\"heap_fragmentation\":", heap, ",",
                        json.substr(1));
  }
  const std::size_t committed = mi.arena + mi.hblkhd;
  const std::size_t live = mi.uordblks + mi.hblkhd;
  return absl::StrCat("{\"kind\":\"malloc\",\"mapped_bytes\":", committed,
                      ",\"committed_bytes\":", committed, ",\"live_bytes\":", live,
                      ",\"free_bytes\":", mi.fordblks, ",\"mmapped_bytes\":", mi.hblkhd,
                      ",\"heap_fragmentation\":", arena::FragmentationRatio(committed, live),
                      ",\"fragmentation\":",
                      arena::FragmentationRatio(committed, live), "}");
}

// Sums of every worker's metrics (relaxed loads: a best-effort snapshot).
struct Server::Totals {
  std::uint64_t requests = 0, bytes_in = 0, bytes_out = 0, memory = 0, total = 0,
                open = 0, refused = 0, accept_errors = 0;
  std::vector<std::uint64_t> statuses = std::vector<std::uint64_t>(std::size(ServerMetrics::kStatuses));
  std::vector<std::uint64_t> hist;
};

Server::Totals Server::Sum() {
  Totals t;
  auto get = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  for (auto& w : workers_) {
    ServerMetrics& m = w->metrics();
    t.requests += get(m.requests);
    t.bytes_in += get(m.bytes_in);
    t.bytes_out += get(m.bytes_out);
    t.memory += get(m.request_memory_bytes);
    t.total += get(m.connections_total);
    t.open += get(m.connections_open);
    t.refused += get(m.connections_refused);
    t.accept_errors += get(m.accept_errors);
    for (std::size_t i = 0; i < t.statuses.size(); ++i) t.statuses[i] += get(m.by_status[i]);
    m.latency_us.MergeInto(&t.hist);
  }
  return t;
}

std::string Server::StatsJson() {
  const Totals t = Sum();
  const std::uint64_t requests = t.requests, bytes_in = t.bytes_in, bytes_out = t.bytes_out,
                      memory = t.memory, total = t.total, open = t.open, refused = t.refused,
                      accept_errors = t.accept_errors;
  const std::vector<std::uint64_t>& statuses = t.statuses;
  const std::vector<std::uint64_t>& hist = t.hist;
  std::string errors;
  std::uint64_t error_total = 0;
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    if (ServerMetrics::kStatuses[i] >= 400) {
      absl::StrAppend(&errors, errors.empty() ? "" : ",", "\"", ServerMetrics::kStatuses[i],
                      "\":", statuses[i]);
      error_total += statuses[i];
    }
  }
  const double per_request = requests == 0 ? 0.0 : static_cast<double>(memory) / requests;
  auto pct = [&](double p) { return LatencyHistogram::Percentile(hist, p); };
  const std::string server = absl::StrCat(
      "{\"allocator\":\"", config_.server.allocator, "\",\"arena_scope\":\"",
      config_.server.arena_scope, "\",\"threads\":", workers_.size(),
      ",\"requests\":", requests, ",\"bytes_in\":", bytes_in, ",\"bytes_out\":", bytes_out,
      ",\"errors\":", error_total, ",\"errors_by_status\":{", errors, "}",
      ",\"responses_200\":", statuses[0],
      ",\"connections_open\":", open, ",\"connections_total\":", total,
      ",\"connections_refused\":", refused, ",\"accept_errors\":", accept_errors,
      ",\"request_bytes_per_request\":", per_request,
      ",\"latency_us\":{\"p50\":", pct(50), ",\"p90\":", pct(90), ",\"p99\":", pct(99),
      ",\"p999\":", pct(99.9), ",\"max\":", LatencyHistogram::Max(hist), "}}");
  return absl::StrCat("{\"server\":", server, ",\"allocator\":", AllocatorJson(), "}");
}

std::string Server::MetricsText() {
  const Totals t = Sum();
  const std::uint64_t requests = t.requests, bytes_in = t.bytes_in, bytes_out = t.bytes_out,
                      open = t.open;
  const std::vector<std::uint64_t>& statuses = t.statuses;
  const std::vector<std::uint64_t>& hist = t.hist;
  std::string out = absl::StrCat(
      "# HELP server_demo_requests_total Requests answered.\n"
      "# TYPE server_demo_requests_total counter\nserver_demo_requests_total ", requests, "\n",
      "# HELP server_demo_bytes_in_total Bytes received.\n"
      "# TYPE server_demo_bytes_in_total counter\nserver_demo_bytes_in_total ", bytes_in, "\n",
      "# HELP server_demo_bytes_out_total Bytes sent.\n"
      "# TYPE server_demo_bytes_out_total counter\nserver_demo_bytes_out_total ", bytes_out, "\n",
      "# HELP server_demo_connections_open Open connections.\n"
      "# TYPE server_demo_connections_open gauge\nserver_demo_connections_open ", open, "\n",
      "# HELP server_demo_responses_total Responses by status code.\n"
      "# TYPE server_demo_responses_total counter\n");
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    absl::StrAppend(&out, "server_demo_responses_total{code=\"", ServerMetrics::kStatuses[i],
                    "\"} ", statuses[i], "\n");
  }
  absl::StrAppend(&out,
                  "# HELP server_demo_latency_microseconds Parse-to-response time.\n"
                  "# TYPE server_demo_latency_microseconds summary\n");
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    absl::StrAppend(&out, "server_demo_latency_microseconds{quantile=\"", q, "\"} ",
                    LatencyHistogram::Percentile(hist, q * 100), "\n");
  }
  absl::StrAppend(&out, "server_demo_latency_microseconds_count ",
                  LatencyHistogram::Count(hist), "\n");
  if (config_.server.allocator == "arena") {
    absl::StrAppend(&out, arena::ToPrometheus(arena::GlobalStats()));
  } else {
    const struct mallinfo2 mi = mallinfo2();
    const std::size_t committed = mi.arena + mi.hblkhd;
    const std::size_t live = mi.uordblks + mi.hblkhd;
    absl::StrAppend(&out,
                    "# HELP malloc_committed_bytes glibc arena + mmapped bytes (mallinfo2).\n"
                    "# TYPE malloc_committed_bytes gauge\nmalloc_committed_bytes ", committed,
                    "\n# HELP malloc_live_bytes glibc bytes in use (mallinfo2).\n"
                    "# TYPE malloc_live_bytes gauge\nmalloc_live_bytes ", live,
                    "\n# HELP malloc_fragmentation_ratio (committed - live) / committed.\n"
                    "# TYPE malloc_fragmentation_ratio gauge\nmalloc_fragmentation_ratio ",
                    arena::FragmentationRatio(committed, live), "\n");
  }
  return out;
}

}  // namespace server_demo
