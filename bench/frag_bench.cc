// Fragmentation under churn: a long run of requests of varying size (with
// rare very large ones) mixed with a slowly changing set of long-lived
// objects (hundreds of MiB), for one peer per process so that RSS belongs to
// that peer alone (bench/run starts it once per peer, the malloc family via
// LD_PRELOAD).
//
//   frag_bench --peer=malloc|tbb_scalable|arena|protobuf_arena
//              [--quick] [--csv=FILE]
//
// Live bytes are counted by the benchmark itself, the same way for every
// peer (requested sizes). RSS comes from /proc/self/statm, as a delta over a
// baseline taken before the workload, sampled every 20 ms into the CSV
// (ms, rss_bytes, live_bytes). Printed as one JSON line: peak RSS / peak
// live, and after the load stops and the release delay passes (the main
// thread acting as an idle event loop), RSS - baseline - live against the
// configured cache ceiling (arena only; the others have no such knob).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/peers.h"

namespace arena_bench {


namespace {

using Clock = std::chrono::steady_clock;

std::size_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// A group of objects with one lifetime: a long-lived generation, or one
// request. Every peer keeps the same bookkeeping (reserved up front, so it
// is part of the baseline).
template <class P>
struct Group {
  explicit Group(std::size_t capacity) { objects.reserve(capacity); }
  void* Alloc(std::size_t n) {
    void* p = peer.Alloc(n);
    // Live memory is used memory: touch every page of it.
    char* c = static_cast<char*>(p);
    for (std::size_t i = 0; i < n; i += 4096) c[i] = 1;
    c[n - 1] = 1;
    objects.push_back({p, n});
    bytes += n;
    return p;
  }
  void Release() {
    if constexpr (P::kIndividualFree) {
      for (auto& [p, n] : objects) peer.Free(p, n);
    }
    peer.EndRequest();
    objects.clear();
    bytes = 0;
  }
  P peer;
  std::vector<std::pair<void*, std::size_t>> objects;
  std::size_t bytes = 0;
};

struct Options {
  bool quick = false;
  std::string csv;
};

template <class P>
int Run(const Options& o, const std::string& name) {
  constexpr int kGenerations = 16;
  const std::size_t live_target = (o.quick ? 192ull : 384ull) << 20;
  const double seconds = o.quick ? 6.0 : 20.0;
  const std::size_t per_generation = live_target / kGenerations;
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0, 1);

  // Long-lived sizes: log-uniform 64 B to 64 KiB, half of them from a narrow
  // band that moves with every generation (so the size mix keeps changing).
  auto long_lived_size = [&](int generation) {
    if (u(rng) < 0.5) {
      const double band = 128.0 * std::pow(4.0, generation % 4);
      return static_cast<std::size_t>(band * (1 + u(rng)));
    }
    return static_cast<std::size_t>(64 * std::pow(1024.0, u(rng)));
  };
  auto request_size = [&] {
    const double band = u(rng);
    double lo = 16, hi = 256;
    if (band > 0.99) lo = 4096, hi = 16384;
    else if (band > 0.90) lo = 256, hi = 4096;
    return static_cast<std::size_t>(lo * std::pow(hi / lo, u(rng)));
  };

  std::vector<std::unique_ptr<Group<P>>> generations;
  for (int g = 0; g < kGenerations; ++g) {
    generations.push_back(std::make_unique<Group<P>>(per_generation / 256));
  }
  auto request = std::make_unique<Group<P>>(128);
  std::vector<std::tuple<double, std::size_t, std::size_t>> samples;
  samples.reserve(4096);
  const std::size_t baseline = RssBytes();

