// Thread churn: many short-lived threads allocate, free remotely into a
// long-lived arena, and exit with blocks in their caches; two of them run
// at any time. 100k thread lifetimes in plain builds, fewer under the
// sanitizers. At the end every block is accounted for (the runtime's
// retire path flushed each cache) and Trim gives everything back.
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "arena/arena.h"
#include "tests/test_util.h"

namespace {

constexpr int kLifetimes = arena_test::kUnderSanitizer ? 4000 : 100000;

TEST(Churn, ShortLivedThreadsLoseNothing) {
  const std::uint64_t threads_before = arena::GlobalStats().threads;
  // The long-lived arena: the main thread allocates chunks into it; churn
  // threads free them remotely; the main thread drains at its slow paths.
  auto shared_owner = std::make_unique<arena::Arena>();
  arena::Arena& shared = *shared_owner;
  std::mutex mu;
  std::vector<std::pair<void*, std::size_t>> to_free;
  std::atomic<int> started{0};
  std::atomic<bool> bad{false};
  auto churn = [&](int id) {
    arena::Arena own;
    for (int i = 0; i < 3; ++i) {
      const std::size_t n = 100 + (id * 37 + i * 1000) % 30000;
      void* p = own.Allocate(n);
      arena_test::Fill(p, n, id + i);
      if (!arena_test::Check(p, n, id + i)) bad.store(true);
    }
    std::pair<void*, std::size_t> chunk{nullptr, 0};
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!to_free.empty()) {
        chunk = to_free.back();
        to_free.pop_back();
      }
    }
    if (chunk.first != nullptr) {
      if (!arena_test::Check(chunk.first, chunk.second, chunk.second)) bad.store(true);
      shared.Deallocate(chunk.first, chunk.second);
    }
    if (id % 2 == 0) own.Reset();  // odd ones: ~Arena at thread exit
  };
  for (int i = 0; i < kLifetimes; i += 2) {
    for (int k = 0; k < 4; ++k) {
      const std::size_t n = 16 + (i + k) % 2000;
      void* p = shared.Allocate(n);
      arena_test::Fill(p, n, n);
      std::lock_guard<std::mutex> lock(mu);
      to_free.emplace_back(p, n);
    }
    std::thread a(churn, i), b(churn, i + 1);
    a.join();
    b.join();
    started.fetch_add(2, std::memory_order_relaxed);
    if (to_free.size() > 4096) {  // keep the arena bounded: free the rest locally
      for (auto& [p, n] : to_free) shared.Deallocate(p, n);
      to_free.clear();
    }
  }
  EXPECT_FALSE(bad.load());
  EXPECT_EQ(started.load(), kLifetimes);
  for (auto& [p, n] : to_free) shared.Deallocate(p, n);
  shared.Reset();
  const arena::ProcessStats s = arena::GlobalStats();
  EXPECT_EQ(s.threads, threads_before + (threads_before == 0 ? 1 : 0));
  EXPECT_EQ(s.live_bytes, 0u);
  EXPECT_EQ(s.in_arena_bytes, 0u);
  // Every block is in this thread's cache, the depot, or kept by the reset
  // arena for its next request (at most one block).
  EXPECT_EQ(s.committed_bytes, s.thread_cache_bytes + s.depot_bytes +
                                   s.large_cache_bytes + s.retained_bytes)
      << arena::ToJson(s);
  EXPECT_LE(s.retained_bytes, arena::CurrentConfig().block_size);
  shared_owner.reset();  // destruction gives the kept block back
  EXPECT_EQ(arena::GlobalStats().retained_bytes, 0u);
  arena::Trim();
  EXPECT_EQ(arena::GlobalStats().mapped_bytes, 0u);
}

}  // namespace
