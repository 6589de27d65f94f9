// Idle memory goes back: the background release thread decommits idle depot
// batches and asks idle threads to trim their caches via OnThreadIdle.
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "arena/arena.h"

namespace {

using std::chrono::milliseconds;

constexpr std::int64_t kDelayMs = 50;

// Polls until `pred` holds, for at most 10 s (a liveness bound, not a
// timing assertion: any machine gets there, a slow one just takes longer).
template <class Pred>
bool Eventually(Pred pred) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return pred();
}

TEST(Release, PrewarmedBlocksAreInTheDepot) {
  // Runs first: the runtime prewarmed 1 MiB into the depot at Configure.
  const arena::ProcessStats s = arena::GlobalStats();
  EXPECT_GE(s.mapped_bytes, 1u << 20);
}

TEST(Release, IdleDepotBatchesAreDecommittedByTheBackgroundThread) {
  {
    arena::Arena a;
    for (int i = 0; i < 64; ++i) a.Allocate(30000);
  }
  arena::FlushThreadCache();  // blocks go to the depot, stamped now
  EXPECT_GT(arena::GlobalStats().depot_bytes, 1u << 20);
  EXPECT_TRUE(Eventually([] {
    const arena::ProcessStats s = arena::GlobalStats();
    return s.cached_bytes < (512u << 10) && s.decommitted_bytes > (1u << 20);
  })) << arena::ToJson(arena::GlobalStats());
  // Decommitted blocks are reused (no new mappings needed).
  const std::size_t mapped = arena::GlobalStats().mapped_bytes;
  {
    arena::Arena a;
    for (int i = 0; i < 32; ++i) a.Allocate(30000);
  }
  EXPECT_EQ(arena::GlobalStats().mapped_bytes, mapped);
}

TEST(Release, IdleThreadTrimsItsCacheWhenAsked) {
  arena::FlushThreadCache();  // this thread's cache is not under test
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> flushed{0};
  std::thread worker([&] {
    {
      arena::Arena a;
      for (int i = 0; i < 16; ++i) a.Allocate(30000);
    }
    // An event loop: wakes on a timeout and calls the hook.
    while (!stop.load()) {
      flushed.fetch_add(arena::OnThreadIdle());
      std::this_thread::sleep_for(milliseconds(5));
    }
  });
  EXPECT_TRUE(Eventually([&] { return flushed.load() > 0; }));
  EXPECT_TRUE(Eventually([] { return arena::GlobalStats().thread_cache_bytes == 0; }));
  stop.store(true);
  worker.join();
}

TEST(Release, ReleaseIdleMemoryAndTrimAreExplicit) {
  {
    arena::Arena a;
    for (int i = 0; i < 16; ++i) a.Allocate(30000);
  }
  arena::FlushThreadCache();
  std::this_thread::sleep_for(milliseconds(2 * kDelayMs));
  arena::ReleaseIdleMemory();  // whatever the background thread left
  EXPECT_LT(arena::GlobalStats().cached_bytes, 512u << 10);
  arena::Trim();
  EXPECT_EQ(arena::GlobalStats().mapped_bytes, 0u);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  arena::Config config;
  config.background_release = true;
  config.release_delay_ms = kDelayMs;
  config.release_interval_ms = 10;
  config.prewarm_bytes = 1 << 20;
  if (!arena::Configure(config).ok()) return 1;
  return RUN_ALL_TESTS();
}
