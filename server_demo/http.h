// HTTP/1.1 request parsing and response formatting for the demo server.
//
// ParseRequest looks at the bytes a connection has received so far and
// either asks for more, reports a protocol error (with the status to send),
// or builds one complete request. It is stateless: call it again with the
// grown buffer. Nothing is allocated until the request is complete; then the
// header block, the header map and the body are copied into `memory` (the
// request's arena, or the global heap in malloc mode), so the connection may
// reuse its input buffer at once.
//
// Supported: HTTP/1.0 and 1.1, keep-alive both ways, pipelining (`consumed`
// says where the next request starts), Content-Length and chunked request
// bodies (extensions and trailers skipped), `Expect: 100-continue`.
// Thread-compatible; no shared state.
#ifndef SERVER_DEMO_HTTP_H_
#define SERVER_DEMO_HTTP_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <memory_resource>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace server_demo {

struct HttpLimits {
  std::size_t max_header_bytes = 8 * 1024;  // request line + headers
  std::size_t max_body_bytes = 1 << 20;     // decoded body
};

// Header names are lower-cased; values have surrounding whitespace removed.
// Repeated headers are joined with ", " (RFC 9110 5.3).
using HeaderMap = absl::flat_hash_map<
    absl::string_view, absl::string_view, absl::Hash<absl::string_view>,
    std::equal_to<absl::string_view>,
    std::pmr::polymorphic_allocator<
        std::pair<const absl::string_view, absl::string_view>>>;

struct HttpRequest {
  explicit HttpRequest(std::pmr::memory_resource* memory)
      : headers(memory), body(memory), storage(memory), joined(memory) {}
  absl::string_view method;
  absl::string_view target;  // as sent
  absl::string_view path;    // target up to '?'
  absl::string_view query;   // after '?', may be empty
  int minor_version = 1;     // HTTP/1.<minor>
  HeaderMap headers;
  std::pmr::string body;
  bool keep_alive = true;
  bool expect_continue = false;
  // The copied header block and joined repeated values that the views
  // above point into (a deque: its elements never move).
  std::pmr::string storage;
  std::pmr::deque<std::pmr::string> joined;

  // The header's value, or empty.
  absl::string_view Header(absl::string_view lower_name) const;
};

enum class ParseStatus { kIncomplete, kComplete, kError };

struct ParseResult {
  ParseStatus status = ParseStatus::kIncomplete;
  std::size_t consumed = 0;  // kComplete: bytes of input this request used
  int error_status = 0;      // kError: 400, 413, 417, 431, 501 or 505
  const char* error_message = "";
  // kIncomplete: the headers are complete, the body is not, and the client
  // waits for "100 Continue" before sending it.
  bool send_continue = false;
};

// REQUIRES: `out` is freshly constructed on `memory` (its fields are set
// only when the result is kComplete).
ParseResult ParseRequest(absl::string_view input, const HttpLimits& limits,
                         std::pmr::memory_resource* memory, HttpRequest* out);

const char* StatusReason(int status);

// Appends a complete response (status line, Date-less headers, body).
void AppendResponse(std::pmr::string* out, int status,
                    absl::string_view content_type, absl::string_view body,
                    bool keep_alive, bool http10);

// The value of `key` in a query string ("a=1&items=20"), or empty.
absl::string_view QueryParam(absl::string_view query, absl::string_view key);

}  // namespace server_demo

#endif  // SERVER_DEMO_HTTP_H_
