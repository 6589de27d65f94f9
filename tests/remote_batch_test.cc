// Remote frees in batches (internal/remote.h): a thread's frees into an
// arena it does not own wait in that thread's batch and reach the arena
// together; a batch whose arena was Reset or destroyed in the meantime is
// dropped without touching the memory it named. Runs on the lazily started
// default runtime (64 KiB blocks, large_threshold 32 KiB).
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "arena/arena.h"
#include "arena/internal/remote.h"
#include "arena/internal/runtime.h"
#include "tests/test_util.h"

namespace {

using arena::internal::RemoteBatch;
using arena::internal::RemoteBatches;
using arena::internal::RemoteInbox;
using arena::internal::Runtime;
using arena_test::Worker;

constexpr std::uint32_t kBatch = 32;  // internal::RemoteBatches::kMaxCount

std::vector<char*> AllocateMany(arena::Arena& a, int n, std::size_t bytes) {
  std::vector<char*> v;
  for (int i = 0; i < n; ++i) v.push_back(static_cast<char*>(a.Allocate(bytes)));
  return v;
}

// The owner drains what was delivered: an allocation past large_threshold
// drains first (AllocateSlow). Returns the arena's deallocation count.
std::uint64_t DrainAndCount(arena::Arena& a) {
  a.Allocate(100 * 1024);
  return a.stats().deallocations;
}

TEST(RemoteBatch, FreesReachTheArenaWhenTheBatchFills) {
  arena::Arena a;
  std::vector<char*> p = AllocateMany(a, kBatch, 64);
  const std::size_t live = a.stats().live_bytes;
  Worker w;
  w.Run([&] {
    for (std::uint32_t i = 0; i + 1 < kBatch; ++i) a.Deallocate(p[i], 64);
  });
  EXPECT_EQ(DrainAndCount(a), 0u) << "a partial batch waits on its thread";
  w.Run([&] { a.Deallocate(p[kBatch - 1], 64); });
  EXPECT_EQ(DrainAndCount(a), kBatch);
  // Two drains, each with its large allocation.
  EXPECT_EQ(a.stats().live_bytes, live - kBatch * 64 + 2 * 100 * 1024);
}

TEST(RemoteBatch, FlushIdleAndExitDeliverPartialBatches) {
  arena::Arena a;
  std::vector<char*> p = AllocateMany(a, 9, 48);
  Worker w;
  std::size_t flushed = 0;
  w.Run([&] {
    for (int i = 0; i < 3; ++i) a.Deallocate(p[i], 48);
    flushed = arena::FlushRemoteFrees();
  });
  EXPECT_EQ(flushed, 3u);
  EXPECT_EQ(DrainAndCount(a), 3u);
  w.Run([&] {
    for (int i = 3; i < 6; ++i) a.Deallocate(p[i], 48);
    arena::OnThreadIdle();
  });
  EXPECT_EQ(DrainAndCount(a), 6u);
  std::thread([&] {
    for (int i = 6; i < 9; ++i) a.Deallocate(p[i], 48);
  }).join();  // its exit delivers
  EXPECT_EQ(DrainAndCount(a), 9u);
}

// Cold review of the batches: an arena capped at one block could not reuse
// a chunk another thread had freed (waiting in that thread's batch, which
// only that thread delivers), so TryAllocate failed where it had worked.
// A capped arena's frees are delivered at once (RemoteInbox::kDirect).
TEST(RemoteBatch, CappedArenaCanReuseWhatAnotherThreadFreed) {
  arena::ArenaOptions options;
  options.max_bytes = 64 * 1024;
  arena::Arena a(options);
  void* freed = a.Allocate(15000);
  ASSERT_NE(a.TryAllocate(45000), nullptr);
  Worker w;
  w.Run([&] { a.Deallocate(freed, 15000); });  // then it idles
  EXPECT_NE(a.TryAllocate(15000), nullptr);
  EXPECT_EQ(a.stats().deallocations, 1u);
  // The inbox, recycled for an uncapped arena, batches again.
  a.~Arena();
  new (&a) arena::Arena();
  void* p = a.Allocate(100);
  w.Run([&] { a.Deallocate(p, 100); });
  EXPECT_EQ(DrainAndCount(a), 0u) << "an uncapped arena's free waits";
}

// A large mapping freed remotely goes at once: its pages return when the
// owner drains, not when the freeing thread next fills a batch.
TEST(RemoteBatch, LargeMappingIsDeliveredAtOnce) {
  arena::Arena a;
  void* big = a.Allocate(200 * 1024);
  EXPECT_EQ(a.stats().large_blocks, 1u);
  Worker w;
  w.Run([&] { a.Deallocate(big, 200 * 1024); });
  a.Allocate(40 * 1024);  // a large allocation drains first
  EXPECT_EQ(a.stats().deallocations, 1u);
  EXPECT_EQ(a.stats().large_blocks, 1u) << "the new mapping only";
}

// The frees of a request that a Reset ended are dropped from their batch:
// delivering them would write links into the next request's memory.
TEST(RemoteBatch, ResetDropsTheEndedRequestsBatch) {
  arena::Arena a;
  std::vector<char*> p = AllocateMany(a, 4, 256);
  Worker w;
  w.Run([&] {
    for (char* q : p) a.Deallocate(q, 256);
  });
  a.Reset();
  EXPECT_EQ(a.stats().deallocations, 0u) << "nothing was delivered";
  // The next request fills the block, the freed chunks' bytes included.
  std::vector<char*> next = AllocateMany(a, 200, 256);
  for (std::size_t i = 0; i < next.size(); ++i) arena_test::Fill(next[i], 256, i);
  std::size_t flushed = 1;
  w.Run([&] { flushed = arena::FlushRemoteFrees(); });
  EXPECT_EQ(flushed, 0u) << "the ended request's batch was delivered";
  for (std::size_t i = 0; i < next.size(); ++i) {
    ASSERT_TRUE(arena_test::Check(next[i], 256, i)) << "object " << i;
  }
  EXPECT_EQ(DrainAndCount(a), 0u);
  EXPECT_EQ(a.stats().live_bytes, 200u * 256 + 100 * 1024);
}

// The inbox of a destroyed arena goes to the next arena that gets a remote
// free; the old arena's batch must not reach it.
TEST(RemoteBatch, DestroyedArenasBatchDoesNotReachTheNextArena) {
  Worker w;
  auto a = std::make_unique<arena::Arena>();
  std::vector<char*> p = AllocateMany(*a, 5, 128);
  w.Run([&] {
    for (char* q : p) a->Deallocate(q, 128);
  });
  a.reset();
  arena::Arena b;
  std::vector<char*> mine = AllocateMany(b, 300, 128);
  for (std::size_t i = 0; i < mine.size(); ++i) arena_test::Fill(mine[i], 128, i);
  std::size_t flushed = 0;
  w.Run([&] {
    b.Deallocate(mine[0], 128);  // b's inbox: likely a's, recycled
    flushed = arena::FlushRemoteFrees();
  });
  EXPECT_EQ(flushed, 1u) << "only b's own free";
  EXPECT_EQ(DrainAndCount(b), 1u);
  for (std::size_t i = 1; i < mine.size(); ++i) {
    ASSERT_TRUE(arena_test::Check(mine[i], 128, i)) << "object " << i;
  }
}

// Many threads free into many long-lived arenas: every free arrives once,
// and each arena's count of live bytes ends exact.
TEST(RemoteBatch, EveryFreeFromManyThreadsArrivesOnce) {
  constexpr int kArenas = 40, kThreads = 4, kPerArena = 400;
  std::vector<std::unique_ptr<arena::Arena>> arenas;
  std::vector<std::vector<std::pair<char*, std::size_t>>> objects(kArenas);
  arena_test::Rng rng(7);
  for (int i = 0; i < kArenas; ++i) {
    arenas.push_back(std::make_unique<arena::Arena>());
    for (int k = 0; k < kPerArena; ++k) {
      const std::size_t n = 16 + rng.Below(600);
      objects[i].emplace_back(static_cast<char*>(arenas[i]->Allocate(n)), n);
    }
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Thread t frees every kThreads-th object of every arena, arenas
      // interleaved so that batches share slots and deliver each other.
      for (int k = t; k < kPerArena; k += kThreads) {
        for (int i = 0; i < kArenas; ++i) {
          arenas[i]->Deallocate(objects[i][k].first, objects[i][k].second);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kArenas; ++i) {
    EXPECT_EQ(DrainAndCount(*arenas[i]), static_cast<std::uint64_t>(kPerArena));
    EXPECT_EQ(arenas[i]->stats().live_bytes, 100u * 1024) << "arena " << i;
  }
}

// Deliveries racing with Reset: workers free request k's objects while the
// owner resets request k - 1's arena (whose batches they may be delivering
// right then, when a free of another arena needs the slot) and fills its
// memory again. No delivery may write into the refilled memory (ASan:
// into memory Reset poisoned), and no free is counted twice.
TEST(RemoteBatch, DeliveriesRacingWithResetNeverTouchTheNextRequest) {
  constexpr int kArenas = 24, kWorkers = 2, kObjects = 96;
  std::vector<std::unique_ptr<arena::Arena>> arenas;
  for (int i = 0; i < kArenas; ++i) arenas.push_back(std::make_unique<arena::Arena>());
  struct Round {
    arena::Arena* arena = nullptr;
    std::vector<char*> objects;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Round> rounds;
  std::size_t published = 0;  // rounds handed to the workers
  std::vector<std::size_t> done(kWorkers, 0);  // rounds each worker freed
  bool stop = false;
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (std::size_t r = 0;; ++r) {
        Round round;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return stop || published > r; });
          if (published <= r) return;
          round = rounds[r];
        }
        for (std::size_t k = w; k < round.objects.size(); k += kWorkers) {
          round.arena->Deallocate(round.objects[k], 200);
        }
        std::lock_guard<std::mutex> lock(mu);
        done[w] = r + 1;
        cv.notify_all();
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + arena_test::StressBudget();
  std::vector<std::vector<char*>> fill(kArenas);  // each arena's checked fill
  std::size_t r = 0;
  for (; std::chrono::steady_clock::now() < deadline || r < 3 * kArenas; ++r) {
    arena::Arena& a = *arenas[r % kArenas];
    for (std::size_t i = 0; i < fill[r % kArenas].size(); ++i) {
      ASSERT_TRUE(arena_test::Check(fill[r % kArenas][i], 200, r % kArenas + i))
          << "arena " << r % kArenas << " object " << i;
    }
    a.Reset();
    Round round{&a, AllocateMany(a, kObjects, 200)};
    {
      std::lock_guard<std::mutex> lock(mu);
      rounds.push_back(round);
      published = r + 1;
    }
    cv.notify_all();
    if (r == 0) continue;
    // Request r - 1's frees all happened: end it while the workers free
    // request r's objects, then fill its arena's memory again.
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] {
        for (std::size_t d : done) {
          if (d < r) return false;
        }
        return true;
      });
    }
    const std::size_t prev = (r - 1) % kArenas;
    arena::Arena& b = *arenas[prev];
    const std::uint64_t before = b.stats().deallocations;
    b.Reset();
    EXPECT_LE(b.stats().deallocations - before, static_cast<std::uint64_t>(kObjects));
    fill[prev] = AllocateMany(b, kObjects + 64, 200);
    for (std::size_t i = 0; i < fill[prev].size(); ++i) {
      arena_test::Fill(fill[prev][i], 200, prev + i);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
  }
  cv.notify_all();
  for (std::thread& t : workers) t.join();
  EXPECT_GE(r, 3u * kArenas);
}

}  // namespace

