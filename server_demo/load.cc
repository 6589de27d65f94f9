#include "server_demo/load.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server_demo/metrics.h"

namespace server_demo {
namespace {

using Clock = std::chrono::steady_clock;

// Finds a complete response at the start of `buf`: its size, status and
// whether the server will close. Returns false when more bytes are needed.
bool ParseResponse(const std::string& buf, std::size_t* size, int* status, bool* closes) {
  const std::size_t head = buf.find("\r\n\r\n");
  if (head == std::string::npos) return false;
  if (buf.size() < 12) return false;
  *status = std::atoi(buf.c_str() + 9);
  std::size_t length = 0;
  *closes = false;
  std::size_t pos = buf.find("\r\n") + 2;
  while (pos < head) {
    std::size_t end = buf.find("\r\n", pos);
    absl::string_view line(buf.data() + pos, end - pos);
    const std::size_t colon = line.find(':');
    if (colon != absl::string_view::npos) {
      const absl::string_view name = line.substr(0, colon);
      const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
      if (absl::EqualsIgnoreCase(name, "content-length")) {
        absl::SimpleAtoi(value, &length);
      } else if (absl::EqualsIgnoreCase(name, "connection") &&
                 absl::EqualsIgnoreCase(value, "close")) {
        *closes = true;
      }
    }
    pos = end + 2;
  }
  if (*status == 100) {
    *size = head + 4;
    return true;
  }
  if (buf.size() < head + 4 + length) return false;
  *size = head + 4 + length;
  return true;
}

int Connect(const std::string& host, int port, bool blocking) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (blocking ? 0 : SOCK_NONBLOCK), 0);
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    close(fd);
    return -1;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
      errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

struct ClientConn {
  int fd = -1;
  std::string in;
  std::size_t sent = 0;  // bytes of the request written
  bool busy = false;     // a request is outstanding
  std::uint64_t pick = 0;   // position in the mix's schedule
  std::uint32_t route = 0;  // route of the outstanding request
  Clock::time_point started;
};

struct Shared {
  const LoadOptions* options;
  RouteMix mix;
  std::vector<std::string> requests;  // one per route of `mix`
  Clock::time_point deadline;
  std::atomic<std::uint64_t> issued{0};
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<bool> stop{false};
};

struct ThreadResult {
  std::uint64_t requests = 0, errors = 0, connection_errors = 0, bytes = 0;
  std::map<int, std::uint64_t> statuses;
  std::vector<std::uint64_t> route_requests;
  LatencyHistogram histogram;
};

// `first`: index of this thread's first connection among all threads, so
// that every connection starts at its own place in the schedule.
void LoadThread(Shared* shared, int connections, int first, ThreadResult* result) {
  const LoadOptions& o = *shared->options;
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<ClientConn> conns(connections);
  result->route_requests.assign(shared->mix.routes.size(), 0);
  const std::size_t period = shared->mix.Period();
  for (int i = 0; i < connections; ++i) {
    conns[i].pick = (static_cast<std::uint64_t>(first + i) * 7919) % period;
  }
  auto take_ticket = [&] {
    if (shared->stop.load(std::memory_order_relaxed)) return false;
    if (o.requests == 0) return true;
    return shared->issued.fetch_add(1, std::memory_order_relaxed) < o.requests;
  };
  auto open = [&](int i) {
    ClientConn& c = conns[i];
    c.fd = Connect(o.host, o.port, false);
    c.in.clear();
    c.sent = 0;
    c.busy = false;
    if (c.fd < 0) {
      ++result->connection_errors;
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u32 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    return true;
  };
  auto drop = [&](int i) {
    ClientConn& c = conns[i];
    if (c.fd >= 0) {
      epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
    }
    c.fd = -1;
  };
  auto send_more = [&](int i) {
    ClientConn& c = conns[i];
    if (!c.busy) {
      if (!take_ticket()) return;
      c.busy = true;
      c.sent = 0;
      c.route = shared->mix.Pick(c.pick++);
      c.started = Clock::now();
    }
    const std::string& request = shared->requests[c.route];
    while (c.sent < request.size()) {
      const ssize_t n = send(c.fd, request.data() + c.sent, request.size() - c.sent,
                             MSG_NOSIGNAL);
      if (n < 0) return;  // EAGAIN: EPOLLOUT will call again; errors show on read
      c.sent += n;
    }
  };
  for (int i = 0; i < connections; ++i) open(i);
  std::vector<epoll_event> events(256);
  char buf[64 * 1024];
  int outstanding_checks = 0;
  while (Clock::now() < shared->deadline) {
    const int n = epoll_wait(ep, events.data(), events.size(), 50);
    for (int k = 0; k < n; ++k) {
      const int i = events[k].data.u32;
      ClientConn& c = conns[i];
      if (c.fd < 0) continue;
      if (events[k].events & EPOLLOUT) {
        send_more(i);
        epoll_event ev{};
        ev.events = EPOLLIN | (c.busy && c.sent < shared->requests[c.route].size()
                                   ? static_cast<std::uint32_t>(EPOLLOUT)
                                   : 0u);
        ev.data.u32 = i;
        epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
      }
      if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        bool closed = false;
        for (;;) {
          const ssize_t r = recv(c.fd, buf, sizeof(buf), 0);
          if (r > 0) {
            c.in.append(buf, r);
            result->bytes += r;
            continue;
          }
          if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed = true;
          break;
        }
        std::size_t size;
        int status;
        bool closes;
        while (c.busy && ParseResponse(c.in, &size, &status, &closes)) {
          c.in.erase(0, size);
          if (status == 100) continue;
          c.busy = false;
          ++result->requests;
          ++result->statuses[status];
          ++result->route_requests[c.route];
          if (status >= 400) ++result->errors;
          result->histogram.Record(static_cast<std::uint64_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c.started)
                  .count()));
          shared->done.fetch_add(1, std::memory_order_relaxed);
          if (closes) {
            closed = true;
            break;
          }
          send_more(i);
        }
        if (closed) {
          if (c.busy) {
            ++result->errors;
            ++result->connection_errors;
          }
          drop(i);
          if (Clock::now() < shared->deadline && !shared->stop.load()) open(i);
        }
      }
    }
    // With a request budget: finish when every ticket is answered.
    if (o.requests != 0 && ++outstanding_checks % 16 == 0) {
      bool any_busy = false;
      for (const ClientConn& c : conns) any_busy |= c.busy;
      if (!any_busy && shared->issued.load() >= o.requests) break;
    }
  }
  for (int i = 0; i < connections; ++i) drop(i);
  close(ep);
}

}  // namespace

