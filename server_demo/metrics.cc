#include "server_demo/metrics.h"

#include <cmath>

#include "absl/numeric/bits.h"

namespace server_demo {

int LatencyHistogram::BucketOf(std::uint64_t v) {
  if (v < (1u << kSubBits)) return static_cast<int>(v);
  const int e = 63 - absl::countl_zero(v);
  const int sub = static_cast<int>((v >> (e - kSubBits)) & ((1 << kSubBits) - 1));
  const int b = ((e - kSubBits + 1) << kSubBits) + sub;
  return b < kBuckets ? b : kBuckets - 1;
}

double LatencyHistogram::BucketMid(int b) {
  if (b < (1 << kSubBits)) return b;
  const int e = (b >> kSubBits) + kSubBits - 1;
  const int sub = b & ((1 << kSubBits) - 1);
  const double low = std::ldexp(1.0 + sub / double(1 << kSubBits), e);
  const double width = std::ldexp(1.0, e - kSubBits);
  return low + width / 2;
}

void LatencyHistogram::Record(std::uint64_t value) {
  std::atomic<std::uint64_t>& b = buckets_[BucketOf(value)];
  b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void LatencyHistogram::MergeInto(std::vector<std::uint64_t>* totals) const {
  totals->resize(kBuckets);
  for (int i = 0; i < kBuckets; ++i) {
    (*totals)[i] += buckets_[i].load(std::memory_order_relaxed);
  }
}

std::uint64_t LatencyHistogram::Count(const std::vector<std::uint64_t>& t) {
  std::uint64_t n = 0;
  for (std::uint64_t c : t) n += c;
  return n;
}

double LatencyHistogram::Percentile(const std::vector<std::uint64_t>& t, double p) {
  const std::uint64_t n = Count(t);
  if (n == 0) return 0;
  const double rank = std::ceil(p / 100.0 * n);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    seen += t[i];
    if (seen >= rank && t[i] != 0) return BucketMid(static_cast<int>(i));
  }
  return Max(t);
}

double LatencyHistogram::Max(const std::vector<std::uint64_t>& t) {
  for (std::size_t i = t.size(); i-- > 0;) {
    if (t[i] != 0) return BucketMid(static_cast<int>(i));
  }
  return 0;
}

void FootprintHistogram::Record(std::uint64_t value) {
  auto bump = [](std::atomic<std::uint64_t>& c, std::uint64_t d) {
    c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  };
  bump(buckets_[arena::Histogram::BucketOf(value)], 1);
  bump(sum_, value);
  if (value > max_.load(std::memory_order_relaxed)) max_.store(value, std::memory_order_relaxed);
}

void FootprintHistogram::AddTo(arena::Histogram* out) const {
  arena::Histogram h;
  for (int i = 0; i < arena::Histogram::kBuckets; ++i) {
    h.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    h.count += h.buckets[i];  // consistent with the buckets, whatever the writer does
  }
  h.sum = sum_.load(std::memory_order_relaxed);
  h.max = max_.load(std::memory_order_relaxed);
  out->Merge(h);
}

const char* CloseReasonName(CloseReason reason) {
  static const char* const kNames[kCloseReasons] = {
      "peer_closed",   "done",         "protocol_error", "idle",     "header_timeout",
      "body_too_slow", "send_timeout", "evicted",        "io_error", "overload",
      "shutdown"};
  return kNames[static_cast<int>(reason)];
}

const char* RejectReasonName(RejectReason reason) {
  static const char* const kNames[kRejectReasons] = {
      "max_connections", "descriptors", "request_memory", "pinned_memory", "too_expensive"};
  return kNames[static_cast<int>(reason)];
}

void ServerMetrics::CountStatus(int status) {
  for (std::size_t i = 0; i < by_status.size(); ++i) {
    if (kStatuses[i] == status) {
      Add(by_status[i], 1);
      return;
    }
  }
  Add(by_status[8], 1);  // anything else counts as 500
}

}  // namespace server_demo
