// SharedArena: many tasks allocating at once with byte-pattern checks, frees
// from other tasks, cleanups across threads, Reset after the parallel phase,
// a cap hit by racing tasks, stats() read while tasks run.
//
// The tasks run on oneTBB (tbb::parallel_for). Debian's oneTBB is not built
// with ThreadSanitizer, so its scheduler's synchronization is invisible to
// TSan; under TSan the same tasks run on std::threads that start together at
// a barrier and take task indices from an atomic counter.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory_resource>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/base/config.h"
#include "arena/shared_arena.h"
#include "tests/test_util.h"

#ifndef ABSL_HAVE_THREAD_SANITIZER
#include <oneapi/tbb/parallel_for.h>
#endif

namespace {

using arena_test::Check;
using arena_test::Fill;
using arena_test::Rng;

constexpr int kTasks = arena_test::kUnderSanitizer ? 32 : 128;
constexpr int kPerTask = arena_test::kUnderSanitizer ? 64 : 256;
constexpr std::size_t kBlock = 64 * 1024;  // the default block size

// Runs task(i) for i in [0, tasks), in parallel.
template <class F>
void ForEachTask(int tasks, F task) {
#ifdef ABSL_HAVE_THREAD_SANITIZER
  const int threads = 4;
  arena_test::StartBarrier barrier(threads);
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      barrier.ArriveAndWait();
      for (int i; (i = next.fetch_add(1, std::memory_order_relaxed)) < tasks;) {
        task(i);
      }
    });
  }
  for (std::thread& t : pool) t.join();
#else
  tbb::parallel_for(0, tasks, [&](int i) { task(i); });
#endif
}

struct Chunk {
  char* p = nullptr;
  std::size_t n = 0;
  std::uint64_t seed = 0;
};

std::size_t RequestSize(Rng& rng) {
  const std::size_t r = rng.Below(1000);
  if (r < 900) return 1 + rng.Below(256);      // most: up to 256 B
  if (r < 995) return 256 + rng.Below(16128);  // tail to 16 KiB
  return 40000 + rng.Below(100000);            // rare large mappings
}

TEST(SharedArena, ConcurrentAllocateWithPatternsThenReset) {
  arena::SharedArena shared;
  for (int round = 0; round < 3; ++round) {
    std::vector<std::vector<Chunk>> chunks(kTasks);
    ForEachTask(kTasks, [&](int task) {
      Rng rng(task + 1000 * round);
      std::vector<Chunk>& mine = chunks[task];
      for (int i = 0; i < kPerTask; ++i) {
        Chunk c;
        c.n = RequestSize(rng);
        const std::size_t align = rng.Below(8) == 0 ? 256 : 16;
        c.p = static_cast<char*>(shared.Allocate(c.n, align));
        ASSERT_EQ(reinterpret_cast<std::uintptr_t>(c.p) % align, 0u);
        c.seed = (static_cast<std::uint64_t>(task) << 32) + i + 1;
        Fill(c.p, c.n, c.seed);
        mine.push_back(c);
        if (i % 64 == 63) {  // check what this task holds so far
          for (const Chunk& k : mine) ASSERT_TRUE(Check(k.p, k.n, k.seed));
        }
      }
    });
    // Every task's memory is intact: no two tasks were handed the same bytes.
    std::size_t live = 0;
    for (const auto& mine : chunks) {
      for (const Chunk& c : mine) {
        ASSERT_TRUE(Check(c.p, c.n, c.seed));
        live += c.n;
      }
    }
    arena::ArenaStats s = shared.stats();
    EXPECT_EQ(s.live_bytes, live);
    EXPECT_EQ(s.block_bytes, shared.reserved_bytes());
    EXPECT_GE(s.block_bytes, live);
    EXPECT_GT(s.blocks, 0u);
    EXPECT_GE(shared.threads(), 1u);
    shared.Reset();
    s = shared.stats();
    EXPECT_EQ(s.live_bytes, 0u);
    EXPECT_EQ(s.block_bytes, 0u);
    EXPECT_EQ(s.blocks, 0u);
    EXPECT_EQ(shared.reserved_bytes(), 0u);
    EXPECT_EQ(s.resets, static_cast<std::uint64_t>(round + 1));
  }
}

