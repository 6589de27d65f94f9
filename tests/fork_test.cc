// fork() while other threads use the library (issue 7, items 2, 4 and 15).
//
// The runtime runs on a FixedRegionPageSource (whose mutex must be held
// across fork), with one-block caches and batches so that depot pops are
// frequent, the background release thread on and no large cache. Each test
// forks many children while worker threads allocate and reset; a child
// that hangs is killed by its alarm() and counted. Children leave with
// _exit, reporting through their exit status.
//
// ThreadSanitizer does not support fork() in a multi-threaded process
// (its runtime may deadlock in the child), so the suite skips under TSan;
// it runs plain and under ASan.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "arena/arena.h"
#include "tests/test_util.h"

namespace {

constexpr std::size_t kRegion = 256 << 20;
constexpr int kForks = 40;
constexpr int kChildAlarmSeconds = 10;
constexpr std::int64_t kDelayMs = 20;
arena::FixedRegionPageSource* g_source;

#ifdef ABSL_HAVE_THREAD_SANITIZER
#define SKIP_UNDER_TSAN() GTEST_SKIP() << "fork() with threads: not under TSan"
#else
#define SKIP_UNDER_TSAN() (void)0
#endif

// Threads that allocate `bytes` `per_round` times and Reset, until stopped.
class Workers {
 public:
  Workers(int threads, std::size_t bytes, int per_round) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, bytes, per_round] {
        arena::Arena a;
        while (!stop_.load(std::memory_order_relaxed)) {
          for (int i = 0; i < per_round; ++i) {
            void* p = a.TryAllocate(bytes);
            if (p != nullptr) static_cast<char*>(p)[bytes - 1] = 1;
          }
          a.Reset();
        }
      });
    }
  }
  ~Workers() {
    stop_.store(true, std::memory_order_relaxed);
    for (std::thread& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// Forks kForks children running `child` (which returns an exit code) and
// returns how many hung (killed by their alarm); any other failure fails
// the test.
//
// The forking thread makes its thread state first, so that the children
// need no heap for it: under ASan, whose allocator (GCC 12's libsanitizer)
// is not locked across fork, a child that calls the heap deadlocks when
// another thread held the allocator's lock at the fork (a hung child
// showed exactly that, in operator new for the state). glibc's malloc is
// fork-safe, and the plain build runs the same children.
template <class Child>
int ForkChildren(Child child) {
  {
    arena::Arena warm;
    warm.Allocate(1);
  }
  int hung = 0;
  for (int i = 0; i < kForks; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const pid_t pid = fork();
    if (pid == 0) {
      alarm(kChildAlarmSeconds);
      _exit(child());
    }
    EXPECT_GT(pid, 0);
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
      ++hung;
    } else {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "child " << i << " status " << status;
    }
  }
  return hung;
}

// Item 2: a child forked while another thread was inside a depot pop must
// not wait for that pop forever (Trim waits for pops in flight).
TEST(Fork, ChildOfAForkDuringDepotPopsCanTrimAndAllocate) {
  SKIP_UNDER_TSAN();
  int hung = 0;
  {
    Workers workers(2, 30000, 4);
    hung = ForkChildren([] {
      arena::Trim();
      arena::Arena a;
      return a.TryAllocate(100 * 1000) != nullptr ? 0 : 3;
    });
  }
  EXPECT_EQ(hung, 0) << hung << " of " << kForks << " children hung";
}

// Item 4: the page source's own lock is held across fork, so a child's
// first large allocation (a Map from the region) cannot find it taken.
TEST(Fork, ChildCanMapFromTheFixedRegion) {
  SKIP_UNDER_TSAN();
  int hung = 0;
  {
    Workers workers(2, 100 * 1000, 1);  // large: map and unmap every round
    hung = ForkChildren([] {
      arena::Arena a;
      return a.TryAllocate(100 * 1000) != nullptr ? 0 : 3;
    });
  }
  EXPECT_EQ(hung, 0) << hung << " of " << kForks << " children hung";
}

// Item 15: a pre-forked child has no release thread, so OnThreadIdle must
// release there; and the child's stats list only its own thread.
TEST(Fork, ChildReleasesThroughOnThreadIdleAndCountsOnlyItsThreads) {
  SKIP_UNDER_TSAN();
  Workers workers(2, 30000, 4);
  // The workers register their thread state at their first allocation:
  // wait for it (a liveness bound, not a timing assertion).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (arena::GlobalStats().threads < 2 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE(arena::GlobalStats().threads, 2u);
  const int hung = ForkChildren([] {
    if (arena::GlobalStats().threads > 1) return 4;
    {
      arena::Arena a;
      for (int i = 0; i < 16; ++i) a.Allocate(30000);
    }
    arena::FlushThreadCache();  // the blocks go to the depot, stamped now
    const std::uint64_t before = arena::GlobalStats().released_bytes;
    std::this_thread::sleep_for(std::chrono::milliseconds(3 * kDelayMs));
    arena::OnThreadIdle();
    // The background thread of the parent does not exist here: only
    // OnThreadIdle can have released the idle batches.
    if (arena::GlobalStats().released_bytes <= before) return 5;
    return 0;
  });
  EXPECT_EQ(hung, 0);
}


// The page source's accounting is exact in a child forked while other
// threads map, unmap and trim: no reservation or unmap is half done at the
// fork (they hold a shared lock the fork takes exclusively), so after Trim
// the region's free bytes plus the mapped bytes are the whole region.
TEST(Fork, ChildPageSourceAccountingIsExact) {
  SKIP_UNDER_TSAN();
  std::atomic<bool> stop{false};
  std::thread trimmer([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      arena::Trim();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  int hung = 0;
  {
    Workers large(2, 300 * 1000, 2);
    Workers small(1, 20000, 8);
    hung = ForkChildren([] {
      arena::Trim();
      const std::size_t free_bytes = g_source->free_bytes();
      const std::size_t mapped = arena::GlobalStats().mapped_bytes;
      if (free_bytes + mapped != kRegion) {
        fprintf(stderr, "child: free %zu + mapped %zu != region %zu\n",
                free_bytes, mapped, kRegion);
        return 6;
      }
      return 0;
    });
  }
  stop.store(true);
  trimmer.join();
  EXPECT_EQ(hung, 0);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  void* region = mmap(nullptr, kRegion, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (region == MAP_FAILED) return 1;
  // Never destroyed, like the runtime that uses it.
  auto* source = g_source = new arena::FixedRegionPageSource(region, kRegion);
  arena::Config config;
  config.thread_cache_blocks = 1;
  config.depot_batch_blocks = 1;
  config.large_cache_bytes = 0;
  config.background_release = true;
  config.release_delay_ms = kDelayMs;
  config.release_interval_ms = 3600000;  // the parent's thread sleeps
  absl::Status status = arena::Configure(config, source);
  if (!status.ok()) {
    fprintf(stderr, "Configure: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return RUN_ALL_TESTS();
}
