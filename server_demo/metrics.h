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

// Why a connection was closed; each has a /metrics counter.
enum class CloseReason {
  kPeerClosed,     // the client closed (or half-closed and was answered)
  kDone,           // "Connection: close" or HTTP/1.0: answered, then closed
  kProtocolError,  // a malformed request got its 4xx
  kIdle,           // idle keep-alive past idle_timeout_ms
  kHeaderTimeout,  // request head incomplete after header_timeout_ms (408)
  kBodyTooSlow,    // body below min_body_rate over a window (408)
  kSendTimeout,    // output made no progress for send_timeout_ms
  kEvicted,        // at max_connections, the oldest one waiting for a head
  kIoError,        // recv/send failed (reset by the peer)
  kOverload,       // after a 503 for the per-request memory cap
  kShutdown,       // closed while draining at shutdown
};
inline constexpr int kCloseReasons = 11;
const char* CloseReasonName(CloseReason reason);

// Why a request or connection got 503; each has a /metrics counter.
enum class RejectReason {
  kMaxConnections,  // over max_connections, nothing to evict
  kDescriptors,     // out of file descriptors (EMFILE/ENFILE)
  kRequestMemory,   // the request allocated past request_memory_limit
  kPinnedMemory,    // unsent responses pin more than max_pinned_bytes
  kTooExpensive,    // refused before the work (would pass the request cap)
};
inline constexpr int kRejectReasons = 5;
const char* RejectReasonName(RejectReason reason);

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
  // Largest input one connection buffered (a high-water mark).
  std::atomic<std::uint64_t> input_peak_bytes{0};
  std::array<std::atomic<std::uint64_t>, kCloseReasons> closed{};
  std::array<std::atomic<std::uint64_t>, kRejectReasons> rejected{};
  static constexpr int kStatuses[] = {200, 400, 404, 405, 408, 413, 417, 431, 500, 501, 503, 505};
  std::array<std::atomic<std::uint64_t>, 12> by_status{};
  LatencyHistogram latency_us;

  void CountStatus(int status);
  void CountClose(CloseReason reason) { Add(closed[static_cast<int>(reason)], 1); }
  void CountReject(RejectReason reason) { Add(rejected[static_cast<int>(reason)], 1); }
  void NoteInput(std::size_t bytes) {
    if (bytes > input_peak_bytes.load(std::memory_order_relaxed)) {
      input_peak_bytes.store(bytes, std::memory_order_relaxed);
    }
  }
};

}  // namespace server_demo

#endif  // SERVER_DEMO_METRICS_H_