TEST(SharedArena, FreesFromOtherTasks) {
  arena::SharedArena shared;
  std::mutex mu;
  std::vector<Chunk> handoff;  // guarded by mu
  std::vector<std::vector<Chunk>> kept(kTasks);
  std::atomic<std::size_t> freed_remote{0};
  ForEachTask(kTasks, [&](int task) {
    Rng rng(task + 77);
    std::vector<Chunk> mine;
    for (int i = 0; i < kPerTask; ++i) {
      Chunk c;
      c.n = RequestSize(rng);
      c.p = static_cast<char*>(shared.Allocate(c.n));
      c.seed = (static_cast<std::uint64_t>(task) << 32) + i + 1;
      Fill(c.p, c.n, c.seed);
      mine.push_back(c);
    }
    // Hand half to whichever task comes next; free what others handed over.
    std::vector<Chunk> theirs;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (std::size_t i = 0; i < mine.size(); i += 2) handoff.push_back(mine[i]);
      const std::size_t take = std::min<std::size_t>(handoff.size(), kPerTask / 2);
      theirs.assign(handoff.end() - take, handoff.end());
      handoff.resize(handoff.size() - take);
    }
    for (const Chunk& c : theirs) {
      ASSERT_TRUE(Check(c.p, c.n, c.seed));
      shared.Deallocate(c.p, c.n);
    }
    freed_remote.fetch_add(theirs.size(), std::memory_order_relaxed);
    // Allocate again after the frees: the freed memory may come back, and
    // must not overlap what is still live.
    for (int i = 0; i < kPerTask / 4; ++i) {
      Chunk c;
      c.n = RequestSize(rng);
      c.p = static_cast<char*>(shared.Allocate(c.n));
      c.seed = (static_cast<std::uint64_t>(task) << 32) + 0x80000000u + i;
      Fill(c.p, c.n, c.seed);
      kept[task].push_back(c);
    }
    for (std::size_t i = 1; i < mine.size(); i += 2) kept[task].push_back(mine[i]);
  });
  EXPECT_GT(freed_remote.load(), 0u);
  // What was handed over and not taken is freed here, on this thread.
  for (const Chunk& c : handoff) {
    ASSERT_TRUE(Check(c.p, c.n, c.seed));
    shared.Deallocate(c.p, c.n);
  }
  std::size_t live = 0;
  for (const auto& mine : kept) {
    for (const Chunk& c : mine) {
      ASSERT_TRUE(Check(c.p, c.n, c.seed));
      live += c.n;
    }
  }
  // Remote frees count once their sub-arena drains them: at least `live`.
  const arena::ArenaStats s = shared.stats();
  EXPECT_GE(s.live_bytes, live);
  EXPECT_GT(s.deallocations, 0u);
  shared.Reset();
  EXPECT_EQ(shared.stats().live_bytes, 0u);
  EXPECT_EQ(shared.reserved_bytes(), 0u);
  // Usable after Reset, on every thread.
  ForEachTask(kTasks, [&](int task) {
    void* p = shared.Allocate(100);
    Fill(p, 100, task);
    ASSERT_TRUE(Check(p, 100, task));
    shared.Deallocate(p, 100);
  });
}

// A destructor that frees memory another task allocated: Reset must run all
// cleanups before any sub-arena gives its blocks back.
struct Holder {
  Holder(arena::SharedArena* a, Chunk c, std::atomic<int>* d)
      : arena(a), chunk(c), destroyed(d) {}
  ~Holder() {
    EXPECT_TRUE(Check(chunk.p, chunk.n, chunk.seed));
    arena->Deallocate(chunk.p, chunk.n);
    destroyed->fetch_add(1, std::memory_order_relaxed);
  }
  arena::SharedArena* arena;
  Chunk chunk;
  std::atomic<int>* destroyed;
};