// The batches themselves (remote.h), on an inbox of their own: a batch
// names its chunks and their bytes in the order they were freed, and a
// remote free writes nothing into the chunk (the owner's drain must not
// fetch a line the freeing thread wrote just to find the next chunk).
TEST(RemoteBatch, DeliveredBatchNamesEveryChunkInOrderAndLeavesThemUntouched) {
  auto inbox = std::make_unique<RemoteInbox>();
  auto batches = std::make_unique<RemoteBatches>();
  alignas(16) static char buffer[kBatch * 512];
  std::memset(buffer, 0x5a, sizeof(buffer));
  std::vector<char*> added;
  std::vector<std::size_t> bytes_added;
  for (std::uint32_t i = 0; i < kBatch; ++i) {
    // Out of address order, 16 to 511 bytes.
    char* c = buffer + ((i * 7) % kBatch) * 512;
    const std::size_t bytes = 16 + (i * 37) % 496;
    ASSERT_EQ(inbox->head.load(), nullptr) << "delivered early, at chunk " << i;
    batches->Add(inbox.get(), inbox->epoch.load(), c, bytes, (bytes + 15) & ~std::size_t{15});
    added.push_back(c);
    bytes_added.push_back(bytes);
  }
  // The 32nd chunk filled the batch: delivered, one batch.
  RemoteBatch* batch = inbox->Take();
  ASSERT_NE(batch, nullptr);
  EXPECT_EQ(batch->next, nullptr);
  ASSERT_EQ(batch->count, kBatch);
  for (std::uint32_t i = 0; i < kBatch; ++i) {
    EXPECT_EQ(batch->entries[i].chunk, added[i]) << "entry " << i;
    EXPECT_EQ(batch->entries[i].bytes, bytes_added[i]) << "entry " << i;
  }
  for (std::size_t i = 0; i < sizeof(buffer); ++i) {
    ASSERT_EQ(buffer[i], 0x5a) << "a remote free wrote into its chunk at byte " << i;
  }
  batches->Recycle(batch);
}

