// Server-side counters and a latency histogram.
//
// Each worker thread owns one ServerMetrics and is its only writer (load +
// store on relaxed atomics); /stats and /metrics, served by any worker,
// read all of them with relaxed loads and sum. They synchronize nothing, so
// a snapshot taken under load is approximate.
//
// LatencyHistogram: log-linear buckets (32 per power of two, so a
// percentile is within about 3% of the true value), microseconds.
//
// FootprintHistogram: the library's arena::Histogram layout (log-spaced,
// four buckets per power of two) on relaxed atomics, for per-request byte
// and count figures; read as an arena::Histogram (Percentile, Mean, Merge).
#ifndef SERVER_DEMO_METRICS_H_
#define SERVER_DEMO_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "arena/stats.h"

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

class FootprintHistogram {
 public:
  void Record(std::uint64_t value);  // single writer
  // Adds this histogram's counts into `out` (relaxed loads: approximate
  // while the writer runs; count, sum and max may disagree slightly).
  void AddTo(arena::Histogram* out) const;

 private:
  std::array<std::atomic<std::uint64_t>, arena::Histogram::kBuckets> buckets_{};
  std::atomic<std::uint64_t> sum_{0};
  std::atomic<std::uint64_t> max_{0};
};

// What one request cost its allocator, recorded by the server itself at the
// end of every request (the library records per Reset, and a connection
// arena is Reset once per batch of pipelined responses).
struct RequestFootprint {
  FootprintHistogram requested_bytes;  // bytes the request asked for
  FootprintHistogram small_bytes;      // of which in allocations <= large_threshold
  FootprintHistogram held_bytes;       // the most its allocator held for it (connection.h)
  FootprintHistogram waste_bytes;      // held - its peak live bytes (0 when below)
  FootprintHistogram slow_paths;       // arena allocations off the fast path
  FootprintHistogram large_allocations;  // allocations > large_threshold
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
  RequestFootprint footprint;
  // Sums over requests of the peak of their live bytes and of what their
  // allocator held at most (request waste = 1 - peak live / held).
  std::atomic<std::uint64_t> peak_live_bytes_total{0};
  std::atomic<std::uint64_t> held_bytes_total{0};
  // Bytes of this worker's requests in flight: allocated and not yet freed,
  // including responses not yet sent (a gauge; a connection arena's bytes
  // drop to 0 at its Reset).
  std::atomic<std::int64_t> live_request_bytes{0};
  static void AddSigned(std::atomic<std::int64_t>& g, std::int64_t d) {
    g.store(g.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }

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
