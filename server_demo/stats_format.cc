#include "server_demo/stats_format.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace server_demo {
namespace {

// The text of the value that follows "key": after `from`, or npos.
std::size_t FindKey(absl::string_view json, absl::string_view key, std::size_t from) {
  const std::string quoted = absl::StrCat("\"", key, "\":");
  const std::size_t at = json.find(quoted, from);
  return at == absl::string_view::npos ? at : at + quoted.size();
}

std::size_t SectionStart(absl::string_view json, absl::string_view section) {
  if (section.empty()) return 0;
  return FindKey(json, section, 0);
}

}  // namespace

std::string HistogramJson(const arena::Histogram& h) {
  std::string buckets;
  for (int i = 0; i < arena::Histogram::kBuckets; ++i) {
    if (h.buckets[i] == 0) continue;
    absl::StrAppend(&buckets, buckets.empty() ? "" : ",", "[", arena::Histogram::UpperBound(i),
                    ",", h.buckets[i], "]");
  }
  return absl::StrCat("{\"count\":", h.count, ",\"sum\":", h.sum, ",\"mean\":",
                      absl::StrFormat("%.1f", h.Mean()), ",\"p50\":", h.Percentile(0.5),
                      ",\"p90\":", h.Percentile(0.9), ",\"p99\":", h.Percentile(0.99),
                      ",\"max\":", h.max, ",\"buckets\":[", buckets, "]}");
}

std::string HistogramPrometheus(const arena::Histogram& h, absl::string_view name,
                                absl::string_view help) {
  std::string out = absl::StrCat("# HELP ", name, " ", help, "\n# TYPE ", name, " histogram\n");
  int top = -1;
  for (int i = 0; i < arena::Histogram::kBuckets; ++i) {
    if (h.buckets[i] != 0) top = i;
  }
  std::uint64_t cumulative = 0;
  for (int i = 0; i <= top; ++i) {
    cumulative += h.buckets[i];
    absl::StrAppend(&out, name, "_bucket{le=\"", arena::Histogram::UpperBound(i), "\"} ",
                    cumulative, "\n");
  }
  absl::StrAppend(&out, name, "_bucket{le=\"+Inf\"} ", h.count, "\n", name, "_sum ", h.sum,
                  "\n", name, "_count ", h.count, "\n");
  return out;
}

absl::StatusOr<arena::Histogram> ParseHistogramJson(absl::string_view json,
                                                    absl::string_view section,
                                                    absl::string_view key) {
  const std::size_t from = SectionStart(json, section);
  std::size_t at = from == absl::string_view::npos ? from : FindKey(json, key, from);
  if (at == absl::string_view::npos) {
    return absl::NotFoundError(absl::StrCat("no histogram \"", key, "\" in \"", section, "\""));
  }
  const std::size_t list = FindKey(json, "buckets", at);
  const std::size_t end = json.find("]]", list);
  const std::size_t empty = json.find("[]", list);
  arena::Histogram h;
  h.max = static_cast<std::uint64_t>(JsonNumber(json.substr(at), "", "max"));
  if (list == absl::string_view::npos) return absl::InvalidArgumentError("no \"buckets\"");
  if (empty == list) return h;  // no values
  if (end == absl::string_view::npos) return absl::InvalidArgumentError("unterminated buckets");
  // [[le,n],[le,n]]
  absl::string_view body = json.substr(list + 1, end - list);
  std::size_t pos = 0;
  while ((pos = body.find('[', pos)) != absl::string_view::npos) {
    const std::size_t comma = body.find(',', pos);
    const std::size_t close = body.find(']', pos);
    if (comma == absl::string_view::npos || close == absl::string_view::npos || comma > close) {
      return absl::InvalidArgumentError("malformed bucket");
    }
    std::uint64_t le = 0, n = 0;
    if (!absl::SimpleAtoi(body.substr(pos + 1, comma - pos - 1), &le) ||
        !absl::SimpleAtoi(body.substr(comma + 1, close - comma - 1), &n)) {
      return absl::InvalidArgumentError("malformed bucket numbers");
    }
    const int b = arena::Histogram::BucketOf(le);
    h.buckets[b] += n;
    h.count += n;
    // The bucket's values are unknown: count its bound (capped at max).
    h.sum += n * std::min(le, h.max);
    pos = close + 1;
  }
  const double sum = JsonNumber(json.substr(at), "", "sum");
  if (sum > 0) h.sum = static_cast<std::uint64_t>(sum);
  return h;
}

