// Integration: POST /wordcount on a real Server over sockets, in each request
// allocator mode (connection arena, request arena, malloc). Random bodies
// (mixed case, punctuation, bytes >= 0x80, words split by every chunking)
// are answered exactly as a serial count computes them; the errors (405,
// 400, 413, and 503 past the per-request memory cap) are clean and the
// server keeps serving after them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "absl/base/config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server_demo/load.h"
#include "server_demo/server.h"

namespace {

using server_demo::DemoConfig;
using server_demo::HttpReply;
using server_demo::Server;

#ifdef ABSL_HAVE_THREAD_SANITIZER
constexpr int kBodies = 12;
#else
constexpr int kBodies = 40;
#endif
constexpr std::size_t kMaxBody = 64 * 1024;

// The documented answer, computed serially and independently of the
// server's code: words are maximal runs of ASCII letters and digits, folded
// to lower case; sorted by count descending, then word ascending.
std::string SerialWordCount(const std::string& text) {
  std::map<std::string, std::uint64_t> counts;
  std::uint64_t words = 0;
  std::string word;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    const unsigned char c = i < text.size() ? text[i] : ' ';
    if (c < 0x80 && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                     (c >= 'A' && c <= 'Z'))) {
      word.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
    } else if (!word.empty()) {
      ++counts[word];
      ++words;
      word.clear();
    }
  }
  std::vector<std::pair<std::string, std::uint64_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string json = absl::StrCat("{\"words\":", words, ",\"unique\":", sorted.size(),
                                  ",\"counts\":[");
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    absl::StrAppend(&json, i == 0 ? "" : ",", "[\"", sorted[i].first, "\",",
                    sorted[i].second, "]");
  }
  json += "]}";
  return json;
}

// A random body of about `size` bytes: words from a small vocabulary (so
// counts repeat and ties occur) or random alphanumerics, in random case,
// separated by runs of spaces, punctuation, control and high bytes.
std::string RandomBody(std::mt19937_64& rng, std::size_t size) {
  static const char* const kVocabulary[] = {"the", "a",  "arena", "tbb", "word", "Count",
                                            "x",   "42", "zebra", "A1",  "b2b",  "ARENA"};
  static const char kSeparators[] = " \t\r\n.,;:!?-_()[]{}\"'\\/\x01\x7f\x80\xc3\xa9\xff";
  std::string body;
  while (body.size() < size) {
    const std::uint64_t r = rng();
    if (r % 3 != 0) {
      std::string w = kVocabulary[(r >> 8) % std::size(kVocabulary)];
      if ((r >> 16) % 4 == 0) w = absl::AsciiStrToUpper(w);
      body += w;
    } else {
      static const char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
      const std::size_t len = 1 + (r >> 8) % 12;
      for (std::size_t i = 0; i < len; ++i) body += kAlnum[rng() % (sizeof(kAlnum) - 1)];
    }
    const std::size_t gap = 1 + rng() % 3;
    for (std::size_t i = 0; i < gap; ++i) {
      body += kSeparators[rng() % (sizeof(kSeparators) - 1)];
    }
  }
  body.resize(size);  // may cut the last word: a word at the very end
  return body;
}

std::string Post(const std::string& target, const std::string& body, bool close = true) {
  return absl::StrCat("POST ", target, " HTTP/1.1\r\nHost: x\r\nContent-Length: ", body.size(),
                      close ? "\r\nConnection: close" : "", "\r\n\r\n", body);
}

// Sends `request` on a new connection and reads until the server closes it
// (5 s receive timeout).
std::string SendAndReadToEof(int port, const std::string& request) {
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

struct Mode {
  const char* name;
  const char* allocator;
  const char* scope;
};

class WordCountTest : public ::testing::TestWithParam<Mode> {
 protected:
  void StartServer(std::size_t request_memory_limit) {
    DemoConfig config;
    config.server.port = 0;
    config.server.threads = 2;
    config.server.allocator = GetParam().allocator;
    config.server.arena_scope = GetParam().scope;
    config.server.max_body_bytes = kMaxBody;
    config.server.request_memory_limit = request_memory_limit;
    config.server.idle_timeout_ms = 2000;
    config.server.header_timeout_ms = 2000;
    server_ = std::make_unique<Server>(config);
    ASSERT_TRUE(server_->Start().ok());
    port_ = server_->port();
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_ != nullptr) {
      server_->Shutdown();
      server_->Wait();
    }
  }
  HttpReply Raw(const std::string& request) {
    auto r = server_demo::HttpRequestOnce("127.0.0.1", port_, request);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpReply{};
  }
  std::unique_ptr<Server> server_;
  int port_ = 0;
};

