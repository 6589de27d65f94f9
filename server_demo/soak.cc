#include "server_demo/soak.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server_demo/metrics.h"
#include "server_demo/server_config.h"
#include "server_demo/stats_format.h"

namespace server_demo {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kSlowloris = 4;
constexpr int kStalledReaders = 4;
constexpr int kStalledRequests = 32;  // pipelined per stalled reader (~300 KB each): more
                                      // than the kernel buffers (tcp_wmem max 4 MiB)
constexpr int kMalformedPerSecond = 4;
constexpr int kStalledReceiveBuffer = 4096;
constexpr auto kLoadSegment = std::chrono::seconds(5);
constexpr auto kHostileTick = std::chrono::milliseconds(100);
constexpr auto kMalformedWait = std::chrono::seconds(3);

const char kSoakConfig[] =
    "# server_demo soak: the defaults, with short timeouts for hostile clients\n"
    "[server]\nheader_timeout_ms = 3000\nsend_timeout_ms = 5000\n";

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double MiB(double bytes) { return bytes / (1024.0 * 1024.0); }

// ---- the server child ------------------------------------------------------

struct Child {
  pid_t pid = -1;
  FILE* out = nullptr;  // its stdout
  int port = 0;
  bool reaped = false;
  int status = 0;
};

absl::Status StartServer(const SoakOptions& o, const std::string& config, Child* child) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  std::vector<std::string> args = {"/proc/self/exe", "serve", "--port=0",
                                   "--allocator=" + o.allocator,
                                   absl::StrCat("--threads=", o.server_threads),
                                   "--config=" + config};
  if (!o.arena_scope.empty()) args.push_back("--arena_scope=" + o.arena_scope);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(out[1]);
  child->pid = pid;
  child->out = fdopen(out[0], "r");
  char line[256] = {0};
  const char* colon = nullptr;
  if (std::fgets(line, sizeof(line), child->out) == nullptr ||
      !absl::StartsWith(line, "listening on ") || (colon = std::strrchr(line, ':')) == nullptr ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(colon + 1), &child->port)) {
    kill(pid, SIGKILL);
    fclose(child->out);
    waitpid(pid, &child->status, 0);
    child->reaped = true;
    return absl::InternalError(absl::StrCat("the server did not start: '",
                                            absl::StripAsciiWhitespace(line), "'"));
  }
  return absl::OkStatus();
}

// True when the child has exited (its status then in child->status).
bool Exited(Child* child) {
  if (child->reaped) return true;
  if (waitpid(child->pid, &child->status, WNOHANG) == child->pid) child->reaped = true;
  return child->reaped;
}

std::string DescribeExit(int status) {
  if (WIFSIGNALED(status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)),
                        ")");
  }
  return absl::StrCat("exit status ", WEXITSTATUS(status));
}

// SIGTERM, drain its stdout, wait up to `deadline` for it, then SIGKILL.
// True when it exited with status 0 on its own.
bool StopServer(Child* child, std::chrono::seconds deadline, std::string* why) {
  if (!child->reaped) kill(child->pid, SIGTERM);
  const auto until = Clock::now() + deadline;
  const int fd = fileno(child->out);
  char sink[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count());
    if (left <= 0) break;
    if (poll(&p, 1, left) <= 0) break;
    if (read(fd, sink, sizeof(sink)) <= 0) break;  // EOF: the child closed its stdout
  }
  fclose(child->out);
  while (!Exited(child) && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!child->reaped) {
    kill(child->pid, SIGKILL);
    waitpid(child->pid, &child->status, 0);
    child->reaped = true;
    *why = absl::StrCat("the server did not stop within ", deadline.count(),
                        " s of SIGTERM (killed)");
    return false;
  }
  if (!WIFEXITED(child->status) || WEXITSTATUS(child->status) != 0) {
    *why = absl::StrCat("the server did not exit cleanly on SIGTERM: ",
                        DescribeExit(child->status));
    return false;
  }
  return true;
}

long RssBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/statm"));
  long size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return resident * sysconf(_SC_PAGESIZE);
}

// ---- good clients ----------------------------------------------------------

