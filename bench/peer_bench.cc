// The comparison suite: every peer on request-shaped workloads, with a floor
// variant in each. bench/run runs this binary once per malloc (glibc, then
// jemalloc, tcmalloc and mimalloc through LD_PRELOAD, checking that the
// library really loaded); the non-malloc peers run in the glibc pass only.
//
//   peer_bench [--peers=all|malloc] [google benchmark flags]
//
// Workloads (names: <workload>/<peer>[/args]/threads:N):
//   micro     batches of 256 allocations of one size (8 B to 16 KiB), with
//             and without touching them, then free/Reset of everything;
//             args size, touch, phase (see "Code placement")
//   request   64 allocations with sizes from a fixed-seed skewed table (most
//             16-256 B, a tail to 16 KiB), three bytes written into each, a
//             pmr vector and a pmr string built on the peer, then everything
//             freed (or Reset); arg phase; counters: bytes/request, depot
//             ops/request
//   xthread   producer/consumer (xmalloc-test shape): one thread allocates
//             batches, the other frees them
//   larson    server-style: threads replace random slots of a shared table,
//             freeing objects other threads allocated
//   cross_core  not an allocator: one cache line passed between two threads,
//             run first and last in every process (the machine's mode)
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/peers.h"

namespace arena_bench {


namespace {

constexpr int kRequestAllocs = 64;
constexpr int kShapes = 16;

// Fixed-seed skewed sizes: 90% 16-256 B, 9% 256 B-4 KiB, 1% 4-16 KiB,
// log-uniform inside each band.
struct Shapes {
  std::uint32_t size[kShapes][kRequestAllocs];
  std::uint64_t bytes[kShapes];
  Shapes() {
    std::mt19937_64 rng(20261126);
    std::uniform_real_distribution<double> u(0, 1);
    for (int s = 0; s < kShapes; ++s) {
      bytes[s] = 0;
      for (int i = 0; i < kRequestAllocs; ++i) {
        const double band = u(rng);
        double lo = 16, hi = 256;
        if (band > 0.99) lo = 4096, hi = 16384;
        else if (band > 0.90) lo = 256, hi = 4096;
        size[s][i] = static_cast<std::uint32_t>(lo * std::pow(hi / lo, u(rng)));
        bytes[s] += size[s][i];
      }
    }
  }
};
const Shapes& GetShapes() {
  static const Shapes* shapes = new Shapes();
  return *shapes;
}

std::uint64_t DepotOps() {
  const arena::ProcessStats s = arena::GlobalStats();
  return s.depot_hits + s.depot_misses + s.depot_pushes;
}

template <class P>
constexpr bool kIsArena = std::is_same_v<P, ArenaReset> || std::is_same_v<P, ArenaFresh> ||
                          std::is_same_v<P, ArenaDealloc>;

// ---- code placement ----------------------------------------------------------

// A loop of a few instructions per allocation (the floor's, the bare micro
// rows') can run at a speed set by where it lies against the core's 64-byte
// fetch lines: on the development machine (AMD Zen 5) the floor's micro loop
// takes 77 or 128 ns per batch from the same source, depending on the build.
// So the bare micro rows (touch:0) and the request rows are each compiled
// kPhases times: the function aligned to 64 bytes, with phase x 16 bytes of
// padding (run once, before the loop) in front of its loop, which puts the
// loop at each of the four 16-byte offsets in a line. bench/summarize.py
// reports the median over the phases and their range; the phase is an arg
// of the row's name (phase:N), checked against the instantiation.
constexpr int kPhases = 4;

template <int kPhase>
__attribute__((always_inline)) inline void PadCode() {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile(".skip %c0, 0x90" ::"i"(kPhase * 16));  // 0x90: nop
#endif
}

// False (and the row skipped with an error) if the phase arg does not
// match the instantiation.
template <int kPhase>
bool PhaseMatches(benchmark::State& state, int arg) {
  if (state.range(arg) == kPhase) return true;
  state.SkipWithError("phase arg does not match the instantiation");
  return false;
}

// ---- micro -----------------------------------------------------------------

template <class P, int kPhase>
__attribute__((aligned(64))) void BM_Micro(benchmark::State& state) {
  const std::size_t size = state.range(0);
  const bool touch = state.range(1) != 0;
  if (!PhaseMatches<kPhase>(state, 2)) return;
  constexpr int kBatch = 256;
  P peer;
  void* ptrs[kBatch];
  PadCode<kPhase>();
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      char* p = static_cast<char*>(peer.Alloc(size));
      if (touch) {
        p[0] = 1;
        p[size - 1] = 2;
      }
      benchmark::DoNotOptimize(p);
      ptrs[i] = p;
    }
    if constexpr (P::kIndividualFree) {
      for (int i = 0; i < kBatch; ++i) peer.Free(ptrs[i], size);
    }
    peer.EndRequest();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// ---- request ---------------------------------------------------------------

template <class P, int kPhase>
__attribute__((aligned(64))) void BM_Request(benchmark::State& state) {
  if (!PhaseMatches<kPhase>(state, 0)) return;
  const Shapes& shapes = GetShapes();
  P peer;
  std::uint64_t ops_before = 0;
  if (kIsArena<P> && state.thread_index() == 0) ops_before = DepotOps();
  unsigned shape = state.thread_index() * 7;
  std::uint64_t bytes = 0;
  void* ptrs[kRequestAllocs];
  PadCode<kPhase>();
  for (auto _ : state) {
    const unsigned s = shape++ % kShapes;
    for (int i = 0; i < kRequestAllocs; ++i) {
      const std::size_t n = shapes.size[s][i];
      char* p = static_cast<char*>(peer.Alloc(n));
      p[0] = 1;
      p[n / 2] = 2;
      p[n - 1] = 3;
      ptrs[i] = p;
    }
    {
      std::pmr::vector<int> v(peer.resource());
      for (int i = 0; i < 16; ++i) v.push_back(i);
      std::pmr::string str(peer.resource());
      str.append("request-scoped text that outgrows the small-string buffer");
      benchmark::DoNotOptimize(v.data());
      benchmark::DoNotOptimize(str.data());
    }
    if constexpr (P::kIndividualFree) {
      for (int i = 0; i < kRequestAllocs; ++i) peer.Free(ptrs[i], shapes.size[s][i]);
    }
    peer.EndRequest();
    bytes += shapes.bytes[s];
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes_per_request"] =
      benchmark::Counter(static_cast<double>(bytes) / std::max<std::int64_t>(1, state.iterations()),
                         benchmark::Counter::kAvgThreads);
  if (kIsArena<P> && state.thread_index() == 0) {
    // All threads passed the loop's end barrier: the global figure is final.
    state.counters["depot_ops_per_request"] =
        static_cast<double>(DepotOps() - ops_before) /
        std::max<std::int64_t>(1, state.iterations() * state.threads());
  }
}

// ---- xthread: producer/consumer -------------------------------------------

struct alignas(64) Batch {
  static constexpr int kObjects = 64;
  void* p[kObjects];
  std::uint32_t n[kObjects];
};

template <class P>
struct Channel {
  static constexpr int kSlots = 64;
  P peer;
  Batch batches[kSlots];
  alignas(64) std::atomic<std::uint64_t> produced{0};
  alignas(64) std::atomic<std::uint64_t> consumed{0};
};

template <class P>
Channel<P>* g_channel = nullptr;

template <class P>
void BM_ProducerConsumer(benchmark::State& state) {
  const Shapes& shapes = GetShapes();
  if (state.thread_index() == 0) g_channel<P> = new Channel<P>();
  // Other threads read g_channel only inside the loop, after the start barrier.
  std::uint64_t local = 0;
  for (auto _ : state) {
    Channel<P>& ch = *g_channel<P>;
    if (state.thread_index() == 0) {
      // Wait for a free slot (release/acquire pair with the consumer).
      while (local - ch.consumed.load(std::memory_order_acquire) >= Channel<P>::kSlots) {
      }
      if constexpr (!P::kIndividualFree) {
        // Bulk peers release a whole "request" once the consumer is done.
        if (local % 16 == 0 && local != 0) {
          while (ch.consumed.load(std::memory_order_acquire) != local) {
          }
          ch.peer.EndRequest();
        }
      }
      Batch& b = ch.batches[local % Channel<P>::kSlots];
      const unsigned s = local % kShapes;
      for (int i = 0; i < Batch::kObjects; ++i) {
        const std::uint32_t n = std::min<std::uint32_t>(shapes.size[s][i], 1024);
        char* p = static_cast<char*>(ch.peer.Alloc(n));
        p[0] = static_cast<char>(i);
        b.p[i] = p;
        b.n[i] = n;
      }
      ch.produced.store(++local, std::memory_order_release);
    } else {
      while (ch.produced.load(std::memory_order_acquire) <= local) {
      }
      Batch& b = ch.batches[local % Channel<P>::kSlots];
      for (int i = 0; i < Batch::kObjects; ++i) {
        benchmark::DoNotOptimize(*static_cast<char*>(b.p[i]));
        if constexpr (P::kIndividualFree) ch.peer.Free(b.p[i], b.n[i]);
      }
      ch.consumed.store(++local, std::memory_order_release);
    }
  }
  if (state.thread_index() == 0) {
    while (g_channel<P>->consumed.load(std::memory_order_acquire) != local) {
    }
    g_channel<P>->peer.EndRequest();
    delete g_channel<P>;
    g_channel<P> = nullptr;
  }
  state.SetItemsProcessed(state.iterations() * Batch::kObjects);
}

// ---- cross_core: the machine's cross-core latency ------------------------------

// Not an allocator row: two threads pass a token back and forth through one
// cache line, and a row's time per iteration is one round trip (the line
// crosses between the cores twice). On a small VM the two-thread rows move
// between a fast and a slow mode with the host's placement of the vCPUs
// (slow: cross-core transfers several times dearer), so main() runs this row
// first and last in every process; summarize.py uses the two figures to tell
// which processes of a paired round ran in the same mode (bench/run).
alignas(64) std::atomic<std::uint64_t> g_cross_core_token{0};

// Thread `me` (0 or 1) waits for its turn n and passes the token on:
// thread 0 moves it from 2n to 2n+1, thread 1 from 2n+1 to 2n+2.
inline void PassToken(std::atomic<std::uint64_t>& token, std::uint64_t me, std::uint64_t n) {
  const std::uint64_t mine = 2 * n + me;
  for (int spins = 0; token.load(std::memory_order_acquire) != mine;) {
    // A pass takes well under 1000 spins; yield only when the other thread
    // is not running (fewer cores than threads).
    if (++spins == 1 << 14) {
      spins = 0;
      std::this_thread::yield();
    }
  }
  token.store(mine + 1, std::memory_order_release);
}

void BM_CrossCore(benchmark::State& state) {
  constexpr std::uint64_t kWarmUp = 20000;
  const auto me = static_cast<std::uint64_t>(state.thread_index());
  // Each run of the row (Google Benchmark's trial runs included) has new
  // threads, started after the last run's were joined. Thread 1 only waits
  // until thread 0's first pass, so thread 0 may reset the token here.
  if (me == 0) g_cross_core_token.store(0, std::memory_order_relaxed);
  // Untimed passes first: a process's first row otherwise also measures
  // its threads settling on their cores.
  for (std::uint64_t n = 0; n < kWarmUp; ++n) PassToken(g_cross_core_token, me, n);
  std::uint64_t n = kWarmUp;
  for (auto _ : state) PassToken(g_cross_core_token, me, n++);
}

void RegisterCrossCore(const char* which) {
  benchmark::RegisterBenchmark((std::string("cross_core/") + which).c_str(), BM_CrossCore)
      ->Threads(2)
      ->UseRealTime();
}

// ---- larson: threads free what other threads allocated ---------------------

constexpr int kLarsonSlots = 4096;

struct ObjectHeader {
  void* owner;
  std::uint64_t size;
};

template <class P>
struct LarsonShared {
  std::atomic<void*> slots[kLarsonSlots] = {};
  P* peers[64] = {};
};

template <class P>
LarsonShared<P>* g_larson = nullptr;

template <class P>
void BM_Larson(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_larson<P> = new LarsonShared<P>();
    for (int t = 0; t < state.threads(); ++t) {
      // The floor wraps around a 1 MiB buffer that stays in cache (it never
      // reads an object back, so overwriting live ones does not matter).
      if constexpr (std::is_same_v<P, Floor>) g_larson<P>->peers[t] = new Floor(1 << 20);
      else g_larson<P>->peers[t] = new P();
    }
  }
  std::mt19937 rng(state.thread_index() + 1);
  for (auto _ : state) {
    LarsonShared<P>& sh = *g_larson<P>;
    P& peer = *sh.peers[state.thread_index()];
    for (int k = 0; k < 64; ++k) {
      const std::uint32_t r = rng();
      const std::size_t n = 16 + (r >> 8) % 497;
      auto* h = static_cast<ObjectHeader*>(peer.Alloc(n));
      h->owner = &peer;
      h->size = n;
      // acq_rel: publishes the header to whoever takes the object out, and
      // acquires the previous owner's writes to the object we take out.
      void* old = sh.slots[r % kLarsonSlots].exchange(h, std::memory_order_acq_rel);
      if constexpr (P::kIndividualFree) {
        if (old != nullptr) {
          auto* oh = static_cast<ObjectHeader*>(old);
          static_cast<P*>(oh->owner)->Free(old, oh->size);
        }
      }
    }
    if constexpr (std::is_same_v<P, Floor>) peer.MaybeWrap();
  }
  if (state.thread_index() == 0) {
    LarsonShared<P>& sh = *g_larson<P>;
    if constexpr (P::kIndividualFree) {
      for (auto& slot : sh.slots) {
        if (void* old = slot.load(std::memory_order_acquire)) {
          auto* oh = static_cast<ObjectHeader*>(old);
          static_cast<P*>(oh->owner)->Free(old, oh->size);
        }
      }
    }
    for (int t = 0; t < state.threads(); ++t) delete sh.peers[t];
    delete g_larson<P>;
    g_larson<P> = nullptr;
  }
  state.SetItemsProcessed(state.iterations() * 64);
}

// ---- registration ----------------------------------------------------------

int MaxThreads() { return std::max(2u, std::thread::hardware_concurrency()); }

template <class P>
std::string PeerName() {
  if constexpr (std::is_same_v<P, Malloc>) return LoadedMalloc();
  if constexpr (std::is_same_v<P, NewDelete>) return std::string(LoadedMalloc()) + "_new";
  return P::kName;
}

template <class P>
void RegisterPeer(bool quick) {
  const std::string name = PeerName<P>();
  // Every phase of the bare rows (touch:0); the touched rows at phase 0.
  void (*const micro_phases[kPhases])(benchmark::State&) = {
      BM_Micro<P, 0>, BM_Micro<P, 1>, BM_Micro<P, 2>, BM_Micro<P, 3>};
  void (*const request_phases[kPhases])(benchmark::State&) = {
      BM_Request<P, 0>, BM_Request<P, 1>, BM_Request<P, 2>, BM_Request<P, 3>};
  const std::vector<std::int64_t> sizes =
      quick ? std::vector<std::int64_t>{16, 256, 4096}
            : std::vector<std::int64_t>{8, 16, 64, 256, 1024, 4096, 16384};
  for (int phase = 0; phase < kPhases; ++phase) {
    auto* micro = benchmark::RegisterBenchmark(("micro/" + name).c_str(), micro_phases[phase]);
    micro->ArgNames({"size", "touch", "phase"});
    for (std::int64_t size : sizes) {
      for (std::int64_t touch : {0, 1}) {
        if (touch == 0 || phase == 0) micro->Args({size, touch, phase});
      }
    }
    micro->ThreadRange(1, MaxThreads())->UseRealTime();
  }
  for (int phase = 0; phase < kPhases; ++phase) {
    benchmark::RegisterBenchmark(("request/" + name).c_str(), request_phases[phase])
        ->ArgName("phase")
        ->Arg(phase)
        ->ThreadRange(1, MaxThreads())
        ->UseRealTime();
  }
  if constexpr (P::kThreadSafeFree) {
    benchmark::RegisterBenchmark(("xthread/" + name).c_str(), BM_ProducerConsumer<P>)
        ->Threads(2)
        ->UseRealTime();
  }
  // Larson frees every object individually from any thread; peers that
  // cannot (bulk-only arenas) would only grow, so they sit this one out.
  if constexpr ((P::kIndividualFree && P::kThreadSafeFree) || std::is_same_v<P, Floor>) {
    benchmark::RegisterBenchmark(("larson/" + name).c_str(), BM_Larson<P>)
        ->ThreadRange(1, MaxThreads())
        ->UseRealTime();
  }
}

}  // namespace
}  // namespace arena_bench

