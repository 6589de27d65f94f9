#include "server_demo/server.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "arena/arena.h"
#include "server_demo/connection.h"
#include "server_demo/metrics.h"
#include "server_demo/stats_format.h"
#include "server_demo/worker.h"

namespace server_demo {
namespace {

constexpr int kSampleMs = 10;

// Resident set size from /proc/self/statm, without allocating; 0 if it
// cannot be read. `descriptor_mu` (ServerShared's) is held while the file is
// open: descriptors are taken under it, so that the spare a worker gives up
// to shed a connection at the descriptor limit is not taken by this read.
std::uint64_t ReadRssBytes(std::mutex* descriptor_mu) {
  char buf[128];
  ssize_t n;
  {
    std::lock_guard<std::mutex> lock(*descriptor_mu);
    const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
  }
  if (n <= 0) return 0;
  buf[n] = 0;
  char* end = nullptr;
  std::strtoull(buf, &end, 10);  // size
  const unsigned long long pages = std::strtoull(end, nullptr, 10);
  return pages * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

// Peak resident set size (VmHWM), bytes; as ReadRssBytes.
std::uint64_t ReadPeakRssBytes(std::mutex* descriptor_mu) {
  char buf[4096];
  ssize_t n;
  {
    std::lock_guard<std::mutex> lock(*descriptor_mu);
    const int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
  }
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* at = std::strstr(buf, "VmHWM:");
  return at == nullptr ? 0 : std::strtoull(at + 6, nullptr, 10) * 1024;
}

}  // namespace

Server::Server(const DemoConfig& config)
    : config_(config), shared_(std::make_unique<ServerShared>(config_, this)) {}

Server::~Server() {
  Shutdown();
  Wait();
  workers_.clear();  // before shared_, which they point to
}

absl::Status Server::Start() {
  int threads = config_.server.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY &&
      config_.server.max_connections + 16 + 4 * static_cast<std::size_t>(threads) >
          files.rlim_cur) {
    // Each connection takes a descriptor; past the limit accept fails and
    // the spare descriptor sheds the excess with 503, before max_connections.
    std::fprintf(stderr,
                 "server_demo: warning: max_connections = %zu exceeds what the descriptor "
                 "limit allows (RLIMIT_NOFILE = %llu); raise it with ulimit -n\n",
                 config_.server.max_connections,
                 static_cast<unsigned long long>(files.rlim_cur));
  }
  int port = config_.server.port;
  for (int i = 0; i < threads; ++i) {
    auto w = std::make_unique<Worker>(shared_.get());
    absl::Status s = w->Listen(config_.server.bind, &port);
    if (!s.ok()) return s;
    workers_.push_back(std::move(w));
  }
  port_ = port;
  for (auto& w : workers_) shared_->workers.push_back(w.get());
  // The first RSS sample before the first request: /stats and /metrics
  // never report 0 for a figure they have not sampled yet.
  rss_now_.store(ReadRssBytes(&shared_->descriptor_mu), std::memory_order_relaxed);
  for (auto& w : workers_) w->StartThread();
  sampler_ = std::thread([this] { SampleLoop(); });
  return absl::OkStatus();
}

void Server::Shutdown() {
  // acq_rel: a second caller sees the first one's Wake()s as done or under way.
  if (stopping_.exchange(true, std::memory_order_acq_rel)) return;
  for (auto& w : workers_) w->Wake();
  {
    std::lock_guard<std::mutex> lock(sampler_mu_);
    sampler_stop_ = true;
  }
  sampler_cv_.notify_all();
}

void Server::Wait() {
  std::lock_guard<std::mutex> lock(join_mu_);
  if (joined_) return;
  for (auto& w : workers_) w->Join();
  if (sampler_.joinable()) sampler_.join();
  joined_ = true;
}

void Server::SampleLoop() {
  std::uint64_t last_requests = requests();
  std::unique_lock<std::mutex> lock(sampler_mu_);
  while (!sampler_cv_.wait_for(lock, std::chrono::milliseconds(kSampleMs),
                               [this] { return sampler_stop_; })) {
    std::int64_t live = 0;
    for (auto& w : workers_) {
      live += w->metrics().live_request_bytes.load(std::memory_order_relaxed);
    }
    live = std::max<std::int64_t>(live, 0);  // gauges read at different instants
    const std::uint64_t rss = ReadRssBytes(&shared_->descriptor_mu);
    if (rss == 0) continue;  // unreadable (descriptors exhausted): no sample
    const double p = arena::FragmentationRatio(rss, static_cast<std::size_t>(live));
    const std::uint64_t now_requests = requests();
    rss_now_.store(rss, std::memory_order_relaxed);
    live_now_.store(live, std::memory_order_relaxed);
    fragmentation_now_.store(p, std::memory_order_relaxed);
    if (live > live_peak_.load(std::memory_order_relaxed)) {
      live_peak_.store(live, std::memory_order_relaxed);
    }
    if (live > 0 || now_requests != last_requests) {  // under load
      samples_.store(samples_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      fragmentation_sum_.store(fragmentation_sum_.load(std::memory_order_relaxed) + p,
                               std::memory_order_relaxed);
      if (p > fragmentation_peak_.load(std::memory_order_relaxed)) {
        fragmentation_peak_.store(p, std::memory_order_relaxed);
      }
    }
    last_requests = now_requests;
  }
}

std::string Server::MemoryJson() {
  const std::uint64_t samples = samples_.load(std::memory_order_relaxed);
  const double avg =
      samples == 0 ? 0.0 : fragmentation_sum_.load(std::memory_order_relaxed) / samples;
  return absl::StrCat(
      "{\"rss_bytes\":", rss_now_.load(std::memory_order_relaxed),
      ",\"peak_rss_bytes\":", ReadPeakRssBytes(&shared_->descriptor_mu),
      ",\"live_request_bytes\":", live_now_.load(std::memory_order_relaxed),
      ",\"peak_live_request_bytes\":", live_peak_.load(std::memory_order_relaxed),
      ",\"fragmentation_under_load\":{\"basis\":\"rss\",\"samples\":", samples,
      ",\"avg\":", avg, ",\"peak\":", fragmentation_peak_.load(std::memory_order_relaxed),
      ",\"now\":", fragmentation_now_.load(std::memory_order_relaxed), "}}");
}

std::uint64_t Server::requests() const {
  std::uint64_t n = 0;
  for (auto& w : workers_) n += w->metrics().requests.load(std::memory_order_relaxed);
  return n;
}

std::string Server::AllocatorJson() {
  // The allocator's own view. Its "fragmentation" is sampled whenever
  // /stats runs (between requests, for a worker): the figures to compare
  // allocators by are in "memory" (sampled under load by the sampler).
  if (config_.server.allocator == "arena") {
    const std::string json = arena::ToJson(arena::GlobalStats());
    return absl::StrCat("{\"kind\":\"arena\",", json.substr(1));
  }
  const struct mallinfo2 mi = mallinfo2();
  const std::size_t committed = mi.arena + mi.hblkhd;
  const std::size_t live = mi.uordblks + mi.hblkhd;
  return absl::StrCat("{\"kind\":\"malloc\",\"mapped_bytes\":", committed,
                      ",\"committed_bytes\":", committed, ",\"live_bytes\":", live,
                      ",\"free_bytes\":", mi.fordblks, ",\"mmapped_bytes\":", mi.hblkhd,
                      ",\"fragmentation\":",
                      arena::FragmentationRatio(committed, live), "}");
}

// Sums of every worker's metrics (relaxed loads: a best-effort snapshot).
struct Server::Totals {
  std::uint64_t requests = 0, bytes_in = 0, bytes_out = 0, memory = 0, total = 0,
                open = 0, refused = 0, accept_errors = 0, input_peak = 0;
  std::int64_t pinned = 0;
  std::vector<std::uint64_t> closed = std::vector<std::uint64_t>(kCloseReasons);
  std::vector<std::uint64_t> rejected = std::vector<std::uint64_t>(kRejectReasons);
  std::vector<std::uint64_t> statuses = std::vector<std::uint64_t>(std::size(ServerMetrics::kStatuses));
  std::vector<std::uint64_t> hist;
  std::uint64_t requested = 0, held = 0;
  arena::Histogram requested_bytes, small_bytes, held_bytes, waste_bytes, slow_paths,
      large_allocations;
};

Server::Totals Server::Sum() {
  Totals t;
  t.pinned = shared_->pinned_bytes.load(std::memory_order_relaxed);
  auto get = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  for (auto& w : workers_) {
    ServerMetrics& m = w->metrics();
    t.requests += get(m.requests);
    t.bytes_in += get(m.bytes_in);
    t.bytes_out += get(m.bytes_out);
    t.memory += get(m.request_memory_bytes);
    t.total += get(m.connections_total);
    t.open += get(m.connections_open);
    t.refused += get(m.connections_refused);
    t.accept_errors += get(m.accept_errors);
    t.input_peak = std::max(t.input_peak, get(m.input_peak_bytes));
    for (int i = 0; i < kCloseReasons; ++i) t.closed[i] += get(m.closed[i]);
    for (int i = 0; i < kRejectReasons; ++i) t.rejected[i] += get(m.rejected[i]);
    for (std::size_t i = 0; i < t.statuses.size(); ++i) t.statuses[i] += get(m.by_status[i]);
    m.latency_us.MergeInto(&t.hist);
    t.requested += get(m.peak_live_bytes_total);
    t.held += get(m.held_bytes_total);
    m.footprint.requested_bytes.AddTo(&t.requested_bytes);
    m.footprint.small_bytes.AddTo(&t.small_bytes);
    m.footprint.held_bytes.AddTo(&t.held_bytes);
    m.footprint.waste_bytes.AddTo(&t.waste_bytes);
    m.footprint.slow_paths.AddTo(&t.slow_paths);
    m.footprint.large_allocations.AddTo(&t.large_allocations);
  }
  return t;
}

std::string Server::FootprintJson(const Totals& t) {
  const double waste =
      t.held == 0 ? 0.0 : arena::FragmentationRatio(t.held, std::min(t.requested, t.held));
  return absl::StrCat(
      "{\"requests\":", t.requested_bytes.count, ",\"request_waste\":", waste,
      ",\"peak_live_bytes_total\":", t.requested, ",\"held_bytes_total\":", t.held,
      ",\"slow_paths_per_request\":", t.slow_paths.Mean(),
      ",\"requested_bytes\":", HistogramJson(t.requested_bytes),
      ",\"small_bytes\":", HistogramJson(t.small_bytes),
      ",\"held_bytes\":", HistogramJson(t.held_bytes),
      ",\"waste_bytes\":", HistogramJson(t.waste_bytes),
      ",\"slow_paths\":", HistogramJson(t.slow_paths),
      ",\"large_allocations\":", HistogramJson(t.large_allocations), "}");
}

std::string Server::StatsJson() {
  const Totals t = Sum();
  const std::uint64_t requests = t.requests, bytes_in = t.bytes_in, bytes_out = t.bytes_out,
                      memory = t.memory, total = t.total, open = t.open, refused = t.refused,
                      accept_errors = t.accept_errors;
  const std::vector<std::uint64_t>& statuses = t.statuses;
  const std::vector<std::uint64_t>& hist = t.hist;
  std::string errors;
  std::uint64_t error_total = 0;
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    if (ServerMetrics::kStatuses[i] >= 400) {
      absl::StrAppend(&errors, errors.empty() ? "" : ",", "\"", ServerMetrics::kStatuses[i],
                      "\":", statuses[i]);
      error_total += statuses[i];
    }
  }
  std::string closed, rejected;
  for (int i = 0; i < kCloseReasons; ++i) {
    absl::StrAppend(&closed, i == 0 ? "" : ",", "\"",
                    CloseReasonName(static_cast<CloseReason>(i)), "\":", t.closed[i]);
  }
  for (int i = 0; i < kRejectReasons; ++i) {
    absl::StrAppend(&rejected, i == 0 ? "" : ",", "\"",
                    RejectReasonName(static_cast<RejectReason>(i)), "\":", t.rejected[i]);
  }
  const double per_request = requests == 0 ? 0.0 : static_cast<double>(memory) / requests;
  auto pct = [&](double p) { return LatencyHistogram::Percentile(hist, p); };
  const std::string server = absl::StrCat(
      "{\"allocator\":\"", config_.server.allocator, "\",\"arena_scope\":\"",
      config_.server.arena_scope, "\",\"threads\":", workers_.size(),
      ",\"requests\":", requests, ",\"bytes_in\":", bytes_in, ",\"bytes_out\":", bytes_out,
      ",\"errors\":", error_total, ",\"errors_by_status\":{", errors, "}",
      ",\"responses_200\":", statuses[0],
      ",\"connections_open\":", open, ",\"connections_total\":", total,
      ",\"connections_refused\":", refused, ",\"accept_errors\":", accept_errors,
      ",\"request_bytes_per_request\":", per_request,
      ",\"pinned_bytes\":", std::max<std::int64_t>(t.pinned, 0),
      ",\"input_peak_bytes\":", t.input_peak, ",\"closed_by_reason\":{", closed,
      "},\"rejected_by_reason\":{", rejected, "}",
      ",\"latency_us\":{\"p50\":", pct(50), ",\"p90\":", pct(90), ",\"p99\":", pct(99),
      ",\"p999\":", pct(99.9), ",\"max\":", LatencyHistogram::Max(hist), "}",
      ",\"request_footprint\":", FootprintJson(t),
      ",\"arena_config\":", ArenaConfigJson(config_.arena), "}");
  return absl::StrCat("{\"server\":", server, ",\"memory\":", MemoryJson(),
                      ",\"allocator\":", AllocatorJson(), "}");
}

std::string Server::MetricsText() {
  const Totals t = Sum();
  const std::uint64_t requests = t.requests, bytes_in = t.bytes_in, bytes_out = t.bytes_out,
                      open = t.open;
  const std::vector<std::uint64_t>& statuses = t.statuses;
  const std::vector<std::uint64_t>& hist = t.hist;
  std::string out = absl::StrCat(
      "# HELP server_demo_requests_total Requests answered.\n"
      "# TYPE server_demo_requests_total counter\nserver_demo_requests_total ", requests, "\n",
      "# HELP server_demo_bytes_in_total Bytes received.\n"
      "# TYPE server_demo_bytes_in_total counter\nserver_demo_bytes_in_total ", bytes_in, "\n",
      "# HELP server_demo_bytes_out_total Bytes sent.\n"
      "# TYPE server_demo_bytes_out_total counter\nserver_demo_bytes_out_total ", bytes_out, "\n",
      "# HELP server_demo_connections_open Open connections.\n"
      "# TYPE server_demo_connections_open gauge\nserver_demo_connections_open ", open, "\n",
      "# HELP server_demo_responses_total Responses by status code.\n"
      "# TYPE server_demo_responses_total counter\n");
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    absl::StrAppend(&out, "server_demo_responses_total{code=\"", ServerMetrics::kStatuses[i],
                    "\"} ", statuses[i], "\n");
  }
  absl::StrAppend(&out,
                  "# HELP server_demo_connections_closed_total Connections closed, by reason.\n"
                  "# TYPE server_demo_connections_closed_total counter\n");
  for (int i = 0; i < kCloseReasons; ++i) {
    absl::StrAppend(&out, "server_demo_connections_closed_total{reason=\"",
                    CloseReasonName(static_cast<CloseReason>(i)), "\"} ", t.closed[i], "\n");
  }
  absl::StrAppend(&out,
                  "# HELP server_demo_rejected_total 503 responses, by reason.\n"
                  "# TYPE server_demo_rejected_total counter\n");
  for (int i = 0; i < kRejectReasons; ++i) {
    absl::StrAppend(&out, "server_demo_rejected_total{reason=\"",
                    RejectReasonName(static_cast<RejectReason>(i)), "\"} ", t.rejected[i],
                    "\n");
  }
  absl::StrAppend(&out,
                  "# HELP server_demo_pinned_bytes Memory held by responses not yet sent.\n"
                  "# TYPE server_demo_pinned_bytes gauge\nserver_demo_pinned_bytes ",
                  std::max<std::int64_t>(t.pinned, 0), "\n",
                  "# HELP server_demo_input_peak_bytes Most input one connection buffered.\n"
                  "# TYPE server_demo_input_peak_bytes gauge\nserver_demo_input_peak_bytes ",
                  t.input_peak, "\n");
  absl::StrAppend(&out,
                  "# HELP server_demo_latency_microseconds Parse-to-response time.\n"
                  "# TYPE server_demo_latency_microseconds summary\n");
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    absl::StrAppend(&out, "server_demo_latency_microseconds{quantile=\"", q, "\"} ",
                    LatencyHistogram::Percentile(hist, q * 100), "\n");
  }
  absl::StrAppend(&out, "server_demo_latency_microseconds_count ",
                  LatencyHistogram::Count(hist), "\n");
  // Per request, recorded by the server (the arena_request_* histograms
  // below are per Reset of an arena).
  absl::StrAppend(
      &out,
      HistogramPrometheus(t.requested_bytes, "server_demo_request_requested_bytes",
                          "Bytes a request asked its allocator for."),
      HistogramPrometheus(t.held_bytes, "server_demo_request_held_bytes",
                          "Bytes the allocator held for a request (arena blocks; malloc usable sizes)."),
      HistogramPrometheus(t.waste_bytes, "server_demo_request_waste_bytes",
                          "Held minus requested bytes, per request."),
      HistogramPrometheus(t.slow_paths, "server_demo_request_slow_paths",
                          "Arena allocations off the fast path, per request."));
  const std::uint64_t samples = samples_.load(std::memory_order_relaxed);
  absl::StrAppend(
      &out,
      "# HELP server_demo_request_waste_ratio (held - requested) / held over all requests.\n"
      "# TYPE server_demo_request_waste_ratio gauge\nserver_demo_request_waste_ratio ",
      t.held == 0 ? 0.0 : arena::FragmentationRatio(t.held, std::min(t.requested, t.held)),
      "\n# HELP server_demo_rss_bytes Resident set size at the last sample.\n"
      "# TYPE server_demo_rss_bytes gauge\nserver_demo_rss_bytes ",
      rss_now_.load(std::memory_order_relaxed),
      "\n# HELP server_demo_peak_rss_bytes Peak resident set size (VmHWM).\n"
      "# TYPE server_demo_peak_rss_bytes gauge\nserver_demo_peak_rss_bytes ", ReadPeakRssBytes(&shared_->descriptor_mu),
      "\n# HELP server_demo_live_request_bytes Bytes of requests in flight, unsent responses "
      "included.\n# TYPE server_demo_live_request_bytes gauge\nserver_demo_live_request_bytes ",
      live_now_.load(std::memory_order_relaxed),
      "\n# HELP server_demo_peak_live_request_bytes Most live request bytes sampled.\n"
      "# TYPE server_demo_peak_live_request_bytes gauge\nserver_demo_peak_live_request_bytes ",
      live_peak_.load(std::memory_order_relaxed),
      "\n# HELP server_demo_fragmentation_ratio P = (RSS - live request bytes) / RSS, sampled "
      "every 10 ms under load.\n# TYPE server_demo_fragmentation_ratio gauge\n"
      "server_demo_fragmentation_ratio{stat=\"avg\"} ",
      samples == 0 ? 0.0 : fragmentation_sum_.load(std::memory_order_relaxed) / samples,
      "\nserver_demo_fragmentation_ratio{stat=\"peak\"} ",
      fragmentation_peak_.load(std::memory_order_relaxed),
      "\nserver_demo_fragmentation_ratio{stat=\"now\"} ",
      fragmentation_now_.load(std::memory_order_relaxed),
      "\n# HELP server_demo_fragmentation_samples_total Samples taken under load.\n"
      "# TYPE server_demo_fragmentation_samples_total counter\n"
      "server_demo_fragmentation_samples_total ", samples, "\n");
  if (config_.server.allocator == "arena") {
    absl::StrAppend(&out, arena::ToPrometheus(arena::GlobalStats()));
  } else {
    const struct mallinfo2 mi = mallinfo2();
    const std::size_t committed = mi.arena + mi.hblkhd;
    const std::size_t live = mi.uordblks + mi.hblkhd;
    absl::StrAppend(&out,
                    "# HELP malloc_committed_bytes glibc arena + mmapped bytes (mallinfo2).\n"
                    "# TYPE malloc_committed_bytes gauge\nmalloc_committed_bytes ", committed,
                    "\n# HELP malloc_live_bytes glibc bytes in use (mallinfo2).\n"
                    "# TYPE malloc_live_bytes gauge\nmalloc_live_bytes ", live,
                    "\n# HELP malloc_fragmentation_ratio (committed - live) / committed.\n"
                    "# TYPE malloc_fragmentation_ratio gauge\nmalloc_fragmentation_ratio ",
                    arena::FragmentationRatio(committed, live), "\n");
  }
  return out;
}

}  // namespace server_demo
