// Integration test of examples/beast_server: starts the binary on port 0
// once per allocator (--allocator=arena and --allocator=std) and checks its
// answers byte for byte, over real sockets, against server_demo's format
// (server_demo/handlers.cc and http.cc's AppendResponse).
//
// The binary: argv[1], else Bazel's runfiles
// ($TEST_SRCDIR/$TEST_WORKSPACE/examples/beast_server/beast_server).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace {

std::string g_binary;

// The server process: started in the constructor, SIGTERM in the destructor.
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& allocator) {
    int out[2];
    if (pipe(out) != 0) std::abort();
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      close(out[0]);
      close(out[1]);
      const std::string flag = "--allocator=" + allocator;
      execl(g_binary.c_str(), g_binary.c_str(), "--port=0", flag.c_str(),
            static_cast<char*>(nullptr));
      std::perror("exec beast_server");
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[256] = {};
    if (f != nullptr && std::fgets(line, sizeof(line), f) != nullptr) {
      first_line_ = line;
      const char* colon = std::strrchr(line, ':');
      if (std::strncmp(line, "listening on ", 13) == 0 && colon != nullptr) {
        port_ = std::atoi(colon + 1);
      }
    }
    if (f != nullptr) std::fclose(f);
  }
  ~ServerProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "beast_server did not exit cleanly on SIGTERM: status " << status;
  }
  int port() const { return port_; }
  const std::string& first_line() const { return first_line_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string first_line_;
};

// Sends `request` on a new connection, returns everything read until the
// server closes it (the last request must close it) or 10 s pass.
std::string Exchange(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ADD_FAILURE() << "connect: " << std::strerror(errno);
    close(fd);
    return "";
  }
  for (std::size_t sent = 0; sent < request.size();) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      if (n < 0) ADD_FAILURE() << "recv: " << std::strerror(errno);
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return out;
}

std::string Get(const std::string& target, bool close = true) {
  return "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n" +
         (close ? "Connection: close\r\n" : "") + "\r\n";
}

