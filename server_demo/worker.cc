#include "server_demo/worker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "arena/arena.h"

namespace server_demo {
namespace {

constexpr int kTickMs = 100;
constexpr int kAcceptBatch = 64;

constexpr absl::string_view kTooManyConnections =
    "HTTP/1.1 503 Service Unavailable\r\nServer: arena-demo\r\n"
    "Content-Type: text/plain\r\nContent-Length: 21\r\nConnection: close\r\n\r\n"
    "too many connections\n";

int OpenSpare() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

Worker::Worker(ServerShared* shared) : shared_(shared) {
  loop_.config = &shared->config.server;
  loop_.shared = shared;
  loop_.metrics = &metrics_;
}

Worker::~Worker() {
  Join();
  std::vector<Connection*> all;
  for (auto& [fd, conn] : conns_) all.push_back(conn.get());
  for (Connection* c : all) CloseConnection(c, CloseReason::kShutdown);
  if (listen_fd_ >= 0) close(listen_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  if (evict_fd_ >= 0) close(evict_fd_);
  if (spare_fd_ >= 0) close(spare_fd_);
  if (loop_.epoll_fd >= 0) close(loop_.epoll_fd);
}

absl::Status Worker::Listen(const std::string& bind, int* port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(*port));
  if (inet_pton(AF_INET, bind.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("bind address '", bind, "' is not an IPv4 address"));
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
  loop_.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  evict_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  spare_fd_ = OpenSpare();
  if (loop_.epoll_fd < 0 || wake_fd_ < 0 || evict_fd_ < 0) {
    return absl::InternalError("epoll/eventfd failed");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd_;
  epoll_ctl(loop_.epoll_fd, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.fd = wake_fd_;
  epoll_ctl(loop_.epoll_fd, EPOLL_CTL_ADD, wake_fd_, &ev);
  ev.data.fd = evict_fd_;
  epoll_ctl(loop_.epoll_fd, EPOLL_CTL_ADD, evict_fd_, &ev);
  return absl::OkStatus();
}

void Worker::StartThread() { thread_ = std::thread([this] { Run(); }); }

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::Wake() {
  const std::uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void Worker::RequestEviction() {
  evictions_wanted_.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t one = 1;
  (void)!write(evict_fd_, &one, sizeof(one));
}

void Worker::EvictRequested() {
  std::uint64_t v;
  (void)!read(evict_fd_, &v, sizeof(v));
  const int wanted = evictions_wanted_.exchange(0, std::memory_order_relaxed);
  int done = 0;
  // Only while the excess is still there: natural closes may have made room.
  while (done < wanted && shared_->open_connections.load(std::memory_order_relaxed) >
                              loop_.config->max_connections &&
         EvictOne()) {
    ++done;
  }
  // Evictions that did not happen (nothing here could go, or the room came
  // back by itself) stay counted in evictions_in_flight until closes pay
  // them back, so the excess over max_connections stays bounded.
  shared_->eviction_debt.fetch_add(wanted - done, std::memory_order_relaxed);
  shared_->evictions_in_flight.fetch_sub(done, std::memory_order_relaxed);
}

bool Worker::EvictElsewhere() {
  // Workers split connections by the kernel's choice, so this worker may
  // hold none that can go while another holds many: ask the worker with
  // the most connections to evict one, and take the newcomer meanwhile
  // (max_connections may be passed by the evictions in flight, at most
  // 2 per worker; one that fails stays counted until a close pays it back,
  // see ServerShared::evictions_in_flight).
  const int limit = 2 * static_cast<int>(shared_->workers.size());
  if (shared_->evictions_in_flight.load(std::memory_order_relaxed) >= limit) return false;
  Worker* busiest = nullptr;
  std::uint64_t most = 0;
  for (Worker* w : shared_->workers) {
    const std::uint64_t open = w->metrics_.connections_open.load(std::memory_order_relaxed);
    if (w != this && open > most) {
      most = open;
      busiest = w;
    }
  }
  if (busiest == nullptr) return false;
  shared_->evictions_in_flight.fetch_add(1, std::memory_order_relaxed);
  busiest->RequestEviction();
  return true;
}

void Worker::Run() {
  std::vector<epoll_event> events(256);
  std::int64_t last_tick = NowMs();
  std::int64_t deadline = 0;
  int idle_ticks = 0;
  for (;;) {
    const int timeout = loop_.ready.empty() ? kTickMs : 0;
    const int n = epoll_wait(loop_.epoll_fd, events.data(), events.size(), timeout);
    if (n < 0 && errno != EINTR) break;
    const std::int64_t now = NowMs();
    if (n <= 0 && loop_.ready.empty()) {
      // A wait timed out with nothing to do: trim this thread's cache.
      if (++idle_ticks >= 2) arena::OnThreadIdle();
    } else {
      idle_ticks = 0;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listen_fd_) {
        AcceptSome(now);
      } else if (fd == evict_fd_) {
        EvictRequested();
      } else if (fd == wake_fd_) {
        std::uint64_t v;
        (void)!read(wake_fd_, &v, sizeof(v));
        if (!loop_.draining) {
          deadline = now + loop_.config->shutdown_deadline_ms;
          StartDraining();
        }
      } else {
        auto it = conns_.find(fd);
        if (it == conns_.end()) continue;
        Connection* c = it->second.get();
        CloseIf(c, c->OnEvents(events[i].events, now));
      }
    }
    // Connections with requests still buffered.
    std::vector<int> ready;
    ready.swap(loop_.ready);
    for (int fd : ready) {
      auto it = conns_.find(fd);
      if (it == conns_.end()) continue;  // closed meanwhile
      Connection* c = it->second.get();
      CloseIf(c, c->OnReady(now));
    }
    if (now - last_tick >= kTickMs) {
      last_tick = now;
      Tick(now);
    }
    if (loop_.draining) {
      std::vector<Connection*> idle;
      for (auto& [fd, conn] : conns_) {
        if (conn->IdleForShutdown()) idle.push_back(conn.get());
      }
      for (Connection* c : idle) CloseConnection(c, CloseReason::kShutdown);
      if (conns_.empty() || now >= deadline) break;
    }
  }
  std::vector<Connection*> all;
  for (auto& [fd, conn] : conns_) all.push_back(conn.get());
  for (Connection* c : all) CloseConnection(c, CloseReason::kShutdown);
}

void Worker::StartDraining() {
  loop_.draining = true;
  if (listen_fd_ >= 0) {
    epoll_ctl(loop_.epoll_fd, EPOLL_CTL_DEL, listen_fd_, nullptr);
    close(listen_fd_);
    listen_fd_ = -1;
  }
}

void Worker::Tick(std::int64_t now) {
  // Descriptors may have come back: re-arm the spare and the listen socket.
  if (spare_fd_ < 0) {
    std::lock_guard<std::mutex> lock(shared_->descriptor_mu);
    spare_fd_ = OpenSpare();
  }
  if (accept_paused_ && now >= accept_resume_ms_ && listen_fd_ >= 0) {
    accept_paused_ = false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_fd_;
    epoll_ctl(loop_.epoll_fd, EPOLL_CTL_MOD, listen_fd_, &ev);
  }
  std::vector<Connection*> expired;
  for (auto& [fd, conn] : conns_) {
    if (!conn->CheckDeadlines(now)) expired.push_back(conn.get());
  }
  for (Connection* c : expired) CloseConnection(c, c->close_reason());
}

void Worker::PauseAccepting(std::int64_t now) {
  // Without a spare descriptor there is no way to take the connection off
  // the queue, and the listen socket would wake us forever: stop listening
  // for events until the next tick.
  if (accept_paused_ || listen_fd_ < 0) return;
  accept_paused_ = true;
  accept_resume_ms_ = now + kTickMs;
  epoll_event ev{};
  ev.events = 0;
  ev.data.fd = listen_fd_;
  epoll_ctl(loop_.epoll_fd, EPOLL_CTL_MOD, listen_fd_, &ev);
}

// REQUIRES: shared_->descriptor_mu held.
void Worker::ShedOneForDescriptors(std::int64_t now) {
  // Out of descriptors: give up the spare to accept and shed one
  // connection (under descriptor_mu, so no other worker takes the freed
  // descriptor). Without a spare (none could be re-opened yet), pause
  // accepting instead of spinning on the level-triggered listen socket.
  bool shed = false;
  if (spare_fd_ >= 0) {
    close(spare_fd_);
    spare_fd_ = -1;
    const int victim = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (victim >= 0) {
      (void)!send(victim, kTooManyConnections.data(), kTooManyConnections.size(),
                  MSG_NOSIGNAL | MSG_DONTWAIT);
      close(victim);
      metrics_.CountStatus(503);
      metrics_.CountReject(RejectReason::kDescriptors);
      shed = true;
    }
    spare_fd_ = OpenSpare();
  }
  if (!shed || spare_fd_ < 0) PauseAccepting(now);
}

bool Worker::EvictOne() {
  Connection* victim = nullptr;
  for (auto& [fd, conn] : conns_) {
    if (conn->Evictable() &&
        (victim == nullptr || conn->waiting_since() < victim->waiting_since())) {
      victim = conn.get();
    }
  }
  if (victim == nullptr) return false;
  victim->Evict();
  CloseConnection(victim, CloseReason::kEvicted);
  return true;
}

void Worker::AcceptSome(std::int64_t now) {
  for (int i = 0; i < kAcceptBatch; ++i) {
    int fd, error = 0;
    {
      std::lock_guard<std::mutex> lock(shared_->descriptor_mu);
      fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) error = errno;
      if (fd < 0 && (error == EMFILE || error == ENFILE)) ShedOneForDescriptors(now);
      if (fd >= 0 && spare_fd_ < 0) spare_fd_ = OpenSpare();
    }
    if (fd < 0) {
      if (error == EAGAIN || error == EWOULDBLOCK || error == EINTR) return;
      ServerMetrics::Add(metrics_.accept_errors, 1);
      return;
    }
    if (shared_->open_connections.fetch_add(1, std::memory_order_relaxed) >=
            loop_.config->max_connections &&
        !EvictOne() && !EvictElsewhere()) {
      shared_->open_connections.fetch_sub(1, std::memory_order_relaxed);
      ServerMetrics::Add(metrics_.connections_refused, 1);
      metrics_.CountStatus(503);
      metrics_.CountReject(RejectReason::kMaxConnections);
      (void)!send(fd, kTooManyConnections.data(), kTooManyConnections.size(),
                  MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    epoll_ctl(loop_.epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    ServerMetrics::Add(metrics_.connections_total, 1);
    ServerMetrics::Add(metrics_.connections_open, 1);
    conns_.emplace(fd, std::make_unique<Connection>(&loop_, fd, now));
  }
}

void Worker::CloseIf(Connection* c, bool keep) {
  if (!keep) CloseConnection(c, c->close_reason());
}

void Worker::CloseConnection(Connection* c, CloseReason reason) {
  const int fd = c->fd();
  metrics_.CountClose(reason);
  epoll_ctl(loop_.epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  shared_->open_connections.fetch_sub(1, std::memory_order_relaxed);
  // A close pays back one admission whose promised eviction failed; not an
  // eviction, which only makes room for the newcomer it was made for.
  int debt = reason == CloseReason::kEvicted
                 ? 0
                 : shared_->eviction_debt.load(std::memory_order_relaxed);
  while (debt > 0 && !shared_->eviction_debt.compare_exchange_weak(
                         debt, debt - 1, std::memory_order_relaxed)) {
  }
  if (debt > 0) shared_->evictions_in_flight.fetch_sub(1, std::memory_order_relaxed);
  ServerMetrics::Add(metrics_.connections_open, static_cast<std::uint64_t>(-1));
  conns_.erase(fd);  // destroys c
}

}  // namespace server_demo
