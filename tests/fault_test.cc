// Fault injection: the process runtime runs on a page source that refuses
// maps on demand, and under a process-wide cap. TryAllocate returns nullptr,
// Allocate throws std::bad_alloc, and arenas stay usable afterwards.
#include <new>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "arena/arena.h"
#include "arena/testing/test_page_sources.h"

namespace {

arena::testing::MallocPageSource* g_malloc_source;
arena::testing::FaultInjectingPageSource* g_faults;

constexpr std::size_t kBlock = 64 * 1024;
constexpr std::size_t kCap = 64 * kBlock;

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_faults->Heal();
    arena::Trim();  // start every test from an empty depot
  }
};

TEST_F(FaultTest, FailingSourceGivesNullptrAndThrows) {
  arena::Arena a;
  g_faults->set_failing(true);
  EXPECT_EQ(a.TryAllocate(100), nullptr);
  EXPECT_THROW(a.Allocate(100), std::bad_alloc);
  EXPECT_EQ(a.TryAllocate(1 << 20), nullptr);  // large path
  EXPECT_THROW(a.Allocate(1 << 20), std::bad_alloc);
  EXPECT_EQ(a.stats().live_bytes, 0u);
  g_faults->Heal();
  void* p = a.Allocate(100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(a.stats().live_bytes, 100u);
  EXPECT_GT(arena::GlobalStats().map_failures, 0u);
}

TEST_F(FaultTest, FailureMidRequestKeepsWhatWasAllocated) {
  arena::Arena a;
  std::vector<char*> got;
  g_faults->FailAfter(3);  // one depot refill maps at most a batch of blocks
  for (;;) {
    char* p = static_cast<char*>(a.TryAllocate(4000));
    if (p == nullptr) break;
    p[0] = static_cast<char>(got.size());
    got.push_back(p);
  }
  EXPECT_EQ(got.size(), 3u * ((kBlock - 64) / 4000));
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i][0], static_cast<char>(i));
  }
  g_faults->Heal();
  EXPECT_NE(a.TryAllocate(4000), nullptr);
}

TEST_F(FaultTest, ProcessCapIsEnforced) {
  std::vector<std::unique_ptr<arena::Arena>> arenas;
  std::size_t total = 0;
  bool refused = false;
  for (int i = 0; i < 1000 && !refused; ++i) {
    arenas.push_back(std::make_unique<arena::Arena>());
    for (int k = 0; k < 16; ++k) {
      if (arenas.back()->TryAllocate(30000) == nullptr) {
        refused = true;
        break;
      }
      total += 30000;
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_LE(arena::GlobalStats().mapped_bytes, kCap);
  EXPECT_GT(total, kCap / 2);
  arenas.clear();  // all memory comes back; allocation works again
  arena::Arena a;
  EXPECT_NE(a.TryAllocate(30000), nullptr);
}

// Second cold review of the remote-free batches: under the process cap an
// arena could fail an allocation while a chunk another thread freed waited
// in that thread's batch (which only that thread delivers). With
// max_total_bytes set no arena batches: each remote free arrives at once.
TEST_F(FaultTest, RemoteFreesArriveAtOnceUnderTheProcessCap) {
  arena::Arena a;
  void* p = a.Allocate(100);
  std::size_t waiting = 1;
  std::thread([&] {
    a.Deallocate(p, 100);
    waiting = arena::FlushRemoteFrees();  // what was still in its batches
  }).join();
  EXPECT_EQ(waiting, 0u);
}

TEST_F(FaultTest, NothingLeaksThroughFailures) {
  {
    arena::Arena a;
    g_faults->FailAfter(5);
    while (a.TryAllocate(10000) != nullptr) {
    }
    g_faults->Heal();
  }
  arena::Trim();
  EXPECT_EQ(g_malloc_source->outstanding_spans(), 0u);
  EXPECT_EQ(arena::GlobalStats().mapped_bytes, 0u);
}


// Item 8 of issue 7: blocks that overflow a thread cache were stamped idle
// since time 0, so the next release pass decommitted them at once. The
// runtime here runs with release_delay_ms = 60 s.
TEST_F(FaultTest, ThreadCacheOverflowKeepsTheReleaseDelay) {
  {
    arena::Arena a;
    for (int i = 0; i < 24; ++i) a.Allocate(30000);  // 12 blocks
  }  // the cache keeps 4; the rest overflow to the depot
  ASSERT_GE(arena::GlobalStats().depot_bytes, 8 * kBlock);
  EXPECT_EQ(arena::ReleaseIdleMemory(), 0u);
  EXPECT_EQ(arena::GlobalStats().decommitted_bytes, 0u);
}

// Item 13b: unmapping the large-mapping cache counts as released memory.
TEST_F(FaultTest, TrimmingTheLargeCacheCountsAsReleased) {
  {
    arena::Arena a;
    a.Allocate(1 << 20);
  }  // the mapping goes to the large cache
  ASSERT_GE(arena::GlobalStats().large_cache_bytes, 1u << 20);
  const std::uint64_t before = arena::GlobalStats().released_bytes;
  const std::size_t trimmed = arena::Trim();
  EXPECT_GE(trimmed, 1u << 20);
  EXPECT_EQ(arena::GlobalStats().released_bytes - before, trimmed);
  EXPECT_EQ(arena::GlobalStats().large_cache_bytes, 0u);
}

// Item 14: at the process cap, free memory held in one form is given back
// before a request for the other form fails.
TEST_F(FaultTest, BlockRequestAtTheCapReleasesTheLargeCache) {
  {
    arena::Arena a;
    a.Allocate(kCap - 12 * kBlock);
  }  // almost the whole cap sits in the large cache
  ASSERT_GE(arena::GlobalStats().large_cache_bytes, kCap - 12 * kBlock);
  arena::Arena a;
  for (int i = 0; i < 48; ++i) {  // 24 blocks
    ASSERT_NE(a.TryAllocate(30000), nullptr) << "allocation " << i;
  }
}

TEST_F(FaultTest, LargeRequestAtTheCapReleasesFreeDepotBlocks) {
  {
    arena::Arena a;
    for (int i = 0; i < 120; ++i) a.Allocate(30000);  // 60 blocks
  }  // 4 stay in this thread's cache, 56 go to the depot
  ASSERT_GE(arena::GlobalStats().depot_bytes, 50 * kBlock);
  arena::Arena a;
  EXPECT_NE(a.TryAllocate(kCap / 2), nullptr);
}
}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Never destroyed, like the runtime that uses them.
  g_malloc_source = new arena::testing::MallocPageSource();
  g_faults = new arena::testing::FaultInjectingPageSource(g_malloc_source);
  arena::Config config;
  config.block_size = kBlock;
  config.depot_batch_blocks = 1;
  config.thread_cache_blocks = 4;
  config.max_total_bytes = kCap;
  config.release_delay_ms = 60 * 1000;
  absl::Status status = arena::Configure(config, g_faults);
  if (!status.ok()) {
    fprintf(stderr, "Configure: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return RUN_ALL_TESTS();
}
