#include "server_demo/http.h"

#include <memory_resource>
#include <string>

#include <gtest/gtest.h>

#include "arena/arena.h"

namespace {

using server_demo::HttpLimits;
using server_demo::HttpRequest;
using server_demo::ParseRequest;
using server_demo::ParseResult;
using server_demo::ParseStatus;

struct Parsed {
  ParseResult result;
  std::unique_ptr<HttpRequest> request;
};

class HttpParseTest : public ::testing::Test {
 protected:
  Parsed Parse(const std::string& input, HttpLimits limits = HttpLimits()) {
    Parsed p;
    p.request = std::make_unique<HttpRequest>(arena_.resource());
    p.result = ParseRequest(input, limits, arena_.resource(), p.request.get());
    return p;
  }
  arena::Arena arena_;
};

TEST_F(HttpParseTest, SimpleGet) {
  const std::string in = "GET /json?items=5&x=1 HTTP/1.1\r\nHost: a\r\nX-Thing:  v  \r\n\r\n";
  Parsed p = Parse(in);
  ASSERT_EQ(p.result.status, ParseStatus::kComplete);
  EXPECT_EQ(p.result.consumed, in.size());
  EXPECT_EQ(p.request->method, "GET");
  EXPECT_EQ(p.request->path, "/json");
  EXPECT_EQ(p.request->query, "items=5&x=1");
  EXPECT_EQ(server_demo::QueryParam(p.request->query, "items"), "5");
  EXPECT_EQ(p.request->Header("x-thing"), "v");
  EXPECT_EQ(p.request->Header("host"), "a");
  EXPECT_TRUE(p.request->keep_alive);
  EXPECT_GT(arena_.stats().live_bytes, 0u);  // the request lives in the arena
}

TEST_F(HttpParseTest, ByteByByteIsIncompleteUntilTheEnd) {
  const std::string in =
      "POST /echo HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
  for (std::size_t n = 0; n < in.size(); ++n) {
    ASSERT_EQ(Parse(in.substr(0, n)).result.status, ParseStatus::kIncomplete) << n;
  }
  Parsed p = Parse(in);
  ASSERT_EQ(p.result.status, ParseStatus::kComplete);
  EXPECT_EQ(p.request->body, "hello");
  EXPECT_FALSE(p.request->keep_alive);
}

TEST_F(HttpParseTest, PipelinedRequestsAreSeparated) {
  const std::string a = "GET /hello HTTP/1.1\r\n\r\n";
  const std::string b = "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  const std::string in = a + b + "GET /x";
  Parsed p = Parse(in);
  ASSERT_EQ(p.result.status, ParseStatus::kComplete);
  EXPECT_EQ(p.result.consumed, a.size());
  Parsed q = Parse(in.substr(a.size()));
  ASSERT_EQ(q.result.status, ParseStatus::kComplete);
  EXPECT_EQ(q.result.consumed, b.size());
  EXPECT_EQ(q.request->body, "abc");
  EXPECT_EQ(Parse(in.substr(a.size() + b.size())).result.status, ParseStatus::kIncomplete);
}

TEST_F(HttpParseTest, ChunkedBodyWithExtensionsAndTrailers) {
  const std::string in =
      "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
  Parsed p = Parse(in);
  ASSERT_EQ(p.result.status, ParseStatus::kComplete);
  EXPECT_EQ(p.request->body, "hello, world");
  EXPECT_EQ(in.substr(p.result.consumed), "NEXT");
  for (std::size_t n = 50; n < in.size() - 4; ++n) {
    ASSERT_NE(Parse(in.substr(0, n)).result.status, ParseStatus::kError) << n;
  }
}

TEST_F(HttpParseTest, Http10KeepAlive) {
  Parsed p = Parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  ASSERT_EQ(p.result.status, ParseStatus::kComplete);
  EXPECT_EQ(p.request->minor_version, 0);
  EXPECT_TRUE(p.request->keep_alive);
  EXPECT_FALSE(Parse("GET / HTTP/1.0\r\n\r\n").request->keep_alive);
}

TEST_F(HttpParseTest, ExpectContinue) {
  Parsed p = Parse("POST /echo HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(p.result.status, ParseStatus::kIncomplete);
  EXPECT_TRUE(p.result.send_continue);
  p = Parse("POST /echo HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nabcd");
  EXPECT_EQ(p.result.status, ParseStatus::kComplete);
  p = Parse("POST /echo HTTP/1.1\r\nContent-Length: 4\r\nExpect: teapot\r\n\r\n");
  EXPECT_EQ(p.result.error_status, 417);
}

TEST_F(HttpParseTest, RepeatedHeadersAreJoined) {
  Parsed p = Parse("GET / HTTP/1.1\r\nAccept: a\r\naccept: b\r\n\r\n");
  ASSERT_EQ(p.result.status, ParseStatus::kComplete);
  EXPECT_EQ(p.request->Header("accept"), "a, b");
}

struct BadCase {
  const char* name;
  std::string input;
  int status;
};

class HttpMalformedTest : public HttpParseTest,
                          public ::testing::WithParamInterface<BadCase> {};

TEST_P(HttpMalformedTest, GetsTheRightStatus) {
  HttpLimits limits;
  limits.max_header_bytes = 256;
  limits.max_body_bytes = 16;
  Parsed p = Parse(GetParam().input, limits);
  EXPECT_EQ(p.result.status, ParseStatus::kError);
  EXPECT_EQ(p.result.error_status, GetParam().status) << p.result.error_message;
  EXPECT_STRNE(p.result.error_message, "");
}

INSTANTIATE_TEST_SUITE_P(
    Cases, HttpMalformedTest,
    ::testing::Values(
        BadCase{"NoVersion", "GET /\r\n\r\n", 400},
        BadCase{"ExtraSpace", "GET  / HTTP/1.1\r\n\r\n", 400},
        BadCase{"BadMethod", "G(T / HTTP/1.1\r\n\r\n", 400},
        BadCase{"BadTarget", "GET nope HTTP/1.1\r\n\r\n", 400},
        BadCase{"Http2", "GET / HTTP/2.0\r\n\r\n", 505},
        BadCase{"Garbage", "GET / HTTX/1.1\r\n\r\n", 400},
        BadCase{"NoColon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", 400},
        BadCase{"SpaceInName", "GET / HTTP/1.1\r\nHo st: a\r\n\r\n", 400},
        BadCase{"Folding", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400},
        BadCase{"ControlChar", std::string("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n"), 400},
        BadCase{"BadLength", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
        BadCase{"NegativeLength", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        BadCase{"TwoLengths",
                "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        BadCase{"LengthAndChunked",
                "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                400},
        BadCase{"Gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        BadCase{"BadChunkSize",
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        BadCase{"ChunkNoCrlf",
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc", 400},
        BadCase{"BodyTooLarge", "POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", 413},
        BadCase{"ChunkedTooLarge",
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n", 413},
        BadCase{"HeadersTooLarge", "GET / HTTP/1.1\r\nA: " + std::string(300, 'a'), 431},
        BadCase{"BareLf", "GET / HTTP/1.1\nHost: a\n\n", 400}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(HttpResponse, Format) {
  std::pmr::string out;
  server_demo::AppendResponse(&out, 404, "text/plain", "nope", true, false);
  EXPECT_EQ(out,
            "HTTP/1.1 404 Not Found\r\nServer: arena-demo\r\nContent-Type: text/plain\r\n"
            "Content-Length: 4\r\n\r\nnope");
  out.clear();
  server_demo::AppendResponse(&out, 200, "text/plain", "", true, true);
  EXPECT_NE(out.find("HTTP/1.0 200 OK"), std::string::npos);
  EXPECT_NE(out.find("Connection: keep-alive"), std::string::npos);
}

}  // namespace