struct GoodClients {
  std::uint64_t requests = 0, connection_errors = 0, unexpected = 0;
  std::map<int, std::uint64_t> statuses;
  std::string failure;  // RunLoad's error, if any
};

void GoodLoop(LoadOptions o, Clock::time_point end, const std::atomic<bool>* stop,
              GoodClients* g) {
  o.progress = false;
  while (!stop->load()) {
    const auto left = end - Clock::now();
    if (left < std::chrono::milliseconds(100)) break;
    o.duration = absl::FromChrono(std::min<Clock::duration>(left, kLoadSegment));
    absl::StatusOr<LoadResult> r = RunLoad(o);
    if (!r.ok()) {
      g->failure = std::string(r.status().message());
      return;
    }
    g->requests += r->requests;
    g->connection_errors += r->connection_errors;
    for (auto [status, n] : r->statuses) g->statuses[status] += n;
  }
}

// ---- hostile clients -------------------------------------------------------

struct Malformed {
  const char* name;
  std::string request;
  int expected;
};

std::vector<Malformed> MalformedRequests() {
  return {
      {"header without colon", "GET /hello HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400},
      {"garbage request line", "GARBAGE\r\n\r\n", 400},
      {"HTTP/9.9", "GET /hello HTTP/9.9\r\nHost: x\r\n\r\n", 505},
      {"no Host", "GET /hello HTTP/1.1\r\n\r\n", 400},
      {"two Hosts", "GET /hello HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
      {"bad chunk size",
       "POST /wordcount HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"bad Content-Length", "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
       400},
      {"bare LF", "GET /hello HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400},
      {"body too large",
       "POST /wordcount HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413},
      {"head too large",
       absl::StrCat("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ", std::string(9000, 'a'),
                    "\r\n\r\n"),
       431},
      {"unknown transfer coding",
       "GET /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"bad items", "GET /json?items=abc HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  };
}

struct HostileStats {
  std::uint64_t slowloris_opened = 0, slowloris_closed = 0, slowloris_408 = 0;
  std::uint64_t stalled_opened = 0, stalled_closed = 0, stalled_recycled = 0;
  std::uint64_t malformed_sent = 0, malformed_expected = 0, malformed_503 = 0,
                malformed_no_answer = 0, malformed_unexpected = 0;
  std::uint64_t connect_failures = 0;
  std::string unexpected;  // the first few, described
};

// A blocking connect (2 s timeout), then non-blocking.
int ConnectTo(int port, int receive_buffer) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (receive_buffer > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  }
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, 1000) <= 0) return false;
      continue;
    }
    if (n <= 0) return false;
    sent += n;
  }
  return true;
}

// Reads what is there without blocking; false when the peer closed (EOF or
// error).
bool Drain(int fd, std::string* in) {
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      if (in->size() < 1024) in->append(buf, n);
      continue;
    }
    if (n == 0) return false;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
}

int StatusOf(const std::string& in) {
  if (in.size() < 12 || !absl::StartsWith(in, "HTTP/1.")) return 0;
  return std::atoi(in.c_str() + 9);
}

