// Per-request footprints: what an arena held between two bulk frees
// (Reset or destruction), kept per thread and merged when read.
//
// FootprintRecorder: six log-spaced histograms (see arena::Histogram), one
// per FootprintMetric. A thread's recorder has one writer, the thread (load
// + store, no RMW); the runtime's recorder of exited threads is written
// with fetch_add by any thread. Readers use relaxed loads: the counters
// synchronize nothing, and a snapshot taken while threads record may mix
// instants (each bucket is exact for some recent one).
//
// AdaptiveSizer: a thread's last 256 requests' small-block counts, and the
// percentile of them that adaptive_first_block reserves. Written by its
// thread only; chosen_blocks() readable from any thread (relaxed).
#ifndef ARENA_INTERNAL_FOOTPRINT_H_
#define ARENA_INTERNAL_FOOTPRINT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "arena/stats.h"

namespace arena {
namespace internal {

enum FootprintMetric : int {
  kPeakLiveBytes,
  kHeldBytes,
  kWasteBytes,
  kBlocks,
  kSlowPaths,
  kLargeAllocations,
  kFootprintMetrics
};

struct RequestFootprint {
  std::uint64_t values[kFootprintMetrics];
};

class FootprintRecorder {
 public:
  FootprintRecorder() = default;
  FootprintRecorder(const FootprintRecorder&) = delete;
  FootprintRecorder& operator=(const FootprintRecorder&) = delete;

  // The owning thread only. Called at every Reset: code over constant
  // offsets (single writer: load + store, no RMW; the sums and maxima of all
  // six share two cache lines).
  void Add(const RequestFootprint& request) {
    Record<kPeakLiveBytes>(request.values[kPeakLiveBytes]);
    Record<kHeldBytes>(request.values[kHeldBytes]);
    Record<kWasteBytes>(request.values[kWasteBytes]);
    Record<kBlocks>(request.values[kBlocks]);
    Record<kSlowPaths>(request.values[kSlowPaths]);
    Record<kLargeAllocations>(request.values[kLargeAllocations]);
  }
  // The owning thread only: the common request, with no large allocation
  // and at most kExactMax small blocks. Its held bytes are then
  // blocks * block_size and its large allocations 0, so one counter
  // (small_only_[blocks]) stands for three histograms, which MergeInto
  // expands exactly: three records per request instead of six.
  static constexpr std::uint64_t kExactMax = 8;
  void AddSmallOnly(std::size_t blocks, std::uint64_t peak_live,
                    std::uint64_t waste, std::uint64_t slow_paths) {
    Bump(&small_only_[blocks], 1);
    Record<kPeakLiveBytes>(peak_live);
    Record<kWasteBytes>(waste);
    Record<kSlowPaths>(slow_paths);
  }
  // Any thread (the recorder of exited threads).
  void AddShared(const RequestFootprint& request);
  // Any thread: folds `other` (quiescent: its thread has exited) in.
  void Absorb(const FootprintRecorder& other);
  // Any thread: merges this recorder's histograms into `out`; block_size:
  // the runtime's (see AddSmallOnly).
  void MergeInto(FootprintStats* out, std::size_t block_size) const;

 private:
  // Buckets 0..8 hold exactly one value each (Histogram::BucketOf), so a
  // value <= 8 is only counted in its bucket: MergeInto adds those buckets'
  // values to sum_ and takes max_ from them when nothing larger came. The
  // small metrics (blocks, slow paths, large allocations) are almost always
  // such values: one increment each.
  static_assert(Histogram::BucketOf(kExactMax) == kExactMax &&
                    Histogram::BucketOf(kExactMax + 1) == kExactMax + 1,
                "buckets 0..kExactMax hold one value each");
  template <int kMetric>
  void Record(std::uint64_t v) {
    if (v <= kExactMax) {
      Bump(&buckets_[kMetric][v], 1);
      return;
    }
    Bump(&buckets_[kMetric][Histogram::BucketOf(v)], 1);
    Bump(&sum_[kMetric], v);
    if (v > max_[kMetric].load(std::memory_order_relaxed)) {
      max_[kMetric].store(v, std::memory_order_relaxed);
    }
  }
  static void Bump(std::atomic<std::uint64_t>* counter, std::uint64_t by) {
    counter->store(counter->load(std::memory_order_relaxed) + by,
                   std::memory_order_relaxed);
  }

  // Sum and maximum of the values above kExactMax (see Record).
  std::atomic<std::uint64_t> sum_[kFootprintMetrics]{};
  std::atomic<std::uint64_t> max_[kFootprintMetrics]{};
  std::atomic<std::uint64_t> buckets_[kFootprintMetrics][Histogram::kBuckets]{};
  // Requests recorded by AddSmallOnly, by small-block count.
  std::atomic<std::uint64_t> small_only_[kExactMax + 1]{};
};

class AdaptiveSizer {
 public:
  static constexpr std::uint32_t kWindow = 256;
  static constexpr std::uint32_t kMinRequests = 16;

  // The owning thread: one request used `blocks` small blocks.
  void Record(std::size_t blocks, std::size_t percentile) {
    ring_[recorded_ % kWindow] =
        static_cast<std::uint8_t>(blocks < 255 ? blocks : 255);
    ++recorded_;
    // Recomputing costs a pass over the window: every 32 requests (and at
    // the 16th, so that a new thread adapts early).
    if (recorded_ % 32 == 0 || recorded_ == kMinRequests) Recompute(percentile);
  }
  // Blocks a new or reset arena reserves; 0 until kMinRequests were seen.
  std::size_t chosen_blocks() const {
    return chosen_.load(std::memory_order_relaxed);
  }

 private:
  void Recompute(std::size_t percentile);

  std::uint8_t ring_[kWindow] = {};
  std::uint32_t recorded_ = 0;
  std::atomic<std::size_t> chosen_{0};  // statistics and sizing; relaxed
};

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_FOOTPRINT_H_
