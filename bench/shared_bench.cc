// SharedArena against the thread-safe peers on a parallel request workload.
//
// One request = a tbb::parallel_for over K tasks, each making M allocations
// (16 to 256 bytes, 16-byte aligned, the first word written) whose pointers
// outlive the task (the request keeps them), then one bulk free of the
// whole request by the thread that started it:
//   shared_fresh     a SharedArena made and destroyed per request
//   shared_pooled    one SharedArena, Reset per request
//   protobuf_fresh   a protobuf thread-safe Arena per request
//   protobuf_pooled  one protobuf Arena, Reset per request
//   tbb_memory_pool  one tbb::memory_pool shared by the tasks, recycle()
//   pmr_sync_pool    one std::pmr::synchronized_pool_resource, release()
//   malloc           malloc in the tasks, free of every object (in a
//                    parallel_for, as it has no bulk free)
// Threads: tbb::global_control from 1 to the core count (the benchmark
// argument). Counters: requests per second, and for the arena rows the
// depot operations per request (batches taken + batches given + blocks
// mapped on a depot miss), measured after warm-up.
//
//   bazel build -c opt //bench:shared_bench
//   bazel-bin/bench/shared_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one command line)
#define TBB_PREVIEW_MEMORY_POOL 1

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <memory_resource>
#include <optional>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <google/protobuf/arena.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/memory_pool.h>
#include <oneapi/tbb/parallel_for.h>

#include "arena/arena.h"
#include "arena/shared_arena.h"

namespace {

constexpr int kTasks = 32;  // K

// The size of allocation i of task t: 16 to 256 bytes, fixed per (t, i).
std::size_t SizeOf(int task, int i) {
  return 16 + static_cast<std::size_t>((task * 131 + i * 71) % 241);
}

// The request's results: every pointer, kept until the bulk free.
struct Request {
  explicit Request(int per_task) : per_task(per_task), ptrs(kTasks * per_task) {}
  int per_task;  // M
  std::vector<void*> ptrs;
};

struct SharedFresh {
  static constexpr const char* kName = "shared_fresh";
  static constexpr bool kArena = true;
  void Begin() { arena.emplace(); }
  void* Alloc(std::size_t n) { return arena->Allocate(n); }
  void End(Request&) { arena.reset(); }
  std::optional<arena::SharedArena> arena;
};

struct SharedPooled {
  static constexpr const char* kName = "shared_pooled";
  static constexpr bool kArena = true;
  void Begin() {}
  void* Alloc(std::size_t n) { return arena.Allocate(n); }
  void End(Request&) { arena.Reset(); }
  arena::SharedArena arena;
};

struct ProtobufFresh {
  static constexpr const char* kName = "protobuf_fresh";
  static constexpr bool kArena = false;
  void Begin() { arena.emplace(); }
  void* Alloc(std::size_t n) {
    return arena->AllocateAligned((n + 15) & ~std::size_t{15}, 16);
  }
  void End(Request&) { arena.reset(); }
  std::optional<google::protobuf::Arena> arena;
};

struct ProtobufPooled {
  static constexpr const char* kName = "protobuf_pooled";
  static constexpr bool kArena = false;
  void Begin() {}
  void* Alloc(std::size_t n) {
    return arena.AllocateAligned((n + 15) & ~std::size_t{15}, 16);
  }
  void End(Request&) { arena.Reset(); }
  google::protobuf::Arena arena;
};

struct TbbPool {
  static constexpr const char* kName = "tbb_memory_pool";
  static constexpr bool kArena = false;
  void Begin() {}
  void* Alloc(std::size_t n) { return pool.malloc(n); }
  void End(Request&) { pool.recycle(); }
  tbb::memory_pool<std::allocator<char>> pool;
};

struct PmrSync {
  static constexpr const char* kName = "pmr_sync_pool";
  static constexpr bool kArena = false;
  void Begin() {}
  void* Alloc(std::size_t n) { return mr.allocate(n, 16); }
  void End(Request&) { mr.release(); }
  std::pmr::synchronized_pool_resource mr;
};

struct Malloc {
  static constexpr const char* kName = "malloc";
  static constexpr bool kArena = false;
  void Begin() {}
  void* Alloc(std::size_t n) { return std::malloc(n); }
  void End(Request& r) {
    tbb::parallel_for(0, kTasks, [&](int t) {
      for (int i = 0; i < r.per_task; ++i) std::free(r.ptrs[t * r.per_task + i]);
    });
  }
};

template <class Peer>
void RunRequest(Peer& peer, Request& r) {
  peer.Begin();
  tbb::parallel_for(0, kTasks, [&](int t) {
    void** out = &r.ptrs[t * r.per_task];
    for (int i = 0; i < r.per_task; ++i) {
      const std::size_t n = SizeOf(t, i);
      void* p = peer.Alloc(n);
      std::memcpy(p, &n, sizeof(n));  // touch it, as a result would
      out[i] = p;
    }
  });
  benchmark::DoNotOptimize(r.ptrs.data());
  peer.End(r);
}

std::uint64_t DepotOps() {
  const arena::ProcessStats s = arena::GlobalStats();
  return s.depot_hits + s.depot_misses + s.depot_pushes;
}

// Args: {threads, M}.
template <class Peer>
void BM_Request(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                            threads);
  Request request(static_cast<int>(state.range(1)));
  auto peer = std::make_unique<Peer>();
  for (int i = 0; i < 16; ++i) RunRequest(*peer, request);  // warm-up
  const std::uint64_t depot_before = DepotOps();
  for (auto _ : state) RunRequest(*peer, request);
  const std::uint64_t depot_ops = DepotOps() - depot_before;
  state.SetItemsProcessed(state.iterations());
  state.counters["allocs_per_req"] = kTasks * state.range(1);
  if (Peer::kArena) {
    state.counters["depot_ops_per_req"] =
        static_cast<double>(depot_ops) / static_cast<double>(state.iterations());
  }
}

void Args(benchmark::internal::Benchmark* b) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int m : {64, 512}) {
    for (int t = 1; t <= cores; ++t) b->Args({t, m});
  }
  b->ArgNames({"threads", "M"})->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK_TEMPLATE(BM_Request, SharedFresh)->Apply(Args);
BENCHMARK_TEMPLATE(BM_Request, SharedPooled)->Apply(Args);
BENCHMARK_TEMPLATE(BM_Request, ProtobufFresh)->Apply(Args);
BENCHMARK_TEMPLATE(BM_Request, ProtobufPooled)->Apply(Args);
BENCHMARK_TEMPLATE(BM_Request, TbbPool)->Apply(Args);
BENCHMARK_TEMPLATE(BM_Request, PmrSync)->Apply(Args);
BENCHMARK_TEMPLATE(BM_Request, Malloc)->Apply(Args);

}  // namespace

BENCHMARK_MAIN();
