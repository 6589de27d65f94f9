// The library's noexcept paths when the global heap is exhausted (issue 7,
// item 6): this binary replaces the global operator new with one that fails
// on demand. Thread-state creation, the large-mapping cache and the fixed
// region's bookkeeping must then fail cleanly or not allocate: TryAllocate
// returns nullptr (or memory), Reset and Deallocate never terminate.
#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "arena/arena.h"
#include "arena/testing/test_page_sources.h"

namespace {
// Relaxed: a switch the test flips on the thread that allocates.
std::atomic<bool> g_fail_new{false};
}  // namespace

void* operator new(std::size_t n) {
  if (g_fail_new.load(std::memory_order_relaxed)) throw std::bad_alloc();
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (g_fail_new.load(std::memory_order_relaxed)) return nullptr;
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
  return operator new(n, t);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

constexpr std::size_t kRegion = 64 << 20;
arena::testing::FaultInjectingPageSource* g_faults;

// Runs `body` on a new thread (created while new still works) with the
// heap failing for the whole of `body`.
template <class Body>
void OnNewThreadWithoutHeap(Body body) {
  std::thread t([&] {
    g_fail_new.store(true, std::memory_order_relaxed);
    body();
    g_fail_new.store(false, std::memory_order_relaxed);
  });
  t.join();
}

TEST(OutOfHeap, ThreadStateCreationFailsCleanly) {
  arena::Trim();
  // No heap for the thread's state and no memory from the source: the
  // allocation fails, with nullptr or bad_alloc, and nothing terminates.
  g_faults->set_failing(true);
  bool threw = false;
  void* p = reinterpret_cast<void*>(1);
  OnNewThreadWithoutHeap([&] {
    arena::Arena a;
    p = a.TryAllocate(100);
    try {
      a.Allocate(100);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    a.Reset();
  });
  g_faults->Heal();
  EXPECT_EQ(p, nullptr);
  EXPECT_TRUE(threw);
  // With memory but still no heap: the thread works without a cache.
  OnNewThreadWithoutHeap([&] {
    arena::Arena a;
    p = a.TryAllocate(100);
    if (p != nullptr) static_cast<char*>(p)[99] = 1;
  });
  EXPECT_NE(p, nullptr);
}

TEST(OutOfHeap, LargeCacheAndRegionBookkeepingDoNotAllocate) {
  std::size_t failures = 0;
  OnNewThreadWithoutHeap([&] {
    arena::Arena a;
    void* storage[16];
    for (int round = 0; round < 3; ++round) {
      // Several sizes, freed in an order that splits and merges the
      // region's free spans; some go to the 1 MiB large cache, the rest
      // back to the region.
      for (int i = 0; i < 16; ++i) {
        storage[i] = a.TryAllocate((i % 5 + 1) * 300 * 1000);
        if (storage[i] == nullptr) ++failures;
      }
      for (int i = 0; i < 16; i += 2) {
        a.Deallocate(storage[i], (i % 5 + 1) * 300 * 1000);
      }
      a.Reset();
    }
  });
  EXPECT_EQ(failures, 0u);
  arena::Trim();
  EXPECT_EQ(arena::GlobalStats().mapped_bytes, 0u);
}

// Remote frees when no RemoteBatch can be had (internal/remote.h): once
// the freeing thread's spare batches are used up, each free goes over
// alone, linked through the chunk itself, and the owner gets every one
// (cold review: they used to stay with the arena until its Reset).
TEST(OutOfHeap, RemoteFreesArriveWithoutHeapForBatches) {
  arena::Arena a;
  constexpr int kObjects = 2000;
  std::vector<char*> p;
  for (int i = 0; i < kObjects; ++i) p.push_back(static_cast<char*>(a.Allocate(48)));
  const std::size_t live = a.stats().live_bytes;
  std::thread t([&] {
    a.Deallocate(p[0], 48);  // with heap: the thread's state and spares
    g_fail_new.store(true, std::memory_order_relaxed);
    for (int i = 1; i < kObjects; ++i) a.Deallocate(p[i], 48);
    arena::FlushRemoteFrees();
    g_fail_new.store(false, std::memory_order_relaxed);
  });
  t.join();
  a.Allocate(100 * 1024);  // past large_threshold: drains first
  EXPECT_EQ(a.stats().deallocations, static_cast<std::uint64_t>(kObjects));
  EXPECT_EQ(a.stats().live_bytes, live - kObjects * 48 + 100 * 1024);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  void* region = mmap(nullptr, kRegion, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (region == MAP_FAILED) return 1;
  // Never destroyed, like the runtime that uses them.
  auto* fixed = new arena::FixedRegionPageSource(region, kRegion);
  g_faults = new arena::testing::FaultInjectingPageSource(fixed);
  arena::Config config;
  config.large_cache_bytes = 1 << 20;
  absl::Status status = arena::Configure(config, g_faults);
  if (!status.ok()) {
    fprintf(stderr, "Configure: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return RUN_ALL_TESTS();
}
