// Depot and ThreadCache on a malloc-backed page source, so the sanitizers see
// every block as a heap object and the source's destructor catches leaks.
#include "arena/internal/depot.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "arena/internal/thread_cache.h"
#include "arena/testing/test_page_sources.h"
#include "tests/test_util.h"

namespace {

using arena::internal::BlockHeader;
using arena::internal::Depot;
using arena::internal::DepotOptions;
using arena::internal::ThreadCache;

constexpr std::size_t kBlock = 64 * 1024;

std::size_t Length(BlockHeader* b) {
  std::size_t n = 0;
  for (; b != nullptr; b = b->next.load(std::memory_order_relaxed)) ++n;
  return n;
}

class DepotTest : public ::testing::Test {
 protected:
  arena::testing::MallocPageSource source_;  // destroyed last: checks leaks
};

TEST_F(DepotTest, MissMapsABatchAndReleaseMakesAHit) {
  Depot depot(&source_, DepotOptions{kBlock, 4, 1 << 30});
  BlockHeader* batch = nullptr;
  ASSERT_EQ(depot.Acquire(&batch), 4u);
  EXPECT_EQ(Length(batch), 4u);
  EXPECT_EQ(depot.stats().misses, 1u);
  EXPECT_EQ(source_.outstanding_spans(), 4u);
  depot.Release(batch, 4, 0);
  EXPECT_EQ(depot.stats().hot_blocks, 4u);
  EXPECT_TRUE(depot.CheckInvariantForTesting());
  ASSERT_EQ(depot.Acquire(&batch), 4u);
  EXPECT_EQ(depot.stats().hits, 1u);
  EXPECT_EQ(source_.outstanding_spans(), 4u);  // no new mapping
  depot.Release(batch, 4, 0);
}

TEST_F(DepotTest, LongListsAreSplitIntoBatches) {
  Depot depot(&source_, DepotOptions{kBlock, 3, 1 << 30});
  BlockHeader* list = nullptr;
  for (int i = 0; i < 7; ++i) {
    BlockHeader* b = depot.MapBlock();
    ASSERT_NE(b, nullptr);
    b->next.store(list, std::memory_order_relaxed);
    list = b;
  }
  depot.Release(list, 7, 0);
  EXPECT_EQ(depot.stats().pushes, 3u);  // 3 + 3 + 1
  EXPECT_EQ(depot.stats().hot_blocks, 7u);
  EXPECT_TRUE(depot.CheckInvariantForTesting());
}

TEST_F(DepotTest, PastMaxBytesBatchesGoColdAndComeBack) {
  Depot depot(&source_, DepotOptions{kBlock, 2, 2 * kBlock});
  BlockHeader* a = nullptr;
  BlockHeader* b = nullptr;
  ASSERT_EQ(depot.Acquire(&a), 2u);
  ASSERT_EQ(depot.Acquire(&b), 2u);
  const std::size_t committed = source_.stats().committed_bytes;
  depot.Release(a, 2, 0);
  depot.Release(b, 2, 0);  // over the cap: decommitted past the header
  EXPECT_EQ(depot.stats().hot_blocks, 2u);
  EXPECT_EQ(depot.stats().cold_blocks, 2u);
  EXPECT_EQ(source_.stats().committed_bytes,
            committed - 2 * (kBlock - arena::PageSource::kPageSize));
  EXPECT_TRUE(depot.CheckInvariantForTesting());
  // Hot first, then cold (recommitted), then a miss.
  ASSERT_EQ(depot.Acquire(&a), 2u);
  ASSERT_EQ(depot.Acquire(&b), 2u);
  EXPECT_EQ(depot.stats().misses, 2u);
  EXPECT_EQ(source_.stats().committed_bytes, committed);
  depot.Release(a, 2, 0);
  depot.Release(b, 2, 0);
}

TEST_F(DepotTest, ReleaseIdleDecommitsOnlyOldBatches) {
  Depot depot(&source_, DepotOptions{kBlock, 1, 1 << 30});
  BlockHeader* old_batch = nullptr;
  BlockHeader* new_batch = nullptr;
  ASSERT_EQ(depot.Acquire(&old_batch), 1u);
  ASSERT_EQ(depot.Acquire(&new_batch), 1u);
  depot.Release(old_batch, 1, /*now_ms=*/1000);
  depot.Release(new_batch, 1, /*now_ms=*/1900);
  const std::size_t released = depot.ReleaseIdle(/*now_ms=*/2000, /*delay_ms=*/500);
  EXPECT_EQ(released, kBlock - arena::PageSource::kPageSize);
  EXPECT_EQ(depot.stats().hot_blocks, 1u);
  EXPECT_EQ(depot.stats().cold_blocks, 1u);
  EXPECT_TRUE(depot.CheckInvariantForTesting());
  // The young batch is still on top and hot.
  BlockHeader* got = nullptr;
  ASSERT_EQ(depot.Acquire(&got), 1u);
  EXPECT_EQ(got, new_batch);
  depot.Release(got, 1, 2000);
}

TEST_F(DepotTest, TrimUnmapsEverything) {
  Depot depot(&source_, DepotOptions{kBlock, 2, 2 * kBlock});
  BlockHeader* a = nullptr;
  BlockHeader* b = nullptr;
  depot.Acquire(&a);
  depot.Acquire(&b);
  depot.Release(a, 2, 0);
  depot.Release(b, 2, 0);
  EXPECT_GT(depot.Trim(), 0u);
  EXPECT_EQ(source_.outstanding_spans(), 0u);
  EXPECT_EQ(source_.stats().mapped_bytes, 0u);
  EXPECT_EQ(source_.stats().committed_bytes, 0u);
}

TEST_F(DepotTest, ConcurrentAcquireReleaseLosesNothing) {
  // Many threads hammer the lock-free stack (the ABA scenario: a block popped,
  // reused and pushed back while another pop is preempted) while a trimmer
  // decommits idle batches; every block must come back exactly once.
  Depot depot(&source_, DepotOptions{kBlock, 2, 8 * kBlock});
  const int kThreads = 4;
  arena_test::StartBarrier barrier(kThreads + 1);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      barrier.ArriveAndWait();
      arena_test::Rng rng(t);
      std::vector<std::pair<BlockHeader*, std::size_t>> held;
      while (!stop.load(std::memory_order_relaxed)) {
        if (held.size() < 3 && rng.Below(2) == 0) {
          BlockHeader* batch = nullptr;
          const std::size_t n = depot.Acquire(&batch);
          ASSERT_GT(n, 0u);
          for (BlockHeader* b = batch; b != nullptr;
               b = b->next.load(std::memory_order_relaxed)) {
            ASSERT_EQ(b->magic, arena::internal::kBlockMagic);
            ASSERT_EQ(b->owner, nullptr);
            b->owner = &held;  // mark: a double hand-out would show up
            arena_test::Fill(reinterpret_cast<char*>(b) + 64, 256, t);
          }
          held.emplace_back(batch, n);
        } else if (!held.empty()) {
          auto [batch, n] = held.back();
          held.pop_back();
          for (BlockHeader* b = batch; b != nullptr;
               b = b->next.load(std::memory_order_relaxed)) {
            ASSERT_EQ(b->owner, &held);
            ASSERT_TRUE(arena_test::Check(reinterpret_cast<char*>(b) + 64, 256, t));
            b->owner = nullptr;
          }
          depot.Release(batch, n, 0);
        }
      }
      for (auto [batch, n] : held) {
        for (BlockHeader* b = batch; b != nullptr;
             b = b->next.load(std::memory_order_relaxed)) {
          b->owner = nullptr;
        }
        depot.Release(batch, n, 0);
      }
    });
  }
  std::thread trimmer([&] {
    barrier.ArriveAndWait();
    std::int64_t now = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      depot.ReleaseIdle(now += 10, 5);
      std::this_thread::yield();
    }
  });
  std::this_thread::sleep_for(arena_test::StressBudget());
  stop.store(true);
  for (auto& t : threads) t.join();
  trimmer.join();
  EXPECT_TRUE(depot.CheckInvariantForTesting());
  const auto s = depot.stats();
  EXPECT_EQ((s.hot_blocks + s.cold_blocks) * kBlock, source_.stats().mapped_bytes);
  depot.Trim();
  EXPECT_EQ(source_.outstanding_spans(), 0u);
}

