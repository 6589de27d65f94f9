// server_demo: an HTTP/1.1 server that allocates per request from arenas,
// a load generator, and a side-by-side allocator comparison.
//
//   server_demo serve   [--port=8080] [--bind=127.0.0.1] [--threads=N]
//                       [--config=FILE] [--allocator=arena|malloc]
//   server_demo load    --target=HOST:PORT [--path=/hello | --mix=SPEC]
//                       [--connections=64] [--threads=2] [--duration=10s]
//                       [--requests=0] [--json]
//   server_demo compare [--path | --mix] [--connections] [--threads] [--duration]
//                       [--config] [--runs=1] [--server_threads=1] [--json]
//                       [--plot=FILE.png]
//   server_demo tune    [--mix | --path] [--connections] [--threads] [--duration]
//                       [--config] [--server_threads=1] [--apply] [--runs=1]
//                       [--save=FILE] | --target=HOST:PORT [--window=10s]
//   server_demo soak    [--mix | --path] [--connections] [--threads] [--duration=10m]
//                       [--config] [--allocator] [--server_threads=1] [--csv=FILE]
//                       [--plot=FILE.png] [--max_slope_pct=1]
//
// Exit status: 0 success, 2 bad flags or config, 1 any other failure.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "arena/arena.h"
#include "server_demo/compare.h"
#include "server_demo/load.h"
#include "server_demo/mix.h"
#include "server_demo/soak.h"
#include "server_demo/stats_format.h"
#include "server_demo/tune.h"
#include "server_demo/server.h"
#include "server_demo/server_config.h"

ABSL_FLAG(int, port, 8080, "serve: port to listen on; 0 picks a free port");
ABSL_FLAG(std::string, bind, "127.0.0.1", "serve: IPv4 address to listen on");
ABSL_FLAG(int, threads, -1,
          "serve: worker threads (default: number of cores); load and compare: "
          "load-generator threads (default 2)");
ABSL_FLAG(std::string, config, "", "TOML file with [server] and [arena] tables");
ABSL_FLAG(std::string, allocator, "arena", "serve: 'arena' or 'malloc'");
ABSL_FLAG(std::string, arena_scope, "",
          "serve: 'connection' (one arena per connection, Reset per response) or "
          "'request' (a fresh arena per request); default from the config");
ABSL_FLAG(std::string, target, "",
          "load: HOST:PORT of the server (required); tune: read that server's /stats");
ABSL_FLAG(std::string, path, "/hello", "load, compare, tune: request path");
ABSL_FLAG(std::string, mix, "",
          "load, compare, tune: weighted route mix instead of --path, "
          "PATH[:WEIGHT],... e.g. '/json?items=50:8,/json?items=2000:2,/hello:10'");
ABSL_FLAG(std::string, plot, "",
          "compare, soak: draw RSS and P over time into this PNG (gnuplot)");
ABSL_FLAG(std::string, csv, "", "soak: write one row of samples per second to this CSV file");
ABSL_FLAG(double, max_slope_pct, 1.0,
          "soak: fail when the RSS slope after the warm-up exceeds this many % per 10 minutes");
ABSL_FLAG(bool, apply, false, "tune: re-run with the recommendation and print before/after");
ABSL_FLAG(absl::Duration, window, absl::Seconds(10), "tune --target: how long to watch /stats");
ABSL_FLAG(std::string, save, "", "tune: also write the recommended [arena] snippet to this file");
ABSL_FLAG(double, memory_budget, 0.10,
          "tune: extra memory a recommendation may hold, as a fraction of peak RSS");
ABSL_FLAG(int, connections, 64, "load, compare: keep-alive connections");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10),
          "load, compare, soak: how long to run (per allocator for compare; soak: default "
          "10m)");
ABSL_FLAG(int64_t, requests, 0, "load: stop after this many requests; 0: duration only");
ABSL_FLAG(bool, json, false, "load, compare: print the result as one JSON object");
ABSL_FLAG(int, runs, 1,
          "compare, tune --apply: runs per side (alternating); the table shows medians");
ABSL_FLAG(int, server_threads, 1, "compare, tune, soak: worker threads of each server");

