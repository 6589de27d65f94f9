// The first remote free of an arena makes its inbox (the process's first
// one makes the runtime's first block of inboxes) and publishes it with a
// release CAS; the owner, meanwhile in a slow path, peeks at the inbox's
// lists. The owner must load the pointer with acquire, or it may read the
// inbox's fields before their construction is visible (second cold review;
// ThreadSanitizer reports it). A binary of its own: only the process's
// first inboxes are made by the freeing thread while the owner runs.
#include <atomic>
#include <cstddef>
#include <thread>

#include <gtest/gtest.h>

#include "arena/arena.h"

namespace {

TEST(RemoteInbox, OwnerSeesAnInboxMadeByTheFirstRemoteFreeWhole) {
  for (int round = 0; round < 8; ++round) {
    arena::Arena a;
    void* p = a.Allocate(64);
    std::atomic<bool> freed{false};
    std::thread freer([&] {
      a.Deallocate(p, 64);  // makes and installs the inbox
      freed.store(true, std::memory_order_release);
    });
    // Slow paths (past large_threshold) peek at the inbox while it is made.
    std::size_t large = 0;
    while (!freed.load(std::memory_order_acquire) && large < 200) {
      a.Allocate(40 * 1024);
      ++large;
    }
    freer.join();
    arena::FlushRemoteFrees();
    EXPECT_EQ(a.stats().live_bytes, 64u + large * 40 * 1024);
  }
}

}  // namespace
