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

// Whether a comma-separated header value lists `token` (any case).
bool HasToken(absl::string_view value, absl::string_view token) {
  for (absl::string_view t : absl::StrSplit(value, ',')) {
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(t), token)) return true;
  }
  return false;
}

ParseResult Error(int status, const char* message) {
  ParseResult r;
  r.status = ParseStatus::kError;
  r.error_status = status;
  r.error_message = message;
  return r;
}

// Body framing found while scanning the headers.
struct Framing {
  bool chunked = false;
  bool has_length = false;
  std::size_t content_length = 0;
  bool expect_continue = false;
};

// Scans a chunked body starting at `body`. Returns kComplete with
// *encoded_size and *decoded_size, kIncomplete, or an error.
ParseResult ScanChunked(absl::string_view body, std::size_t max_body,
                        std::size_t* encoded_size, std::size_t* decoded_size) {
  std::size_t pos = 0, total = 0;
  for (;;) {
    const std::size_t eol = body.find("\r\n", pos);
    if (eol == absl::string_view::npos) {
      if (body.size() - pos > 1024) return Error(400, "chunk size line too long");
      return ParseResult{};
    }
    absl::string_view line = body.substr(pos, eol - pos);
    const std::size_t semi = line.find(';');
    absl::string_view hex = absl::StripAsciiWhitespace(line.substr(0, semi));
    if (hex.empty() || hex.size() > 15) return Error(400, "bad chunk size");
    std::size_t size = 0;
    for (char c : hex) {
      if (!absl::ascii_isxdigit(c)) return Error(400, "bad chunk size");
      size = size * 16 + (absl::ascii_isdigit(c) ? c - '0' : (absl::ascii_tolower(c) - 'a' + 10));
    }
    pos = eol + 2;
    if (size == 0) {
      // Trailer section: header lines until an empty line.
      for (;;) {
        const std::size_t end = body.find("\r\n", pos);
        if (end == absl::string_view::npos) {
          if (body.size() - pos > 8192) return Error(431, "trailers too large");
          return ParseResult{};
        }
        const bool empty = end == pos;
        pos = end + 2;
        if (empty) break;
      }
      *encoded_size = pos;
      *decoded_size = total;
      ParseResult r;
      r.status = ParseStatus::kComplete;
      return r;
    }
    if (size > max_body || total + size > max_body) {
      return Error(413, "request body larger than the configured maximum");
    }
    total += size;
    if (body.size() < pos + size + 2) return ParseResult{};
    if (body.substr(pos + size, 2) != "\r\n") return Error(400, "chunk not followed by CRLF");
    pos += size + 2;
  }
}

void DecodeChunked(absl::string_view body, std::pmr::string* out) {
  std::size_t pos = 0;
  for (;;) {
    const std::size_t eol = body.find("\r\n", pos);
    absl::string_view line = body.substr(pos, eol - pos);
    absl::string_view hex = absl::StripAsciiWhitespace(line.substr(0, line.find(';')));
    std::size_t size = 0;
    for (char c : hex) {
      size = size * 16 + (absl::ascii_isdigit(c) ? c - '0' : (absl::ascii_tolower(c) - 'a' + 10));
    }
    pos = eol + 2;
    if (size == 0) return;
    out->append(body.data() + pos, size);
    pos += size + 2;
  }
}

}  // namespace

absl::string_view HttpRequest::Header(absl::string_view lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? absl::string_view() : it->second;
}

