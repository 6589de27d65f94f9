#include "server_demo/http.h"

#include <algorithm>
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
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
  for (std::size_t n = 0; n < in.size(); ++n) {
    ASSERT_EQ(Parse(in.substr(0, n)).result.status, ParseStatus::kIncomplete) << n;
  }
  Parsed p = Parse(in);
  ASSERT_EQ(p.result.status, ParseStatus::kComplete);
  EXPECT_EQ(p.request->body, "hello");
  EXPECT_FALSE(p.request->keep_alive);
}

TEST_F(HttpParseTest, PipelinedRequestsAreSeparated) {
  const std::string a = "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string b = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
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
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
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
  Parsed p = Parse("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(p.result.status, ParseStatus::kIncomplete);
  EXPECT_TRUE(p.result.send_continue);
  p = Parse("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nabcd");
  EXPECT_EQ(p.result.status, ParseStatus::kComplete);
  p = Parse("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: teapot\r\n\r\n");
  EXPECT_EQ(p.result.error_status, 417);
}

TEST_F(HttpParseTest, RepeatedHeadersAreJoined) {
  Parsed p = Parse("GET / HTTP/1.1\r\nHost: a\r\nAccept: a\r\naccept: b\r\n\r\n");
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
        BadCase{"ExtraSpace", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        BadCase{"BadMethod", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        BadCase{"BadTarget", "GET nope HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        BadCase{"Http2", "GET / HTTP/2.0\r\n\r\n", 505},
        BadCase{"Garbage", "GET / HTTX/1.1\r\n\r\n", 400},
        BadCase{"NoColon", "GET / HTTP/1.1\r\nHost: a\r\nHost a\r\n\r\n", 400},
        BadCase{"SpaceInName", "GET / HTTP/1.1\r\nHost: a\r\nHo st: a\r\n\r\n", 400},
        BadCase{"Folding", "GET / HTTP/1.1\r\nHost: a\r\nA: b\r\n c\r\n\r\n", 400},
        BadCase{"ControlChar", std::string("GET / HTTP/1.1\r\nHost: a\r\nA: b\x01\r\n\r\n"), 400},
        BadCase{"BadLength", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400},
        BadCase{"NegativeLength", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
        BadCase{"TwoLengths",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        BadCase{"LengthAndChunked",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                400},
        BadCase{"Gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        BadCase{"BadChunkSize",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        BadCase{"ChunkNoCrlf",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc", 400},
        BadCase{"BodyTooLarge", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n", 413},
        BadCase{"ChunkedTooLarge",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n", 413},
        BadCase{"HeadersTooLarge", "GET / HTTP/1.1\r\nHost: a\r\nA: " + std::string(300, 'a'), 431},
        BadCase{"BareLf", "GET / HTTP/1.1\nHost: a\n\n", 400}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

// Feeds `input` in `segments` pieces, dropping what the parser consumed
// after each call, as a connection does.
struct Fed {
  ParseResult result;
  std::size_t received = 0;
  std::size_t buffered_peak = 0;
};

Fed FeedInSegments(server_demo::RequestParser* parser, const std::string& input,
                   std::size_t segments, std::pmr::memory_resource* memory,
                   HttpRequest* out) {
  Fed f;
  std::string buffer;
  const std::size_t step = std::max<std::size_t>(1, input.size() / segments);
  for (std::size_t at = 0; at < input.size();) {
    const std::size_t n = std::min(step, input.size() - at);
    buffer.append(input, at, n);
    at += n;
    f.received += n;
    f.buffered_peak = std::max(f.buffered_peak, buffer.size());
    f.result = parser->Parse(buffer, memory, out);
    buffer.erase(0, f.result.consumed);
    if (f.result.status != ParseStatus::kIncomplete) break;
  }
  return f;
}

// Issue 8, item 6: a body of 1-byte chunks sent in 2000 segments is parsed
// in time linear in what was received (the old parser rescanned the whole
// body on every read: quadratic).
TEST_F(HttpParseTest, ChunkedParsingIsIncremental) {
  HttpLimits limits;
  limits.max_body_bytes = 1 << 20;
  std::string in = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < (1 << 20); ++i) {
    in += "1\r\n";
    in += static_cast<char>('a' + i % 26);
    in += "\r\n";
  }
  in += "0\r\n\r\n";
  server_demo::RequestParser parser(limits);
  HttpRequest request(arena_.resource());
  const Fed f = FeedInSegments(&parser, in, 2000, arena_.resource(), &request);
  ASSERT_EQ(f.result.status, ParseStatus::kComplete) << f.result.error_message;
  ASSERT_EQ(request.body.size(), std::size_t{1} << 20);
  EXPECT_EQ(request.body.substr(0, 3), "abc");
  EXPECT_EQ(f.received, in.size());
  EXPECT_LE(parser.bytes_scanned(), 2 * f.received);
  // The connection never holds more than one segment plus a partial line.
  EXPECT_LE(f.buffered_peak, in.size() / 2000 + 16);
}

TEST_F(HttpParseTest, SplitsGiveTheSameRequest) {
  const std::string in =
      "\r\n\r\nPOST /echo?x=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n";
  for (std::size_t segments : {1, 2, 3, 7, 40, 1000}) {
    server_demo::RequestParser parser{HttpLimits()};
    HttpRequest request(arena_.resource());
    const Fed f = FeedInSegments(&parser, in, segments, arena_.resource(), &request);
    ASSERT_EQ(f.result.status, ParseStatus::kComplete) << segments;
    EXPECT_EQ(request.body, "hello, world") << segments;
    EXPECT_EQ(request.path, "/echo");
    EXPECT_EQ(request.query, "x=1");
    EXPECT_FALSE(parser.in_request());
  }
}

// Issue 8, item 3: what a connection buffers is bounded by max_header_bytes
// (empty lines before the request line, chunk extensions, trailers), not by
// what the client sends.
TEST_F(HttpParseTest, EmptyLinesExtensionsAndTrailersAreBounded) {
  HttpLimits limits;
  limits.max_header_bytes = 1024;
  const std::string post = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string extensions = post, trailers = post + "0\r\n", empty;
  while (extensions.size() < (1 << 20)) extensions += "1;" + std::string(500, 'e') + "\r\nx\r\n";
  while (trailers.size() < (1 << 20)) trailers += "X-Trailer: " + std::string(100, 't') + "\r\n";
  while (empty.size() < (1 << 20)) empty += "\r\n";
  for (const std::string* in : {&empty, &extensions, &trailers}) {
    server_demo::RequestParser parser(limits);
    HttpRequest request(arena_.resource());
    const Fed f = FeedInSegments(&parser, *in, 1000, arena_.resource(), &request);
    ASSERT_EQ(f.result.status, ParseStatus::kError);
    EXPECT_EQ(f.result.error_status, 431) << f.result.error_message;
    // Refused within a few KiB of the limit, long before the end.
    EXPECT_LT(f.received, 8 * 1024u);
  }
  // Leading empty lines are dropped as they come, and do not end the head.
  server_demo::RequestParser parser(limits);
  HttpRequest request(arena_.resource());
  ParseResult r = parser.Parse("\r\n\r\n\r", arena_.resource(), &request);
  EXPECT_EQ(r.status, ParseStatus::kIncomplete);
  EXPECT_EQ(r.consumed, 4u);
  EXPECT_TRUE(parser.in_request());
  r = parser.Parse("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", arena_.resource(), &request);
  ASSERT_EQ(r.status, ParseStatus::kComplete) << r.error_message;
  EXPECT_EQ(request.path, "/");
}

// Issue 8, item 8.
TEST_F(HttpParseTest, ProtocolDetails) {
  // A header value ending in a bare LF or CR is an error, not whitespace.
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nHost: a\r\nX: v\n\r\n\r\n").result.error_status, 400);
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nHost: a\r\nX: v\r\r\n\r\n").result.error_status, 400);
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nHost: a\nX: v\r\n\r\n").result.error_status, 400);
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nHost: a\r\nX: v\rY: w\r\n\r\n").result.error_status, 400);
  // HTTP/1.1 needs exactly one Host, checked before the body arrives.
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\n\r\n").result.error_status, 400);
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").result.error_status, 400);
  EXPECT_EQ(Parse("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n").result.error_status, 400);
  EXPECT_EQ(Parse("GET / HTTP/1.0\r\n\r\n").result.status, ParseStatus::kComplete);
  // Absolute form: routed by its path.
  Parsed p = Parse("GET http://x:80/hello?items=2 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(p.result.status, ParseStatus::kComplete);
  EXPECT_EQ(p.request->path, "/hello");
  EXPECT_EQ(p.request->query, "items=2");
  p = Parse("GET HTTP://x HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(p.result.status, ParseStatus::kComplete);
  EXPECT_EQ(p.request->path, "/");
  // "100 Continue" is for HTTP/1.1 clients only.
  p = Parse("POST /echo HTTP/1.0\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(p.result.status, ParseStatus::kIncomplete);
  EXPECT_FALSE(p.result.send_continue);
}

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
  out.clear();
  server_demo::AppendResponse(&out, 200, "text/plain", "hello", true, false, /*omit_body=*/true);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nServer: arena-demo\r\nContent-Type: text/plain\r\n"
            "Content-Length: 5\r\n\r\n");
}

}  // namespace
