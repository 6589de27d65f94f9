// The core library's first benchmark: the arena's fast path against its
// physical floor (a bare bump pointer over a hot buffer) and glibc malloc,
// measured in one run; plus the cost of Reset by number of blocks.
//
//   bazel run -c opt //bench:fastpath_bench -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one command line)
//
// Each iteration is a batch of kBatch allocations followed by the matching
// release (Reset, cursor rewind, or frees), so the figure per allocation
// includes the amortized release; the `ns_per_alloc` counter is that figure.
#include <chrono>
#include <cstdlib>
#include <memory>
#include <vector>

#include <benchmark/benchmark.h>

#include "absl/base/optimization.h"
#include "arena/arena.h"

namespace {

constexpr int kBatch = 1024;

void SetPerAlloc(benchmark::State& state) {
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["ns_per_alloc"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kBatch,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// The floor: bump a cursor through a hot, preallocated buffer; no bounds
// check, no free; rewinding the cursor is the whole "reset". Like any
// allocator's state (and the arena's), the cursor lives in memory: it is
// reloaded and stored around every DoNotOptimize, which clobbers memory.
struct BumpFloor {
  char* cursor;
  char* Allocate(std::size_t size) {
    char* p = cursor;
    cursor = p + ((size + 15) & ~std::size_t{15});
    return p;
  }
};

// kTouched: three bytes written into each allocation (first, middle, last),
// as a caller that uses its memory would.
template <bool kTouched>
inline void MaybeTouch(void* p, std::size_t size) {
  if constexpr (kTouched) {
    char* c = static_cast<char*>(p);
    c[0] = 1;
    c[size / 2] = 2;
    c[size - 1] = 3;
  }
}

template <bool kTouched>
void BM_Floor(benchmark::State& state) {
  const std::size_t size = state.range(0);
  std::vector<char> buffer(((size + 15) & ~std::size_t{15}) * kBatch + 64);
  BumpFloor floor{buffer.data()};
  benchmark::DoNotOptimize(&floor);
  for (auto _ : state) {
    floor.cursor = buffer.data();
    for (int i = 0; i < kBatch; ++i) {
      void* p = floor.Allocate(size);
      MaybeTouch<kTouched>(p, size);
      benchmark::DoNotOptimize(p);
    }
  }
  SetPerAlloc(state);
}

// The same with the cursor held in a register (no memory round trip): a
// bound no allocator whose state lives in an object can reach.
void BM_FloorInRegister(benchmark::State& state) {
  const std::size_t size = state.range(0);
  const std::size_t step = (size + 15) & ~std::size_t{15};
  std::vector<char> buffer(step * kBatch + 64);
  char* const begin = buffer.data();
  for (auto _ : state) {
    char* cursor = begin;
    for (int i = 0; i < kBatch; ++i) {
      char* p = cursor;
      cursor += step;
      benchmark::DoNotOptimize(p);
    }
  }
  SetPerAlloc(state);
}

// What any allocator must add to the floor: a bound check (the end of its
// region, in memory beside the cursor) and, with kCounted, a count of the
// bytes handed out (the arena keeps live bytes exact). Neither calls out of
// line here: past the bound the batch starts over, which never happens.
// On this machine's cores either addition alone doubles the floor's cycle
// per allocation; see the README.
template <bool kCounted>
struct CheckedBump {
  char* cursor;
  char* limit;
  std::size_t counted;
  char* Allocate(std::size_t size) {
    const std::size_t step = (size + 15) & ~std::size_t{15};
    if (ABSL_PREDICT_FALSE(size - 1 >= static_cast<std::size_t>(limit - cursor))) {
      return nullptr;
    }
    char* p = cursor;
    cursor = p + step;
    if (kCounted) counted += size;
    return p;
  }
};

template <bool kCounted>
void BM_FloorChecked(benchmark::State& state) {
  const std::size_t size = state.range(0);
  std::vector<char> buffer(((size + 15) & ~std::size_t{15}) * kBatch + 64);
  CheckedBump<kCounted> bump{buffer.data(), buffer.data() + buffer.size() - 64, 0};
  benchmark::DoNotOptimize(&bump);
  for (auto _ : state) {
    bump.cursor = buffer.data();
    for (int i = 0; i < kBatch; ++i) {
      void* p = bump.Allocate(size);
      benchmark::DoNotOptimize(p);
    }
  }
  SetPerAlloc(state);
}

template <bool kTouched>
void BM_Arena(benchmark::State& state) {
  const std::size_t size = state.range(0);
  arena::Arena a;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      void* p = a.Allocate(size);
      MaybeTouch<kTouched>(p, size);
      benchmark::DoNotOptimize(p);
    }
    a.Reset();
  }
  SetPerAlloc(state);
}

template <bool kTouched>
void BM_GlibcMalloc(benchmark::State& state) {
  const std::size_t size = state.range(0);
  std::vector<void*> ptrs(kBatch);
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      ptrs[i] = std::malloc(size);
      MaybeTouch<kTouched>(ptrs[i], size);
      benchmark::DoNotOptimize(ptrs[i]);
    }
    for (int i = 0; i < kBatch; ++i) std::free(ptrs[i]);
  }
  SetPerAlloc(state);
}

