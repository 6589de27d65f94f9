// Fuzz target: server_demo's incremental HTTP RequestParser, fed one input
// whole and in pieces.
//
// The first byte picks the limits (max_header_bytes, max_body_bytes), the
// second the split pattern; the rest is the byte stream of one connection.
// The stream is parsed three ways, each as a connection does it (buffer what
// arrived, Parse, drop `consumed`, repeat until kIncomplete or kError): in
// one piece, one byte at a time, and in pieces of pseudo-random sizes drawn
// from the input. The checks: no crash (and, under ASan, no memory error or
// leak); the three produce the same requests (every field, headers and
// body) and end the same way (the same error, or incomplete); every
// kComplete consumes at least one byte and no Parse consumes more than it
// was given; and bytes_scanned() stays within 2 x the bytes fed, whatever
// the split (the parser's promise: each byte examined a bounded number of
// times).
//
// Built two ways: with libFuzzer (clang, tests/fuzz:http_fuzzer, see
// tools/fuzz.sh) and as a plain cc_test that replays the checked-in corpus
// in every configuration (tests/fuzz:http_fuzz_test).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory_resource>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "server_demo/http.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "http_fuzz: check failed: %s\n", what);
  std::abort();
}
#define FUZZ_CHECK(cond)      \
  do {                        \
    if (!(cond)) Fail(#cond); \
  } while (false)

// What one parse of the stream produced: every request, flattened to
// comparable text, then how it ended.
struct Outcome {
  std::vector<std::string> requests;
  int error_status = 0;  // 0: ended incomplete (or exactly at a boundary)
  std::string error_message;
  std::uint64_t scanned = 0;
  std::size_t fed = 0;
};

void AppendField(std::string* out, absl::string_view field) {
  out->append(std::to_string(field.size()));
  out->push_back(':');
  out->append(field.data(), field.size());
  out->push_back('|');
}

std::string Flatten(const server_demo::HttpRequest& r) {
  std::string s;
  AppendField(&s, r.method);
  AppendField(&s, r.target);
  AppendField(&s, r.path);
  AppendField(&s, r.query);
  s += std::to_string(r.minor_version);
  s += r.keep_alive ? 'K' : 'k';
  s += r.expect_continue ? 'E' : 'e';
  std::vector<std::pair<absl::string_view, absl::string_view>> headers(r.headers.begin(),
                                                                       r.headers.end());
  std::sort(headers.begin(), headers.end());
  for (const auto& [name, value] : headers) {
    AppendField(&s, name);
    AppendField(&s, value);
  }
  AppendField(&s, r.body);
  return s;
}

// A small deterministic generator for the split sizes.
class SplitRng {
 public:
  explicit SplitRng(std::uint64_t seed) : state_(seed | 1) {}
  std::uint64_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }

 private:
  std::uint64_t state_;
};

// Parses `stream` arriving in the pieces `next_piece` returns (each >= 1).
template <class NextPiece>
Outcome ParseStream(absl::string_view stream, const server_demo::HttpLimits& limits,
                    NextPiece next_piece) {
  Outcome outcome;
  std::pmr::memory_resource* memory = std::pmr::new_delete_resource();
  server_demo::RequestParser parser(limits);
  std::string buffer;
  std::size_t fed = 0;
  bool done = false;
  while (fed < stream.size() && !done) {
    const std::size_t piece = std::min(next_piece(), stream.size() - fed);
    FUZZ_CHECK(piece >= 1);
    buffer.append(stream.data() + fed, piece);
    fed += piece;
    for (;;) {
      server_demo::HttpRequest request(memory);
      const server_demo::ParseResult r = parser.Parse(buffer, memory, &request);
      FUZZ_CHECK(r.consumed <= buffer.size());
      buffer.erase(0, r.consumed);
      if (r.status == server_demo::ParseStatus::kComplete) {
        FUZZ_CHECK(r.consumed >= 1);
        outcome.requests.push_back(Flatten(request));
        continue;
      }
      if (r.status == server_demo::ParseStatus::kError) {
        FUZZ_CHECK(r.error_status >= 400 && r.error_status <= 599);
        outcome.error_status = r.error_status;
        outcome.error_message = r.error_message;
        done = true;
      }
      break;
    }
  }
  outcome.scanned = parser.bytes_scanned();
  outcome.fed = fed;
  return outcome;
}

void CheckSame(const Outcome& a, const Outcome& b) {
  if (a.requests.size() != b.requests.size() || a.error_status != b.error_status ||
      a.error_message != b.error_message) {
    std::fprintf(stderr, "http_fuzz: %zu requests then %d \"%s\" vs %zu then %d \"%s\"\n",
                 a.requests.size(), a.error_status, a.error_message.c_str(), b.requests.size(),
                 b.error_status, b.error_message.c_str());
  }
  FUZZ_CHECK(a.requests.size() == b.requests.size());
  for (std::size_t i = 0; i < a.requests.size(); ++i) FUZZ_CHECK(a.requests[i] == b.requests[i]);
  FUZZ_CHECK(a.error_status == b.error_status);
  FUZZ_CHECK(a.error_message == b.error_message);
}

void CheckScanned(const Outcome& o) { FUZZ_CHECK(o.scanned <= 2 * o.fed); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static constexpr std::size_t kHeaderLimits[] = {16, 64, 256, 8 * 1024};
  static constexpr std::size_t kBodyLimits[] = {0, 8, 1024, 1 << 20};
  server_demo::HttpLimits limits;
  limits.max_header_bytes = kHeaderLimits[data[0] & 3];
  limits.max_body_bytes = kBodyLimits[(data[0] >> 2) & 3];
  const std::size_t max_piece = 1 + data[1] % 64;
  const absl::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  const Outcome whole = ParseStream(stream, limits, [&] { return stream.size(); });
  const Outcome bytes = ParseStream(stream, limits, [] { return std::size_t{1}; });
  // Seeded by the input itself, so that a reproducer replays exactly.
  std::uint64_t seed = 0xcbf29ce484222325u;
  for (std::size_t i = 0; i < size; ++i) seed = (seed ^ data[i]) * 0x100000001b3u;
  SplitRng rng(seed);
  const Outcome random = ParseStream(stream, limits, [&] { return 1 + rng.Next() % max_piece; });

  CheckSame(whole, bytes);
  CheckSame(whole, random);
  CheckScanned(whole);
  CheckScanned(bytes);
  CheckScanned(random);
  return 0;
}
