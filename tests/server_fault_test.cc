// Fault injection in the real server: the process runtime runs on a page
// source that refuses maps on demand (FaultInjectingPageSource over
// MallocPageSource), and a Server on port 0 serves over real sockets. A map
// refused at each point where the runtime maps (an arena's first block in a
// cold process, an arena's refill past what the thread cache holds, a
// depot refill that gets only part of its batch, a large allocation) makes
// the affected request a 503 (and closes its connection); once the source
// heals, the same requests succeed; and after shutdown and Trim nothing is
// left mapped (every span back in MallocPageSource, mapped_bytes == 0).
// Runs with connection arenas and with per-request arenas.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "arena/arena.h"
#include "arena/testing/test_page_sources.h"
#include "server_demo/server.h"

namespace {

arena::testing::MallocPageSource* g_malloc_source;
arena::testing::FaultInjectingPageSource* g_faults;

// Small blocks and a small large-allocation threshold, so that requests of
// a few KiB need several blocks and a /json answer of 40 KiB is a large
// mapping; batches of two blocks, so that a depot refill can fail halfway.
// No large cache: every large allocation maps.
constexpr std::size_t kBlock = 16 * 1024;
constexpr std::size_t kLargeThreshold = 8 * 1024;

// About 6 KiB of small allocations (each under kLargeThreshold).
constexpr const char* kSmallJson = "GET /json?items=30 HTTP/1.1\r\nHost: x\r\n\r\n";
// Large allocations: 200 records (about 25 KiB) and a 43 KiB body.
constexpr const char* kLargeJson = "GET /json?items=200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
constexpr const char* kHello = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
// Eight pipelined /json answers, all unsent until the batch is served:
// their memory (a connection arena, or eight request arenas) is held at
// once, far more than the two blocks a thread cache keeps.
constexpr int kBurst = 8;

// Sends `request` on a new connection and reads until the server closes it
// (5 s receive timeout).
std::string Exchange(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  std::string in;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::size_t sent = 0;
    while (sent < request.size()) {
      const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += n;
    }
    char buf[65536];
    for (;;) {
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      in.append(buf, n);
    }
  }
  close(fd);
  return in;
}

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (std::size_t p = haystack.find(needle); p != std::string::npos;
       p = haystack.find(needle, p + 1)) {
    ++n;
  }
  return n;
}

std::string Burst() {
  std::string s;
  for (int i = 0; i < kBurst - 1; ++i) s += kSmallJson;
  s += "GET /json?items=30 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  return s;
}

class ServerFaultTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    g_faults->Heal();
    arena::Trim();  // an empty depot: the server's first block must be mapped
    ASSERT_EQ(arena::GlobalStats().mapped_bytes, 0u);
    server_demo::DemoConfig config;
    config.server.port = 0;
    config.server.threads = 1;  // one worker: one thread cache to reason about
    config.server.allocator = "arena";
    config.server.arena_scope = GetParam();
    config.server.idle_timeout_ms = 500;
    config.server.header_timeout_ms = 500;
    config.server.send_timeout_ms = 1000;
    config.server.shutdown_deadline_ms = 200;
    server_ = std::make_unique<server_demo::Server>(config);
    ASSERT_TRUE(server_->Start().ok());
    port_ = server_->port();
    failures_before_ = arena::GlobalStats().map_failures;
  }

  // Heals, checks that the server serves normally again, stops it (its
  // worker's thread cache goes back to the depot when the thread exits) and
  // checks that nothing stays mapped after Trim.
  void TearDown() override {
    g_faults->Heal();
    if (server_ != nullptr) {
      EXPECT_EQ(Count(Exchange(port_, kHello), "HTTP/1.1 200"), 1);
      EXPECT_EQ(Count(Exchange(port_, Burst()), "HTTP/1.1 200"), kBurst);
      server_->Shutdown();
      server_->Wait();
      server_.reset();
    }
    arena::Trim();
    EXPECT_EQ(g_malloc_source->outstanding_spans(), 0u);
    EXPECT_EQ(arena::GlobalStats().mapped_bytes, 0u);
  }

  std::uint64_t NewMapFailures() const {
    return arena::GlobalStats().map_failures - failures_before_;
  }

  std::unique_ptr<server_demo::Server> server_;
  int port_ = 0;
  std::uint64_t failures_before_ = 0;
};