namespace server_demo {
namespace {

constexpr int kExitBadInput = 2;

const char kUsage[] =
    "usage: server_demo serve|load|compare|tune|soak [flags]\n"
    "  serve    run the HTTP server (prints 'listening on ADDRESS:PORT' first)\n"
    "  load     drive a server: --target=HOST:PORT [--path or --mix, --connections\n"
    "           --threads --duration --requests --json]\n"
    "  compare  run the server once per allocator (arena, malloc) under the same\n"
    "           load and print a side-by-side table [--plot=FILE.png]\n"
    "  tune     measure a route mix (or --target's /stats over --window) and print\n"
    "           recommended [arena] values and a TOML snippet [--apply --save=FILE]\n"
    "  soak     run a server under the route mix plus hostile clients (slowloris,\n"
    "           stalled readers, malformed requests) for --duration (default 10m);\n"
    "           sample RSS, mapped bytes and P every second [--csv=FILE --plot=FILE.png];\n"
    "           fail if RSS grows faster than --max_slope_pct (default 1) % per 10 min\n"
    "           after the warm-up (least squares; warm-up 20% of the run, at least 30 s\n"
    "           or half a shorter run), good clients get errors other than 4xx/503, or\n"
    "           the server dies\n"
    "  --mix    PATH[:WEIGHT],... e.g. '/json?items=50:8,/json?items=2000:2,/hello:10'\n"
    "flags: --port --bind --threads --config --allocator --arena_scope --target\n"
    "       --path --mix --connections --duration --requests --json --runs\n"
    "       --server_threads --plot --apply --window --save --memory_budget --csv\n"
    "       --max_slope_pct\n"
    "exit status: 0 success, 2 bad flags or config, 1 other failure\n";

[[noreturn]] void Fail(int code, const std::string& message) {
  std::fprintf(stderr, "server_demo: %s\n", message.c_str());
  std::exit(code);
}

// Flags given on the command line (filled by PrevalidateFlags): only these
// override the config file.
std::set<std::string>& SpecifiedFlags() {
  static auto* names = new std::set<std::string>();
  return *names;
}

bool Specified(const char* name) { return SpecifiedFlags().count(name) != 0; }

// Checks every --flag before Abseil parses them, so that bad flags exit
// with status 2 and a message naming the flag (Abseil itself exits with 1).
void PrevalidateFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (!absl::StartsWith(arg, "-")) continue;
    arg = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string name = arg, value;
    const std::size_t eq = arg.find('=');
    bool has_value = eq != std::string::npos;
    if (has_value) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      if (flag != nullptr && flag->IsOfType<bool>() && !has_value) {
        SpecifiedFlags().insert(name.substr(2));
        continue;
      }
      flag = nullptr;
    }
    if (flag == nullptr) Fail(kExitBadInput, absl::StrCat("unknown flag --", name, "\n", kUsage));
    SpecifiedFlags().insert(name);
    if (!has_value) {
      if (flag->IsOfType<bool>()) continue;
      if (i + 1 >= argc) Fail(kExitBadInput, absl::StrCat("flag --", name, " needs a value"));
      value = argv[++i];
    }
    // Parse a copy so the real flag is set only by Abseil.
    std::string error;
    const std::string saved = flag->CurrentValue();
    absl::CommandLineFlag* mutable_flag = absl::FindCommandLineFlag(name);
    if (!mutable_flag->ParseFrom(value, &error)) {
      Fail(kExitBadInput, absl::StrCat("bad value '", value, "' for --", name, ": ", error));
    }
    std::string ignored;
    mutable_flag->ParseFrom(saved, &ignored);
  }
}

DemoConfig LoadDemoConfig() {
  DemoConfig defaults;
  const std::string path = absl::GetFlag(FLAGS_config);
  absl::StatusOr<DemoConfig> config;
  if (path.empty()) {
    config = ParseDemoConfig(kDefaultConfigToml, defaults, "<embedded server_demo.toml>");
  } else {
    std::ifstream in(path);
    if (!in) Fail(kExitBadInput, absl::StrCat("cannot open config file '", path, "'"));
    std::stringstream text;
    text << in.rdbuf();
    config = ParseDemoConfig(text.str(), defaults, path);
  }
  if (!config.ok()) Fail(kExitBadInput, std::string(config.status().message()));
  absl::StatusOr<arena::Config> with_env = arena::ApplyEnvironment(config->arena);
  if (!with_env.ok()) Fail(kExitBadInput, std::string(with_env.status().message()));
  config->arena = *with_env;
  ServerConfig& s = config->server;
  if (Specified("port")) s.port = absl::GetFlag(FLAGS_port);
  if (Specified("bind")) s.bind = absl::GetFlag(FLAGS_bind);
  if (Specified("threads")) s.threads = absl::GetFlag(FLAGS_threads);
  if (Specified("allocator")) s.allocator = absl::GetFlag(FLAGS_allocator);
  if (Specified("arena_scope")) s.arena_scope = absl::GetFlag(FLAGS_arena_scope);
  absl::Status valid = ValidateServerConfig(s);
  if (!valid.ok()) Fail(kExitBadInput, absl::StrCat("after flags: ", valid.message()));
  return *config;
}

