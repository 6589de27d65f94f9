// The server_demo binary as other programs drive it: exit status 2 for bad
// flags or config (with a message naming the problem), 1 for other
// failures, "listening on ADDRESS:PORT" first, and a clean exit 0 with final
// stats on SIGTERM.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/base/config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server_demo/load.h"
#include "server_demo/server_config.h"

namespace {

using ::testing::HasSubstr;

std::string Binary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return std::string(srcdir ? srcdir : ".") + "/" + (workspace ? workspace : "arena") +
         "/server_demo/server_demo";
}

struct Result {
  int status = -1;
  std::string out, err;
};

// Runs the binary with `args` (and extra environment), capturing output.
Result RunDemo(std::vector<std::string> args, std::vector<std::string> env = {}) {
  const std::string out_path = ::testing::TempDir() + "/cli_out.txt";
  const std::string err_path = ::testing::TempDir() + "/cli_err.txt";
  const pid_t pid = fork();
  if (pid == 0) {
    freopen(out_path.c_str(), "w", stdout);
    freopen(err_path.c_str(), "w", stderr);
    for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    const std::string bin = Binary();
    argv.push_back(const_cast<char*>(bin.c_str()));
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  Result r;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream o(out_path), e(err_path);
  r.out.assign(std::istreambuf_iterator<char>(o), {});
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  return r;
}

TEST(Cli, BadInputExitsWithTwoAndSaysWhy) {
  Result r = RunDemo({});
  EXPECT_EQ(r.status, 2);
  r = RunDemo({"frobnicate"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown subcommand 'frobnicate'"));
  r = RunDemo({"serve", "--port=abc"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("--port"));
  r = RunDemo({"serve", "--no_such_flag=1"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown flag --no_such_flag"));
  r = RunDemo({"serve", "--allocator=tcmalloc", "--port=0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("'allocator'"));
  r = RunDemo({"serve", "--config=/nonexistent/arena.toml"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("cannot open config file"));
  r = RunDemo({"load"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("--target"));
  r = RunDemo({"load", "--target=nohost"});
  EXPECT_EQ(r.status, 2);
  r = RunDemo({"load", "--target=127.0.0.1:80", "--duration=-1s"});
  EXPECT_EQ(r.status, 2);
}

TEST(Cli, BadConfigNamesTheKey) {
  const std::string path = ::testing::TempDir() + "/bad.toml";
  {
    std::ofstream f(path);
    f << "[server]\nport = 0\n[arena]\nblock_size = \"3KiB\"\n";
  }
  Result r = RunDemo({"serve", "--config=" + path});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("'block_size'"));
  EXPECT_THAT(r.err, HasSubstr("power of two"));
  {
    std::ofstream f(path);
    f << "[server]\nmax_body_bytes = \"lots\"\n";
  }
  r = RunDemo({"serve", "--config=" + path});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("'max_body_bytes'"));
  r = RunDemo({"serve", "--port=0"}, {"ARENA_DEPOT_BATCH_BLOCKS=100000"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("ARENA_DEPOT_BATCH_BLOCKS"));
}

TEST(Cli, HelpEndsWithANewline) {
  Result r = RunDemo({"--help"});
  EXPECT_EQ(r.status, 0);
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n');
  EXPECT_THAT(r.out, HasSubstr("usage: server_demo"));
}

// Issue 8, item 4: max_connections above what RLIMIT_NOFILE allows is
// reported at start-up.
TEST(Cli, WarnsWhenMaxConnectionsExceedsTheDescriptorLimit) {
  int err[2];
  ASSERT_EQ(pipe(err), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(err[1], STDERR_FILENO);
    close(err[0]);
    rlimit low{};
    getrlimit(RLIMIT_NOFILE, &low);
    low.rlim_cur = 256;
    setrlimit(RLIMIT_NOFILE, &low);
    const std::string bin = Binary();
    execl(bin.c_str(), bin.c_str(), "serve", "--port=0", "--threads=1", nullptr);
    _exit(127);
  }
  close(err[1]);
  FILE* f = fdopen(err[0], "r");
  std::string text;
  char line[512];
  while (fgets(line, sizeof(line), f) != nullptr) {
    text += line;
    if (text.find("SIGTERM stops") != std::string::npos) break;
  }
  kill(pid, SIGTERM);
  while (fgets(line, sizeof(line), f) != nullptr) {
  }
  fclose(f);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_THAT(text, HasSubstr("warning: max_connections = 10000 exceeds"));
  EXPECT_THAT(text, HasSubstr("RLIMIT_NOFILE = 256"));
}

TEST(Cli, LoadAgainstNothingFailsWithOne) {
  Result r = RunDemo({"load", "--target=127.0.0.1:1", "--duration=1s"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot connect"));
}

TEST(Cli, ServeListensAndStopsCleanlyOnSigterm) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    const std::string bin = Binary();
    execl(bin.c_str(), bin.c_str(), "serve", "--port=0", "--threads=1", nullptr);
    _exit(127);
  }
  close(out[1]);
  FILE* f = fdopen(out[0], "r");
  char line[256] = {0};
  ASSERT_NE(fgets(line, sizeof(line), f), nullptr);
  const std::string first(line);
  ASSERT_THAT(first, HasSubstr("listening on 127.0.0.1:"));
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(first.substr(first.rfind(':') + 1, first.size() - first.rfind(':') - 2), &port));
  auto reply = server_demo::HttpGet("127.0.0.1", port, "/healthz");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->body, "ok\n");
  kill(pid, SIGTERM);
  std::string rest;
  while (fgets(line, sizeof(line), f) != nullptr) rest += line;
  fclose(f);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_THAT(rest, HasSubstr("final stats: {\"server\":"));
}

TEST(Cli, MixSyntaxErrorsExitWithTwo) {
  for (const char* command : {"load", "compare", "tune"}) {
    Result r = RunDemo({command, "--target=127.0.0.1:1", "--mix=/json?items=50:0,/hello"});
    if (std::string(command) != "load") {
      r = RunDemo({command, "--mix=/json?items=50:0,/hello", "--duration=1s"});
    }
    EXPECT_EQ(r.status, 2) << command;
    EXPECT_THAT(r.err, HasSubstr("--mix '/json?items=50:0,/hello': entry '/json?items=50:0'"))
        << command;
    EXPECT_THAT(r.err, HasSubstr("PATH[:WEIGHT]")) << command;
  }
  Result r = RunDemo({"compare", "--mix=/a", "--path=/b"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("not both"));
  r = RunDemo({"tune", "--target=127.0.0.1:1", "--apply"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("--apply"));
}

// tune on the mix prints a recommendation and a snippet that loads as is
// with --config: parsed here, and served by the binary.
TEST(Cli, TuneSnippetLoadsWithConfig) {
  const std::string saved = ::testing::TempDir() + "/tuned.toml";
  Result r = RunDemo({"tune", "--mix=/json?items=50:8,/json?items=2000:2,/hello:10",
                      "--duration=1s", "--connections=8", "--save=" + saved});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("recommended [arena] values:"));
  EXPECT_THAT(r.out, HasSubstr("slow paths per request"));
  const std::size_t at = r.out.find("# server_demo tune:");
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::string printed = r.out.substr(at);
  std::ifstream in(saved);
  const std::string file((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(printed, file);
  auto parsed = server_demo::ParseDemoConfig(printed, server_demo::DemoConfig(), saved);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << printed;
  // The binary loads it too.
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    const std::string bin = Binary();
    const std::string config = "--config=" + saved;
    execl(bin.c_str(), bin.c_str(), "serve", "--port=0", "--threads=1", config.c_str(), nullptr);
    _exit(127);
  }
  close(out[1]);
  FILE* f = fdopen(out[0], "r");
  char line[256] = {0};
  ASSERT_NE(fgets(line, sizeof(line), f), nullptr);
  EXPECT_THAT(std::string(line), HasSubstr("listening on 127.0.0.1:"));
  kill(pid, SIGTERM);
  while (fgets(line, sizeof(line), f) != nullptr) {
  }
  fclose(f);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(Cli, CompareShowsTheFragmentationRowsAndTheirDefinitions) {
  // --plot draws with gnuplot when it is installed (tools/setup.sh demo).
  const bool gnuplot = access("/usr/bin/gnuplot", X_OK) == 0;
  const std::string png = ::testing::TempDir() + "/compare.png";
  std::vector<std::string> args = {"compare", "--mix=/json?items=50:3,/hello:1", "--duration=1s",
                                   "--connections=8"};
  if (gnuplot) args.push_back("--plot=" + png);
  Result r = RunDemo(args);
  ASSERT_EQ(r.status, 0) << r.err;
  if (gnuplot) {
    std::ifstream image(png, std::ios::binary);
    char magic[8] = {0};
    image.read(magic, sizeof(magic));
    EXPECT_EQ(std::string(magic + 1, 3), "PNG") << r.err;
  }
  for (const char* row : {"requests/s", "slow paths/request", "request waste",
                          "P under load, avg", "P under load, peak", "peak RSS (KiB)",
                          "peak RSS / peak live", "RSS after idle (KiB)"}) {
    EXPECT_THAT(r.out, HasSubstr(std::string("\n") + row)) << row;
  }
  // One definition line per row, under the table.
  EXPECT_THAT(r.out, HasSubstr("\n  request waste: (held - requested) / held"));
  EXPECT_THAT(r.out, HasSubstr("\n  P under load: (RSS - live request bytes) / RSS"));
  EXPECT_EQ(r.out.find("heap fragmentation"), std::string::npos);
  r = RunDemo({"compare", "--path=/hello", "--duration=1s", "--connections=4", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"request waste\":{\"arena\":"));
  EXPECT_THAT(r.out, HasSubstr("\"P under load, avg\":{\"arena\":"));
}

// Issue 8, soak: a short run of `soak` (the 10-minute one is in the
// README). The slope limit is meaningful only over minutes: here it is
// relaxed (plain: it still catches a leak of a few hundred KiB a second;
// sanitizers: only the run itself is checked); the default stays 1 % per
// 10 min.
constexpr bool kSanitized =
#if defined(ABSL_HAVE_ADDRESS_SANITIZER) || defined(ABSL_HAVE_THREAD_SANITIZER) || \
    defined(ARENA_UBSAN)
    true;
#else
    false;
#endif

TEST(Cli, SoakSamplesEverySecondAndPrintsTheSummary) {
  const int seconds = kSanitized ? 8 : 20;
  const std::string csv = ::testing::TempDir() + "/soak.csv";
  Result r = RunDemo({"soak", absl::StrCat("--duration=", seconds, "s"),
                      "--mix=/json?items=50:8,/json?items=2000:2,/hello:10", "--connections=8",
                      "--csv=" + csv, kSanitized ? "--max_slope_pct=1e9" : "--max_slope_pct=2000"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  for (const char* line : {"\nduration ", "\nrequests served ", "\nRSS ", "\nRSS slope ",
                           "\nmapped bytes ", "\nP under load ", "\nclosed by server ",
                           "\nhostile clients ", "\nresult             PASS\n"}) {
    EXPECT_THAT(r.out, HasSubstr(line)) << line;
  }
  EXPECT_THAT(r.out, HasSubstr(" % per 10 min"));
  // Hostile clients were closed by the server, by reason.
  EXPECT_THAT(r.out, HasSubstr("protocol_error "));
  EXPECT_THAT(r.out, HasSubstr("header_timeout "));
  EXPECT_THAT(r.out, HasSubstr("\ngood-client errors 0 unexpected"));
  // One row per second after the header, each with its second and an RSS.
  std::ifstream in(csv);
  std::string header, row;
  ASSERT_TRUE(std::getline(in, header));
  EXPECT_TRUE(absl::StartsWith(header, "seconds,rss_bytes,mapped_bytes,fragmentation_p,"))
      << header;
  int rows = 0;
  while (std::getline(in, row)) {
    ++rows;
    const std::vector<std::string> fields = absl::StrSplit(row, ',');
    ASSERT_EQ(fields.size(), 8u) << row;
    int second = 0;
    double rss = 0;
    EXPECT_TRUE(absl::SimpleAtoi(fields[0], &second) && second == rows) << row;
    EXPECT_TRUE(absl::SimpleAtod(fields[1], &rss) && rss > 0) << row;
  }
  EXPECT_EQ(rows, seconds);
}

TEST(Cli, SoakFailsWithOneWhenTheSlopeIsOverTheLimit) {
  // Any slope exceeds -1e9 % per 10 min: the verdict path, in a 6 s run
  // (3 s warm-up, 3 samples after it).
  Result r = RunDemo({"soak", "--duration=6s", "--connections=4", "--max_slope_pct=-1e9"});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("\nresult             FAIL\n"));
  EXPECT_THAT(r.err, HasSubstr("server_demo: soak: RSS grows"));
  r = RunDemo({"soak", "--duration=1s", "--max_slope_pct=abc"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("--max_slope_pct"));
}

}  // namespace