ParseResult ParseRequest(absl::string_view input, const HttpLimits& limits,
                         std::pmr::memory_resource* memory, HttpRequest* out) {
  // RFC 9112 2.2: ignore empty lines before the request line.
  std::size_t start = 0;
  while (start + 1 < input.size() && input[start] == '\r' && input[start + 1] == '\n') {
    start += 2;
  }
  const std::size_t head_end = input.find("\r\n\r\n", start);
  if (head_end == absl::string_view::npos) {
    if (input.size() - start > limits.max_header_bytes) {
      return Error(431, "request header section larger than the configured maximum");
    }
    // Bare line feeds (no CR) never form a request in this parser.
    if (input.find("\n\n", start) != absl::string_view::npos) {
      return Error(400, "header lines must end with CRLF");
    }
    return ParseResult{};
  }
  if (head_end - start > limits.max_header_bytes) {
    return Error(431, "request header section larger than the configured maximum");
  }
  const absl::string_view head = input.substr(start, head_end - start);

  // Request line.
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
      (target[0] != '/' && target != "*" && !absl::StartsWith(target, "http://"))) {
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

  // Header lines: validate and find the framing without allocating.
  Framing framing;
  absl::string_view connection_value;
  bool has_te = false;
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
    const absl::string_view value = absl::StripAsciiWhitespace(field.substr(colon + 1));
    if (!IsToken(name)) return Error(400, "malformed header name");
    if (!IsFieldValue(value)) return Error(400, "control character in a header value");
    if (absl::EqualsIgnoreCase(name, "content-length")) {
      std::size_t n;
      if (value.empty() || !std::all_of(value.begin(), value.end(), absl::ascii_isdigit) ||
          value.size() > 18 || !absl::SimpleAtoi(value, &n)) {
        return Error(400, "malformed Content-Length");
      }
      if (framing.has_length && n != framing.content_length) {
        return Error(400, "conflicting Content-Length headers");
      }
      framing.has_length = true;
      framing.content_length = n;
    } else if (absl::EqualsIgnoreCase(name, "transfer-encoding")) {
      has_te = true;
      std::vector<absl::string_view> codings = absl::StrSplit(value, ',');
      const absl::string_view last = absl::StripAsciiWhitespace(codings.back());
      if (!absl::EqualsIgnoreCase(last, "chunked") || codings.size() > 1) {
        return Error(501, "only the chunked transfer coding is implemented");
      }
      framing.chunked = true;
    } else if (absl::EqualsIgnoreCase(name, "expect")) {
      if (!absl::EqualsIgnoreCase(value, "100-continue")) {
        return Error(417, "only 'Expect: 100-continue' is supported");
      }
      framing.expect_continue = true;
    } else if (absl::EqualsIgnoreCase(name, "connection")) {
      connection_value = value;
    }
  }
  if (has_te && framing.has_length) {
    return Error(400, "both Transfer-Encoding and Content-Length");
  }
  if (has_te && minor == 0) return Error(400, "Transfer-Encoding in an HTTP/1.0 request");

  // Body.
  const std::size_t body_start = head_end + 4;
  const absl::string_view rest = input.substr(body_start);
  std::size_t encoded = 0, decoded = 0;
  if (framing.chunked) {
    ParseResult scan = ScanChunked(rest, limits.max_body_bytes, &encoded, &decoded);
    if (scan.status == ParseStatus::kError) return scan;
    if (scan.status == ParseStatus::kIncomplete) {
      scan.send_continue = framing.expect_continue;
      return scan;
    }
  } else if (framing.has_length) {
    if (framing.content_length > limits.max_body_bytes) {
      return Error(413, "request body larger than the configured maximum");
    }
    if (rest.size() < framing.content_length) {
      ParseResult r;
      r.send_continue = framing.expect_continue;
      return r;
    }
    encoded = decoded = framing.content_length;
  }

  // Complete: copy into the request's memory.
  out->storage.assign(head.data(), head.size());
  const absl::string_view h(out->storage.data(), out->storage.size());
  auto at = [&](absl::string_view piece) {
    return h.substr(piece.data() - head.data(), piece.size());
  };
  out->method = at(method);
  out->target = at(target);
  const std::size_t q = out->target.find('?');
  out->path = out->target.substr(0, q);
  out->query = q == absl::string_view::npos ? absl::string_view() : out->target.substr(q + 1);
  out->minor_version = minor;
  pos = line_end == absl::string_view::npos ? h.size() : line_end + 2;
  while (pos < h.size()) {
    std::size_t end = h.find("\r\n", pos);
    if (end == absl::string_view::npos) end = h.size();
    const absl::string_view field = h.substr(pos, end - pos);
    pos = end + 2;
    const std::size_t colon = field.find(':');
    // Lower-case the name in place (the copy is ours).
    char* name = &out->storage[field.data() - h.data()];
    for (std::size_t i = 0; i < colon; ++i) name[i] = absl::ascii_tolower(name[i]);
    const absl::string_view key = field.substr(0, colon);
    const absl::string_view value = absl::StripAsciiWhitespace(field.substr(colon + 1));
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
  if (framing.chunked) {
    out->body.reserve(decoded);
    DecodeChunked(rest.substr(0, encoded), &out->body);
  } else if (decoded != 0) {
    out->body.assign(rest.data(), decoded);
  }
  if (minor == 1) {
    out->keep_alive = !HasToken(connection_value, "close");
  } else {
    out->keep_alive = HasToken(connection_value, "keep-alive");
  }
  out->expect_continue = framing.expect_continue;
  ParseResult r;
  r.status = ParseStatus::kComplete;
  r.consumed = body_start + encoded;
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
                    bool keep_alive, bool http10) {
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
  out->append(body.data(), body.size());
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