// A batch of an ended generation is dropped whole, and its RemoteBatch goes
// back to the freeing thread's spares; spares stay at most kMaxSpares (the
// rest goes to the runtime's pool).
TEST(RemoteBatch, DroppedBatchesAndDrainedOnesBecomeSparesWithinTheBound) {
  auto inbox = std::make_unique<RemoteInbox>();
  auto batches = std::make_unique<RemoteBatches>();
  alignas(16) static char buffer[4 * 64];
  for (int i = 0; i < 4; ++i) {
    batches->Add(inbox.get(), inbox->epoch.load(), buffer + 64 * i, 64, 64);
  }
  inbox->EndGeneration();  // as a Reset of the arena would
  EXPECT_EQ(batches->DeliverAll(), 0u) << "a batch of an ended generation was delivered";
  EXPECT_EQ(inbox->Take(), nullptr);
  auto count = [](RemoteBatch* list) {
    std::size_t n = 0;
    for (; list != nullptr; list = list->next) ++n;
    return n;
  };
  RemoteBatch* spares = batches->TakeSpares();
  const std::size_t before = count(spares);
  EXPECT_GE(before, 1u) << "the dropped batch is not a spare";
  EXPECT_LE(before, RemoteBatches::kMaxSpares);
  // Recycling far more than the bound (as a drain of many batches does).
  std::uint32_t got = 0;
  RemoteBatch* many = Runtime::Get().TakeBatches(100, &got);
  ASSERT_EQ(got, 100u);
  batches->Recycle(many);
  RemoteBatch* after = batches->TakeSpares();
  EXPECT_LE(count(after), RemoteBatches::kMaxSpares);
  // The rest went to the runtime's pool; these join them (never freed).
  Runtime::Get().GiveBatches(spares);
  Runtime::Get().GiveBatches(after);
}