TEST(SharedArena, CleanupsAcrossThreadsAndContainers) {
  std::atomic<int> destroyed{0};
  std::atomic<int> callbacks{0};
  {
    arena::SharedArena shared;
    std::vector<Chunk> chunks(kTasks);
    ForEachTask(kTasks, [&](int task) {
      Chunk& c = chunks[task];
      c.n = 64 + task;
      c.p = static_cast<char*>(shared.Allocate(c.n));
      c.seed = task + 5;
      Fill(c.p, c.n, c.seed);
    });
    for (int round = 0; round < 2; ++round) {
      ForEachTask(kTasks, [&](int task) {
        // Holders free the chunk of another task at Reset (round 0) or at
        // destruction (round 1).
        if (round == 0) {
          Chunk c = chunks[(task + 1) % kTasks];
          shared.Create<Holder>(&shared, c, &destroyed);
        }
        shared.RegisterCleanup(
            [](void* n) {
              static_cast<std::atomic<int>*>(n)->fetch_add(1, std::memory_order_relaxed);
            },
            &callbacks);
        // Containers in the shared arena, built in parallel.
        std::vector<int, arena::SharedArenaAllocator<int>> v{
            arena::SharedArenaAllocator<int>(shared)};
        for (int i = 0; i < 1000; ++i) v.push_back(i * task);
        ASSERT_EQ(v[999], 999 * task);
        std::pmr::vector<std::uint64_t> w(shared.resource());
        for (int i = 0; i < 500; ++i) w.push_back(i);
        ASSERT_EQ(w[499], 499u);
      });
      if (round == 0) {
        shared.Reset();
        EXPECT_EQ(destroyed.load(), kTasks);
        EXPECT_EQ(callbacks.load(), kTasks);
        EXPECT_EQ(shared.reserved_bytes(), 0u);
      }
    }
  }
  EXPECT_EQ(destroyed.load(), kTasks);
  EXPECT_EQ(callbacks.load(), 2 * kTasks);
}

// Within one thread, cleanups run in reverse order of registration; a
// cleanup may register more, which run in the same Reset.
TEST(SharedArena, CleanupOrderWithinAThreadAndCreateDuringReset) {
  struct Log {
    std::vector<int> order;
    arena::SharedArena* arena = nullptr;
  };
  Log log;
  arena::SharedArena shared;
  log.arena = &shared;
  for (int i = 0; i < 3; ++i) {
    shared.RegisterCleanup(
        [](void* l) {
          auto* log = static_cast<Log*>(l);
          log->order.push_back(static_cast<int>(log->order.size()));
          if (log->order.size() == 1) {
            // Registered during Reset, on the resetting thread.
            log->arena->RegisterCleanup(
                [](void* l2) { static_cast<Log*>(l2)->order.push_back(100); }, l);
          }
        },
        &log);
  }
  shared.Reset();
  // The three in reverse order (entries 0, 2, 3); the one the first of them
  // registered is the newest, so it runs next (100), as in Arena.
  EXPECT_EQ(log.order, (std::vector<int>{0, 100, 2, 3}));
  EXPECT_EQ(shared.reserved_bytes(), 0u);
}

// Frees on the allocating thread count at once: after the join, stats()
// is exact.
// Second cold review of the remote-free batches: every sub-arena has a
// budget, capped or not, and every SharedArena lost batching. Only a
// capped one delivers each remote free at once.
TEST(SharedArena, RemoteFreesAreBatchedUnlessCapped) {
  for (std::size_t cap : {std::size_t{0}, 64 * kBlock}) {
    arena::ArenaOptions options;
    options.max_bytes = cap;
    arena::SharedArena a(options);
    void* p = a.Allocate(100);
    std::size_t waiting = 0;
    std::thread([&] {
      a.Deallocate(p, 100);
      waiting = arena::FlushRemoteFrees();  // what was still in its batches
    }).join();
    EXPECT_EQ(waiting, cap == 0 ? 1u : 0u) << "cap " << cap;
  }
}

TEST(SharedArena, LocalFreesAreExactInStats) {
  arena::SharedArena shared;
  std::atomic<std::size_t> kept{0};
  ForEachTask(kTasks, [&](int task) {
    Rng rng(task + 9);
    for (int i = 0; i < kPerTask; ++i) {
      const std::size_t n = RequestSize(rng);
      void* p = shared.Allocate(n);
      Fill(p, n, i);
      if (i % 2 == 0) {
        shared.Deallocate(p, n);
      } else {
        kept.fetch_add(n, std::memory_order_relaxed);
      }
    }
  });
  const arena::ArenaStats s = shared.stats();
  EXPECT_EQ(s.live_bytes, kept.load());
  EXPECT_EQ(s.deallocations, static_cast<std::uint64_t>(kTasks * kPerTask / 2));
  EXPECT_EQ(s.block_bytes, shared.reserved_bytes());
}

