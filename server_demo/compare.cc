#include "server_demo/compare.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server_demo/stats_format.h"

namespace server_demo {
namespace {

long ProcStatusKiB(pid_t pid, const char* field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, field)) {
      return std::strtol(line.c_str() + std::strlen(field) + 1, nullptr, 10);
    }
  }
  return 0;
}

}  // namespace

const std::vector<CompareRow>& CompareRows() {
  static const auto* rows = new std::vector<CompareRow>{
      {"requests/s", &RunFigures::rps, true, "%.0f", false,
       "requests/s: complete responses per second seen by the load generator"},
      {"p99 latency (us)", &RunFigures::p99_us, false, "%.0f", false,
       "p99 latency: 99th percentile, send to complete response, at the load generator"},
      {"slow paths/request", &RunFigures::slow_paths_per_request, false, "%.2f", true,
       "slow paths/request: arena allocations off the inline bump path (new block, large, reuse)"},
      {"request waste", &RunFigures::request_waste, false, "%.3f", false,
       "request waste: (held - requested) / held summed over requests; requested = the "
       "request's peak live bytes, held = the most its allocator held for it (arena: blocks "
       "and large mappings; malloc: malloc_usable_size of its live allocations)"},
      {"P under load, avg", &RunFigures::p_avg, false, "%.3f", false,
       "P under load: (RSS - live request bytes) / RSS, sampled every 10 ms by a server thread "
       "that is not a worker while requests are in flight; avg over the samples"},
      {"P under load, peak", &RunFigures::p_peak, false, "%.3f", false,
       "P peak: the highest of those samples"},
      {"peak RSS (KiB)", &RunFigures::peak_rss_kib, false, "%.0f", false,
       "peak RSS: the server's VmHWM (whole process: code, stacks, buffers, allocator)"},
      {"peak live req (KiB)", &RunFigures::peak_live_kib, false, "%.0f", false,
       "peak live req: most bytes of requests in flight (unsent responses included), sampled"},
      {"peak RSS / peak live", &RunFigures::rss_over_live, false, "%.1f", false,
       "peak RSS / peak live: process memory per byte of request data at the peaks"},
      {"RSS after idle (KiB)", &RunFigures::rss_after_kib, false, "%.0f", false,
       "RSS after idle: VmRSS 2.5 s after the load, once idle memory was released"},
      {"bytes/request", &RunFigures::bytes_per_request, false, "%.0f", false,
       "bytes/request: bytes requests asked for, mean"},
      {"errors", &RunFigures::errors, false, "%.0f", false,
       "errors: responses >= 400 and connection errors"},
  };
  return *rows;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double MedianOf(const std::vector<RunFigures>& runs, double RunFigures::*field) {
  std::vector<double> x;
  for (const RunFigures& f : runs) x.push_back(f.*field);
  return Median(x);
}

absl::StatusOr<RunFigures> RunServerUnderLoad(const RunSpec& spec) {
  int out[2];
  if (pipe(out) != 0) return absl::InternalError("pipe failed");
  std::vector<std::string> args = {"/proc/self/exe", "serve", "--port=0",
                                   "--allocator=" + spec.allocator,
                                   absl::StrCat("--threads=", spec.server_threads)};
  if (!spec.config_path.empty()) args.push_back("--config=" + spec.config_path);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(out[1]);
  FILE* child_out = fdopen(out[0], "r");
  auto stop = [&](int sig) {
    kill(pid, sig);
    char sink[4096];
    while (std::fgets(sink, sizeof(sink), child_out) != nullptr) {
    }
    fclose(child_out);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  };
  char line[256] = {0};
  if (std::fgets(line, sizeof(line), child_out) == nullptr) {
    stop(SIGKILL);
    return absl::InternalError(
        absl::StrCat("the ", spec.allocator, " server exited before listening"));
  }
  int port = 0;
  const char* colon = std::strrchr(line, ':');
  if (!absl::StartsWith(line, "listening on ") || colon == nullptr ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(colon + 1), &port)) {
    stop(SIGKILL);
    return absl::InternalError(absl::StrCat("unexpected first line from the server: ", line));
  }
  LoadOptions o = spec.load;
  o.host = "127.0.0.1";
  o.port = port;
  std::fprintf(stderr, "%s: %s server on port %d, %s for %s\n",
               spec.label.empty() ? "compare" : spec.label.c_str(), spec.allocator.c_str(), port,
               o.mix.routes.empty() ? o.path.c_str() : o.mix.ToString().c_str(),
               absl::FormatDuration(o.duration).c_str());
  RunFigures f;
  std::atomic<bool> done{false};
  std::thread poller;
  if (spec.series) {
    poller = std::thread([&] {
      const auto start = std::chrono::steady_clock::now();
      while (!done.load(std::memory_order_relaxed)) {
        absl::StatusOr<HttpReply> reply = HttpGet("127.0.0.1", port, "/stats");
        if (reply.ok()) {
          SeriesPoint p;
          p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                          .count();
          p.rss_mib = JsonNumber(reply->body, "memory", "rss_bytes") / (1024.0 * 1024.0);
          p.fragmentation = JsonNumber(reply->body, "fragmentation_under_load", "now");
          if (p.rss_mib > 0) f.series.push_back(p);  // 0: no sample taken yet
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  absl::StatusOr<LoadResult> r = RunLoad(o);
  done.store(true, std::memory_order_relaxed);
  if (poller.joinable()) poller.join();
  if (!r.ok()) {
    stop(SIGKILL);
    return r.status();
  }
  f.rps = r->requests_per_second;
  f.p99_us = r->p99_us;
  f.errors = r->errors;
  absl::StatusOr<HttpReply> stats = HttpGet("127.0.0.1", port, "/stats");
  if (!stats.ok()) {
    stop(SIGKILL);
    return stats.status();
  }
  f.stats = stats->body;
  const std::string& s = f.stats;
  f.bytes_per_request = JsonNumber(s, "server", "request_bytes_per_request");
  f.request_waste = JsonNumber(s, "request_footprint", "request_waste");
  f.slow_paths_per_request = JsonNumber(s, "request_footprint", "slow_paths_per_request");
  f.p_avg = JsonNumber(s, "fragmentation_under_load", "avg");
  f.p_peak = JsonNumber(s, "fragmentation_under_load", "peak");
  f.peak_live_kib = JsonNumber(s, "memory", "peak_live_request_bytes") / 1024;
  const double requests = JsonNumber(s, "server", "requests");
  if (spec.allocator == "arena" && requests > 0) {
    f.thread_cache_misses_per_request = JsonNumber(s, "allocator", "thread_cache_misses") / requests;
  }
  // Let idle memory go back (release delay + an idle tick), then look again.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  f.peak_rss_kib = ProcStatusKiB(pid, "VmHWM:");
  f.rss_after_kib = ProcStatusKiB(pid, "VmRSS:");
  f.rss_over_live = f.peak_live_kib > 0 ? f.peak_rss_kib / f.peak_live_kib : 0;
  const int status = stop(SIGTERM);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("the ", spec.allocator, " server did not exit cleanly"));
  }
  return f;
}

std::string CompareTable(const std::vector<RunFigures>& left, const std::vector<RunFigures>& right,
                         const char* left_name, const char* right_name, bool right_is_malloc,
                         const std::vector<std::string>& only, bool right_first) {
  auto line = [&](const std::string& name, const std::string& l, const std::string& r,
                  const std::string& ratio) {
    return absl::StrFormat("%-22s %14s %14s %14s\n", name, right_first ? r : l,
                           right_first ? l : r, ratio);
  };
  std::string out = line("metric", left_name, right_name,
                         absl::StrCat(left_name, " better*"));
  std::string definitions;
  for (const CompareRow& row : CompareRows()) {
    if (!only.empty() && std::find(only.begin(), only.end(), row.name) == only.end()) continue;
    const double a = MedianOf(left, row.field), m = MedianOf(right, row.field);
    const bool na = row.arena_only && right_is_malloc;
    double ratio = 0;
    if (row.higher_is_better) {
      ratio = m == 0 ? 0 : a / m;
    } else {
      ratio = a == 0 ? (m == 0 ? 1 : 0) : m / a;
    }
    const bool no_ratio = na || std::strcmp(row.name, "errors") == 0 || (a == 0 && m == 0);
    absl::StrAppend(&out, line(row.name, absl::StrFormat(row.format, a),
                               na ? std::string("-") : absl::StrFormat(row.format, m),
                               no_ratio ? std::string("-") : absl::StrFormat("%.2f", ratio)));
    absl::StrAppend(&definitions, "  ", row.definition, "\n");
  }
  absl::StrAppend(&out, "\n* ", left_name, "/", right_name, ", or ", right_name, "/", left_name,
                  " where lower is better: above 1 means ", left_name, " is better\n",
                  definitions);
  return out;
}

absl::Status PlotSeries(const std::string& png, const std::string& title,
                        const std::vector<std::pair<std::string, const RunFigures*>>& runs) {
  FILE* gp = popen("gnuplot", "w");
  if (gp == nullptr) return absl::UnavailableError("cannot start gnuplot");
  std::string script;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    absl::StrAppend(&script, "$run", i, " << EOD\n");
    for (const SeriesPoint& p : runs[i].second->series) {
      absl::StrAppend(&script, absl::StrFormat("%.2f %.3f %.4f\n", p.seconds, p.rss_mib,
                                               p.fragmentation));
    }
    absl::StrAppend(&script, "EOD\n");
  }
  absl::StrAppend(&script, "set terminal pngcairo size 1000,720 noenhanced\n",
                  "set output '", png, "'\n", "set multiplot layout 2,1 title '", title, "'\n",
                  "set grid\nset key below\nset xlabel 'seconds'\n",
                  "set ylabel 'RSS (MiB)'\nset yrange [0:*]\nplot ");
  for (std::size_t i = 0; i < runs.size(); ++i) {
    absl::StrAppend(&script, i == 0 ? "" : ", ", "$run", i, " using 1:2 with lines lw 2 title '",
                    runs[i].first, "'");
  }
  absl::StrAppend(&script, "\nset ylabel 'P = (RSS - live) / RSS'\nset yrange [0:1]\nplot ");
  for (std::size_t i = 0; i < runs.size(); ++i) {
    absl::StrAppend(&script, i == 0 ? "" : ", ", "$run", i, " using 1:3 with lines lw 2 title '",
                    runs[i].first, "'");
  }
  absl::StrAppend(&script, "\nunset multiplot\n");
  std::fwrite(script.data(), 1, script.size(), gp);
  const int status = pclose(gp);
  if (status != 0) {
    return absl::InternalError(absl::StrCat(
        "gnuplot failed (status ", status, "); tools/setup.sh demo installs gnuplot-nox"));
  }
  return absl::OkStatus();
}

}  // namespace server_demo