int Serve() {
  const DemoConfig config = LoadDemoConfig();
  // Every thread inherits this mask, the arena runtime's release thread
  // too (so it is set before arena::Configure starts that thread): the
  // main thread alone takes the signals, in sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (config.server.allocator == "arena") {
    absl::Status s = arena::Configure(config.arena);
    if (!s.ok()) Fail(kExitBadInput, std::string(s.message()));
  }
  signal(SIGPIPE, SIG_IGN);
  Server server(config);
  absl::Status started = server.Start();
  if (!started.ok()) Fail(1, std::string(started.message()));
  std::printf("listening on %s:%d\n", server.bind_address().c_str(), server.port());
  std::fflush(stdout);
  std::fprintf(stderr, "server_demo: allocator=%s arena_scope=%s threads=%d; "
               "SIGINT or SIGTERM stops\n",
               config.server.allocator.c_str(), config.server.arena_scope.c_str(),
               config.server.threads);
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "server_demo: signal %d: finishing in-flight requests\n", sig);
  server.Shutdown();
  server.Wait();
  std::printf("final stats: %s\n", server.StatsJson().c_str());
  std::fflush(stdout);
  return 0;
}

LoadOptions LoadOptionsFromFlags() {
  LoadOptions o;
  o.path = absl::GetFlag(FLAGS_path);
  if (o.path.empty() || o.path[0] != '/') Fail(kExitBadInput, "--path must start with '/'");
  if (Specified("mix")) {
    if (Specified("path")) Fail(kExitBadInput, "give --path or --mix, not both");
    absl::StatusOr<RouteMix> mix = ParseRouteMix(absl::GetFlag(FLAGS_mix));
    if (!mix.ok()) Fail(kExitBadInput, std::string(mix.status().message()));
    o.mix = *mix;
  } else {
    o.mix = SingleRoute(o.path);
  }
  o.connections = absl::GetFlag(FLAGS_connections);
  const int threads = absl::GetFlag(FLAGS_threads);
  o.threads = threads < 0 ? 2 : threads;
  o.duration = absl::GetFlag(FLAGS_duration);
  const int64_t requests = absl::GetFlag(FLAGS_requests);
  if (o.connections < 1) Fail(kExitBadInput, "--connections must be at least 1");
  if (o.threads < 1) Fail(kExitBadInput, "--threads must be at least 1");
  if (o.duration <= absl::ZeroDuration()) Fail(kExitBadInput, "--duration must be positive");
  if (requests < 0) Fail(kExitBadInput, "--requests must not be negative");
  o.requests = static_cast<std::uint64_t>(requests);
  return o;
}

int Load() {
  LoadOptions o = LoadOptionsFromFlags();
  const std::string target = absl::GetFlag(FLAGS_target);
  if (target.empty()) Fail(kExitBadInput, "load needs --target=HOST:PORT");
  absl::Status s = ParseHostPort(target, &o.host, &o.port);
  if (!s.ok()) Fail(kExitBadInput, std::string(s.message()));
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<LoadResult> r = RunLoad(o);
  if (!r.ok()) Fail(1, std::string(r.status().message()));
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", LoadResultJson(*r).c_str());
  } else {
    std::printf("GET %s on %s: %d connections, %d threads\n%s", o.mix.ToString().c_str(),
                target.c_str(), o.connections, o.threads, LoadResultText(*r).c_str());
    if (o.mix.routes.size() > 1) {
      for (std::size_t i = 0; i < o.mix.routes.size(); ++i) {
        std::printf("  %-28s %llu responses\n", o.mix.routes[i].path.c_str(),
                    static_cast<unsigned long long>(r->route_requests[i]));
      }
    }
  }
  return 0;
}

// ---- compare ---------------------------------------------------------------

void CheckRuns() {
  const int runs = absl::GetFlag(FLAGS_runs);
  if (runs < 1 || runs > 20) Fail(kExitBadInput, "--runs must be from 1 to 20");
}

std::string LoadDescription(const LoadOptions& o) {
  return absl::StrFormat("GET %s, %d connections, %d load threads, %s per run, %d server thread(s)",
                         o.mix.ToString(), o.connections, o.threads,
                         absl::FormatDuration(o.duration), absl::GetFlag(FLAGS_server_threads));
}

