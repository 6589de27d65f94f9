// Server-side counters and a latency histogram.
//
// Each worker thread owns one ServerMetrics and is its only writer (load +
// store on relaxed atomics); /stats and /metrics, served by any worker,
// read all of them with relaxed loads and sum. They synchronize nothing, so
// a snapshot taken under load is approximate.
//
// LatencyHistogram: log-linear buckets (32 per power of two, so a
// percentile is within about 3% of the true value), microseconds.
#ifndef SERVER_DEMO_METRICS_H_
#define SERVER_DEMO_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace server_demo {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 5;
  static constexpr int kBuckets = (64 - kSubBits) << kSubBits;

  void Record(std::uint64_t value);  // single writer
  void MergeInto(std::vector<std::uint64_t>* totals) const;

  // Percentile (0..100) of merged bucket counts; 0 when empty.
  static double Percentile(const std::vector<std::uint64_t>& totals, double p);
  static std::uint64_t Count(const std::vector<std::uint64_t>& totals);
  static double Max(const std::vector<std::uint64_t>& totals);

  static int BucketOf(std::uint64_t value);
  static double BucketMid(int bucket);

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
};

struct ServerMetrics {
  static void Add(std::atomic<std::uint64_t>& c, std::uint64_t d) {
    c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<std::uint64_t> request_memory_bytes{0};  // allocated by handlers
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_refused{0};  // over max_connections
  std::atomic<std::uint64_t> accept_errors{0};
  static constexpr int kStatuses[] = {200, 400, 404, 405, 408, 413, 417, 431, 500, 501, 503, 505};
  std::array<std::atomic<std::uint64_t>, 12> by_status{};
  LatencyHistogram latency_us;

  void CountStatus(int status);
};

}  // namespace server_demo

#endif  // SERVER_DEMO_METRICS_H_