absl::Status ParseHostPort(const std::string& target, std::string* host, int* port) {
  const std::size_t colon = target.rfind(':');
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(target.substr(colon + 1), port) || *port <= 0 || *port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--target '", target, "': must be HOST:PORT with an IPv4 host and a port 1-65535"));
  }
  *host = target.substr(0, colon);
  if (*host == "localhost") *host = "127.0.0.1";
  in_addr a;
  if (inet_pton(AF_INET, host->c_str(), &a) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--target '", target, "': '", *host, "' is not an IPv4 address"));
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadResult> RunLoad(const LoadOptions& options) {
  if (options.connections < 1 || options.threads < 1) {
    return absl::InvalidArgumentError("--connections and --threads must be at least 1");
  }
  // Fail fast if nothing listens.
  const int probe = Connect(options.host, options.port, true);
  if (probe < 0) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", options.host, ":",
                                               options.port, ": ", strerror(errno)));
  }
  close(probe);
  Shared shared;
  shared.options = &options;
  if (!options.mix.routes.empty() && options.mix.schedule.empty()) {
    return absl::InvalidArgumentError("the route mix has no schedule: use ParseRouteMix");
  }
  shared.mix = options.mix.routes.empty() ? SingleRoute(options.path) : options.mix;
  for (const RouteMix::Route& route : shared.mix.routes) {
    shared.requests.push_back(absl::StrCat("GET ", route.path, " HTTP/1.1\r\nHost: ",
                                           options.host,
                                           "\r\nUser-Agent: server_demo-load\r\n\r\n"));
  }
  const auto start = Clock::now();
  shared.deadline = start + absl::ToChronoMilliseconds(options.duration);
  const int threads = std::min(options.threads, options.connections);
  std::vector<ThreadResult> results(threads);
  std::vector<std::thread> workers;
  int first = 0;
  for (int t = 0; t < threads; ++t) {
    const int share = options.connections / threads + (t < options.connections % threads ? 1 : 0);
    workers.emplace_back(LoadThread, &shared, share, first, &results[t]);
    first += share;
  }
  // Progress, until the threads finish.
  std::atomic<bool> finished{false};
  std::thread progress([&] {
    std::uint64_t last = 0;
    int second = 0;
    while (!finished.load()) {
      for (int i = 0; i < 10 && !finished.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (finished.load() || !options.progress) continue;
      const std::uint64_t now = shared.done.load();
      std::fprintf(stderr, "[%2ds] %llu requests, %llu req/s\n", ++second,
                   static_cast<unsigned long long>(now),
                   static_cast<unsigned long long>(now - last));
      last = now;
    }
  });
  for (auto& w : workers) w.join();
  finished.store(true);
  progress.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  LoadResult r;
  std::vector<std::uint64_t> hist;
  r.route_requests.assign(shared.mix.routes.size(), 0);
  for (ThreadResult& t : results) {
    for (std::size_t i = 0; i < t.route_requests.size(); ++i) {
      r.route_requests[i] += t.route_requests[i];
    }
    r.requests += t.requests;
    r.errors += t.errors;
    r.connection_errors += t.connection_errors;
    r.bytes += t.bytes;
    for (auto [s, n] : t.statuses) r.statuses[s] += n;
    t.histogram.MergeInto(&hist);
  }
  r.seconds = seconds;
  r.requests_per_second = r.requests / seconds;
  r.bytes_per_second = r.bytes / seconds;
  r.p50_us = LatencyHistogram::Percentile(hist, 50);
  r.p90_us = LatencyHistogram::Percentile(hist, 90);
  r.p99_us = LatencyHistogram::Percentile(hist, 99);
  r.p999_us = LatencyHistogram::Percentile(hist, 99.9);
  r.max_us = LatencyHistogram::Max(hist);
  return r;
}