TEST_F(DepotTest, ThreadCacheHysteresis) {
  Depot depot(&source_, DepotOptions{kBlock, 4, 1 << 30});
  {
    ThreadCache cache(&depot, /*capacity=*/8);
    std::vector<BlockHeader*> got;
    for (int i = 0; i < 8; ++i) {
      BlockHeader* b = cache.Get();
      ASSERT_NE(b, nullptr);
      got.push_back(b);
    }
    EXPECT_EQ(cache.misses(), 2u);  // two batches of four
    EXPECT_EQ(cache.hits(), 6u);
    // Return all 8 one at a time: the cache holds 8, nothing goes back yet.
    for (BlockHeader* b : got) cache.Put(b, 1);
    EXPECT_EQ(cache.blocks(), 8u);
    EXPECT_EQ(depot.stats().pushes, 0u);
    // Alternate take/return at the boundary: no depot traffic.
    for (int i = 0; i < 100; ++i) {
      BlockHeader* b = cache.Get();
      cache.Put(b, 1);
    }
    EXPECT_EQ(depot.stats().pushes, 0u);
    EXPECT_EQ(cache.misses(), 2u);
    // One more block (from the depot) pushes the cache past capacity: it
    // keeps capacity - batch and gives the rest back in one batch... or two.
    BlockHeader* extra = depot.MapBlock();
    cache.Put(extra, 1);
    EXPECT_EQ(cache.blocks(), 4u);
    EXPECT_EQ(depot.stats().hot_blocks, 5u);
    EXPECT_EQ(cache.Flush(0), 4u);
    EXPECT_EQ(depot.stats().hot_blocks, 9u);
  }
  EXPECT_TRUE(depot.CheckInvariantForTesting());
}