void HostileLoop(int port, std::int64_t send_timeout_ms, const std::atomic<bool>* stop,
                 HostileStats* h) {
  struct Slow {
    int fd = -1;
    std::string in;
  };
  struct Stalled {
    int fd = -1;
    Clock::time_point opened;
  };
  struct Pending {
    int fd;
    std::size_t which;
    Clock::time_point sent;
    std::string in;
  };
  const std::vector<Malformed> malformed = MalformedRequests();
  std::vector<Slow> slow(kSlowloris);
  std::vector<Stalled> stalled(kStalledReaders);
  std::vector<Pending> pending;
  std::string stalled_request;
  for (int i = 0; i < kStalledRequests; ++i) {
    absl::StrAppend(&stalled_request, "GET /json?items=2000 HTTP/1.1\r\nHost: soak\r\n\r\n");
  }
  // The server closes a stalled reader after send_timeout_ms, but its FIN
  // waits behind the unread response, so the client cannot see it: recycle.
  const auto hold = std::chrono::milliseconds(send_timeout_ms + 2000);
  auto next_second = Clock::now();
  auto next_malformed = Clock::now();
  std::size_t malformed_index = 0;
  auto note_unexpected = [&](const std::string& what) {
    ++h->malformed_unexpected;
    if (h->malformed_unexpected <= 5) absl::StrAppend(&h->unexpected, "\n    ", what);
  };
  while (!stop->load()) {
    const auto now = Clock::now();
    if (now >= next_second) {
      next_second += std::chrono::seconds(1);
      for (Slow& s : slow) {
        if (s.fd >= 0) {
          const bool open = Drain(s.fd, &s.in) && s.in.empty() && SendAll(s.fd, "a");
          if (!open) {
            ++h->slowloris_closed;
            if (StatusOf(s.in) == 408) ++h->slowloris_408;
            close(s.fd);
            s.fd = -1;
          }
          continue;
        }
        s.in.clear();
        s.fd = ConnectTo(port, 0);
        if (s.fd < 0) {
          ++h->connect_failures;
          continue;
        }
        ++h->slowloris_opened;
        SendAll(s.fd, "GET /hello HTTP/1.1\r\nHost: soak\r\nX-Slow: ");
      }
      for (Stalled& s : stalled) {
        if (s.fd >= 0) {
          pollfd p{s.fd, POLLRDHUP, 0};
          const bool closed = poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
          const bool old = now - s.opened > hold;
          if (!closed && !old) continue;
          ++(closed ? h->stalled_closed : h->stalled_recycled);
          close(s.fd);
          s.fd = -1;
          continue;
        }
        s.fd = ConnectTo(port, kStalledReceiveBuffer);
        if (s.fd < 0) {
          ++h->connect_failures;
          continue;
        }
        ++h->stalled_opened;
        s.opened = now;
        SendAll(s.fd, stalled_request);
      }
    }
    while (now >= next_malformed) {
      next_malformed += std::chrono::milliseconds(1000 / kMalformedPerSecond);
      const std::size_t which = malformed_index++ % malformed.size();
      const int fd = ConnectTo(port, 0);
      if (fd < 0) {
        ++h->connect_failures;
        continue;
      }
      ++h->malformed_sent;
      SendAll(fd, malformed[which].request);
      pending.push_back({fd, which, now, ""});
    }
    for (std::size_t i = 0; i < pending.size();) {
      Pending& p = pending[i];
      const bool open = Drain(p.fd, &p.in);
      const int status = StatusOf(p.in);
      const bool head = p.in.find("\r\n") != std::string::npos;
      if (!head && open && now - p.sent < kMalformedWait) {
        ++i;
        continue;
      }
      const Malformed& m = malformed[p.which];
      if (!head) {
        ++h->malformed_no_answer;
      } else if (status == m.expected) {
        ++h->malformed_expected;
      } else if (status == 503) {
        ++h->malformed_503;
      } else {
        note_unexpected(absl::StrCat(m.name, ": expected ", m.expected, ", got '",
                                     p.in.substr(0, p.in.find("\r\n")), "'"));
      }
      close(p.fd);
      pending[i] = std::move(pending.back());
      pending.pop_back();
    }
    std::this_thread::sleep_for(kHostileTick);
  }
  for (Slow& s : slow) {
    if (s.fd >= 0) close(s.fd);
  }
  for (Stalled& s : stalled) {
    if (s.fd >= 0) close(s.fd);
  }
  for (Pending& p : pending) close(p.fd);
}

// ---- samples, CSV, plot (one row a second) -------------------------------

struct Sample {
  double t = 0;
  double rss = 0, mapped = 0, p_now = 0, live = 0, requests = 0, open = 0, pinned = 0;
};

const char kCsvHeader[] =
    "seconds,rss_bytes,mapped_bytes,fragmentation_p,live_request_bytes,requests_total,"
    "connections_open,pinned_bytes\n";

std::string CsvRow(const Sample& s) {
  return absl::StrFormat("%.0f,%.0f,%.0f,%.4f,%.0f,%.0f,%.0f,%.0f\n", s.t, s.rss, s.mapped,
                         s.p_now, s.live, s.requests, s.open, s.pinned);
}