// server_demo's response bytes.
std::string Response(const std::string& status, const std::string& type,
                     const std::string& body, bool close = true, bool head = false,
                     const std::string& version = "HTTP/1.1") {
  return version + " " + status + "\r\nServer: arena-demo\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) +
         (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + (head ? "" : body);
}

const char kJson3[] =
    "[{\"id\":0,\"name\":\"record-name-with-enough-text-to-leave-sso-0\","
    "\"tags\":[\"alpha\"],\"attributes\":{\"weight\":0,\"score\":1},\"active\":true},"
    "{\"id\":1,\"name\":\"record-name-with-enough-text-to-leave-sso-1\","
    "\"tags\":[\"beta\",\"gamma\"],\"attributes\":{\"weight\":0.37,\"score\":1.37},"
    "\"active\":false},"
    "{\"id\":2,\"name\":\"record-name-with-enough-text-to-leave-sso-2\","
    "\"tags\":[\"gamma\",\"delta\",\"epsilon\"],\"attributes\":{\"weight\":0.74,"
    "\"score\":1.74},\"active\":true}]";

std::size_t Count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

std::string Body(const std::string& response) {
  const std::size_t head = response.find("\r\n\r\n");
  return head == std::string::npos ? "" : response.substr(head + 4);
}

class BeastServerTest : public testing::TestWithParam<const char*> {
 protected:
  BeastServerTest() : server_(GetParam()) {}
  void SetUp() override {
    ASSERT_GT(server_.port(), 0) << "first line: " << server_.first_line();
    ASSERT_EQ(server_.first_line(),
              "listening on 127.0.0.1:" + std::to_string(server_.port()) + "\n");
  }
  int port() const { return server_.port(); }

  ServerProcess server_;
};

TEST_P(BeastServerTest, Hello) {
  EXPECT_EQ(Exchange(port(), Get("/hello")),
            Response("200 OK", "text/plain", "Hello, world!\n"));
}

TEST_P(BeastServerTest, JsonExactBytes) {
  EXPECT_EQ(Exchange(port(), Get("/json?items=3")),
            Response("200 OK", "application/json", kJson3));
  EXPECT_EQ(Exchange(port(), Get("/json?items=0")), Response("200 OK", "application/json", "[]"));
  EXPECT_EQ(Exchange(port(), Get("/json?x=1&items=3&items=7")),
            Response("200 OK", "application/json", kJson3));
}

TEST_P(BeastServerTest, JsonDefaultAndLarge) {
  EXPECT_EQ(Count(Body(Exchange(port(), Get("/json"))), "{\"id\":"), 10u);
  EXPECT_EQ(Count(Body(Exchange(port(), Get("/json?items"))), "{\"id\":"), 10u);
  const std::string large = Exchange(port(), Get("/json?items=20000"));
  const std::string body = Body(large);
  EXPECT_EQ(Count(body, "{\"id\":"), 20000u);
  EXPECT_NE(body.find("{\"id\":19999,\"name\":\"record-name-with-enough-text-to-leave-sso-19999\""),
            std::string::npos);
  EXPECT_NE(large.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n"),
            std::string::npos);
}

TEST_P(BeastServerTest, Errors) {
  EXPECT_EQ(Exchange(port(), Get("/json?items=abc")),
            Response("400 Bad Request", "text/plain", "items must be a non-negative integer\n"));
  EXPECT_EQ(Exchange(port(), Get("/json?items=50001")),
            Response("400 Bad Request", "text/plain", "items must be at most 50000\n"));
  EXPECT_EQ(Exchange(port(), Get("/nope")),
            Response("404 Not Found", "text/plain", "no such route\n"));
  EXPECT_EQ(Exchange(port(), "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                             "Connection: close\r\n\r\nabc"),
            Response("405 Method Not Allowed", "text/plain", "use GET\n"));
}

TEST_P(BeastServerTest, HeadAndHttp10) {
  EXPECT_EQ(Exchange(port(), "HEAD /json?items=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            Response("200 OK", "application/json", kJson3, true, /*head=*/true));
  EXPECT_EQ(Exchange(port(), "GET /hello HTTP/1.0\r\n\r\n"),
            Response("200 OK", "text/plain", "Hello, world!\n", true, false, "HTTP/1.0"));
  // HTTP/1.0 keep-alive, then a closing request on the same connection.
  EXPECT_EQ(Exchange(port(), "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" +
                                 Get("/nope")),
            "HTTP/1.0 200 OK\r\nServer: arena-demo\r\nContent-Type: text/plain\r\n"
            "Content-Length: 14\r\nConnection: keep-alive\r\n\r\nHello, world!\n" +
                Response("404 Not Found", "text/plain", "no such route\n"));
}

// Pipelined requests in one write: the read buffer carries the later ones
// across the arena's Reset after each response.
TEST_P(BeastServerTest, Pipelined) {
  std::string request, expected;
  for (int i = 0; i < 20; ++i) {
    request += Get(i % 2 ? "/hello" : "/json?items=3", false);
    expected += i % 2 ? Response("200 OK", "text/plain", "Hello, world!\n", false)
                      : Response("200 OK", "application/json", kJson3, false);
  }
  request += Get("/json?items=0");
  expected += Response("200 OK", "application/json", "[]");
  EXPECT_EQ(Exchange(port(), request), expected);
}

TEST_P(BeastServerTest, ConcurrentConnections) {
  std::vector<std::string> results(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::string request;
      for (int i = 0; i < 50; ++i) request += Get("/json?items=3", false);
      results[t] = Exchange(port(), request + Get("/hello"));
    });
  }
  for (std::thread& t : threads) t.join();
  std::string expected;
  for (int i = 0; i < 50; ++i) expected += Response("200 OK", "application/json", kJson3, false);
  expected += Response("200 OK", "text/plain", "Hello, world!\n");
  for (const std::string& r : results) EXPECT_EQ(r, expected);
}

INSTANTIATE_TEST_SUITE_P(Allocators, BeastServerTest, testing::Values("arena", "std"),
                         [](const testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);
                         });

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc > 1) {
    g_binary = argv[1];
  } else if (const char* srcdir = std::getenv("TEST_SRCDIR")) {
    const char* workspace = std::getenv("TEST_WORKSPACE");
    g_binary = std::string(srcdir) + "/" + (workspace ? workspace : "arena") +
               "/examples/beast_server/beast_server";
  } else {
    std::fprintf(stderr, "usage: beast_server_test PATH_TO_beast_server\n");
    return 2;
  }
  return RUN_ALL_TESTS();
}
