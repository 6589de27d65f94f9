#include "server_demo/http.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace server_demo {
namespace {

// A chunk-size line (hex digits, whitespace, extensions) longer than this
// is refused even while the extension budget lasts.
constexpr std::size_t kMaxChunkLine = 1024;
// A body buffer with more capacity than this is given back after its request.
constexpr std::size_t kKeepBodyCapacity = 64 * 1024;

bool IsTokenChar(unsigned char c) {
  if (absl::ascii_isalnum(c)) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

bool IsFieldValue(absl::string_view s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

// Removes optional whitespace (SP and HTAB only: a CR or LF left at the end
// of a value is an error, not whitespace).
absl::string_view StripOws(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether a comma-separated header value lists `token` (any case).
bool HasToken(absl::string_view value, absl::string_view token) {
  for (absl::string_view t : absl::StrSplit(value, ',')) {
    if (absl::EqualsIgnoreCase(StripOws(t), token)) return true;
  }
  return false;
}

// Length of "http://" or "https://" (any case) at the start of `target`, or 0.
std::size_t SchemeLength(absl::string_view target) {
  if (absl::StartsWithIgnoreCase(target, "http://")) return 7;
  if (absl::StartsWithIgnoreCase(target, "https://")) return 8;
  return 0;
}

ParseResult Error(int status, const char* message) {
  ParseResult r;
  r.status = ParseStatus::kError;
  r.error_status = status;
  r.error_message = message;
  return r;
}

// What the validated head says about the request; the views point into
// the head that was validated.
struct Head {
  absl::string_view method, target;
  int minor = 1;
  bool chunked = false;
  bool has_length = false;
  std::size_t content_length = 0;
  bool expect_continue = false;
  bool keep_alive = true;
};

// Validates a complete head (request line and header lines, without the
// final CRLF CRLF) without allocating.
ParseResult ValidateHead(absl::string_view head, Head* out) {
  const std::size_t line_end = head.find("\r\n");
  const absl::string_view line = head.substr(0, line_end);
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == absl::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == absl::string_view::npos || sp2 == absl::string_view::npos ||
      line.find(' ', sp2 + 1) != absl::string_view::npos) {
    return Error(400, "malformed request line");
  }
  const absl::string_view method = line.substr(0, sp1);
  const absl::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const absl::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Error(400, "malformed method");
  if (target.empty() || !IsFieldValue(target) || target.find('\t') != absl::string_view::npos ||
      (target[0] != '/' && target != "*" && SchemeLength(target) == 0)) {
    return Error(400, "malformed request target");
  }
  int minor;
  if (version == "HTTP/1.1") {
    minor = 1;
  } else if (version == "HTTP/1.0") {
    minor = 0;
  } else if (version.size() == 8 && absl::StartsWith(version, "HTTP/") &&
             absl::ascii_isdigit(version[5]) && version[6] == '.' &&
             absl::ascii_isdigit(version[7])) {
    return Error(505, "HTTP version not supported (use 1.0 or 1.1)");
  } else {
    return Error(400, "malformed HTTP version");
  }
  Head h;
  h.method = method;
  h.target = target;
  h.minor = minor;
  absl::string_view connection_value;
  bool has_te = false;
  int hosts = 0;
  std::size_t pos = line_end == absl::string_view::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    std::size_t end = head.find("\r\n", pos);
    if (end == absl::string_view::npos) end = head.size();
    const absl::string_view field = head.substr(pos, end - pos);
    pos = end + 2;
    if (field.empty()) break;
    if (field[0] == ' ' || field[0] == '\t') return Error(400, "obsolete header line folding");
    const std::size_t colon = field.find(':');
    if (colon == absl::string_view::npos) return Error(400, "header line without a colon");
    const absl::string_view name = field.substr(0, colon);
    const absl::string_view value = StripOws(field.substr(colon + 1));
    if (!IsToken(name)) return Error(400, "malformed header name");
    if (!IsFieldValue(value)) return Error(400, "control character in a header value");
    if (absl::EqualsIgnoreCase(name, "content-length")) {
      std::size_t n;
      if (value.empty() || !std::all_of(value.begin(), value.end(), absl::ascii_isdigit) ||
          value.size() > 18 || !absl::SimpleAtoi(value, &n)) {
        return Error(400, "malformed Content-Length");
      }
      if (h.has_length && n != h.content_length) {
        return Error(400, "conflicting Content-Length headers");
      }
      h.has_length = true;
      h.content_length = n;
    } else if (absl::EqualsIgnoreCase(name, "transfer-encoding")) {
      has_te = true;
      std::vector<absl::string_view> codings = absl::StrSplit(value, ',');
      const absl::string_view last = StripOws(codings.back());
      if (!absl::EqualsIgnoreCase(last, "chunked") || codings.size() > 1) {
        return Error(501, "only the chunked transfer coding is implemented");
      }
      h.chunked = true;
    } else if (absl::EqualsIgnoreCase(name, "expect")) {
      if (!absl::EqualsIgnoreCase(value, "100-continue")) {
        return Error(417, "only 'Expect: 100-continue' is supported");
      }
      // RFC 9110 10.1.1: ignored in an HTTP/1.0 request.
      h.expect_continue = minor == 1;
    } else if (absl::EqualsIgnoreCase(name, "connection")) {
      connection_value = value;
    } else if (absl::EqualsIgnoreCase(name, "host")) {
      ++hosts;
    }
  }
  if (has_te && h.has_length) {
    return Error(400, "both Transfer-Encoding and Content-Length");
  }
  if (has_te && minor == 0) return Error(400, "Transfer-Encoding in an HTTP/1.0 request");
  if (minor == 1 && hosts != 1) {
    return Error(400, hosts == 0 ? "HTTP/1.1 request without a Host header"
                                 : "more than one Host header");
  }
  h.keep_alive = minor == 1 ? !HasToken(connection_value, "close")
                            : HasToken(connection_value, "keep-alive");
  *out = h;
  return ParseResult{};
}

}  // namespace

absl::string_view HttpRequest::Header(absl::string_view lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? absl::string_view() : it->second;
}

void RequestParser::ResetRequest() {
  phase_ = Phase::kHead;
  started_ = false;
  skipped_ = 0;
  head_scan_ = 0;
  line_scan_ = 0;
  meta_bytes_ = 0;
  remaining_ = 0;
  head_.clear();
  if (body_.capacity() > kKeepBodyCapacity) {
    std::string().swap(body_);
  } else {
    body_.clear();
  }
}

ParseResult RequestParser::Parse(absl::string_view input, std::pmr::memory_resource* memory,
                                 HttpRequest* out) {
  std::size_t pos = 0;
  auto fail = [&](int status, const char* message) {
    ParseResult r = Error(status, message);
    r.consumed = input.size();
    ResetRequest();
    return r;
  };
  auto incomplete = [&]() {
    ParseResult r;
    r.consumed = pos;
    r.head_complete = phase_ != Phase::kHead;
    r.send_continue = r.head_complete && expect_continue_;
    return r;
  };
  if (!input.empty()) started_ = true;
  if (phase_ == Phase::kHead) {
    // RFC 9112 2.2: empty lines before the request line are dropped (and
    // count against the header limit, so that they cannot go on forever).
    if (head_scan_ == 0) {
      while (pos + 1 < input.size() && input[pos] == '\r' && input[pos + 1] == '\n') {
        pos += 2;
        skipped_ += 2;
        scanned_ += 2;
        if (skipped_ > limits_.max_header_bytes) {
          return fail(431, "request header section larger than the configured maximum");
        }
      }
      if (input.size() - pos == 1 && input[pos] == '\r') return incomplete();
    }
    // Find the end of the head, scanning only bytes not scanned before, and
    // none past the longest head allowed and its "\r\n\r\n" (skipped_ <=
    // max_header_bytes here): past that the answer is 431 whatever the
    // bytes are, so the outcome does not depend on how the input was split.
    const char* base = input.data() + pos;
    const std::size_t n = std::min(input.size() - pos, limits_.max_header_bytes + 4 - skipped_);
    std::size_t i = head_scan_;
    std::size_t head_size = absl::string_view::npos;
    while (i < n) {
      const void* lf = std::memchr(base + i, '\n', n - i);
      if (lf == nullptr) {
        scanned_ += n - i;
        i = n;
        break;
      }
      const std::size_t at = static_cast<const char*>(lf) - base;
      scanned_ += at + 1 - i;
      i = at + 1;
      if (at == 0 || base[at - 1] != '\r') return fail(400, "header lines must end with CRLF");
      if (at >= 3 && base[at - 2] == '\n' && base[at - 3] == '\r') {
        head_size = at - 3;
        break;
      }
    }
    head_scan_ = i;
    if (head_size == absl::string_view::npos) {
      // (+3: room for the "\r\n\r" of the terminator.)
      if (skipped_ + head_scan_ > limits_.max_header_bytes + 3) {
        return fail(431, "request header section larger than the configured maximum");
      }
      return incomplete();
    }
    if (skipped_ + head_size > limits_.max_header_bytes) {
      return fail(431, "request header section larger than the configured maximum");
    }
    const absl::string_view head(base, head_size);
    Head h;
    ParseResult valid = ValidateHead(head, &h);
    if (valid.status == ParseStatus::kError) return fail(valid.error_status, valid.error_message);
    scanned_ += head_size;  // validation reads the head once more
    pos += head_size + 4;
    expect_continue_ = h.expect_continue;
    if (h.chunked) {
      phase_ = Phase::kChunkSize;
    } else if (h.has_length && h.content_length != 0) {
      if (h.content_length > limits_.max_body_bytes) {
        return fail(413, "request body larger than the configured maximum");
      }
      phase_ = Phase::kLengthBody;
      remaining_ = h.content_length;
    } else {
      return Complete(head, memory, out, pos);
    }
    ParseResult body = ParseBody(input, &pos);
    if (body.status == ParseStatus::kError) return fail(body.error_status, body.error_message);
    if (body.status == ParseStatus::kComplete) return Complete(head, memory, out, pos);
    head_.assign(head.data(), head.size());
    return incomplete();
  }
  ParseResult body = ParseBody(input, &pos);
  if (body.status == ParseStatus::kError) return fail(body.error_status, body.error_message);
  if (body.status == ParseStatus::kComplete) {
    // Complete() resets head_: build from it moved out.
    std::string head;
    head.swap(head_);
    return Complete(head, memory, out, pos);
  }
  return incomplete();
}

// Advances through body bytes from *pos. kComplete when the body (and any
// trailers) ended; kIncomplete when `input` ran out.
ParseResult RequestParser::ParseBody(absl::string_view input, std::size_t* pos) {
  const std::size_t n = input.size();
  for (;;) {
    switch (phase_) {
      case Phase::kHead:
        return Error(500, "parser state");
      case Phase::kLengthBody:
      case Phase::kChunkData: {
        const std::size_t take = std::min(remaining_, n - *pos);
        body_.append(input.data() + *pos, take);
        scanned_ += take;
        *pos += take;
        remaining_ -= take;
        if (remaining_ != 0) return ParseResult{};
        if (phase_ == Phase::kLengthBody) {
          ParseResult r;
          r.status = ParseStatus::kComplete;
          return r;
        }
        phase_ = Phase::kChunkEnd;
        break;
      }
      case Phase::kChunkEnd: {
        if (n - *pos < 2) {
          if (n - *pos == 1 && input[*pos] != '\r') return Error(400, "chunk not followed by CRLF");
          return ParseResult{};
        }
        scanned_ += 2;
        if (input[*pos] != '\r' || input[*pos + 1] != '\n') {
          return Error(400, "chunk not followed by CRLF");
        }
        *pos += 2;
        phase_ = Phase::kChunkSize;
        break;
      }
      case Phase::kChunkSize:
      case Phase::kTrailers: {
        const bool trailer = phase_ == Phase::kTrailers;
        const char* start = input.data() + *pos;
        // Scan no further than the longest line allowed and its CRLF (a
        // chunk size line: kMaxChunkLine; a trailer: what max_header_bytes
        // leaves, and always the empty line that ends them; meta_bytes_ <=
        // max_header_bytes here): past that the error is the same whatever
        // the bytes are, so the outcome does not depend on how the input
        // was split.
        const std::size_t window =
            trailer ? std::max<std::size_t>(limits_.max_header_bytes - meta_bytes_, 2)
                    : kMaxChunkLine + 2;
        const std::size_t avail = std::min(n - *pos, window);
        const void* lf = std::memchr(start + line_scan_, '\n', avail - line_scan_);
        if (lf == nullptr) {
          scanned_ += avail - line_scan_;
          line_scan_ = avail;
          if (line_scan_ < window) return ParseResult{};
          if (!trailer) return Error(400, "chunk size line too long");
          return Error(431, "trailer section larger than the configured maximum");
        }
        const std::size_t at = static_cast<const char*>(lf) - start;
        scanned_ += at + 1 - line_scan_;
        line_scan_ = 0;
        if (at == 0 || start[at - 1] != '\r') return Error(400, "chunk lines must end with CRLF");
        const absl::string_view line(start, at - 1);
        *pos += at + 1;
        if (trailer) {
          if (line.empty()) {
            ParseResult r;
            r.status = ParseStatus::kComplete;
            return r;
          }
          meta_bytes_ += line.size() + 2;
          if (meta_bytes_ > limits_.max_header_bytes) {
            return Error(431, "trailer section larger than the configured maximum");
          }
          break;
        }
        if (line.size() > kMaxChunkLine) return Error(400, "chunk size line too long");
        scanned_ += line.size();
        const absl::string_view hex = StripOws(line.substr(0, line.find(';')));
        meta_bytes_ += line.size() - hex.size();
        if (meta_bytes_ > limits_.max_header_bytes) {
          return Error(431, "chunk extensions larger than the configured maximum");
        }
        if (hex.empty() || hex.size() > 15) return Error(400, "bad chunk size");
        std::size_t size = 0;
        for (char c : hex) {
          if (!absl::ascii_isxdigit(c)) return Error(400, "bad chunk size");
          size = size * 16 +
                 (absl::ascii_isdigit(c) ? c - '0' : (absl::ascii_tolower(c) - 'a' + 10));
        }
        if (size == 0) {
          phase_ = Phase::kTrailers;
        } else {
          if (size > limits_.max_body_bytes || body_.size() + size > limits_.max_body_bytes) {
            return Error(413, "request body larger than the configured maximum");
          }
          remaining_ = size;
          phase_ = Phase::kChunkData;
        }
        break;
      }
    }
  }
}

ParseResult RequestParser::Complete(absl::string_view head, std::pmr::memory_resource* memory,
                                    HttpRequest* out, std::size_t consumed) {
  Head h;
  ValidateHead(head, &h);  // validated before: fills the views and flags
  out->storage.assign(head.data(), head.size());
  const absl::string_view s(out->storage.data(), out->storage.size());
  auto at = [&](absl::string_view piece) {
    return s.substr(piece.data() - head.data(), piece.size());
  };
  out->method = at(h.method);
  out->target = at(h.target);
  absl::string_view origin = out->target;
  if (const std::size_t scheme = SchemeLength(origin); scheme != 0) {
    // Absolute form: the path starts after the authority.
    const std::size_t end = origin.find_first_of("/?", scheme);
    origin = end == absl::string_view::npos ? absl::string_view() : origin.substr(end);
  }
  const std::size_t q = origin.find('?');
  out->path = origin.substr(0, q);
  if (out->path.empty()) out->path = "/";
  out->query = q == absl::string_view::npos ? absl::string_view() : origin.substr(q + 1);
  out->minor_version = h.minor;
  std::size_t pos = s.find("\r\n");
  pos = pos == absl::string_view::npos ? s.size() : pos + 2;
  while (pos < s.size()) {
    std::size_t end = s.find("\r\n", pos);
    if (end == absl::string_view::npos) end = s.size();
    const absl::string_view field = s.substr(pos, end - pos);
    pos = end + 2;
    const std::size_t colon = field.find(':');
    // Lower-case the name in place (the copy is ours).
    char* name = &out->storage[field.data() - s.data()];
    for (std::size_t i = 0; i < colon; ++i) name[i] = absl::ascii_tolower(name[i]);
    const absl::string_view key = field.substr(0, colon);
    const absl::string_view value = StripOws(field.substr(colon + 1));
    auto [it, inserted] = out->headers.emplace(key, value);
    if (!inserted) {
      // Join repeated fields: "a, b".
      std::pmr::string& joined = out->joined.emplace_back();
      joined.append(it->second.data(), it->second.size());
      joined.append(", ");
      joined.append(value.data(), value.size());
      it->second = absl::string_view(joined.data(), joined.size());
    }
  }
  if (!body_.empty()) out->body.assign(body_.data(), body_.size());
  out->keep_alive = h.keep_alive;
  out->expect_continue = h.expect_continue;
  ResetRequest();
  ParseResult r;
  r.status = ParseStatus::kComplete;
  r.consumed = consumed;
  return r;
}

ParseResult ParseRequest(absl::string_view input, const HttpLimits& limits,
                         std::pmr::memory_resource* memory, HttpRequest* out) {
  RequestParser parser(limits);
  ParseResult r = parser.Parse(input, memory, out);
  if (r.status == ParseStatus::kIncomplete) r.consumed = 0;
  return r;
}

const char* StatusReason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

void AppendResponse(std::pmr::string* out, int status,
                    absl::string_view content_type, absl::string_view body,
                    bool keep_alive, bool http10, bool omit_body) {
  char length[24];
  const int n = snprintf(length, sizeof(length), "%zu", body.size());
  out->append(http10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  char code[8];
  snprintf(code, sizeof(code), "%d ", status);
  out->append(code);
  out->append(StatusReason(status));
  out->append("\r\nServer: arena-demo\r\nContent-Type: ");
  out->append(content_type.data(), content_type.size());
  out->append("\r\nContent-Length: ");
  out->append(length, n);
  if (!keep_alive) {
    out->append("\r\nConnection: close");
  } else if (http10) {
    out->append("\r\nConnection: keep-alive");
  }
  out->append("\r\n\r\n");
  if (!omit_body) out->append(body.data(), body.size());
}

absl::string_view QueryParam(absl::string_view query, absl::string_view key) {
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return eq == absl::string_view::npos ? absl::string_view() : pair.substr(eq + 1);
    }
  }
  return {};
}

}  // namespace server_demo
