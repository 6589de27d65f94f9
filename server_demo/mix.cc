#include "server_demo/mix.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace server_demo {
namespace {

constexpr std::uint32_t kMaxWeight = 1000000;
constexpr std::size_t kMaxPeriod = 1 << 22;  // sum of weights

// Smooth weighted round-robin: each pick adds every route's weight to its
// credit and takes the route with the most credit, which then pays the
// total. Over one period each route is picked exactly `weight` times.
std::vector<std::uint32_t> Schedule(const std::vector<RouteMix::Route>& routes) {
  std::int64_t total = 0;
  for (const RouteMix::Route& r : routes) total += r.weight;
  std::vector<std::int64_t> credit(routes.size(), 0);
  std::vector<std::uint32_t> out;
  out.reserve(total);
  for (std::int64_t n = 0; n < total; ++n) {
    std::size_t best = 0;
    for (std::size_t i = 0; i < routes.size(); ++i) {
      credit[i] += routes[i].weight;
      if (credit[i] > credit[best]) best = i;
    }
    credit[best] -= total;
    out.push_back(static_cast<std::uint32_t>(best));
  }
  return out;
}

}  // namespace

std::string RouteMix::ToString() const {
  std::string out;
  for (const Route& r : routes) {
    absl::StrAppend(&out, out.empty() ? "" : ",", r.path, ":", r.weight);
  }
  return out;
}

absl::StatusOr<RouteMix> ParseRouteMix(absl::string_view spec) {
  auto bad = [&](absl::string_view entry, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--mix '", spec, "': entry '", entry, "' ", why,
        " (syntax: PATH[:WEIGHT],... e.g. '/json?items=50:8,/hello:10')"));
  };
  RouteMix mix;
  if (absl::StripAsciiWhitespace(spec).empty()) {
    return bad("", "is empty: give at least one path");
  }
  std::size_t total = 0;
  for (absl::string_view raw : absl::StrSplit(spec, ',')) {
    const absl::string_view entry = absl::StripAsciiWhitespace(raw);
    if (entry.empty()) return bad(entry, "is empty (two commas, or a trailing one)");
    RouteMix::Route route;
    absl::string_view path = entry;
    const std::size_t colon = entry.rfind(':');
    if (colon != absl::string_view::npos) {
      path = absl::StripAsciiWhitespace(entry.substr(0, colon));
      const absl::string_view weight = absl::StripAsciiWhitespace(entry.substr(colon + 1));
      std::uint64_t w = 0;
      if (weight.empty() || !absl::SimpleAtoi(weight, &w) || weight[0] == '+' ||
          weight[0] == '-') {
        return bad(entry, absl::StrCat("has weight '", weight,
                                       "', which is not a whole number"));
      }
      if (w < 1 || w > kMaxWeight) {
        return bad(entry, absl::StrCat("has weight ", w, ": it must be from 1 to ", kMaxWeight));
      }
      route.weight = static_cast<std::uint32_t>(w);
    }
    if (path.empty() || path[0] != '/') return bad(entry, "has a path that does not start with '/'");
    for (char c : path) {
      if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
        return bad(entry, "has a path with a space or control character");
      }
    }
    route.path = std::string(path);
    total += route.weight;
    if (total > kMaxPeriod) {
      return bad(entry, absl::StrCat("brings the sum of weights past ", kMaxPeriod));
    }
    mix.routes.push_back(std::move(route));
  }
  mix.schedule = Schedule(mix.routes);
  return mix;
}

RouteMix SingleRoute(const std::string& path) {
  RouteMix mix;
  mix.routes.push_back({path, 1});
  mix.schedule = {0};
  return mix;
}

}  // namespace server_demo
