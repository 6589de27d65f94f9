// An embedder hands the runtime one region of its own memory: arenas work
// in it, never map anything else, and exhaustion is a clean failure.
#include <sys/mman.h>

#include <new>
#include <vector>

#include <gtest/gtest.h>

#include "arena/arena.h"
#include "tests/test_util.h"

namespace {

constexpr std::size_t kRegion = 8 << 20;
char* g_region;

bool InRegion(const void* p) {
  const char* c = static_cast<const char*>(p);
  return c >= g_region && c < g_region + kRegion;
}

TEST(FixedRegion, EverythingComesFromTheRegion) {
  arena::Arena a;
  for (int i = 0; i < 1000; ++i) {
    void* p = a.Allocate(100 + i);
    ASSERT_TRUE(InRegion(p));
    arena_test::Fill(p, 100 + i, i);
  }
  void* big = a.Allocate(1 << 20);
  EXPECT_TRUE(InRegion(big));
}

TEST(FixedRegion, ExhaustionThrowsAndRecovers) {
  std::vector<std::unique_ptr<arena::Arena>> arenas;
  bool refused = false;
  for (int i = 0; i < 1000 && !refused; ++i) {
    arenas.push_back(std::make_unique<arena::Arena>());
    try {
      for (int k = 0; k < 10; ++k) arenas.back()->Allocate(20000);
    } catch (const std::bad_alloc&) {
      refused = true;
    }
  }
  EXPECT_TRUE(refused);
  arenas.clear();
  arena::Trim();
  EXPECT_EQ(arena::GlobalStats().mapped_bytes, 0u);
  arena::Arena a;
  EXPECT_TRUE(InRegion(a.Allocate(20000)));
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  g_region = static_cast<char*>(mmap(nullptr, kRegion, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  auto* source = new arena::FixedRegionPageSource(g_region, kRegion);
  arena::Config config;
  config.depot_batch_blocks = 2;
  config.thread_cache_blocks = 4;
  if (!arena::Configure(config, source).ok()) return 1;
  return RUN_ALL_TESTS();
}