  std::atomic<std::size_t> live{0};
  std::atomic<bool> sampling{true};
  const auto start = Clock::now();
  std::thread sampler([&] {
    while (sampling.load(std::memory_order_relaxed)) {
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      const std::size_t rss = RssBytes();
      samples.emplace_back(ms, rss > baseline ? rss - baseline : 0,
                           live.load(std::memory_order_relaxed));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });

  auto fill = [&](int slot, int generation) {
    Group<P>& g = *generations[slot];
    while (g.bytes < per_generation) g.Alloc(long_lived_size(generation));
  };
  std::size_t long_live = 0;
  for (int g = 0; g < kGenerations; ++g) {
    fill(g, g);
    long_live += generations[g]->bytes;
    live.store(long_live, std::memory_order_relaxed);
  }
  // Churn: requests, and every so often a generation replaced by a new one.
  const auto churn_end = Clock::now() + std::chrono::duration<double>(seconds);
  const auto replace_every = std::chrono::duration<double>(seconds / (3.0 * kGenerations));
  auto next_replace = Clock::now() + replace_every;
  int generation = kGenerations;
  std::uint64_t requests = 0;
  while (Clock::now() < churn_end) {
    for (int r = 0; r < 64; ++r, ++requests) {
      for (int i = 0; i < 64; ++i) request->Alloc(request_size());
      if (requests % 200 == 0) request->Alloc((1u << 20) + (rng() % (7u << 20)));
      live.store(long_live + request->bytes, std::memory_order_relaxed);
      request->Release();
    }
    live.store(long_live, std::memory_order_relaxed);
    if (Clock::now() >= next_replace) {
      next_replace += replace_every;
      const int slot = generation % kGenerations;
      long_live -= generations[slot]->bytes;
      generations[slot]->Release();
      live.store(long_live, std::memory_order_relaxed);
      fill(slot, generation++);
      long_live += generations[slot]->bytes;
      live.store(long_live, std::memory_order_relaxed);
    }
  }
  // Load stops. The long-lived set stays; idle memory should go back.
  std::size_t release_wait_ms = 1500;
  std::size_t ceiling = 0;
  if constexpr (kIsArenaPeer<P>) {
    const arena::Config& c = arena::CurrentConfig();
    release_wait_ms = 3 * c.release_delay_ms + 2 * c.release_interval_ms;
    ceiling = c.depot_max_bytes + c.thread_cache_blocks * c.block_size + c.large_cache_bytes;
  }
  const auto idle_end = Clock::now() + std::chrono::milliseconds(release_wait_ms);
  while (Clock::now() < idle_end) {
    if constexpr (kIsArenaPeer<P>) arena::OnThreadIdle();  // an idle event loop
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sampling.store(false);
  sampler.join();
  const std::size_t rss_after = RssBytes();
  const std::size_t retained = rss_after > baseline + long_live ? rss_after - baseline - long_live : 0;

  std::size_t peak_rss = 0, peak_live = 0;
  for (auto& [ms, rss, l] : samples) {
    peak_rss = std::max(peak_rss, rss);
    peak_live = std::max(peak_live, l);
  }
  if (!o.csv.empty()) {
    std::ofstream csv(o.csv);
    csv << "ms,rss_bytes,live_bytes\n";
    for (auto& [ms, rss, l] : samples) csv << ms << "," << rss << "," << l << "\n";
  }
  std::printf(
      "{\"peer\":\"%s\",\"loaded_malloc\":\"%s\",\"quick\":%s,\"requests\":%llu,"
      "\"baseline_bytes\":%zu,\"peak_rss_bytes\":%zu,\"peak_live_bytes\":%zu,"
      "\"peak_rss_over_peak_live\":%.4f,\"live_after_bytes\":%zu,"
      "\"retained_after_release_bytes\":%zu,\"cache_ceiling_bytes\":%zu}\n",
      name.c_str(), LoadedMalloc(), o.quick ? "true" : "false",
      static_cast<unsigned long long>(requests), baseline, peak_rss, peak_live,
      peak_live == 0 ? 0.0 : static_cast<double>(peak_rss) / peak_live, long_live, retained,
      ceiling);
  for (auto& g : generations) g->Release();
  return 0;
}

}  // namespace
}  // namespace arena_bench

int main(int argc, char** argv) {
  using namespace arena_bench;
  Options o;
  std::string peer;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--peer=", 7) == 0) peer = argv[i] + 7;
    else if (std::strcmp(argv[i], "--quick") == 0) o.quick = true;
    else if (std::strncmp(argv[i], "--csv=", 6) == 0) o.csv = argv[i] + 6;
    else {
      std::fprintf(stderr, "frag_bench: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (peer == "malloc") return Run<Malloc>(o, LoadedMalloc());
  if (peer == "tbb_scalable") return Run<TbbScalable>(o, peer);
  if (peer == "protobuf_arena") return Run<ProtobufArena>(o, peer);
  if (peer == "arena") {
    // The arena's cache ceiling for this run: the depot keeps at most 32 MiB
    // committed, idle memory goes back after 500 ms.
    arena::Config config;
    config.depot_max_bytes = 32 << 20;
    config.release_delay_ms = 500;
    config.background_release = true;
    config.release_interval_ms = 100;
    if (!arena::Configure(config).ok()) return 1;
    return Run<ArenaReset>(o, peer);
  }
  std::fprintf(stderr, "frag_bench: --peer must be malloc, tbb_scalable, arena or protobuf_arena\n");
  return 2;
}
