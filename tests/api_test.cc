// The public API exactly as the core issue's synopsis states it, used from a
// target outside arena/. If a name or signature drifts, this stops compiling.
#include <cstddef>
#include <memory_resource>
#include <new>
#include <type_traits>

#include <gtest/gtest.h>

#include "absl/container/flat_hash_map.h"
#include "arena/arena.h"

namespace {

static_assert(!std::is_copy_constructible<arena::Arena>::value, "");
static_assert(!std::is_copy_assignable<arena::Arena>::value, "");
static_assert(!std::is_move_constructible<arena::Arena>::value, "");
static_assert(std::is_same<decltype(arena::ArenaOptions{}.max_bytes), std::size_t>::value, "");
static_assert(std::is_same<decltype(arena::ArenaOptions{}.first_block_hint), std::size_t>::value, "");
static_assert(std::is_same<decltype(std::declval<arena::Arena&>().Allocate(1)), void*>::value, "");
static_assert(noexcept(std::declval<arena::Arena&>().TryAllocate(1)), "");
static_assert(noexcept(std::declval<arena::Arena&>().Deallocate(nullptr, 1)), "");
static_assert(noexcept(std::declval<arena::Arena&>().resource()), "");
static_assert(std::is_same<decltype(std::declval<arena::Arena&>().resource()),
                           std::pmr::memory_resource*>::value, "");
static_assert(std::is_same<decltype(std::declval<const arena::Arena&>().stats()),
                           arena::ArenaStats>::value, "");
static_assert(std::is_same<decltype(arena::Configure(arena::Config())), absl::Status>::value, "");
static_assert(std::is_same<decltype(arena::GlobalStats()), arena::ProcessStats>::value, "");

TEST(Api, SynopsisCompilesAndWorks) {
  arena::ArenaOptions options;
  options.max_bytes = 0;
  options.first_block_hint = 0;
  arena::Arena a;
  arena::Arena b(options);
  void* p = a.Allocate(24);
  void* q = a.Allocate(24, 64);
  void* r = a.TryAllocate(24);
  void* s = a.TryAllocate(24, 32);
  ASSERT_TRUE(p && q && r && s);
  a.Deallocate(p, 24);
  struct Point {
    int x, y;
  };
  Point* pt = a.Create<Point>(Point{1, 2});
  EXPECT_EQ(pt->y, 2);
  std::pmr::memory_resource* res = a.resource();
  void* m = res->allocate(100, 8);
  res->deallocate(m, 100, 8);
  arena::ArenaStats st = a.stats();
  EXPECT_GT(st.block_bytes, 0u);
  EXPECT_GE(st.fragmentation, 0.0);
  (void)st.live_bytes;
  (void)st.blocks;
  arena::ArenaAllocator<int> alloc(b);
  absl::flat_hash_map<int, int, absl::Hash<int>, std::equal_to<int>,
                      arena::ArenaAllocator<std::pair<const int, int>>>
      map(0, absl::Hash<int>(), std::equal_to<int>(), alloc);
  map[1] = 2;
  EXPECT_EQ(map[1], 2);
  a.Reset();
  arena::ProcessStats ps = arena::GlobalStats();
  (void)ps.mapped_bytes;
  (void)ps.committed_bytes;
  (void)ps.live_bytes;
  (void)ps.in_arena_bytes;
  (void)ps.cached_bytes;
  (void)ps.depot_hits;
  (void)ps.depot_misses;
  EXPECT_GE(ps.fragmentation, 0.0);
  absl::Status status = arena::Configure(arena::CurrentConfig());
  EXPECT_TRUE(status.ok());
}

}  // namespace