// Put with the list's tail (Arena::ReleaseAll's way, no walk over the
// headers) links the whole list above what the cache held.
TEST_F(DepotTest, ThreadCachePutWithTailKeepsEveryBlock) {
  Depot depot(&source_, DepotOptions{kBlock, 2, 1 << 30});
  {
    ThreadCache cache(&depot, /*capacity=*/16);
    std::vector<BlockHeader*> got;
    for (int i = 0; i < 6; ++i) got.push_back(cache.Get());
    cache.Put(got[0], 1);
    // got[1] -> got[2] -> got[3] -> got[4], given with its tail.
    for (int i = 1; i < 4; ++i) got[i]->next.store(got[i + 1], std::memory_order_relaxed);
    got[4]->next.store(nullptr, std::memory_order_relaxed);
    cache.Put(got[1], got[4], 4);
    EXPECT_EQ(cache.blocks(), 5u);
    // Taken back newest list first, then the block below it.
    for (int i = 1; i <= 4; ++i) EXPECT_EQ(cache.Get(), got[i]);
    EXPECT_EQ(cache.Get(), got[0]);
    EXPECT_EQ(cache.blocks(), 0u);
    for (BlockHeader* b : got) cache.Put(b, 1);
    EXPECT_EQ(cache.Flush(0), 6u);
  }
  EXPECT_TRUE(depot.CheckInvariantForTesting());
}

TEST_F(DepotTest, ThreadCacheReportsExhaustion) {
  arena::testing::FaultInjectingPageSource failing(&source_);
  Depot depot(&failing, DepotOptions{kBlock, 2, 1 << 30});
  ThreadCache cache(&depot, 2);
  failing.set_failing(true);
  EXPECT_EQ(cache.Get(), nullptr);
  failing.Heal();
  BlockHeader* b = cache.Get();
  ASSERT_NE(b, nullptr);
  cache.Put(b, 1);
}


// Item 7 of issue 7: the ABA tag uses every bit a block address leaves
// free (low bits below log2(block_size), bit 47, bits 48..63): at least 30
// bits at the 8 KiB minimum block.
TEST_F(DepotTest, TagUsesTheFreeAddressBits) {
  EXPECT_EQ(Depot::TagBits(8 * 1024), 30);
  EXPECT_EQ(Depot::TagBits(64 * 1024), 33);
}

