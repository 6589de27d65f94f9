// HTTP/1.1 request parsing and response formatting for the demo server.
//
// RequestParser is incremental: a connection feeds it the bytes it has
// buffered, and the parser consumes what it has dealt with (leading empty
// lines, a head whose body is still arriving, body bytes, chunk framing), so
// the connection erases them and never rescans them. Each byte is examined a
// bounded number of times (bytes_scanned() counts them), whatever the
// segmentation: a body of 1-byte chunks costs the same as one chunk. The head
// is held until the body completes (at most max_header_bytes) and the
// decoded body grows in the parser (at most max_body_bytes); chunk
// extensions and trailers are skipped but count, with the leading empty
// lines and the head, against max_header_bytes. Nothing is allocated in the
// request's memory until the request is complete; then the header block,
// the header map and the body are copied into `memory` (the request's arena,
// or the global heap in malloc mode).
//
// Supported: HTTP/1.0 and 1.1, keep-alive both ways, pipelining, origin-form
// and absolute-form targets, Content-Length and chunked request bodies,
// `Expect: 100-continue` (HTTP/1.1 only). HTTP/1.1 requests need exactly one
// Host header (RFC 9112 3.2), checked as soon as the head is complete.
// Header lines end in CRLF; a bare CR or LF anywhere in the head is a 400.
//
// Thread-compatible: one parser per connection, no shared state.
#ifndef SERVER_DEMO_HTTP_H_
#define SERVER_DEMO_HTTP_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory_resource>
#include <string>
#include <unordered_map>

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace server_demo {

struct HttpLimits {
  // Request line + headers, plus leading empty lines, chunk extensions and
  // trailers.
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 1 << 20;  // decoded body
};

// Header names are lower-cased; values have surrounding spaces and tabs
// removed. Repeated headers are joined with ", " (RFC 9110 5.3).
// std::unordered_map, not absl::flat_hash_map: the map allocates from the
// request's capped resource, which throws at the cap, and Debian's Abseil
// (20220623) records a table's new capacity before allocating it, so a
// throwing allocation leaves a table that later frees with the wrong size
// (into the arena's free lists: a chunk filed under a larger class).
// unordered_map's insert and rehash leave the map as it was.
using HeaderMap = std::unordered_map<
    absl::string_view, absl::string_view, absl::Hash<absl::string_view>,
    std::equal_to<absl::string_view>,
    std::pmr::polymorphic_allocator<
        std::pair<const absl::string_view, absl::string_view>>>;

struct HttpRequest {
  explicit HttpRequest(std::pmr::memory_resource* memory)
      : headers(memory), body(memory), storage(memory), joined(memory) {}
  absl::string_view method;
  absl::string_view target;  // as sent
  absl::string_view path;    // target up to '?' (absolute-form: without scheme://authority)
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
  // Bytes at the front of the input that the caller must drop before the
  // next call (any status; kComplete: through the end of this request).
  std::size_t consumed = 0;
  int error_status = 0;      // kError: 400, 413, 417, 431, 501 or 505
  const char* error_message = "";
  // kIncomplete: the head is complete and valid, the body is not.
  bool head_complete = false;
  // kIncomplete: as head_complete, and the client waits for
  // "100 Continue" before sending the body.
  bool send_continue = false;
};

// Incremental parser of one connection's requests, one at a time.
class RequestParser {
 public:
  explicit RequestParser(const HttpLimits& limits) : limits_(limits) {}

  // Parses from `input` (what the connection holds, starting where the
  // previous call's `consumed` ended). On kComplete fills `out` in `memory`
  // and resets for the next request; on kError the connection is beyond
  // repair (close it after the error response).
  // REQUIRES: `out` is freshly constructed on `memory`.
  ParseResult Parse(absl::string_view input, std::pmr::memory_resource* memory,
                    HttpRequest* out);

  // True between the first byte of a request (empty lines included) and its
  // completion; false when waiting for the first byte.
  bool in_request() const { return started_ || phase_ != Phase::kHead; }
  // The head is complete and the body is being received.
  bool in_body() const { return phase_ != Phase::kHead; }
  // Bytes examined so far, all requests (an operation count for tests).
  std::uint64_t bytes_scanned() const { return scanned_; }

 private:
  enum class Phase { kHead, kLengthBody, kChunkSize, kChunkData, kChunkEnd, kTrailers };

  ParseResult ParseHeadAt(absl::string_view input, std::size_t head_size);
  ParseResult ParseBody(absl::string_view input, std::size_t* pos);
  ParseResult Complete(absl::string_view head, std::pmr::memory_resource* memory,
                       HttpRequest* out, std::size_t consumed);
  void ResetRequest();

  const HttpLimits limits_;
  Phase phase_ = Phase::kHead;
  bool started_ = false;        // a byte of the current request was seen
  std::size_t skipped_ = 0;     // leading empty-line bytes dropped
  std::size_t head_scan_ = 0;   // kHead: bytes of the current head scanned for its end
  std::size_t line_scan_ = 0;   // chunk size / trailer line: bytes scanned
  std::size_t meta_bytes_ = 0;  // chunk extensions + trailers so far
  std::size_t remaining_ = 0;   // kLengthBody / kChunkData: bytes left
  bool expect_continue_ = false;
  std::string head_;  // the head, once complete, while the body arrives
  std::string body_;  // the decoded body so far
  std::uint64_t scanned_ = 0;
};

// One-shot parse of a whole buffer (a fresh RequestParser): kIncomplete
// means more bytes are needed, and `consumed` is then 0.
// REQUIRES: `out` is freshly constructed on `memory`.
ParseResult ParseRequest(absl::string_view input, const HttpLimits& limits,
                         std::pmr::memory_resource* memory, HttpRequest* out);

const char* StatusReason(int status);

// Appends a complete response (status line, Date-less headers, body). With
// `omit_body` (a HEAD request) the Content-Length is that of `body` but the
// body itself is not sent.
void AppendResponse(std::pmr::string* out, int status,
                    absl::string_view content_type, absl::string_view body,
                    bool keep_alive, bool http10, bool omit_body = false);

// The value of `key` in a query string ("a=1&items=20"), or empty.
absl::string_view QueryParam(absl::string_view query, absl::string_view key);

}  // namespace server_demo

#endif  // SERVER_DEMO_HTTP_H_
