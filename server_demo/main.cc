// server_demo: an HTTP/1.1 server that allocates per request from arenas,
// a load generator, and a side-by-side allocator comparison.
//
//   server_demo serve   [--port=8080] [--bind=127.0.0.1] [--threads=N]
//                       [--config=FILE] [--allocator=arena|malloc]
//   server_demo load    --target=HOST:PORT [--path=/hello] [--connections=64]
//                       [--threads=2] [--duration=10s] [--requests=0] [--json]
//   server_demo compare [--path] [--connections] [--threads] [--duration]
//                       [--config] [--runs=1] [--server_threads=1] [--json]
//
// Exit status: 0 success, 2 bad flags or config, 1 any other failure.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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
#include "absl/time/time.h"
#include "arena/arena.h"
#include "server_demo/load.h"
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
ABSL_FLAG(std::string, target, "", "load: HOST:PORT of the server (required)");
ABSL_FLAG(std::string, path, "/hello", "load, compare: request path");
ABSL_FLAG(int, connections, 64, "load, compare: keep-alive connections");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10),
          "load, compare: how long to run (per allocator for compare)");
ABSL_FLAG(int64_t, requests, 0, "load: stop after this many requests; 0: duration only");
ABSL_FLAG(bool, json, false, "load, compare: print the result as one JSON object");
ABSL_FLAG(int, runs, 1, "compare: runs per allocator (alternating); the table shows medians");
ABSL_FLAG(int, server_threads, 1, "compare: worker threads of each server");

namespace server_demo {
namespace {

constexpr int kExitBadInput = 2;

const char kUsage[] =
    "usage: server_demo serve|load|compare [flags]\n"
    "  serve    run the HTTP server (prints 'listening on ADDRESS:PORT' first)\n"
    "  load     drive a server: --target=HOST:PORT [--path --connections --threads\n"
    "           --duration --requests --json]\n"
    "  compare  run the server once per allocator (arena, malloc) under the same\n"
    "           load and print a side-by-side table\n"
    "flags: --port --bind --threads --config --allocator --arena_scope --target\n"
    "       --path --connections --duration --requests --json --runs --server_threads\n"
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
  if (config.server.allocator == "arena") {
    absl::Status s = arena::Configure(config.arena);
    if (!s.ok()) Fail(kExitBadInput, std::string(s.message()));
  }
  // Workers inherit this mask; the main thread takes the signals in sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
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
    std::printf("GET %s on %s: %d connections, %d threads\n%s", o.path.c_str(),
                target.c_str(), o.connections, o.threads, LoadResultText(*r).c_str());
  }
  return 0;
}

// ---- compare ---------------------------------------------------------------

// A number after "key": in the object that follows "section": (no JSON
// library needed for our own /stats output).
double JsonNumber(const std::string& json, const std::string& section, const std::string& key) {
  std::size_t from = section.empty() ? 0 : json.find("\"" + section + "\":");
  if (from == std::string::npos) return 0;
  const std::size_t at = json.find("\"" + key + "\":", from);
  if (at == std::string::npos) return 0;
  return std::strtod(json.c_str() + at + key.size() + 3, nullptr);
}

long ProcStatusKiB(pid_t pid, const char* field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, field)) return std::strtol(line.c_str() + std::strlen(field) + 1, nullptr, 10);
  }
  return 0;
}

struct RunFigures {
  double rps = 0, p99_us = 0, peak_rss_kib = 0, rss_after_kib = 0, fragmentation = 0,
         heap_fragmentation = 0,
         bytes_per_request = 0, errors = 0;
};