TEST_P(WordCountTest, MatchesSerialCount) {
  StartServer(4 << 20);
  std::mt19937_64 rng(20261127);
  for (int i = 0; i < kBodies; ++i) {
    // Sizes from empty to the body limit; sometimes an explicit split,
    // including more chunks than words.
    std::size_t size = rng() % 4 == 0 ? rng() % 64 : rng() % (kMaxBody + 1);
    const std::string body = RandomBody(rng, size);
    std::string target = "/wordcount";
    if (rng() % 2 == 0) absl::StrAppend(&target, "?chunks=", 1 + rng() % 256);
    SCOPED_TRACE(absl::StrCat("body ", i, ": ", size, " bytes, ", target));
    const HttpReply reply = Raw(Post(target, body));
    EXPECT_EQ(reply.status, 200);
    EXPECT_NE(reply.headers.find("application/json"), std::string::npos) << reply.headers;
    EXPECT_EQ(reply.body, SerialWordCount(body));
  }
}

TEST_P(WordCountTest, KnownAnswerAndOrder) {
  StartServer(4 << 20);
  // Ties by word ascending (byte order: digits first); case folded.
  const HttpReply reply = Raw(Post("/wordcount?chunks=3", "b a B c 9,A;a\xc3\xa9z"));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body,
            "{\"words\":8,\"unique\":5,\"counts\":[[\"a\",3],[\"b\",2],[\"9\",1],[\"c\",1],"
            "[\"z\",1]]}");
  EXPECT_EQ(Raw(Post("/wordcount", "")).body, "{\"words\":0,\"unique\":0,\"counts\":[]}");
}

TEST_P(WordCountTest, PipelinedRequestsOnOneConnection) {
  StartServer(4 << 20);
  // Several keep-alive requests sent at once share a connection (and its
  // arena in connection scope); the last one closes it.
  std::mt19937_64 rng(7);
  std::string pipeline;
  std::vector<std::string> expected;
  for (int i = 0; i < 4; ++i) {
    const std::string body = RandomBody(rng, 5000 + 3000 * i);
    pipeline += Post("/wordcount?chunks=8", body, /*close=*/i == 3);
    expected.push_back(SerialWordCount(body));
  }
  const std::string in = SendAndReadToEof(port_, pipeline);
  std::size_t pos = 0;
  for (const std::string& want : expected) {
    const std::size_t head_end = in.find("\r\n\r\n", pos);
    ASSERT_NE(head_end, std::string::npos) << in.substr(pos);
    const std::string head = in.substr(pos, head_end - pos);
    EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
    const std::size_t cl = head.find("Content-Length: ");
    ASSERT_NE(cl, std::string::npos) << head;
    const std::size_t length = std::stoul(head.substr(cl + 16));
    EXPECT_EQ(in.substr(head_end + 4, length), want);
    pos = head_end + 4 + length;
  }
  EXPECT_EQ(pos, in.size());
}

TEST_P(WordCountTest, ErrorsAreClean) {
  StartServer(4 << 20);
  EXPECT_EQ(Raw("GET /wordcount HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status, 405);
  EXPECT_EQ(Raw(Post("/wordcount?chunks=0", "a b")).status, 400);
  EXPECT_EQ(Raw(Post("/wordcount?chunks=257", "a b")).status, 400);
  EXPECT_EQ(Raw(Post("/wordcount?chunks=x", "a b")).status, 400);
  // Past max_body_bytes: refused from the head.
  EXPECT_EQ(Raw(absl::StrCat("POST /wordcount HTTP/1.1\r\nHost: x\r\nContent-Length: ",
                             kMaxBody + 1, "\r\n\r\n"))
                .status,
            413);
  const HttpReply ok = Raw(Post("/wordcount", "still serving"));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, SerialWordCount("still serving"));
}

TEST_P(WordCountTest, PerRequestMemoryCapGives503) {
  // The body fits max_body_bytes, and its copy and its lower-cased copy fit
  // 200 KiB, but the maps of 60 KiB of distinct words do not: the cap is hit
  // inside the racing tasks.
  StartServer(200 * 1024);
  std::string body;
  for (int i = 0; body.size() < 60 * 1024; ++i) absl::StrAppend(&body, "w", i, " ");
  for (const char* target : {"/wordcount", "/wordcount?chunks=64", "/wordcount?chunks=1"}) {
    const HttpReply reply = Raw(Post(target, body));
    EXPECT_EQ(reply.status, 503) << target;
  }
  // Healthy requests still work afterwards, on new connections. One chunk:
  // each thread that takes part holds a block (64 KiB) of the request's
  // SharedArena, and 200 KiB leaves room for two, not for one per core.
  const HttpReply ok = Raw(Post("/wordcount?chunks=1", "one two two"));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, SerialWordCount("one two two"));
  auto hello = server_demo::HttpGet("127.0.0.1", port_, "/hello");
  ASSERT_TRUE(hello.ok()) << hello.status();
  EXPECT_EQ(hello->status, 200);
}

INSTANTIATE_TEST_SUITE_P(Modes, WordCountTest,
                         ::testing::Values(Mode{"ConnectionArena", "arena", "connection"},
                                           Mode{"RequestArena", "arena", "request"},
                                           Mode{"Malloc", "malloc", "connection"}),
                         [](const ::testing::TestParamInfo<Mode>& info) {
                           return info.param.name;
                         });

}  // namespace