RunFigures RunOrFail(RunSpec spec) {
  absl::StatusOr<RunFigures> r = RunServerUnderLoad(spec);
  if (!r.ok()) Fail(1, std::string(r.status().message()));
  return *r;
}

int Compare() {
  const LoadOptions base = LoadOptionsFromFlags();
  // Validate the config once here, so a bad one fails before any run.
  (void)LoadDemoConfig();
  CheckRuns();
  const int runs = absl::GetFlag(FLAGS_runs);
  const std::string plot = absl::GetFlag(FLAGS_plot);
  signal(SIGPIPE, SIG_IGN);
  std::vector<RunFigures> arena_runs, malloc_runs;
  for (int i = 0; i < runs; ++i) {
    for (const char* allocator : {"arena", "malloc"}) {
      RunSpec spec;
      spec.allocator = allocator;
      spec.config_path = absl::GetFlag(FLAGS_config);
      spec.server_threads = absl::GetFlag(FLAGS_server_threads);
      spec.load = base;
      spec.series = !plot.empty() && i == 0;
      (spec.allocator == "arena" ? arena_runs : malloc_runs).push_back(RunOrFail(spec));
    }
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::string json = absl::StrCat("{\"mix\":\"", base.mix.ToString(), "\",\"runs\":", runs);
    for (const CompareRow& row : CompareRows()) {
      absl::StrAppend(&json, ",\"", row.name, "\":{\"arena\":", MedianOf(arena_runs, row.field),
                      ",\"malloc\":", MedianOf(malloc_runs, row.field), "}");
    }
    std::printf("%s}\n", json.c_str());
  } else {
    std::printf("\nserver_demo compare: %s, median of %d run(s)\n\n%s",
                LoadDescription(base).c_str(), runs,
                CompareTable(arena_runs, malloc_runs, "arena", "malloc", true).c_str());
  }
  if (!plot.empty()) {
    absl::Status s = PlotSeries(plot, absl::StrCat("server_demo compare: ", base.mix.ToString()),
                                {{"arena", &arena_runs[0]}, {"malloc", &malloc_runs[0]}});
    if (!s.ok()) Fail(1, std::string(s.message()));
    std::fprintf(stderr, "compare: wrote %s\n", plot.c_str());
  }
  return 0;
}

// ---- tune ------------------------------------------------------------------

arena::Histogram HistogramOrFail(const std::string& stats, const char* key) {
  absl::StatusOr<arena::Histogram> h = ParseHistogramJson(stats, "request_footprint", key);
  if (!h.ok()) {
    Fail(1, absl::StrCat("the server's /stats has no per-request '", key,
                         "' histogram (an older server_demo?): ", h.status().message()));
  }
  return *h;
}

std::string WriteTempConfig(const std::string& text) {
  absl::StatusOr<std::string> path = WriteTempConfigFile("server_demo_tune_", text);
  if (!path.ok()) Fail(1, absl::StrCat("temporary config file: ", path.status().message()));
  return *path;
}

