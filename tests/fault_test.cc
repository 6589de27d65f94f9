// Fault injection: the process runtime runs on a page source that refuses
// maps on demand, and under a process-wide cap. TryAllocate returns nullptr,
// Allocate throws std::bad_alloc, and arenas stay usable afterwards.
#include <new>
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
  absl::Status status = arena::Configure(config, g_faults);
  if (!status.ok()) {
    fprintf(stderr, "Configure: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return RUN_ALL_TESTS();
}
