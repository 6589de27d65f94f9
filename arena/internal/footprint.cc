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

}  // namespace

void FootprintRecorder::AddShared(const RequestFootprint& request) {
  for (int m = 0; m < kFootprintMetrics; ++m) {
    const std::uint64_t v = request.values[m];
    buckets_[m][Histogram::BucketOf(v)].fetch_add(1, std::memory_order_relaxed);
    if (v <= kExactMax) continue;  // sum and max from the bucket (Record)
    sum_[m].fetch_add(v, std::memory_order_relaxed);
    std::uint64_t seen = max_[m].load(std::memory_order_relaxed);
    while (seen < v &&
           !max_[m].compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
    }
  }
}

void FootprintRecorder::Absorb(const FootprintRecorder& other) {
  for (std::uint64_t b = 0; b <= kExactMax; ++b) {
    const std::uint64_t n = other.small_only_[b].load(std::memory_order_relaxed);
    if (n != 0) small_only_[b].fetch_add(n, std::memory_order_relaxed);
  }
  for (int m = 0; m < kFootprintMetrics; ++m) {
    for (int b = 0; b < Histogram::kBuckets; ++b) {
      const std::uint64_t n = other.buckets_[m][b].load(std::memory_order_relaxed);
      if (n != 0) buckets_[m][b].fetch_add(n, std::memory_order_relaxed);
    }
    sum_[m].fetch_add(other.sum_[m].load(std::memory_order_relaxed),
                      std::memory_order_relaxed);
    const std::uint64_t max = other.max_[m].load(std::memory_order_relaxed);
    std::uint64_t seen = max_[m].load(std::memory_order_relaxed);
    while (seen < max && !max_[m].compare_exchange_weak(
                             seen, max, std::memory_order_relaxed)) {
    }
  }
}

void FootprintRecorder::MergeInto(FootprintStats* out,
                                  std::size_t block_size) const {
  std::uint64_t small_only[kExactMax + 1];
  for (std::uint64_t b = 0; b <= kExactMax; ++b) {
    small_only[b] = small_only_[b].load(std::memory_order_relaxed);
  }
  for (int m = 0; m < kFootprintMetrics; ++m) {
    Histogram h;
    for (int b = 0; b < Histogram::kBuckets; ++b) {
      h.buckets[b] = buckets_[m][b].load(std::memory_order_relaxed);
    }
    // A request recorded by AddSmallOnly with b blocks: b blocks, b *
    // block_size bytes held, no large allocation.
    for (std::uint64_t b = 0; b <= kExactMax; ++b) {
      if (small_only[b] == 0) continue;
      if (m == kBlocks) h.buckets[b] += small_only[b];
      if (m == kLargeAllocations) h.buckets[0] += small_only[b];
    }
    for (int b = 0; b < Histogram::kBuckets; ++b) h.count += h.buckets[b];
    // sum_ and max_ cover the values above kExactMax; bucket b <= kExactMax
    // holds only the value b (see Record).
    h.sum = sum_[m].load(std::memory_order_relaxed);
    h.max = max_[m].load(std::memory_order_relaxed);
    for (std::uint64_t b = 1; b <= kExactMax; ++b) {
      h.sum += b * h.buckets[b];
      if (h.buckets[b] != 0 && h.max < b) h.max = b;
    }
    if (m == kHeldBytes) {
      for (std::uint64_t b = 0; b <= kExactMax; ++b) {
        const std::uint64_t n = small_only[b];
        if (n == 0) continue;
        const std::uint64_t held = b * block_size;
        h.buckets[Histogram::BucketOf(held)] += n;
        h.count += n;
        h.sum += held * n;
        if (held > h.max) h.max = held;
      }
    }
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