int Tune() {
  const DemoConfig demo = LoadDemoConfig();
  const double budget = absl::GetFlag(FLAGS_memory_budget);
  if (!(budget > 0 && budget <= 1)) Fail(kExitBadInput, "--memory_budget must be in (0, 1]");
  CheckRuns();
  signal(SIGPIPE, SIG_IGN);
  TuneInput in;
  in.base = demo.arena;
  in.memory_budget = budget;
  std::string source, stats;
  double requests = 0;
  LoadOptions load;
  if (Specified("target")) {
    if (absl::GetFlag(FLAGS_apply)) {
      Fail(kExitBadInput, "--apply starts its own servers: it does not take --target");
    }
    std::string host;
    int port = 0;
    absl::Status s = ParseHostPort(absl::GetFlag(FLAGS_target), &host, &port);
    if (!s.ok()) Fail(kExitBadInput, std::string(s.message()));
    const absl::Duration window = absl::GetFlag(FLAGS_window);
    if (window <= absl::ZeroDuration()) Fail(kExitBadInput, "--window must be positive");
    absl::StatusOr<HttpReply> first = HttpGet(host, port, "/stats");
    if (!first.ok()) Fail(1, absl::StrCat("GET /stats: ", first.status().message()));
    std::fprintf(stderr, "tune: watching %s for %s\n", absl::GetFlag(FLAGS_target).c_str(),
                 absl::FormatDuration(window).c_str());
    absl::SleepFor(window);
    absl::StatusOr<HttpReply> second = HttpGet(host, port, "/stats");
    if (!second.ok()) Fail(1, absl::StrCat("GET /stats: ", second.status().message()));
    stats = second->body;
    for (auto [key, field] : {std::pair{"small_bytes", &TuneInput::small_bytes},
                              std::pair{"large_allocations", &TuneInput::large_allocations},
                              std::pair{"slow_paths", &TuneInput::slow_paths}}) {
      in.*field = Subtract(HistogramOrFail(stats, key), HistogramOrFail(first->body, key));
    }
    in.base = ArenaConfigFromStats(stats, demo.arena);
    requests = JsonNumber(stats, "server", "requests") - JsonNumber(first->body, "server", "requests");
    in.threads = static_cast<int>(JsonNumber(stats, "server", "threads"));
    in.concurrency = static_cast<int>(JsonNumber(stats, "server", "connections_open"));
    if (requests > 0) {
      in.thread_cache_misses_per_request =
          (JsonNumber(stats, "allocator", "thread_cache_misses") -
           JsonNumber(first->body, "allocator", "thread_cache_misses")) / requests;
    }
    source = absl::StrCat("/stats of ", absl::GetFlag(FLAGS_target), " over ",
                          absl::FormatDuration(window));
  } else {
    load = LoadOptionsFromFlags();
    RunSpec spec;
    spec.allocator = "arena";
    spec.config_path = absl::GetFlag(FLAGS_config);
    spec.server_threads = absl::GetFlag(FLAGS_server_threads);
    spec.load = load;
    spec.label = "tune";
    const RunFigures f = RunOrFail(spec);
    stats = f.stats;
    in.small_bytes = HistogramOrFail(stats, "small_bytes");
    in.large_allocations = HistogramOrFail(stats, "large_allocations");
    in.slow_paths = HistogramOrFail(stats, "slow_paths");
    requests = in.slow_paths.count;
    in.threads = spec.server_threads;
    in.concurrency = load.connections;
    in.thread_cache_misses_per_request = f.thread_cache_misses_per_request;
    source = LoadDescription(load);
  }
  in.peak_rss_bytes = JsonNumber(stats, "memory", "peak_rss_bytes");
  in.peak_live_request_bytes = JsonNumber(stats, "memory", "peak_live_request_bytes");
  in.threads = std::max(in.threads, 1);
  // Requests in flight at the peak: peak live bytes over the mean a request
  // asks for (an event loop serves one request at a time and most
  // responses leave at once, so far fewer than the connections).
  const double mean_request = HistogramOrFail(stats, "requested_bytes").Mean();
  if (mean_request > 0) {
    in.concurrency = std::min<int>(
        in.concurrency, static_cast<int>(std::ceil(in.peak_live_request_bytes / mean_request)));
  }
  in.concurrency = std::max(in.concurrency, 1);
  if (in.small_bytes.count == 0) Fail(1, "tune: no requests were measured");
  const TuneResult t = Recommend(in);
  std::printf(
      "\nserver_demo tune: measured %s\n"
      "  %.0f requests; small-allocation bytes per request p50 %s, p90 %s, p99 %s;\n"
      "  slow paths per request %.2f; large allocations per request %.2f;\n"
      "  peak RSS %s, peak live request bytes %s\n\nrecommended [arena] values:\n",
      source.c_str(), requests, HumanBytes(in.small_bytes.Percentile(0.5)).c_str(),
      HumanBytes(in.small_bytes.Percentile(0.9)).c_str(),
      HumanBytes(in.small_bytes.Percentile(0.99)).c_str(), in.slow_paths.Mean(),
      in.large_allocations.Mean(), HumanBytes(in.peak_rss_bytes).c_str(),
      HumanBytes(in.peak_live_request_bytes).c_str());
  for (const Recommendation& r : t.items) {
    std::printf("  %-22s %-10s %s\n      %s\n", r.key.c_str(), r.value.c_str(),
                r.changed ? "(changed)" : "(kept)", r.reason.c_str());
  }
  std::printf("\nestimated: slow paths per request %.2f -> %.2f; extra memory held %s "
              "(%.1f%% of peak RSS)\n\n",
              t.slow_paths_before, t.slow_paths_after, HumanBytes(t.extra_bytes).c_str(),
              in.peak_rss_bytes > 0 ? 100.0 * t.extra_bytes / in.peak_rss_bytes : 0.0);
  const std::string snippet = TuneSnippet(
      t.config, {absl::StrCat("server_demo tune: ", source), "loads as is: --config=FILE"});
  std::printf("%s", snippet.c_str());
  const std::string save = absl::GetFlag(FLAGS_save);
  if (!save.empty()) {
    std::ofstream out(save);
    out << snippet;
    if (!out) Fail(1, absl::StrCat("cannot write '", save, "'"));
    std::fprintf(stderr, "tune: wrote %s\n", save.c_str());
  }
  if (!absl::GetFlag(FLAGS_apply)) return 0;
  // Before and after on the same footing: both from a file of [arena] only.
  const std::string before_path = WriteTempConfig(TuneSnippet(in.base, {"tune: before"}));
  const std::string after_path = WriteTempConfig(snippet);
  std::vector<RunFigures> before, after;
  for (int i = 0; i < absl::GetFlag(FLAGS_runs); ++i) {
    for (int side = 0; side < 2; ++side) {
      RunSpec spec;
      spec.allocator = "arena";
      spec.config_path = side == 0 ? before_path : after_path;
      spec.server_threads = absl::GetFlag(FLAGS_server_threads);
      spec.load = load;
      spec.label = side == 0 ? "tune --apply (before)" : "tune --apply (after)";
      (side == 0 ? before : after).push_back(RunOrFail(spec));
    }
  }
  unlink(before_path.c_str());
  unlink(after_path.c_str());
  std::printf("\nserver_demo tune --apply: %s, median of %d run(s)\n\n%s",
              LoadDescription(load).c_str(), absl::GetFlag(FLAGS_runs),
              CompareTable(after, before, "after", "before", false,
                           {"requests/s", "p99 latency (us)", "slow paths/request",
                            "request waste", "P under load, avg", "P under load, peak",
                            "peak RSS (KiB)"},
                           /*right_first=*/true)
                  .c_str());
  const double slow0 = MedianOf(before, &RunFigures::slow_paths_per_request);
  const double slow1 = MedianOf(after, &RunFigures::slow_paths_per_request);
  const double rss0 = MedianOf(before, &RunFigures::peak_rss_kib);
  const double rss1 = MedianOf(after, &RunFigures::peak_rss_kib);
  std::printf("\nslow paths per request %+.1f%%, peak RSS %+.1f%% (the goal: fewer slow paths, "
              "peak RSS within +10%%)\n",
              slow0 > 0 ? 100.0 * (slow1 - slow0) / slow0 : 0.0,
              rss0 > 0 ? 100.0 * (rss1 - rss0) / rss0 : 0.0);
  return 0;
}