void BM_ArenaFreshPerBatch(benchmark::State& state) {
  const std::size_t size = state.range(0);
  for (auto _ : state) {
    arena::Arena a;
    for (int i = 0; i < kBatch; ++i) {
      void* p = a.Allocate(size);
      benchmark::DoNotOptimize(p);
    }
  }
  SetPerAlloc(state);
}

// glibc's best case: free right after malloc (the tcache ping-pong).
void BM_GlibcMallocFreePair(benchmark::State& state) {
  const std::size_t size = state.range(0);
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      void* p = std::malloc(size);
      benchmark::DoNotOptimize(p);
      std::free(p);
    }
  }
  SetPerAlloc(state);
}

// Reset alone, by the number of blocks the arena holds.
void BM_ArenaReset(benchmark::State& state) {
  const std::size_t blocks = state.range(0);
  const std::size_t block = arena::CurrentConfig().block_size;
  arena::Arena a;
  for (auto _ : state) {
    while (a.stats().blocks < blocks) a.Allocate(block / 4);
    const auto start = std::chrono::steady_clock::now();
    a.Reset();
    const auto end = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
  }
  state.counters["blocks"] = static_cast<double>(blocks);
}

BENCHMARK_TEMPLATE(BM_Floor, false)->Arg(16)->Arg(64)->Arg(256);
BENCHMARK(BM_FloorInRegister)->Arg(16)->Arg(64)->Arg(256);
BENCHMARK_TEMPLATE(BM_FloorChecked, false)->Arg(16)->Arg(64)->Arg(256);
BENCHMARK_TEMPLATE(BM_FloorChecked, true)->Arg(16)->Arg(64)->Arg(256);
BENCHMARK_TEMPLATE(BM_Arena, false)->Arg(16)->Arg(64)->Arg(256);
BENCHMARK(BM_ArenaFreshPerBatch)->Arg(16)->Arg(64)->Arg(256);
BENCHMARK_TEMPLATE(BM_GlibcMalloc, false)->Arg(16)->Arg(64)->Arg(256);
BENCHMARK(BM_GlibcMallocFreePair)->Arg(16)->Arg(64)->Arg(256);
BENCHMARK_TEMPLATE(BM_Floor, true)->Arg(16)->Arg(64)->Arg(256);
BENCHMARK_TEMPLATE(BM_Arena, true)->Arg(16)->Arg(64)->Arg(256);
BENCHMARK_TEMPLATE(BM_GlibcMalloc, true)->Arg(16)->Arg(64)->Arg(256);
BENCHMARK(BM_ArenaReset)->Arg(1)->Arg(4)->Arg(16)->Arg(64)->UseManualTime();

}  // namespace

BENCHMARK_MAIN();