double JsonNumber(absl::string_view json, absl::string_view section, absl::string_view key) {
  const std::size_t from = SectionStart(json, section);
  if (from == absl::string_view::npos) return 0;
  const std::size_t at = FindKey(json, key, from);
  if (at == absl::string_view::npos) return 0;
  const std::string rest(json.substr(at, 40));
  return std::strtod(rest.c_str(), nullptr);
}

arena::Histogram Subtract(const arena::Histogram& later, const arena::Histogram& earlier) {
  arena::Histogram d;
  for (int i = 0; i < arena::Histogram::kBuckets; ++i) {
    d.buckets[i] = later.buckets[i] > earlier.buckets[i] ? later.buckets[i] - earlier.buckets[i] : 0;
    d.count += d.buckets[i];
  }
  d.sum = later.sum > earlier.sum ? later.sum - earlier.sum : 0;
  d.max = d.count == 0 ? 0 : later.max;
  return d;
}

std::string ArenaConfigJson(const arena::Config& config) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(arena::ConfigToToml(config), '\n')) {
    const std::size_t eq = line.find(" = ");
    if (eq == absl::string_view::npos) continue;
    absl::StrAppend(&out, out.empty() ? "" : ",", "\"", line.substr(0, eq), "\":",
                    line.substr(eq + 3));
  }
  return absl::StrCat("{", out, "}");
}

arena::Config ArenaConfigFromStats(absl::string_view stats, const arena::Config& fallback) {
  const std::size_t at = stats.find("\"arena_config\":{");
  if (at == absl::string_view::npos) return fallback;
  const std::size_t open = stats.find('{', at);
  const std::size_t close = stats.find('}', open);
  if (close == absl::string_view::npos) return fallback;
  arena::Config c = fallback;
  for (absl::string_view pair : absl::StrSplit(stats.substr(open + 1, close - open - 1), ',')) {
    const std::size_t colon = pair.find(':');
    if (colon == absl::string_view::npos) continue;
    const absl::string_view key =
        absl::StripSuffix(absl::StripPrefix(pair.substr(0, colon), "\""), "\"");
    if (!arena::SetConfigKey(&c, key, pair.substr(colon + 1)).ok()) return fallback;
  }
  return arena::ValidateConfig(c).ok() ? c : fallback;
}

std::string HumanBytes(double bytes) {
  if (bytes < 1024) return absl::StrFormat("%.0f B", bytes);
  if (bytes < 1024 * 1024) return absl::StrFormat("%.0f KiB", bytes / 1024);
  if (bytes < 1024.0 * 1024 * 1024) return absl::StrFormat("%.1f MiB", bytes / (1024 * 1024));
  return absl::StrFormat("%.2f GiB", bytes / (1024.0 * 1024 * 1024));
}

std::string TomlBytes(std::size_t bytes) {
  if (bytes != 0 && bytes % (1u << 30) == 0) return absl::StrCat("\"", bytes >> 30, "GiB\"");
  if (bytes != 0 && bytes % (1u << 20) == 0) return absl::StrCat("\"", bytes >> 20, "MiB\"");
  if (bytes != 0 && bytes % (1u << 10) == 0) return absl::StrCat("\"", bytes >> 10, "KiB\"");
  return absl::StrCat(bytes);
}

}  // namespace server_demo
