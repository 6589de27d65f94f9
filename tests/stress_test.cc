// Multithreaded stress: start barrier, fixed time budget, every allocation
// filled with its own byte pattern and checked before it is given back.
// Ends with the accounting proof: once every arena is gone and the caches
// are flushed, every mapped byte is in the depot (or back with the OS).
#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "arena/arena.h"
#include "tests/test_util.h"

namespace {

using arena_test::Check;
using arena_test::Fill;
using arena_test::Rng;
using arena_test::StartBarrier;
using Clock = std::chrono::steady_clock;

struct Chunk {
  char* p;
  std::size_t n;
  std::uint64_t seed;
};

std::size_t RequestSize(Rng& rng) {
  const std::size_t r = rng.Below(1000);
  if (r < 900) return 16 + rng.Below(240);     // most: 16 to 256 B
  if (r < 995) return 256 + rng.Below(16128);  // tail to 16 KiB
  return 40000 + rng.Below(200000);            // rare large mappings
}

TEST(Stress, ManyThreadsOwnArenasWithPatterns) {
  const int kThreads = 4;
  StartBarrier barrier(kThreads);
  std::atomic<std::uint64_t> checked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Rng rng(t + 100);
      auto a = std::make_unique<arena::Arena>();
      std::vector<Chunk> live;
      barrier.ArriveAndWait();
      const auto end = Clock::now() + arena_test::StressBudget();
      std::uint64_t seed = t * 1000000;
      while (Clock::now() < end) {
        for (int i = 0; i < 64; ++i) {
          const std::size_t n = RequestSize(rng);
          char* p = static_cast<char*>(a->Allocate(n));
          Fill(p, n, ++seed);
          live.push_back({p, n, seed});
          if (rng.Below(4) == 0) {  // free a random live chunk locally
            const std::size_t k = rng.Below(live.size());
            ASSERT_TRUE(Check(live[k].p, live[k].n, live[k].seed));
            a->Deallocate(live[k].p, live[k].n);
            live[k] = live.back();
            live.pop_back();
          }
        }
        for (const Chunk& c : live) ASSERT_TRUE(Check(c.p, c.n, c.seed));
        checked.fetch_add(live.size(), std::memory_order_relaxed);
        live.clear();
        if (rng.Below(8) == 0) {
          a = std::make_unique<arena::Arena>();  // a fresh arena per request
        } else {
          a->Reset();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(checked.load(), 1000u);
}

// Producers allocate and hand pointers to consumers, which Deallocate them
// remotely while the producers keep allocating (and draining) in the same
// arenas. An arena is reset only after its consumers are done with it.
TEST(Stress, CrossThreadDeallocate) {
  const int kPairs = 2;
  StartBarrier barrier(2 * kPairs);
  std::vector<std::thread> threads;
  std::atomic<std::uint64_t> freed{0};
  for (int t = 0; t < kPairs; ++t) {
    auto queue = std::make_shared<std::deque<Chunk>>();
    auto mu = std::make_shared<std::mutex>();
    auto done = std::make_shared<std::atomic<bool>>(false);
    auto consumer_done = std::make_shared<std::atomic<bool>>(false);
    auto a = std::make_shared<arena::Arena>();
    threads.emplace_back([=, &barrier] {  // producer
      Rng rng(t + 7);
      barrier.ArriveAndWait();
      const auto end = Clock::now() + arena_test::StressBudget();
      std::uint64_t seed = t * 1000000;
      while (Clock::now() < end) {
        const std::size_t n = RequestSize(rng);
        char* p = static_cast<char*>(a->Allocate(n));
        Fill(p, n, ++seed);
        std::lock_guard<std::mutex> lock(*mu);
        if (queue->size() < 4096) queue->push_back({p, n, seed});
      }
      done->store(true, std::memory_order_release);
      while (!consumer_done->load(std::memory_order_acquire)) std::this_thread::yield();
      a->Allocate(64, 64);  // drain what the consumer freed
      EXPECT_LT(a->stats().live_bytes, 64u + 4096u * 256000);
      a->Reset();
      EXPECT_EQ(a->stats().live_bytes, 0u);
    });
    threads.emplace_back([=, &barrier, &freed] {  // consumer
      barrier.ArriveAndWait();
      for (;;) {
        Chunk c{};
        bool got = false;
        {
          std::lock_guard<std::mutex> lock(*mu);
          if (!queue->empty()) {
            c = queue->front();
            queue->pop_front();
            got = true;
          }
        }
        if (!got) {
          if (done->load(std::memory_order_acquire)) {
            std::lock_guard<std::mutex> lock(*mu);
            if (queue->empty()) break;
            continue;
          }
          std::this_thread::yield();
          continue;
        }
        ASSERT_TRUE(Check(c.p, c.n, c.seed));
        a->Deallocate(c.p, c.n);
        freed.fetch_add(1, std::memory_order_relaxed);
      }
      consumer_done->store(true, std::memory_order_release);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(freed.load(), 100u);
}

// Arenas travel between threads through a queue (an async server resuming a
// request elsewhere): each hop allocates and checks, and any hop may Reset.
TEST(Stress, ArenasMoveBetweenThreadsAndResetElsewhere) {
  const int kThreads = 3;
  struct Request {
    std::unique_ptr<arena::Arena> arena;
    std::vector<Chunk> chunks;
  };
  std::mutex mu;
  std::deque<Request> queue;
  for (int i = 0; i < 8; ++i) queue.push_back({std::make_unique<arena::Arena>(), {}});
  StartBarrier barrier(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Rng rng(t + 31);
      barrier.ArriveAndWait();
      const auto end = Clock::now() + arena_test::StressBudget();
      std::uint64_t seed = t * 1000000;
      while (Clock::now() < end) {
        Request r;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (queue.empty()) continue;
          r = std::move(queue.front());
          queue.pop_front();
        }
        for (const Chunk& c : r.chunks) ASSERT_TRUE(Check(c.p, c.n, c.seed));
        for (int i = 0; i < 16; ++i) {
          const std::size_t n = RequestSize(rng);
          char* p = static_cast<char*>(r.arena->Allocate(n));
          Fill(p, n, ++seed);
          r.chunks.push_back({p, n, seed});
        }
        if (rng.Below(3) == 0) {
          r.arena->Reset();
          r.chunks.clear();
        }
        std::lock_guard<std::mutex> lock(mu);
        queue.push_back(std::move(r));
      }
    });
  }
  for (auto& th : threads) th.join();
}

// Threads that exit while their caches hold blocks flush them to the depot.
TEST(Stress, ThreadsExitHoldingCachedBlocks) {
  for (int round = 0; round < 4; ++round) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([t] {
        // Constructed before this thread's cache, so destroyed after it: an
        // arena destroyed during thread exit must still give its blocks back.
        thread_local std::unique_ptr<arena::Arena> late;
        late.reset();
        arena::Arena a;
        for (int i = 0; i < 20000; ++i) a.Allocate(64 + (i + t) % 200);
        a.Reset();  // blocks now sit in this thread's cache
        EXPECT_GT(arena::GlobalStats().thread_cache_bytes, 0u);
        late = std::make_unique<arena::Arena>();
        late->Allocate(1000);
      });
    }
    for (auto& th : threads) th.join();
  }
}

// Runs last (gtest runs tests in file order): nothing is lost.
TEST(Stress, ZzAccountingEveryMappedByteIsAccountedFor) {
  arena::FlushThreadCache();
  const arena::ProcessStats s = arena::GlobalStats();
  EXPECT_EQ(s.threads, 1u) << "only the main thread should hold a cache";
  EXPECT_EQ(s.live_bytes, 0u);
  EXPECT_EQ(s.in_arena_bytes, 0u);
  EXPECT_EQ(s.large_bytes, 0u);
  EXPECT_EQ(s.thread_cache_bytes, 0u);
  EXPECT_EQ(s.arenas_created, s.arenas_destroyed);
  EXPECT_EQ(s.mapped_bytes, s.depot_bytes + s.decommitted_bytes + s.large_cache_bytes)
      << arena::ToJson(s);
  EXPECT_EQ(s.committed_bytes, s.depot_bytes + s.large_cache_bytes) << arena::ToJson(s);
  // And Trim gives all of it back to the OS.
  arena::Trim();
  const arena::ProcessStats t = arena::GlobalStats();
  EXPECT_EQ(t.mapped_bytes, 0u) << arena::ToJson(t);
  EXPECT_EQ(t.committed_bytes, 0u);
}

}  // namespace
