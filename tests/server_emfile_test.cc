// Issue 8, item 4: out of file descriptors with several workers. The
// workers share one descriptor table, so the spare descriptor one worker
// frees may be taken by another; the server must neither spin on the
// level-triggered listen socket nor stop shedding later floods with 503.
//
// The clients run in a child process forked before the server starts, so
// that only the server's process has the low RLIMIT_NOFILE.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "server_demo/server.h"

namespace {

using Clock = std::chrono::steady_clock;

int OpenDescriptors() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n - 3;  // ".", "..", and the directory itself
}

double Metric(server_demo::Server& server, const std::string& name) {
  const std::string text = server.MetricsText();
  const std::size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  double v = -1;
  const std::size_t start = at + name.size() + 2;
  (void)absl::SimpleAtod(text.substr(start, text.find('\n', start) - start), &v);
  return v;
}

const char kShed[] = "server_demo_rejected_total{reason=\"descriptors\"}";

// Child: on each command byte, opens `count` more connections (kept open);
// answers with one byte. Command 0 ends it.
[[noreturn]] void Clients(int commands, int answers) {
  int port = 0;
  if (read(commands, &port, sizeof(port)) != sizeof(port)) _exit(1);
  std::vector<int> fds;
  for (;;) {
    int count = 0;
    if (read(commands, &count, sizeof(count)) != sizeof(count) || count == 0) break;
    for (int i = 0; i < count; ++i) {
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(port);
      inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
      if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        fds.push_back(fd);
      } else if (fd >= 0) {
        close(fd);
      }
    }
    const char done = 1;
    if (write(answers, &done, 1) != 1) break;
  }
  for (int fd : fds) close(fd);
  _exit(0);
}

TEST(ServerEmfile, SeveralWorkersNeitherSpinNorStopShedding) {
  int to_child[2], from_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(from_child), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(to_child[1]);
    close(from_child[0]);
    Clients(to_child[0], from_child[1]);
  }
  close(to_child[0]);
  close(from_child[1]);
  auto command = [&](int count) {
    ASSERT_EQ(write(to_child[1], &count, sizeof(count)), static_cast<ssize_t>(sizeof(count)));
    if (count == 0) return;
    char done = 0;
    ASSERT_EQ(read(from_child[0], &done, 1), 1);
  };

  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = OpenDescriptors() + 48;  // the server's own, and ~30 connections
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  {
    server_demo::DemoConfig config;
    config.server.port = 0;
    config.server.threads = 2;
    config.server.idle_timeout_ms = 60000;
    config.server.header_timeout_ms = 60000;
    config.server.shutdown_deadline_ms = 0;
    server_demo::Server server(config);
    ASSERT_TRUE(server.Start().ok());
    const int port = server.port();
    ASSERT_EQ(write(to_child[1], &port, sizeof(port)), static_cast<ssize_t>(sizeof(port)));

    auto wait_for = [&](auto done) {
      const auto end = Clock::now() + std::chrono::seconds(20);
      while (Clock::now() < end && !done()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      return done();
    };
    // Floods of far more connections than descriptors left: every one is
    // shed with 503 (with the spare lost to the other worker, later floods
    // used to get none). Several rounds: each is a chance for that race.
    for (int round = 0; round < 6; ++round) {
      const double shed_before = Metric(server, kShed);
      command(round == 0 ? 400 : 150);
      EXPECT_TRUE(wait_for([&] { return Metric(server, kShed) > shed_before; }))
          << "round " << round << "\n" << server.MetricsText();
      double last = Metric(server, kShed);
      wait_for([&] {  // until this flood is shed
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        const double now = Metric(server, kShed);
        const bool settled = now == last;
        last = now;
        return settled;
      });
    }
    // Then the workers go quiet: a spinning worker makes hundreds of
    // thousands of failed accepts a second; a paused one a few per tick.
    auto accept_errors = [&] {
      const std::string json = server.StatsJson();
      const std::size_t at = json.find("\"accept_errors\":");
      double v = -1;
      (void)absl::SimpleAtod(json.substr(at + 16, json.find(',', at) - at - 16), &v);
      return v;
    };
    const double errors_before = accept_errors();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_LT(accept_errors() - errors_before, 200) << server.StatsJson();
    command(0);
    int status = 0;
    waitpid(child, &status, 0);
    server.Shutdown();
    server.Wait();
  }
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  close(to_child[1]);
  close(from_child[0]);
}

}  // namespace