// A cold process: the first request's first block is the first map.
TEST_P(ServerFaultTest, FirstMap) {
  g_faults->set_failing(true);
  const std::string reply = Exchange(port_, kHello);
  EXPECT_EQ(reply.rfind("HTTP/1.1 503", 0), 0u) << reply;
  EXPECT_GT(NewMapFailures(), 0u);
  g_faults->Heal();
  EXPECT_EQ(Exchange(port_, kHello).rfind("HTTP/1.1 200", 0), 0u);
}

// A warm worker: its cache serves a small request without a map, but the
// arenas of a burst need more blocks than the cache holds, and the refill
// from the (empty) depot fails.
TEST_P(ServerFaultTest, Refill) {
  ASSERT_EQ(Exchange(port_, kHello).rfind("HTTP/1.1 200", 0), 0u);  // warm the cache
  arena::Trim();  // the depot holds nothing: a refill must map
  g_faults->set_failing(true);
  EXPECT_EQ(Exchange(port_, kHello).rfind("HTTP/1.1 200", 0), 0u);  // from the cache
  const std::string burst = Exchange(port_, Burst());
  EXPECT_EQ(Count(burst, "HTTP/1.1 503"), 1) << burst;
  EXPECT_LT(Count(burst, "HTTP/1.1 200"), kBurst);
  EXPECT_GT(NewMapFailures(), 0u);
  g_faults->Heal();
  EXPECT_EQ(Count(Exchange(port_, Burst()), "HTTP/1.1 200"), kBurst);
}

// A cold worker whose first depot refill maps one block of its batch of two:
// a one-block request is served from it, a burst needs more and fails.
TEST_P(ServerFaultTest, DepotRefillGetsPartOfItsBatch) {
  g_faults->FailAfter(1);
  EXPECT_EQ(Exchange(port_, kHello).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(NewMapFailures(), 1u);  // the batch's second block
  const std::string burst = Exchange(port_, Burst());
  EXPECT_EQ(Count(burst, "HTTP/1.1 503"), 1) << burst;
  g_faults->Heal();
  EXPECT_EQ(Count(Exchange(port_, Burst()), "HTTP/1.1 200"), kBurst);
}

// A warm worker: small requests are served from its cache, a large
// allocation needs a mapping of its own and fails.
TEST_P(ServerFaultTest, LargeAllocation) {
  ASSERT_EQ(Exchange(port_, kHello).rfind("HTTP/1.1 200", 0), 0u);  // warm the cache
  g_faults->set_failing(true);
  EXPECT_EQ(Exchange(port_, kHello).rfind("HTTP/1.1 200", 0), 0u);
  const std::string reply = Exchange(port_, kLargeJson);
  EXPECT_EQ(reply.rfind("HTTP/1.1 503", 0), 0u) << reply.substr(0, 200);
  EXPECT_GT(NewMapFailures(), 0u);
  g_faults->Heal();
  const std::string healed = Exchange(port_, kLargeJson);
  EXPECT_EQ(healed.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_NE(healed.find("\"id\":199"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Scopes, ServerFaultTest, ::testing::Values("connection", "request"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);
                         });

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Never destroyed, like the runtime that uses them.
  g_malloc_source = new arena::testing::MallocPageSource();
  g_faults = new arena::testing::FaultInjectingPageSource(g_malloc_source);
  arena::Config config;
  config.block_size = kBlock;
  config.large_threshold = kLargeThreshold;
  config.depot_batch_blocks = 2;
  config.thread_cache_blocks = 2;
  config.large_cache_bytes = 0;
  config.release_delay_ms = 60 * 1000;  // nothing released behind the test's back
  const absl::Status status = arena::Configure(config, g_faults);
  if (!status.ok()) {
    std::fprintf(stderr, "Configure: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return RUN_ALL_TESTS();
}