// ---- soak ------------------------------------------------------------------

int Soak() {
  SoakOptions o;
  o.load = LoadOptionsFromFlags();
  o.duration = Specified("duration") ? absl::GetFlag(FLAGS_duration) : absl::Minutes(10);
  const DemoConfig demo = LoadDemoConfig();  // validates --config and the flags
  o.config_path = absl::GetFlag(FLAGS_config);
  if (!o.config_path.empty()) o.send_timeout_ms = demo.server.send_timeout_ms;
  o.allocator = demo.server.allocator;
  if (Specified("arena_scope")) o.arena_scope = demo.server.arena_scope;
  o.server_threads = absl::GetFlag(FLAGS_server_threads);
  if (o.server_threads < 1) Fail(kExitBadInput, "--server_threads must be at least 1");
  o.csv = absl::GetFlag(FLAGS_csv);
  o.plot = absl::GetFlag(FLAGS_plot);
  o.max_slope_pct = absl::GetFlag(FLAGS_max_slope_pct);
  if (!std::isfinite(o.max_slope_pct)) Fail(kExitBadInput, "--max_slope_pct must be a number");
  signal(SIGPIPE, SIG_IGN);
  return RunSoak(o);
}

}  // namespace
}  // namespace server_demo

int main(int argc, char** argv) {
  server_demo::PrevalidateFlags(argc, argv);
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() != 2) {
    std::fputs(server_demo::kUsage, stderr);
    return server_demo::kExitBadInput;
  }
  const std::string command = rest[1];
  if (command == "serve") return server_demo::Serve();
  if (command == "load") return server_demo::Load();
  if (command == "compare") return server_demo::Compare();
  if (command == "tune") return server_demo::Tune();
  if (command == "soak") return server_demo::Soak();
  std::fprintf(stderr, "server_demo: unknown subcommand '%s'\n%s", command.c_str(),
               server_demo::kUsage);
  return server_demo::kExitBadInput;
}