// Heap per free (cold review): a free delivered alone (every free into a
// capped arena) or in a batch of fewer than kMinShipped chunks (a thread
// freeing into more arenas than it has slots) goes loose, through the
// chunk itself, and needs no RemoteBatch; a batch shipped carries at least
// kMinShipped frees. Before, each such free took a 576-byte batch that
// stayed in the inbox until the owner drained it.
TEST(RemoteBatch, FreesDeliveredAloneOrInSmallBatchesTakeLittleHeap) {
  constexpr int kArenas = 64, kPerArena = 100;
  std::vector<std::unique_ptr<arena::Arena>> arenas;
  std::vector<std::vector<char*>> objects(kArenas);
  arena::ArenaOptions capped;
  capped.max_bytes = 1 << 20;
  for (int i = 0; i < kArenas; ++i) {
    // Half capped, half not.
    arenas.push_back(i % 2 == 0 ? std::make_unique<arena::Arena>(capped)
                                : std::make_unique<arena::Arena>());
    objects[i] = AllocateMany(*arenas[i], kPerArena, 32);
  }
  Worker w;
  // Earlier tests' batches, back in the runtime's pool, are freed: the
  // worker (a new thread, no spares) must make every batch it uses.
  arena::Trim();
  const std::size_t before = Runtime::Get().BatchesAliveForTesting();
  w.Run([&] {
    for (int k = 0; k < kPerArena; ++k) {
      for (int i = 0; i < kArenas; i += 2) arenas[i]->Deallocate(objects[i][k], 32);
    }
  });
  EXPECT_EQ(Runtime::Get().BatchesAliveForTesting(), before)
      << "a free into a capped arena took a batch";
  w.Run([&] {
    // 32 arenas interleaved over 16 slots: many batches leave with a few
    // chunks; the rest fill up.
    for (int k = 0; k < kPerArena; ++k) {
      for (int i = 1; i < kArenas; i += 2) arenas[i]->Deallocate(objects[i][k], 32);
    }
    arena::FlushRemoteFrees();
  });
  const std::size_t frees = kArenas / 2 * kPerArena;
  EXPECT_LE(Runtime::Get().BatchesAliveForTesting() - before,
            frees / RemoteBatches::kMinShipped + RemoteBatches::kMaxSpares);
  for (int i = 0; i < kArenas; ++i) {
    EXPECT_EQ(DrainAndCount(*arenas[i]), static_cast<std::uint64_t>(kPerArena))
        << "arena " << i;
  }
}

