#include "arena/internal/footprint.h"

#include <algorithm>

namespace arena {
namespace internal {
namespace {

// The histograms of FootprintStats, in FootprintMetric order.
constexpr Histogram FootprintStats::*kMembers[kFootprintMetrics] = {
    &FootprintStats::peak_live_bytes, &FootprintStats::held_bytes,
    &FootprintStats::waste_bytes,     &FootprintStats::blocks,
    &FootprintStats::slow_paths,      &FootprintStats::large_allocations,
};

// Single writer: load + store, not an RMW. Statistics only.
void Bump(std::atomic<std::uint64_t>& c, std::uint64_t by) {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace

void FootprintRecorder::Add(const RequestFootprint& request) {
  for (int m = 0; m < kFootprintMetrics; ++m) {
    const std::uint64_t v = request.values[m];
    Counts& c = metrics_[m];
    Bump(c.buckets[Histogram::BucketOf(v)], 1);
    Bump(c.sum, v);
    if (v > c.max.load(std::memory_order_relaxed)) {
      c.max.store(v, std::memory_order_relaxed);
    }
  }
}

void FootprintRecorder::AddShared(const RequestFootprint& request) {
  for (int m = 0; m < kFootprintMetrics; ++m) {
    const std::uint64_t v = request.values[m];
    Counts& c = metrics_[m];
    c.buckets[Histogram::BucketOf(v)].fetch_add(1, std::memory_order_relaxed);
    c.sum.fetch_add(v, std::memory_order_relaxed);
    std::uint64_t seen = c.max.load(std::memory_order_relaxed);
    while (seen < v &&
           !c.max.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
    }
  }
}

void FootprintRecorder::Absorb(const FootprintRecorder& other) {
  for (int m = 0; m < kFootprintMetrics; ++m) {
    Counts& c = metrics_[m];
    const Counts& o = other.metrics_[m];
    for (int b = 0; b < Histogram::kBuckets; ++b) {
      const std::uint64_t n = o.buckets[b].load(std::memory_order_relaxed);
      if (n != 0) c.buckets[b].fetch_add(n, std::memory_order_relaxed);
    }
    c.sum.fetch_add(o.sum.load(std::memory_order_relaxed),
                    std::memory_order_relaxed);
    const std::uint64_t max = o.max.load(std::memory_order_relaxed);
    std::uint64_t seen = c.max.load(std::memory_order_relaxed);
    while (seen < max && !c.max.compare_exchange_weak(
                             seen, max, std::memory_order_relaxed)) {
    }
  }
}

void FootprintRecorder::MergeInto(FootprintStats* out) const {
  for (int m = 0; m < kFootprintMetrics; ++m) {
    const Counts& c = metrics_[m];
    Histogram h;
    for (int b = 0; b < Histogram::kBuckets; ++b) {
      h.buckets[b] = c.buckets[b].load(std::memory_order_relaxed);
      h.count += h.buckets[b];
    }
    h.sum = c.sum.load(std::memory_order_relaxed);
    h.max = c.max.load(std::memory_order_relaxed);
    (out->*kMembers[m]).Merge(h);
  }
}

void AdaptiveSizer::Recompute(std::size_t percentile) {
  const std::uint32_t n = recorded_ < kWindow ? recorded_ : kWindow;
  std::uint32_t counts[256] = {};
  for (std::uint32_t i = 0; i < n; ++i) ++counts[ring_[i]];
  // The smallest block count b with at least percentile% of the window <= b.
  const std::uint32_t rank =
      std::max<std::uint32_t>(1, (n * percentile + 99) / 100);
  std::uint32_t seen = 0;
  std::size_t chosen = 1;
  for (std::size_t b = 0; b < 256; ++b) {
    seen += counts[b];
    if (seen >= rank) {
      chosen = std::max<std::size_t>(b, 1);
      break;
    }
  }
  chosen_.store(chosen, std::memory_order_relaxed);
}

}  // namespace internal
}  // namespace arena