TEST(SharedArena, AllocatorRebindAndEquality) {
  arena::SharedArena a, b;
  arena::SharedArenaAllocator<int> x(a), y(a), z(b);
  arena::SharedArenaAllocator<double> w(x);
  EXPECT_TRUE(x == y);
  EXPECT_TRUE(x != z);
  EXPECT_TRUE(w == x);
  EXPECT_EQ(w.arena(), &a);
  using Traits = std::allocator_traits<arena::SharedArenaAllocator<int>>;
  static_assert(std::is_same<Traits::rebind_alloc<long>,
                             arena::ArenaAllocator<long, arena::SharedArena>>::value,
                "rebind keeps the arena type");
  // The Arena flavour is unchanged.
  static_assert(std::is_same<arena::ArenaAllocator<int>::arena_type,
                             arena::Arena>::value,
                "Arena is the default");
}

// The cap covers the whole SharedArena: racing tasks together never hold
// more than max_bytes, and every one of them sees a clean failure.
void RaceToTheCap(std::size_t cap, bool large) {
  arena::ArenaOptions options;
  options.max_bytes = cap;
  arena::SharedArena shared(options);
  for (int round = 0; round < 2; ++round) {
    std::atomic<std::size_t> obtained{0};
    std::atomic<int> refused_tasks{0};
    std::atomic<bool> past_cap{false};
    ForEachTask(kTasks, [&](int task) {
      Rng rng(task + 31 * round);
      std::vector<Chunk> mine;
      int failures = 0;
      for (int i = 0; failures < 4; ++i) {  // no frees: the cap must come
        Chunk c;
        c.n = large ? 33000 + rng.Below(100000) : 16 + rng.Below(4000);
        if (i % 2 == 0) {
          c.p = static_cast<char*>(shared.TryAllocate(c.n));
        } else {
          try {
            c.p = static_cast<char*>(shared.Allocate(c.n));
          } catch (const std::bad_alloc&) {
            c.p = nullptr;
          }
        }
        if (shared.reserved_bytes() > cap || shared.stats().block_bytes > cap) {
          past_cap.store(true, std::memory_order_relaxed);
        }
        if (c.p == nullptr) {
          ++failures;
          continue;
        }
        c.seed = (static_cast<std::uint64_t>(task) << 32) + i + 1;
        Fill(c.p, std::min<std::size_t>(c.n, 256), c.seed);
        obtained.fetch_add(c.n, std::memory_order_relaxed);
        mine.push_back(c);
      }
      if (failures > 0) refused_tasks.fetch_add(1, std::memory_order_relaxed);
      for (const Chunk& k : mine) {
        ASSERT_TRUE(Check(k.p, std::min<std::size_t>(k.n, 256), k.seed));
      }
    });
    EXPECT_FALSE(past_cap.load());
    EXPECT_EQ(refused_tasks.load(), kTasks);  // the cap was hit by everyone
    EXPECT_LE(obtained.load(), cap);
    EXPECT_LE(shared.reserved_bytes(), cap);
    EXPECT_LE(shared.stats().block_bytes, cap);
    EXPECT_GT(obtained.load(), 0u);
    shared.Reset();
    EXPECT_EQ(shared.reserved_bytes(), 0u);
    // Room again after Reset.
    void* p = shared.TryAllocate(100);
    EXPECT_NE(p, nullptr);
  }
}

TEST(SharedArena, CapOnBlocksHitByRacingTasks) { RaceToTheCap(8 * kBlock, false); }

TEST(SharedArena, CapOnLargeMappingsHitByRacingTasks) {
  RaceToTheCap(8 * kBlock, true);
}

