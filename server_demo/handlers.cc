#include "server_demo/handlers.h"

#include <algorithm>
#include <cstdio>
#include <new>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "arena/shared_arena.h"
#include "server_demo/wordcount.h"

namespace server_demo {
namespace {

struct Attribute {
  explicit Attribute(std::pmr::memory_resource* m) : key(m) {}
  std::pmr::string key;
  double value = 0;
};

// One record of /json: strings and vectors that all live in `memory`.
struct Record {
  explicit Record(std::pmr::memory_resource* m)
      : name(m), tags(m), attributes(m) {}
  std::int64_t id = 0;
  std::pmr::string name;
  std::pmr::vector<std::pmr::string> tags;
  std::pmr::vector<Attribute> attributes;
  bool active = false;
};

void AppendNumber(std::pmr::string* out, double v) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "%.6g", v);
  out->append(buf, n);
}

void AppendInt(std::pmr::string* out, std::int64_t v) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(v));
  out->append(buf, n);
}

constexpr absl::string_view kNamePrefix = "record-name-with-enough-text-to-leave-sso-";
// The longest /json record: 20-digit id and name suffix, three 7-letter
// tags, two 13-character numbers (%.6g), "false", and its comma.
constexpr std::size_t kJsonRecordMaxBytes = 215;
// Room for the status line and headers of a response.
constexpr std::size_t kResponseHeadBytes = 256;

int Respond(std::pmr::string* wire, const HttpRequest& r, int status,
            absl::string_view type, absl::string_view body) {
  // Errors that make the framing doubtful are closed by the caller; these
  // are well-formed requests, so keep-alive follows the request. HEAD gets
  // the headers GET would get.
  const bool head = r.method == "HEAD";
  wire->reserve(wire->size() + kResponseHeadBytes + (head ? 0 : body.size()));
  AppendResponse(wire, status, type, body, r.keep_alive, r.minor_version == 0, head);
  return status;
}

}  // namespace

void BuildJsonItems(std::size_t items, std::pmr::memory_resource* memory,
                    std::pmr::string* out) {
  static const char* const kTags[] = {"alpha", "beta", "gamma", "delta", "epsilon"};
  // Every container is reserved at its final size: JsonCostBound counts
  // one allocation each.
  std::pmr::vector<Record> records(memory);
  records.reserve(items);
  for (std::size_t i = 0; i < items; ++i) {
    Record& r = records.emplace_back(memory);
    r.id = static_cast<std::int64_t>(i);
    r.name.reserve(kNamePrefix.size() + 20);
    r.name.append(kNamePrefix.data(), kNamePrefix.size());
    char digits[24];
    r.name.append(digits, std::snprintf(digits, sizeof(digits), "%zu", i));
    r.tags.reserve(1 + i % 3);
    for (std::size_t t = 0; t < 1 + i % 3; ++t) {
      r.tags.emplace_back(kTags[(i + t) % 5]);  // uses-allocator: in `memory`
    }
    r.attributes.reserve(2);
    for (int a = 0; a < 2; ++a) {
      Attribute& attr = r.attributes.emplace_back(memory);
      attr.key.assign(a == 0 ? "weight" : "score");
      attr.value = (i * 0.37) + a;
    }
    r.active = i % 2 == 0;
  }
  out->reserve(out->size() + 2 + items * kJsonRecordMaxBytes);
  out->append("[");
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    if (i != 0) out->append(",");
    out->append("{\"id\":");
    AppendInt(out, r.id);
    out->append(",\"name\":\"");
    out->append(r.name);
    out->append("\",\"tags\":[");
    for (std::size_t t = 0; t < r.tags.size(); ++t) {
      if (t != 0) out->append(",");
      out->append("\"");
      out->append(r.tags[t]);
      out->append("\"");
    }
    out->append("],\"attributes\":{");
    for (std::size_t a = 0; a < r.attributes.size(); ++a) {
      if (a != 0) out->append(",");
      out->append("\"");
      out->append(r.attributes[a].key);
      out->append("\":");
      AppendNumber(out, r.attributes[a].value);
    }
    out->append("},\"active\":");
    out->append(r.active ? "true" : "false");
    out->append("}");
  }
  out->append("]");
}