std::string LoadResultJson(const LoadResult& r) {
  std::string statuses;
  for (auto [s, n] : r.statuses) {
    absl::StrAppend(&statuses, statuses.empty() ? "" : ",", "\"", s, "\":", n);
  }
  return absl::StrCat(
      "{\"requests\":", r.requests, ",\"errors\":", r.errors,
      ",\"connection_errors\":", r.connection_errors, ",\"bytes\":", r.bytes,
      ",\"seconds\":", r.seconds, ",\"requests_per_second\":", r.requests_per_second,
      ",\"bytes_per_second\":", r.bytes_per_second, ",\"latency_us\":{\"p50\":", r.p50_us,
      ",\"p90\":", r.p90_us, ",\"p99\":", r.p99_us, ",\"p999\":", r.p999_us,
      ",\"max\":", r.max_us, "},\"statuses\":{", statuses, "}}");
}

std::string LoadResultText(const LoadResult& r) {
  return absl::StrFormat(
      "requests      %llu in %.2f s\nrequests/s    %.0f\nbytes/s       %.0f\n"
      "errors        %llu (connection errors %llu)\n"
      "latency (us)  p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n",
      static_cast<unsigned long long>(r.requests), r.seconds, r.requests_per_second,
      r.bytes_per_second, static_cast<unsigned long long>(r.errors),
      static_cast<unsigned long long>(r.connection_errors), r.p50_us, r.p90_us, r.p99_us,
      r.p999_us, r.max_us);
}

absl::StatusOr<HttpReply> HttpRequestOnce(const std::string& host, int port,
                                          const std::string& raw) {
  const int fd = Connect(host, port, true);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("connect: ", strerror(errno)));
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::size_t sent = 0;
  while (sent < raw.size()) {
    const ssize_t n = send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += n;
  }
  std::string in;
  char buf[16384];
  HttpReply reply;
  for (;;) {
    std::size_t size;
    bool closes;
    if (ParseResponse(in, &size, &reply.status, &closes) && reply.status != 100) {
      const std::size_t head = in.find("\r\n\r\n");
      reply.headers = in.substr(0, head);
      reply.body = in.substr(head + 4, size - head - 4);
      close(fd);
      return reply;
    }
    if (reply.status == 100 && in.find("\r\n\r\n") != std::string::npos &&
        absl::StartsWith(in, "HTTP/1.1 100")) {
      in.erase(0, in.find("\r\n\r\n") + 4);
      reply.status = 0;
      continue;
    }
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    in.append(buf, n);
  }
  close(fd);
  return absl::UnavailableError(absl::StrCat("connection closed before a complete response (",
                                             in.size(), " bytes received)"));
}

absl::StatusOr<HttpReply> HttpGet(const std::string& host, int port, const std::string& path) {
  return HttpRequestOnce(host, port,
                         absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host,
                                      "\r\nConnection: close\r\n\r\n"));
}

}  // namespace server_demo