TEST(SharedArena, FreedLargeMappingMakesRoomUnderTheCap) {
  arena::ArenaOptions options;
  options.max_bytes = 4 * kBlock;
  arena::SharedArena shared(options);
  void* big = shared.TryAllocate(3 * kBlock);
  ASSERT_NE(big, nullptr);
  void* other = nullptr;
  std::thread t([&] { other = shared.TryAllocate(3 * kBlock); });
  t.join();
  EXPECT_EQ(other, nullptr);
  shared.Deallocate(big, 3 * kBlock);  // on its owner: unmapped at once
  std::thread u([&] { other = shared.TryAllocate(3 * kBlock); });
  u.join();
  EXPECT_NE(other, nullptr);
  EXPECT_LE(shared.reserved_bytes(), 4 * kBlock);
}

TEST(SharedArena, StatsWhileTasksRun) {
  arena::ArenaOptions options;
  options.max_bytes = 64 * kBlock;
  arena::SharedArena shared(options);
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> reads{0};
  std::thread monitor([&] {
    while (!done.load(std::memory_order_relaxed)) {
      const arena::ArenaStats s = shared.stats();
      EXPECT_LE(s.block_bytes, 64 * kBlock);
      EXPECT_GE(s.fragmentation, 0.0);
      EXPECT_LE(s.fragmentation, 1.0);
      reads.fetch_add(1, std::memory_order_relaxed);
    }
  });
  while (reads.load() == 0) std::this_thread::yield();
  ForEachTask(kTasks, [&](int task) {
    Rng rng(task);
    for (int i = 0; i < kPerTask; ++i) {
      const std::size_t n = 1 + rng.Below(512);
      void* p = shared.TryAllocate(n);
      if (p != nullptr) Fill(p, n, i);
      if (p != nullptr && i % 3 == 0) shared.Deallocate(p, n);
    }
  });
  done.store(true, std::memory_order_relaxed);
  monitor.join();
  EXPECT_GT(reads.load(), 0u);
}

TEST(SharedArena, BadAlignmentFailsCleanly) {
  arena::SharedArena shared;
  EXPECT_EQ(shared.TryAllocate(16, 3), nullptr);
  EXPECT_EQ(shared.TryAllocate(16, 0), nullptr);
  EXPECT_THROW(shared.Allocate(16, kBlock), std::bad_alloc);
  void* p = shared.Allocate(0);
  EXPECT_NE(p, nullptr);
  shared.Deallocate(p, 0);
}

#ifndef NDEBUG
struct Blocker {
  Blocker(std::atomic<bool>* entered, std::atomic<bool>* release) {
    entered->store(true);
    while (!release->load()) std::this_thread::yield();
  }
};

void ResetWhileCreateRuns() {
  arena::SharedArena shared;
  std::atomic<bool> entered{false};
  std::atomic<bool> release{false};
  std::thread t([&] { shared.Create<Blocker>(&entered, &release); });
  while (!entered.load()) std::this_thread::yield();
  shared.Reset();  // aborts: the Create above is still running
  release.store(true);
  t.join();
}

TEST(SharedArenaDeathTest, DeallocateIntoAnotherArenaAborts) {
  arena::SharedArena a, b;
  void* p = a.Allocate(64);
  EXPECT_DEATH(b.Deallocate(p, 64), "belongs to another arena");
  a.Deallocate(p, 64);
}

TEST(SharedArenaDeathTest, ResetWhileATaskUsesItAborts) {
#ifdef ABSL_HAVE_THREAD_SANITIZER
  GTEST_SKIP() << "death tests with threads are not run under TSan";
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(ResetWhileCreateRuns(),
               "used by a task during Reset|while a task uses it");
}
#endif


// Review finding: one thread's first reservation (first_block_hint) must not
// take the shared cap from the others; sub-arenas reserve one block.
TEST(SharedArena, FirstBlockHintDoesNotStarveOtherThreads) {
  arena::ArenaOptions options;
  options.max_bytes = 4 * kBlock;
  options.first_block_hint = 4 * kBlock;
  arena::SharedArena shared(options);
  void* first = shared.TryAllocate(16);
  ASSERT_NE(first, nullptr);
  void* other = nullptr;
  std::thread t([&] { other = shared.TryAllocate(16); });
  t.join();
  EXPECT_NE(other, nullptr);
  EXPECT_LE(shared.reserved_bytes(), 2 * kBlock);
}

}  // namespace