// The runtime's pool of spare batches gives back its heap (second cold
// review): ReleaseIdleMemory frees the batches no thread took since its
// last call (the pool's low-water mark), Trim frees them all. (This binary
// runs without the background release thread: only these calls free.)
TEST(RemoteBatch, IdleSpareBatchesAreFreedAfterAnInterval) {
  Runtime& rt = Runtime::Get();
  arena::Trim();
  arena::ReleaseIdleMemory();  // starts an interval with the pool empty
  const std::size_t base = rt.BatchesAliveForTesting();
  std::uint32_t got = 0;
  rt.GiveBatches(rt.TakeBatches(20, &got));
  ASSERT_EQ(got, 20u);
  ASSERT_EQ(rt.BatchesAliveForTesting(), base + 20);
  arena::ReleaseIdleMemory();  // they came in this interval: kept
  EXPECT_EQ(rt.BatchesAliveForTesting(), base + 20);
  rt.GiveBatches(rt.TakeBatches(5, &got));  // 5 in use during the next one
  arena::ReleaseIdleMemory();  // 15 sat unused the whole interval
  EXPECT_EQ(rt.BatchesAliveForTesting(), base + 5);
  arena::ReleaseIdleMemory();
  EXPECT_EQ(rt.BatchesAliveForTesting(), base);
  rt.GiveBatches(rt.TakeBatches(20, &got));
  arena::Trim();
  EXPECT_EQ(rt.BatchesAliveForTesting(), base);
}