RunFigures RunOnce(const std::string& allocator, const LoadOptions& base) {
  int out[2];
  if (pipe(out) != 0) Fail(1, "pipe failed");
  std::vector<std::string> args = {"/proc/self/exe", "serve", "--port=0",
                                   "--allocator=" + allocator,
                                   absl::StrCat("--threads=", absl::GetFlag(FLAGS_server_threads))};
  if (!absl::GetFlag(FLAGS_config).empty()) args.push_back("--config=" + absl::GetFlag(FLAGS_config));
  const pid_t pid = fork();
  if (pid < 0) Fail(1, "fork failed");
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
  char line[256] = {0};
  if (std::fgets(line, sizeof(line), child_out) == nullptr) {
    waitpid(pid, nullptr, 0);
    Fail(1, absl::StrCat("the ", allocator, " server exited before listening"));
  }
  int port = 0;
  const char* colon = std::strrchr(line, ':');
  if (!absl::StartsWith(line, "listening on ") || colon == nullptr ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(colon + 1), &port)) {
    kill(pid, SIGKILL);
    Fail(1, absl::StrCat("unexpected first line from the server: ", line));
  }
  LoadOptions o = base;
  o.host = "127.0.0.1";
  o.port = port;
  std::fprintf(stderr, "compare: %s server on port %d, %s for %s\n", allocator.c_str(), port,
               o.path.c_str(), absl::FormatDuration(o.duration).c_str());
  // Fragmentation is sampled under load (at 60% of the run): after the load
  // no request is live and every allocator would report its idle heap.
  std::string mid_stats;
  std::thread sampler([&] {
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(o.duration * 0.6));
    absl::StatusOr<HttpReply> reply = HttpGet("127.0.0.1", port, "/stats");
    if (reply.ok()) mid_stats = reply->body;
  });
  absl::StatusOr<LoadResult> r = RunLoad(o);
  sampler.join();
  if (!r.ok()) {
    kill(pid, SIGKILL);
    Fail(1, std::string(r.status().message()));
  }
  RunFigures f;
  f.rps = r->requests_per_second;
  f.p99_us = r->p99_us;
  f.errors = r->errors;
  f.peak_rss_kib = ProcStatusKiB(pid, "VmHWM:");
  absl::StatusOr<HttpReply> stats = HttpGet("127.0.0.1", port, "/stats");
  if (stats.ok()) {
    f.bytes_per_request = JsonNumber(stats->body, "server", "request_bytes_per_request");
  }
  f.fragmentation = JsonNumber(mid_stats, "allocator", "fragmentation");
  f.heap_fragmentation = JsonNumber(mid_stats, "allocator", "heap_fragmentation");
  // Let idle memory go back (release delay + an idle tick), then look again.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  f.rss_after_kib = ProcStatusKiB(pid, "VmRSS:");
  kill(pid, SIGTERM);
  char sink[4096];
  while (std::fgets(sink, sizeof(sink), child_out) != nullptr) {
  }
  fclose(child_out);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Fail(1, absl::StrCat("the ", allocator, " server did not exit cleanly"));
  }
  return f;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int Compare() {
  const LoadOptions base = LoadOptionsFromFlags();
  // Validate the config once here, so a bad one fails before any run.
  (void)LoadDemoConfig();
  const int runs = absl::GetFlag(FLAGS_runs);
  if (runs < 1 || runs > 20) Fail(kExitBadInput, "--runs must be from 1 to 20");
  signal(SIGPIPE, SIG_IGN);
  std::vector<RunFigures> arena_runs, malloc_runs;
  for (int i = 0; i < runs; ++i) {
    arena_runs.push_back(RunOnce("arena", base));
    malloc_runs.push_back(RunOnce("malloc", base));
  }
  struct Row {
    const char* name;
    double RunFigures::*field;
    bool higher_is_better;
    const char* format;
  };
  const Row rows[] = {
      {"requests/s", &RunFigures::rps, true, "%.0f"},
      {"p99 latency (us)", &RunFigures::p99_us, false, "%.0f"},
      {"peak RSS (KiB)", &RunFigures::peak_rss_kib, false, "%.0f"},
      {"RSS after load (KiB)", &RunFigures::rss_after_kib, false, "%.0f"},
      {"fragmentation", &RunFigures::fragmentation, false, "%.3f"},
      {"heap fragmentation", &RunFigures::heap_fragmentation, false, "%.3f"},
      {"bytes/request", &RunFigures::bytes_per_request, false, "%.0f"},
      {"errors", &RunFigures::errors, false, "%.0f"},
  };
  auto median = [](const std::vector<RunFigures>& v, double RunFigures::*field) {
    std::vector<double> x;
    for (const RunFigures& f : v) x.push_back(f.*field);
    return Median(x);
  };
  if (absl::GetFlag(FLAGS_json)) {
    std::string json = absl::StrCat("{\"path\":\"", base.path, "\",\"runs\":", runs);
    for (const Row& row : rows) {
      const double a = median(arena_runs, row.field), m = median(malloc_runs, row.field);
      absl::StrAppend(&json, ",\"", row.name, "\":{\"arena\":", a, ",\"malloc\":", m, "}");
    }
    std::printf("%s}\n", json.c_str());
    return 0;
  }
  std::printf("\nserver_demo compare: GET %s, %d connections, %d load threads, %s per run, "
              "%d server thread(s), median of %d run(s)\n\n",
              base.path.c_str(), base.connections, base.threads,
              absl::FormatDuration(base.duration).c_str(), absl::GetFlag(FLAGS_server_threads),
              runs);
  std::printf("%-22s %14s %14s %14s\n", "metric", "arena", "malloc", "arena/malloc*");
  for (const Row& row : rows) {
    const double a = median(arena_runs, row.field), m = median(malloc_runs, row.field);
    double ratio = 0;
    if (row.higher_is_better) ratio = m == 0 ? 0 : a / m;
    else ratio = a == 0 ? (m == 0 ? 1 : 0) : m / a;
    std::printf("%-22s %14s %14s %14s\n", row.name, absl::StrFormat(row.format, a).c_str(),
                absl::StrFormat(row.format, m).c_str(),
                std::strcmp(row.name, "errors") == 0 || (a == 0 && m == 0)
                    ? "-"
                    : absl::StrFormat("%.2f", ratio).c_str());
  }
  std::printf("\n* ratio oriented so that above 1 means arena is better "
              "(malloc/arena for latency, RSS, fragmentation, bytes)\n"
              "fragmentation: (committed - live) / committed of the request allocator,\n"
              "sampled under load; heap fragmentation: the same over the whole process\n"
              "(glibc heap + arena library); bytes/request: allocated per request.\n");
  return 0;
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
  std::fprintf(stderr, "server_demo: unknown subcommand '%s'\n%s", command.c_str(),
               server_demo::kUsage);
  return server_demo::kExitBadInput;
}