absl::Status Plot(const std::string& png, const std::string& title,
                  const std::vector<Sample>& samples, double warmup, double slope_a,
                  double slope_b, bool have_slope) {
  FILE* gp = popen("gnuplot", "w");
  if (gp == nullptr) return absl::UnavailableError("cannot start gnuplot");
  const bool minutes = !samples.empty() && samples.back().t > 300;
  const double unit = minutes ? 60.0 : 1.0;
  std::string script = "$soak << EOD\n";
  for (const Sample& s : samples) {
    absl::StrAppend(&script, absl::StrFormat("%.3f %.3f %.3f %.4f\n", s.t / unit, MiB(s.rss),
                                             MiB(s.mapped), s.p_now));
  }
  absl::StrAppend(
      &script, "EOD\n", "set terminal pngcairo size 1000,720 noenhanced\n", "set output '", png,
      "'\n", "set multiplot layout 2,1 title '", title, "'\n",
      "set grid\nset key below\nset xlabel '", minutes ? "minutes" : "seconds", "'\n",
      absl::StrFormat("set arrow from %.3f, graph 0 to %.3f, graph 1 nohead dt 2\n"
                      "set label ' end of warm-up' at %.3f, graph 0.1\nset xrange [0:*]\n",
                      warmup / unit, warmup / unit, warmup / unit),
      "set ylabel 'MiB'\nset yrange [0:*]\nplot $soak using 1:2 with lines lw 2 title "
      "'server RSS', $soak using 1:3 with lines lw 1 title 'allocator mapped bytes'");
  if (have_slope) {
    // The least-squares line, drawn over the samples after the warm-up.
    absl::StrAppend(&script, absl::StrFormat(
                                 ", [%.3f:*] (%.6f + %.9f * x * %.1f) / 1048576.0 with lines "
                                 "lw 2 dt 2 lc rgb 'black' title 'RSS least-squares trend after the warm-up'",
                                 warmup / unit, slope_a, slope_b, unit));
  }
  absl::StrAppend(&script,
                  "\nunset arrow\nunset label\nset ylabel 'P = (RSS - live) / RSS'\nset yrange [0:1]\n"
                  "plot $soak using 1:4 with lines lw 1 title 'P (now, sampled each second)'\n"
                  "unset multiplot\n");
  std::fwrite(script.data(), 1, script.size(), gp);
  const int status = pclose(gp);
  if (status != 0) {
    return absl::InternalError(absl::StrCat(
        "gnuplot failed (status ", status, "); tools/setup.sh demo installs gnuplot-nox"));
  }
  return absl::OkStatus();
}

}  // namespace

double SoakWarmupSeconds(double duration_s) {
  return std::max(0.2 * duration_s, std::min(30.0, 0.5 * duration_s));
}

bool SlopePercentPer10Min(const std::vector<double>& t, const std::vector<double>& rss,
                          double* pct) {
  const std::size_t n = std::min(t.size(), rss.size());
  if (n < 3) return false;
  double mt = 0, mr = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mt += t[i];
    mr += rss[i];
  }
  mt /= n;
  mr /= n;
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sxy += (t[i] - mt) * (rss[i] - mr);
    sxx += (t[i] - mt) * (t[i] - mt);
  }
  if (sxx <= 0 || mr <= 0) return false;
  *pct = 100.0 * (sxy / sxx) * 600.0 / mr;
  return true;
}