// The tag survives the old 28-bit limit: pops and pushes stay correct as it
// counts past 2^28 and past 2^30 - 1 (where the 8 KiB tag wraps).
TEST_F(DepotTest, TagCountsPastTheOld28BitLimitAndWraps) {
  for (std::size_t block : {std::size_t{8 * 1024}, kBlock}) {
    Depot depot(&source_, DepotOptions{block, 1, 1 << 30});
    const std::uint64_t start = (std::uint64_t{1} << Depot::TagBits(block)) - 8;
    depot.SetTagForTesting(start);
    std::vector<BlockHeader*> held(4);
    for (BlockHeader*& b : held) ASSERT_EQ(depot.Acquire(&b), 1u);
    for (int round = 0; round < 8; ++round) {
      for (BlockHeader* b : held) depot.Release(b, 1, 0);
      for (auto it = held.rbegin(); it != held.rend(); ++it) {
        BlockHeader* got = nullptr;
        ASSERT_EQ(depot.Acquire(&got), 1u);
        EXPECT_EQ(got, *it);  // LIFO: the tag never corrupts the pointer
      }
    }
    EXPECT_LT(depot.TagForTesting(), start);  // it wrapped to small values
    for (BlockHeader* b : held) depot.Release(b, 1, 0);
    EXPECT_TRUE(depot.CheckInvariantForTesting());
  }
  {
    Depot depot(&source_, DepotOptions{kBlock, 1, 1 << 30});
    depot.SetTagForTesting((std::uint64_t{1} << 28) - 2);
    BlockHeader* b = nullptr;
    ASSERT_EQ(depot.Acquire(&b), 1u);
    for (int i = 0; i < 4; ++i) {
      depot.Release(b, 1, 0);
      ASSERT_EQ(depot.Acquire(&b), 1u);
    }
    EXPECT_GT(depot.TagForTesting(), std::uint64_t{1} << 28);
    depot.Release(b, 1, 0);
  }
}

// Items 7 and 13c: a release pass that finds only young batches leaves
// them in place: no re-push (depot_pushes unchanged) and at most two tag
// steps, however many batches there are.
TEST_F(DepotTest, ReleasePassDoesNotRepushYoungBatches) {
  Depot depot(&source_, DepotOptions{kBlock, 1, 1 << 30});
  std::vector<BlockHeader*> blocks(10);
  for (BlockHeader*& b : blocks) ASSERT_EQ(depot.Acquire(&b), 1u);
  for (BlockHeader* b : blocks) depot.Release(b, 1, /*now_ms=*/1000);
  const std::uint64_t pushes = depot.stats().pushes;
  const std::uint64_t tag = depot.TagForTesting();
  for (int pass = 0; pass < 5; ++pass) {
    EXPECT_EQ(depot.ReleaseIdle(/*now_ms=*/1100, /*delay_ms=*/500), 0u);
  }
  EXPECT_EQ(depot.stats().pushes, pushes);
  EXPECT_LE(depot.TagForTesting() - tag, 5u * 2);
  EXPECT_EQ(depot.stats().hot_blocks, 10u);
  EXPECT_TRUE(depot.CheckInvariantForTesting());
  // Order kept: the last released is still on top.
  BlockHeader* got = nullptr;
  ASSERT_EQ(depot.Acquire(&got), 1u);
  EXPECT_EQ(got, blocks.back());
  depot.Release(got, 1, 1000);
  // Mixed: old batches at the bottom go cold, the young stay hot, in order.
  BlockHeader* young = nullptr;
  ASSERT_EQ(depot.Acquire(&young), 1u);
  depot.Release(young, 1, /*now_ms=*/5000);
  EXPECT_EQ(depot.ReleaseIdle(/*now_ms=*/5100, /*delay_ms=*/500),
            9 * (kBlock - arena::PageSource::kPageSize));
  EXPECT_EQ(depot.stats().hot_blocks, 1u);
  EXPECT_EQ(depot.stats().pushes, pushes + 2);
  EXPECT_TRUE(depot.CheckInvariantForTesting());
}

}  // namespace