int main(int argc, char** argv) {
  using namespace arena_bench;
  std::string peers = "all";
  bool quick = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--peers=", 8) == 0) {
      peers = argv[i] + 8;
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      args.push_back(argv[i]);
    }
  }
  if (peers != "all" && peers != "malloc") {
    std::fprintf(stderr, "peer_bench: --peers must be 'all' or 'malloc'\n");
    return 2;
  }
  benchmark::AddCustomContext("loaded_malloc", LoadedMalloc());
  benchmark::AddCustomContext("peers", peers);
  // Google Benchmark runs the rows in registration order.
  RegisterCrossCore("first");
  RegisterPeer<Malloc>(quick);
  RegisterPeer<NewDelete>(quick);
  if (peers == "all") {
    RegisterPeer<Floor>(quick);
    RegisterPeer<FloorPlus<false>>(quick);
    RegisterPeer<FloorPlus<true>>(quick);
    RegisterPeer<ArenaReset>(quick);
    RegisterPeer<ArenaFresh>(quick);
    RegisterPeer<ArenaDealloc>(quick);
    RegisterPeer<PmrMonotonic>(quick);
    RegisterPeer<PmrUnsyncPool>(quick);
    RegisterPeer<PmrSyncPool>(quick);
    RegisterPeer<ProtobufArena>(quick);
    RegisterPeer<TbbScalable>(quick);
    RegisterPeer<TbbMemoryPool>(quick);
  }
  RegisterCrossCore("last");
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