int RunSoak(const SoakOptions& o) {
  std::string config = o.config_path;
  const bool own_config = config.empty();
  if (own_config) {
    absl::StatusOr<std::string> path = WriteTempConfigFile(
        "server_demo_soak_", absl::string_view(kSoakConfig, sizeof(kSoakConfig) - 1));
    if (!path.ok()) {
      std::fprintf(stderr, "server_demo: soak: temporary config file: %s\n",
                   std::string(path.status().message()).c_str());
      return 1;
    }
    config = *path;
  }
  Child child;
  absl::Status started = StartServer(o, config, &child);
  if (own_config) unlink(config.c_str());
  if (!started.ok()) {
    std::fprintf(stderr, "server_demo: soak: %s\n", std::string(started.message()).c_str());
    return 1;
  }
  std::FILE* csv = nullptr;
  if (!o.csv.empty()) {
    csv = std::fopen(o.csv.c_str(), "w");
    if (csv == nullptr) {
      std::string ignored;
      StopServer(&child, std::chrono::seconds(15), &ignored);
      std::fprintf(stderr, "server_demo: soak: cannot write '%s'\n", o.csv.c_str());
      return 1;
    }
    std::fputs(kCsvHeader, csv);
  }
  const double duration_s = absl::ToDoubleSeconds(o.duration);
  const int rows = std::max(1, static_cast<int>(std::ceil(duration_s)));
  const double warmup = SoakWarmupSeconds(rows);
  const std::string mix = o.load.mix.routes.empty() ? o.load.path : o.load.mix.ToString();
  std::fprintf(stderr,
               "soak: %s server (pid %d) on port %d, %d thread(s); GET %s over %d connections "
               "for %d s; hostile: %d slowloris, %d stalled readers, %d malformed/s\n",
               o.allocator.c_str(), static_cast<int>(child.pid), child.port, o.server_threads,
               mix.c_str(), o.load.connections, rows, kSlowloris, kStalledReaders,
               kMalformedPerSecond);
  absl::StatusOr<HttpReply> first = HttpGet("127.0.0.1", child.port, "/stats");
  const std::string first_stats = first.ok() ? first->body : "";

  const auto start = Clock::now();
  std::atomic<bool> stop{false};
  LoadOptions load = o.load;
  load.host = "127.0.0.1";
  load.port = child.port;
  GoodClients good;
  HostileStats hostile;
  std::thread good_thread(GoodLoop, load, start + std::chrono::seconds(rows), &stop, &good);
  std::thread hostile_thread(HostileLoop, child.port, o.send_timeout_ms, &stop, &hostile);

  std::vector<Sample> samples;
  std::string died;
  Sample last;
  std::uint64_t stats_failures = 0;
  for (int k = 1; k <= rows; ++k) {
    std::this_thread::sleep_until(start + std::chrono::seconds(k));
    if (Exited(&child)) {
      died = absl::StrCat("the server died after ", k - 1, " s: ", DescribeExit(child.status));
      break;
    }
    Sample s = last;
    s.t = k;
    s.rss = static_cast<double>(RssBytes(child.pid));
    absl::StatusOr<HttpReply> stats = HttpGet("127.0.0.1", child.port, "/stats");
    if (stats.ok() && stats->status == 200) {
      const std::string& b = stats->body;
      s.mapped = JsonNumber(b, "allocator", "mapped_bytes");
      s.p_now = JsonNumber(b, "fragmentation_under_load", "now");
      s.live = JsonNumber(b, "memory", "live_request_bytes");
      s.requests = JsonNumber(b, "server", "requests");
      s.open = JsonNumber(b, "server", "connections_open");
      s.pinned = JsonNumber(b, "server", "pinned_bytes");
    } else {
      ++stats_failures;
    }
    if (s.rss == 0 && Exited(&child)) {
      died = absl::StrCat("the server died after ", k - 1, " s: ", DescribeExit(child.status));
      break;
    }
    last = s;
    samples.push_back(s);
    if (csv != nullptr) {
      std::fputs(CsvRow(s).c_str(), csv);
      std::fflush(csv);
    }
    if (k % 10 == 0 || k == rows) {
      std::fprintf(stderr, "[%4ds] RSS %.1f MiB, mapped %.1f MiB, P %.3f, %.0f requests\n", k,
                   MiB(s.rss), MiB(s.mapped), s.p_now, s.requests);
    }
  }
  stop.store(true);
  good_thread.join();
  hostile_thread.join();
  if (csv != nullptr) std::fclose(csv);
  const double elapsed = Seconds(Clock::now() - start);

  std::string final_stats;
  if (died.empty()) {
    absl::StatusOr<HttpReply> stats = HttpGet("127.0.0.1", child.port, "/stats");
    if (stats.ok()) final_stats = stats->body;
  }
  std::string stop_failure;
  const bool clean_exit =
      !died.empty() || StopServer(&child, std::chrono::seconds(15), &stop_failure);
  if (!died.empty()) {
    std::string ignored;
    StopServer(&child, std::chrono::seconds(1), &ignored);
  }

  // ---- figures and verdict ----
  std::vector<std::string> failures;
  if (!died.empty()) failures.push_back(died);
  if (!clean_exit) failures.push_back(stop_failure);
  std::vector<double> t, rss;
  double rss_peak = 0, mapped_peak = 0;
  for (const Sample& s : samples) {
    rss_peak = std::max(rss_peak, s.rss);
    mapped_peak = std::max(mapped_peak, s.mapped);
    if (s.t > warmup) {
      t.push_back(s.t);
      rss.push_back(s.rss);
    }
  }
  double slope = 0;
  const bool have_slope = SlopePercentPer10Min(t, rss, &slope);
  if (have_slope && slope > o.max_slope_pct) {
    failures.push_back(absl::StrFormat(
        "RSS grows %.2f %% per 10 min after the %.0f s warm-up (limit %g %%): a leak?", slope,
        warmup, o.max_slope_pct));
  }
  std::uint64_t bad_status = 0;
  std::string statuses;
  for (auto [status, n] : good.statuses) {
    absl::StrAppend(&statuses, statuses.empty() ? "" : ", ", status, ": ", n);
    if (status < 100 || (status >= 500 && status != 503)) bad_status += n;
  }
  good.unexpected = bad_status + good.connection_errors;
  if (good.unexpected > 0) {
    failures.push_back(absl::StrCat("good clients saw ", good.unexpected,
                                    " unexpected errors (", bad_status,
                                    " responses other than 2xx/3xx/4xx/503, ",
                                    good.connection_errors, " connection errors)"));
  }
  if (!good.failure.empty() && died.empty()) {
    failures.push_back(absl::StrCat("good clients: ", good.failure));
  }
  if (hostile.malformed_unexpected > 0) {
    failures.push_back(absl::StrCat(hostile.malformed_unexpected,
                                    " malformed requests got an unexpected answer:",
                                    hostile.unexpected));
  }

  const std::string& end_stats = final_stats;
  std::string closed;
  for (int i = 0; i < kCloseReasons; ++i) {
    const char* name = CloseReasonName(static_cast<CloseReason>(i));
    const double n = JsonNumber(end_stats, "closed_by_reason", name) -
                     JsonNumber(first_stats, "closed_by_reason", name);
    if (n > 0) absl::StrAppend(&closed, closed.empty() ? "" : ", ", name, " ", n);
  }
  std::string rejected;
  for (int i = 0; i < kRejectReasons; ++i) {
    const char* name = RejectReasonName(static_cast<RejectReason>(i));
    const double n = JsonNumber(end_stats, "rejected_by_reason", name) -
                     JsonNumber(first_stats, "rejected_by_reason", name);
    if (n > 0) absl::StrAppend(&rejected, rejected.empty() ? "" : ", ", name, " ", n);
  }
  const Sample first_sample = samples.empty() ? Sample() : samples.front();
  const Sample last_sample = samples.empty() ? Sample() : samples.back();
  const double served = end_stats.empty() ? last_sample.requests
                                          : JsonNumber(end_stats, "server", "requests");
  std::string out = absl::StrFormat(
      "\nserver_demo soak: GET %s, %d connections, %d %s server thread(s), %d slowloris, "
      "%d stalled readers (%d x /json?items=2000 each), %d malformed requests/s\n\n",
      mix, o.load.connections, o.server_threads, o.allocator, kSlowloris, kStalledReaders,
      kStalledRequests, kMalformedPerSecond);
  absl::StrAppend(
      &out,
      absl::StrFormat("duration           %.1f s, %zu samples (one a second)\n", elapsed,
                      samples.size()),
      absl::StrFormat("requests served    %.0f by the server (%.0f/s); good clients got %llu "
                      "responses (%s)\n",
                      served, elapsed > 0 ? served / elapsed : 0.0,
                      static_cast<unsigned long long>(good.requests), statuses),
      absl::StrFormat("good-client errors %llu unexpected (connection errors %llu)\n",
                      static_cast<unsigned long long>(good.unexpected),
                      static_cast<unsigned long long>(good.connection_errors)),
      absl::StrFormat("RSS                start %.1f MiB, end %.1f MiB, peak %.1f MiB\n",
                      MiB(first_sample.rss), MiB(last_sample.rss), MiB(rss_peak)),
      have_slope
          ? absl::StrFormat("RSS slope          %+.3f %% per 10 min (least squares over %zu "
                            "samples after a %.0f s warm-up; limit %g %%)\n",
                            slope, t.size(), warmup, o.max_slope_pct)
          : absl::StrFormat("RSS slope          n/a (fewer than 3 samples after the %.0f s "
                            "warm-up)\n",
                            warmup),
      absl::StrFormat("mapped bytes       start %.1f MiB, end %.1f MiB, peak %.1f MiB\n",
                      MiB(first_sample.mapped), MiB(last_sample.mapped), MiB(mapped_peak)),
      absl::StrFormat("P under load       avg %.3f, peak %.3f (server sampler, every 10 ms "
                      "under load)\n",
                      JsonNumber(end_stats, "fragmentation_under_load", "avg"),
                      JsonNumber(end_stats, "fragmentation_under_load", "peak")),
      absl::StrFormat("closed by server   %s\n", closed.empty() ? "-" : closed),
      absl::StrFormat("503 by reason      %s\n", rejected.empty() ? "-" : rejected),
      absl::StrFormat("hostile clients    slowloris: %llu opened, %llu closed by the server "
                      "(%llu with 408)\n",
                      static_cast<unsigned long long>(hostile.slowloris_opened),
                      static_cast<unsigned long long>(hostile.slowloris_closed),
                      static_cast<unsigned long long>(hostile.slowloris_408)),
      absl::StrFormat("                   stalled readers: %llu opened, %llu seen closed by "
                      "the server, %llu recycled by the client (held send_timeout_ms + 2 s)\n",
                      static_cast<unsigned long long>(hostile.stalled_opened),
                      static_cast<unsigned long long>(hostile.stalled_closed),
                      static_cast<unsigned long long>(hostile.stalled_recycled)),
      absl::StrFormat("                   malformed: %llu sent, %llu got the expected 4xx/5xx, "
                      "%llu got 503, %llu no answer, %llu unexpected\n",
                      static_cast<unsigned long long>(hostile.malformed_sent),
                      static_cast<unsigned long long>(hostile.malformed_expected),
                      static_cast<unsigned long long>(hostile.malformed_503),
                      static_cast<unsigned long long>(hostile.malformed_no_answer),
                      static_cast<unsigned long long>(hostile.malformed_unexpected)));
  if (hostile.connect_failures > 0 || stats_failures > 0) {
    absl::StrAppend(&out, absl::StrFormat("notes              %llu hostile connect failures, "
                                          "%llu /stats reads failed (previous values kept)\n",
                                          static_cast<unsigned long long>(hostile.connect_failures),
                                          static_cast<unsigned long long>(stats_failures)));
  }
  if (!o.csv.empty()) absl::StrAppend(&out, "csv                ", o.csv, "\n");
  if (!o.plot.empty() && !samples.empty()) {
    double a = 0, b = 0;
    if (have_slope) {
      // Back from % per 10 min to bytes: rss = a + b t, through the means.
      double mt = 0, mr = 0;
      for (std::size_t i = 0; i < t.size(); ++i) {
        mt += t[i];
        mr += rss[i];
      }
      mt /= t.size();
      mr /= t.size();
      b = slope / 100.0 * mr / 600.0;
      a = mr - b * mt;
    }
    absl::Status s = Plot(o.plot, absl::StrFormat("server_demo soak: GET %s, %.0f s, RSS "
                                                  "slope %+.2f %%/10 min",
                                                  mix, elapsed, slope),
                          samples, warmup, a, b, have_slope);
    if (!s.ok()) {
      failures.push_back(std::string(s.message()));
    } else {
      absl::StrAppend(&out, "plot               ", o.plot, "\n");
    }
  }
  if (failures.empty()) {
    absl::StrAppend(&out, "result             PASS\n");
  } else {
    absl::StrAppend(&out, "result             FAIL\n");
    for (const std::string& f : failures) absl::StrAppend(&out, "  - ", f, "\n");
  }
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
  for (const std::string& f : failures) std::fprintf(stderr, "server_demo: soak: %s\n", f.c_str());
  return failures.empty() ? 0 : 1;
}

}  // namespace server_demo