std::size_t JsonCostBound(std::size_t items) {
  // Per record: its slot in `records`, the name (reserved, +1 for the
  // terminator), at most three tags and two attributes, and its text twice
  // (the body, then the response that copies it).
  constexpr std::size_t kPerRecord = sizeof(Record) + kNamePrefix.size() + 21 +
                                     3 * sizeof(std::pmr::string) + 2 * sizeof(Attribute) +
                                     2 * kJsonRecordMaxBytes;
  constexpr std::size_t kFixed = 2 * kResponseHeadBytes + 64;
  if (items > (SIZE_MAX - kFixed) / kPerRecord) return SIZE_MAX;
  return kFixed + items * kPerRecord;
}

int HandleRequest(const HttpRequest& r, std::pmr::memory_resource* memory,
                  const HandlerContext& context, std::pmr::string* wire) {
  const absl::string_view path = r.path;
  const bool get = r.method == "GET" || r.method == "HEAD";
  if (path == "/hello") {
    if (!get) return Respond(wire, r, 405, "text/plain", "use GET\n");
    return Respond(wire, r, 200, "text/plain", "Hello, world!\n");
  }
  if (path == "/echo") {
    if (r.method != "POST") return Respond(wire, r, 405, "text/plain", "use POST\n");
    return Respond(wire, r, 200, "application/octet-stream", r.body);
  }
  if (path == "/json") {
    if (!get) return Respond(wire, r, 405, "text/plain", "use GET\n");
    std::size_t items = 10;
    const absl::string_view arg = QueryParam(r.query, "items");
    if (!arg.empty() && !absl::SimpleAtoi(arg, &items)) {
      return Respond(wire, r, 400, "text/plain", "items must be a non-negative integer\n");
    }
    if (items > context.config->json_max_items) {
      std::pmr::string msg(memory);
      msg.append("items must be at most ");
      AppendInt(&msg, static_cast<std::int64_t>(context.config->json_max_items));
      msg.append("\n");
      return Respond(wire, r, 400, "text/plain", msg);
    }
    if (JsonCostBound(items) > context.memory_left) {
      // Refused before any work: it could not fit in request_memory_limit.
      return Respond(wire, r, 503, "text/plain",
                     "items too many for the per-request memory cap\n");
    }
    std::pmr::string body(memory);
    BuildJsonItems(items, memory, &body);
    return Respond(wire, r, 200, "application/json", body);
  }
  if (path == "/wordcount") {
    if (r.method != "POST") return Respond(wire, r, 405, "text/plain", "use POST\n");
    std::size_t chunks = WordCountDefaultChunks(r.body.size());
    const absl::string_view arg = QueryParam(r.query, "chunks");
    if (!arg.empty() &&
        (!absl::SimpleAtoi(arg, &chunks) || chunks == 0 || chunks > kWordCountMaxChunks)) {
      return Respond(wire, r, 400, "text/plain", "chunks must be 1 to 256\n");
    }
    if (context.config->allocator != "arena") {
      // Malloc mode: the tasks allocate from `memory` (the request's
      // counting resource over the heap), their calls serialized.
      std::pmr::string body(memory);
      WordCountJson(r.body, chunks, memory, &body);
      return Respond(wire, r, 200, "application/json", body);
    }
    // The tasks' memory: a SharedArena capped at what the request has left
    // (a std::bad_alloc past it becomes the server's 503). Its blocks and
    // the response together must fit in that too.
    arena::ArenaOptions options;
    options.max_bytes = std::max<std::size_t>(context.memory_left, 1);
    arena::SharedArena shared(options);
    std::pmr::string body(shared.resource());
    WordCountJson(r.body, chunks, &shared, &body);
    if (shared.reserved_bytes() > context.memory_left ||
        kResponseHeadBytes + body.size() > context.memory_left - shared.reserved_bytes()) {
      throw std::bad_alloc();
    }
    return Respond(wire, r, 200, "application/json", body);
  }
  if (path == "/stats") {
    if (!get) return Respond(wire, r, 405, "text/plain", "use GET\n");
    const std::string json = context.view->StatsJson();
    return Respond(wire, r, 200, "application/json", json);
  }
  if (path == "/metrics") {
    if (!get) return Respond(wire, r, 405, "text/plain", "use GET\n");
    const std::string text = context.view->MetricsText();
    return Respond(wire, r, 200, "text/plain; version=0.0.4", text);
  }
  if (path == "/healthz") {
    if (!get) return Respond(wire, r, 405, "text/plain", "use GET\n");
    return Respond(wire, r, 200, "text/plain", "ok\n");
  }
  return Respond(wire, r, 404, "text/plain", "no such route\n");
}

}  // namespace server_demo
