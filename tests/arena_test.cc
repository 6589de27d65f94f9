// The Arena contract, typed over every arena kind, plus Arena-specific
// behaviour: free lists, remote frees, cleanups, adapters, stats, poisoning.
#include "arena/arena.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory_resource>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/container/flat_hash_map.h"
#include "arena/internal/free_lists.h"
#include "arena/internal/sanitizer.h"
#include "tests/test_util.h"

namespace {

using ::testing::HasSubstr;

// Arena kinds. Each makes an arena the contract suite runs against.
struct PlainKind {
  static std::unique_ptr<arena::Arena> Make() {
    return std::make_unique<arena::Arena>();
  }
};
struct HintedKind {  // takes 1 MiB of blocks at its first slow path
  static std::unique_ptr<arena::Arena> Make() {
    arena::ArenaOptions o;
    o.first_block_hint = 1 << 20;
    return std::make_unique<arena::Arena>(o);
  }
};
struct CappedKind {  // capped well above what the contract uses
  static std::unique_ptr<arena::Arena> Make() {
    arena::ArenaOptions o;
    o.max_bytes = 64 << 20;
    return std::make_unique<arena::Arena>(o);
  }
};

template <class Kind>
class ArenaContractTest : public ::testing::Test {
 protected:
  std::unique_ptr<arena::Arena> arena_ = Kind::Make();
};

using Kinds = ::testing::Types<PlainKind, HintedKind, CappedKind>;
TYPED_TEST_SUITE(ArenaContractTest, Kinds);

TYPED_TEST(ArenaContractTest, AllocationsAreAlignedDistinctAndKeepTheirBytes) {
  arena::Arena& a = *this->arena_;
  struct Rec {
    char* p;
    std::size_t n;
  };
  std::vector<Rec> recs;
  arena_test::Rng rng(1);
  for (int i = 0; i < 3000; ++i) {
    std::size_t n = rng.Below(100) < 95 ? 1 + rng.Below(300) : 1 + rng.Below(60000);
    const std::size_t align = std::size_t{1} << rng.Below(9);  // 1..256
    char* p = static_cast<char*>(a.Allocate(n, align));
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % std::max<std::size_t>(align, 16), 0u);
    arena_test::Fill(p, n, i);
    recs.push_back({p, n});
  }
  for (std::size_t i = 0; i < recs.size(); ++i) {
    ASSERT_TRUE(arena_test::Check(recs[i].p, recs[i].n, i)) << i;
  }
  std::sort(recs.begin(), recs.end(), [](const Rec& x, const Rec& y) { return x.p < y.p; });
  for (std::size_t i = 1; i < recs.size(); ++i) {
    ASSERT_LE(recs[i - 1].p + recs[i - 1].n, recs[i].p) << "overlap";
  }
}

TYPED_TEST(ArenaContractTest, ZeroBytesGivesUniquePointers) {
  arena::Arena& a = *this->arena_;
  std::set<void*> seen;
  for (int i = 0; i < 100; ++i) {
    void* p = a.Allocate(0);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(seen.insert(p).second);
  }
}

TYPED_TEST(ArenaContractTest, LargeAlignmentsUpToHalfABlock) {
  arena::Arena& a = *this->arena_;
  const std::size_t half = arena::CurrentConfig().block_size / 2;
  for (std::size_t align = 512; align <= half; align *= 2) {
    void* p = a.Allocate(100, align);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u) << align;
    void* q = a.Allocate(half, align);  // large mapping with alignment
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(q) % align, 0u) << align;
    std::memset(q, 1, half);
  }
  EXPECT_THROW(a.Allocate(8, half * 2), std::bad_alloc);
  EXPECT_EQ(a.TryAllocate(8, 3), nullptr);  // not a power of two
}

TYPED_TEST(ArenaContractTest, ResetGivesEverythingBackAndArenaIsReusable) {
  arena::Arena& a = *this->arena_;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 2000; ++i) a.Allocate(100);
    a.Allocate(1 << 20);  // large
    EXPECT_GT(a.stats().block_bytes, 0u);
    EXPECT_EQ(a.stats().live_bytes, 2000u * 100 + (1u << 20));
    a.Reset();
    EXPECT_EQ(a.stats().block_bytes, 0u);
    EXPECT_EQ(a.stats().blocks, 0u);
    EXPECT_EQ(a.stats().live_bytes, 0u);
    EXPECT_EQ(a.stats().fragmentation, 0.0);
  }
  EXPECT_EQ(a.stats().resets, 3u);
}

TYPED_TEST(ArenaContractTest, CreateRunsDestructorsInReverseOrderAtReset) {
  arena::Arena& a = *this->arena_;
  std::vector<int> order;
  struct Noisy {
    Noisy(std::vector<int>* o, int id) : o(o), id(id) {}
    ~Noisy() { o->push_back(id); }
    std::vector<int>* o;
    int id;
  };
  for (int i = 0; i < 5; ++i) a.template Create<Noisy>(&order, i);
  int* trivial = a.template Create<int>(42);
  EXPECT_EQ(*trivial, 42);
  EXPECT_TRUE(order.empty());
  a.Reset();
  EXPECT_EQ(order, (std::vector<int>{4, 3, 2, 1, 0}));
  a.template Create<Noisy>(&order, 9);
  this->arena_.reset();  // destructor runs cleanups too
  EXPECT_EQ(order.back(), 9);
}

TYPED_TEST(ArenaContractTest, PmrContainersLiveInTheArena) {
  arena::Arena& a = *this->arena_;
  {
    std::pmr::vector<std::pmr::string> v(a.resource());
    for (int i = 0; i < 1000; ++i) {
      v.emplace_back("a string long enough to leave SSO: " + std::to_string(i));
    }
    EXPECT_EQ(v[999], "a string long enough to leave SSO: 999");
    EXPECT_GT(a.stats().live_bytes, 1000u * 30);
  }
  // Everything was deallocated back: live bytes return to zero.
  EXPECT_EQ(a.stats().live_bytes, 0u);
  EXPECT_TRUE(a.resource()->is_equal(*a.resource()));
  arena::Arena other;
  EXPECT_FALSE(a.resource()->is_equal(*other.resource()));
}

TYPED_TEST(ArenaContractTest, FlatHashMapWithArenaAllocator) {
  arena::Arena& a = *this->arena_;
  using Alloc = arena::ArenaAllocator<std::pair<const int, int>>;
  absl::flat_hash_map<int, int, absl::Hash<int>, std::equal_to<int>, Alloc> m(
      0, absl::Hash<int>(), std::equal_to<int>(), Alloc(a));
  for (int i = 0; i < 5000; ++i) m[i] = i * 2;
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(m.at(i), i * 2);
  EXPECT_GT(a.stats().live_bytes, 5000u * 8);
  m.clear();
  m.rehash(0);
  EXPECT_EQ(a.stats().live_bytes, 0u);
}

TEST(ArenaAllocator, EqualityAndRebind) {
  arena::Arena a, b;
  arena::ArenaAllocator<int> x(a), y(a), z(b);
  arena::ArenaAllocator<double> w(x);
  EXPECT_TRUE(x == y);
  EXPECT_FALSE(x == z);
  EXPECT_TRUE(w == x);
  EXPECT_EQ(w.arena(), &a);
  std::vector<int, arena::ArenaAllocator<int>> v(x);
  v.assign(1000, 7);
  EXPECT_EQ(v[999], 7);
  EXPECT_THROW(x.allocate(std::size_t{1} << 62), std::bad_array_new_length);
}

TEST(Arena, LocalDeallocateIsReusedBeforeANewBlock) {
  arena::Arena a;
  void* p = a.Allocate(100);
  void* q = a.Allocate(64);
  // Freeing the most recent allocation rolls the bump pointer back.
  a.Deallocate(q, 64);
  EXPECT_EQ(a.Allocate(64), q);
  // p is not the last one: it goes to a free list.
  a.Deallocate(p, 100);
  // The freed chunk comes back once the current block is full, before the
  // arena takes a second block.
  bool reused = false;
  while (a.stats().blocks == 1 && !reused) reused = a.Allocate(100) == p;
  EXPECT_TRUE(reused);
  EXPECT_EQ(a.stats().blocks, 1u);
}

TEST(Arena, LargeAllocationsGetOwnMappingAndAreFreedIndividually) {
  arena::Arena a;
  const std::size_t big = 4 << 20;
  const auto before = arena::GlobalStats().mapped_bytes;
  char* p = static_cast<char*>(a.Allocate(big));
  std::memset(p, 3, big);
  EXPECT_EQ(a.stats().large_blocks, 1u);
  EXPECT_GE(arena::GlobalStats().mapped_bytes, before + big);
  a.Deallocate(p, big);
  EXPECT_EQ(a.stats().large_blocks, 0u);
  EXPECT_EQ(a.stats().block_bytes, 0u);
  // The mapping is kept in the large cache and serves the next request of
  // that size class without a new mapping.
  const arena::ProcessStats cached = arena::GlobalStats();
  EXPECT_GE(cached.large_cache_bytes, big);
  void* again = a.Allocate(big - 1000);
  EXPECT_EQ(arena::GlobalStats().mapped_bytes, cached.mapped_bytes);
  EXPECT_LT(arena::GlobalStats().large_cache_bytes, cached.large_cache_bytes);
  a.Deallocate(again, big - 1000);
  // A cached mapping serves requests of at least half its size only: 1.5 MiB
  // does not take the 4.5 MiB one.
  void* small = a.Allocate(3 << 19);
  EXPECT_GT(arena::GlobalStats().mapped_bytes, cached.mapped_bytes);
  a.Deallocate(small, 3 << 19);
}

TEST(Arena, MaxBytesThrowsAndArenaStaysUsable) {
  arena::ArenaOptions o;
  o.max_bytes = 4 * arena::CurrentConfig().block_size;
  arena::Arena a(o);
  std::size_t got = 0;
  while (a.TryAllocate(1000) != nullptr) got += 1000;
  EXPECT_GT(got, 3 * arena::CurrentConfig().block_size);
  EXPECT_LE(a.stats().block_bytes, o.max_bytes);
  EXPECT_THROW(a.Allocate(1000), std::bad_alloc);
  EXPECT_THROW(a.Allocate(o.max_bytes), std::bad_alloc);  // large path too
  a.Reset();
  EXPECT_NE(a.Allocate(1000), nullptr);
}

TEST(Arena, FirstBlockHintReservesBlocks) {
  arena::ArenaOptions o;
  o.first_block_hint = 8 * arena::CurrentConfig().block_size;
  arena::Arena a(o);
  a.Allocate(16);
  EXPECT_EQ(a.stats().blocks, 8u);
  arena::Arena plain;
  plain.Allocate(16);
  EXPECT_EQ(plain.stats().blocks, 1u);
}

TEST(Arena, RemoteDeallocateIsDrainedByOwner) {
  arena::Arena a;
  std::vector<void*> ptrs;
  for (int i = 0; i < 100; ++i) ptrs.push_back(a.Allocate(48));
  void* big = a.Allocate(1 << 20);
  a.Allocate(16);  // so that no freed chunk sits right below the cursor
  EXPECT_EQ(a.stats().live_bytes, 100u * 48 + 16 + (1 << 20));
  std::thread other([&] {
    for (void* p : ptrs) a.Deallocate(p, 48);
    a.Deallocate(big, 1 << 20);
  });
  other.join();
  // Not counted until the owner drains them on a slow path.
  EXPECT_EQ(a.stats().live_bytes, 100u * 48 + 16 + (1 << 20));
  // Drained when the owner next needs memory beyond its current block.
  for (int i = 0; i < 3; ++i) a.Allocate(30000);
  EXPECT_EQ(a.stats().live_bytes, 3 * 30000u + 16);
  EXPECT_EQ(a.stats().large_blocks, 0u);
  // The drained chunks are reused before the arena takes another block.
  std::set<void*> freed(ptrs.begin(), ptrs.end());
  std::size_t reused = 0;
  const std::size_t blocks = a.stats().blocks;
  while (a.stats().blocks == blocks) reused += freed.count(a.Allocate(48));
  EXPECT_EQ(reused, 100u);
}

TEST(Arena, ResetOnAnotherThread) {
  auto a = std::make_unique<arena::Arena>();
  struct Flag {
    bool* f;
    ~Flag() { *f = true; }
  };
  bool destroyed = false;
  a->Create<Flag>(Flag{&destroyed});
  for (int i = 0; i < 5000; ++i) a->Allocate(64);
  std::thread([&] {
    a->Reset();
    EXPECT_EQ(a->stats().block_bytes, 0u);
    a->Allocate(10);  // now owned here
  }).join();
  EXPECT_TRUE(destroyed);
  a.reset();  // destroyed back on this thread
}

TEST(Arena, StatsAndFragmentation) {
  arena::Arena a;
  EXPECT_EQ(a.stats().fragmentation, 0.0);
  a.Allocate(1000);
  const arena::ArenaStats s = a.stats();
  EXPECT_EQ(s.live_bytes, 1000u);
  EXPECT_EQ(s.block_bytes, arena::CurrentConfig().block_size);
  EXPECT_EQ(s.slow_allocations, 1u);  // the first one takes a block
  EXPECT_NEAR(s.fragmentation, 1.0 - 1000.0 / s.block_bytes, 1e-12);
  EXPECT_THAT(arena::ToJson(s), HasSubstr("\"live_bytes\":1000"));
}

TEST(GlobalStats, MovesWithArenasAndRenders) {
  arena::FlushThreadCache();
  const arena::ProcessStats before = arena::GlobalStats();
  {
    arena::Arena a;
    for (int i = 0; i < 300; ++i) a.Allocate(1000);
    a.Allocate(70);  // slow paths publish live bytes
    const arena::ProcessStats during = arena::GlobalStats();
    EXPECT_GE(during.live_bytes, before.live_bytes + 250000);
    EXPECT_GE(during.in_arena_bytes, before.in_arena_bytes + 5 * 65536);
    EXPECT_EQ(during.arenas_created, before.arenas_created + 1);
    EXPECT_GE(during.mapped_bytes, during.committed_bytes);
    EXPECT_GT(during.fragmentation, 0.0);
    EXPECT_LT(during.fragmentation, 1.0);
  }
  const arena::ProcessStats after = arena::GlobalStats();
  EXPECT_EQ(after.live_bytes, before.live_bytes);
  EXPECT_EQ(after.in_arena_bytes, before.in_arena_bytes);
  EXPECT_GT(after.thread_cache_bytes, 0u);
  EXPECT_EQ(after.arenas_destroyed, before.arenas_destroyed + 1);
  const std::string json = arena::ToJson(after);
  EXPECT_THAT(json, HasSubstr("\"mapped_bytes\":"));
  EXPECT_THAT(json, HasSubstr("\"fragmentation\":"));
  EXPECT_EQ(json.find("nan"), std::string::npos);
  const std::string prom = arena::ToPrometheus(after);
  EXPECT_THAT(prom, HasSubstr("# TYPE arena_mapped_bytes gauge\narena_mapped_bytes "));
  EXPECT_THAT(prom, HasSubstr("arena_depot_hits_total "));
  EXPECT_THAT(prom, HasSubstr("arena_fragmentation_ratio "));
}

TEST(Stats, FragmentationNeverNaN) {
  EXPECT_EQ(arena::FragmentationRatio(0, 0), 0.0);
  EXPECT_EQ(arena::FragmentationRatio(0, 10), 0.0);
  EXPECT_EQ(arena::FragmentationRatio(100, 25), 0.75);
  EXPECT_EQ(arena::FragmentationRatio(100, 200), 0.0);
  arena::ProcessStats empty;
  EXPECT_THAT(arena::ToJson(empty), HasSubstr("\"fragmentation\":0}"));
}

TEST(Configure, SameConfigIsFineDifferentIsAnError) {
  const arena::Config running = arena::CurrentConfig();
  EXPECT_TRUE(arena::Configure(running).ok());
  arena::Config other = running;
  other.block_size *= 2;
  absl::Status s = arena::Configure(other);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("block_size"));
  arena::Config invalid = running;
  invalid.block_size = 3;
  EXPECT_EQ(arena::Configure(invalid).code(), absl::StatusCode::kInvalidArgument);
}

// Above 1 KiB a class spans several sizes: a request between two class
// bounds takes, from its own class, the smallest size group that holds it
// (whichever chunk was pushed last), then a chunk of a class above.
TEST(FreeLists, SpanningClassesServeTheSmallestSizeThatFits) {
  using arena::internal::FreeLists;
  alignas(16) static char buffer[8192];
  alignas(16) static FreeLists lists;
  lists.Clear();
  ASSERT_EQ(FreeLists::ClassFloor(1040), FreeLists::ClassFloor(1072));
  ASSERT_NE(FreeLists::ClassFloor(1072), FreeLists::ClassFloor(1296));
  char* a = buffer;          // 1040
  char* b = buffer + 1040;   // 1056
  char* c = buffer + 2096;   // 1072
  char* d = buffer + 3168;   // 1056
  char* e = buffer + 4224;   // 1296, the class above
  lists.Push(a, 1040);
  lists.Push(b, 1056);
  lists.Push(c, 1072);
  lists.Push(d, 1056);
  lists.Push(e, 1296);
  std::size_t got = 0;
  EXPECT_EQ(lists.Pop(1050, &got, false), d);
  EXPECT_EQ(got, 1056u);
  EXPECT_EQ(lists.Pop(1050, &got, false), b);
  EXPECT_EQ(got, 1056u);
  EXPECT_EQ(lists.Pop(1050, &got, false), c);
  EXPECT_EQ(got, 1072u);
  EXPECT_EQ(lists.Pop(1050, &got, false), e);
  EXPECT_EQ(got, 1296u);
  EXPECT_EQ(lists.Pop(1050, &got, false), nullptr);
  EXPECT_EQ(lists.Pop(1024, &got, false), a);  // from the class above 1024's
  EXPECT_EQ(got, 1040u);
  EXPECT_EQ(lists.Pop(16, &got, true), nullptr);
  // A chunk far larger than the request: only for an arena that splits.
  lists.Push(buffer, 4096);
  EXPECT_EQ(lists.Pop(64, &got, false), nullptr);
  EXPECT_EQ(lists.Pop(64, &got, true), buffer);
  EXPECT_EQ(got, 4096u);
  arena::internal::UnpoisonMemory(buffer, sizeof(buffer));
}

// Regression: what a popped chunk holds beyond the request goes back to
// the free lists, and a request aligned past 16 takes a freed chunk it can
// align inside. Before, the rest of a larger chunk was lost until Reset
// and aligned requests never reused memory, so a long-lived arena grew.
// With a cap of one block, the number of requests served tells.
TEST(Arena, PoppedChunksGiveBackWhatTheRequestDoesNotUse) {
  const std::size_t block = arena::CurrentConfig().block_size;
  arena::ArenaOptions options;
  options.max_bytes = block;
  arena::Arena a(options);
  // 64-byte chunks up to 8 KiB short of the block's end (room for the
  // free-list table), then every other one freed.
  const std::size_t chunks = (block - 64 - 8192) / 64;
  auto fill_and_free_half = [&] {
    std::vector<void*> all;
    for (std::size_t i = 0; i < chunks; ++i) all.push_back(a.Allocate(64));
    for (std::size_t i = 0; i < all.size(); i += 2) a.Deallocate(all[i], 64);
    return (all.size() + 1) / 2;
  };
  auto count = [&](std::size_t bytes, std::size_t alignment) {
    std::size_t served = 0;
    while (void* p = a.TryAllocate(bytes, alignment)) {
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignment, 0u);
      ++served;
    }
    return served;
  };
  const std::size_t freed = fill_and_free_half();
  // Each freed chunk serves four 16-byte requests (before: one; the rest of
  // the block's tail serves at most 8 KiB / 16 more).
  EXPECT_GE(count(16, 16), 4 * freed);
  EXPECT_EQ(a.stats().blocks, 1u);
  a.Reset();
  const std::size_t freed_again = fill_and_free_half();
  // Each freed chunk serves a 32-byte request aligned to 32 (before: none).
  EXPECT_GE(count(32, 32), freed_again + 1);
  EXPECT_EQ(a.stats().blocks, 1u);
}

// Regression (cold review of this change): a capped arena makes its
// free-list table from what its one block has left at the first free (a
// table of 2608 bytes did not fit in 1968, and no freed chunk was reused).
TEST(Arena, CappedArenaReusesItsFreesWithLittleRoomLeft) {
  const std::size_t block = arena::CurrentConfig().block_size;
  arena::ArenaOptions options;
  options.max_bytes = block;
  arena::Arena a(options);
  std::vector<void*> chunks;
  // 1008-byte chunks until less than 2 KiB of the block is left.
  while ((chunks.size() + 1) * 1008 + 64 + 1100 <= block) {
    chunks.push_back(a.Allocate(1008));
  }
  for (std::size_t i = 0; i + 1 < chunks.size(); ++i) a.Deallocate(chunks[i], 1008);
  for (std::size_t i = 0; i + 1 < chunks.size(); ++i) {
    ASSERT_NE(a.TryAllocate(1008), nullptr) << "after " << i << " reused";
  }
  EXPECT_EQ(a.stats().blocks, 1u);
}

// Regression (second cold review): a capped arena with free memory in its
// block serves an aligned request from it (the largest free chunk becomes
// the bump region for aligned requests too); before, alignments past 16
// were refused.
TEST(Arena, CappedArenaServesAlignedRequestsFromItsFreedMemory) {
  const std::size_t block = arena::CurrentConfig().block_size;
  arena::ArenaOptions options;
  options.max_bytes = block;
  for (const std::size_t alignment : {16, 32, 64, 256}) {
    arena::Arena a(options);
    void* big = a.Allocate(30000);
    // The rest of the block but the free-list table's room (1040 bytes),
    // which the free below takes: the bump region is then empty.
    a.Allocate(block - 64 - 30000 - arena::internal::kFreeListsTableSize);
    a.Deallocate(big, 30000);
    void* p = a.TryAllocate(100, alignment);
    ASSERT_NE(p, nullptr) << "alignment " << alignment;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignment, 0u);
    EXPECT_EQ(a.stats().blocks, 1u);
  }
}

// Regression (second cold review): an arena that freed a long list and
// allocates on keeps the bump fast path. Past 1024 reuses, every new
// block's rest used to be filed, so each later allocation took the slow
// path (99,002 of 100,000 here, 6x slower).
TEST(Arena, FreeingALongListKeepsTheFastPath) {
  arena::Arena a;
  std::vector<void*> list;
  for (int i = 0; i < 1031; ++i) list.push_back(a.Allocate(64));
  for (int i = 0; i < 1030; ++i) a.Deallocate(list[i], 64);
  const std::uint64_t before = a.stats().slow_allocations;
  for (int i = 0; i < 100000; ++i) a.Allocate(64);
  // The 1030 freed chunks, then one slow path per new block.
  EXPECT_LE(a.stats().slow_allocations - before, 5000u);
}

// Regression (cold review): a long-lived arena whose objects are aligned
// past 16 and replaced one at a time reuses the freed twins. Before, each
// such request took alignment bytes of new memory for good: 13,334 blocks
// after 200,000 replacements at alignment 4096 with 512 bytes live.
TEST(Arena, AlignedObjectsReplacedOneAtATimeReuseTheirTwins) {
  for (const std::size_t alignment : {64, 256, 4096}) {
    arena::Arena a;
    std::deque<void*> live;
    for (int i = 0; i < 20000; ++i) {
      void* p = a.Allocate(64, alignment);
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignment, 0u);
      live.push_back(p);
      if (live.size() > 8) {
        a.Deallocate(live.front(), 64);
        live.pop_front();
      }
    }
    EXPECT_LE(a.stats().blocks, 2u) << "alignment " << alignment;
  }
}

// A chunk of exactly the size that starts aligned is found in its exact
// class and in its spanning class's size group, wherever it lies.
TEST(FreeLists, AlignedTwinsAreFoundInTheirClassAndGroup) {
  using arena::internal::FreeLists;
  alignas(4096) static char buffer[6 * 4096];
  alignas(16) static FreeLists lists;
  lists.Clear();
  lists.Push(buffer + 16, 64);
  lists.Push(buffer + 4096, 64);  // aligned, second in its list
  lists.Push(buffer + 128, 64);
  EXPECT_EQ(lists.PopAligned(64, 4096), buffer + 4096);
  EXPECT_EQ(lists.PopAligned(64, 4096), nullptr);
  EXPECT_EQ(lists.PopAligned(64, 128), buffer + 128);
  // Spanning: 1056-byte chunks, the aligned one as a group's head and as a
  // later member.
  lists.Push(buffer + 2 * 4096, 1056);      // aligned: the group's head
  lists.Push(buffer + 2 * 4096 + 2048, 1056);
  lists.Push(buffer + 3 * 4096 + 1024, 1040);  // another group, first
  EXPECT_EQ(lists.PopAligned(1056, 4096), buffer + 2 * 4096);
  std::size_t got = 0;
  EXPECT_EQ(lists.Pop(1050, &got, false), buffer + 2 * 4096 + 2048);
  lists.Push(buffer + 4 * 4096 + 16, 1056);
  lists.Push(buffer + 5 * 4096, 1056);      // aligned, second in the group
  EXPECT_EQ(lists.PopAligned(1056, 4096), buffer + 5 * 4096);
  EXPECT_EQ(lists.PopAligned(1056, 4096), nullptr);
  EXPECT_EQ(lists.Pop(1056, &got, false), buffer + 4 * 4096 + 16);
  EXPECT_EQ(lists.Pop(1040, &got, false), buffer + 3 * 4096 + 1024);
  EXPECT_EQ(lists.Pop(16, &got, true), buffer + 16);
  EXPECT_EQ(lists.Pop(16, &got, true), nullptr);
  arena::internal::UnpoisonMemory(buffer, sizeof(buffer));
}

// FreeLists::PopQuick (the inline pop of Arena::PopQuick) takes the chunk
// Pop takes, for every size it serves: two tables fed the same chunks (at
// the same offsets of two buffers) answer a random sequence of requests
// alike, one by PopQuick and one by Pop.
TEST(FreeLists, QuickPopTakesTheChunkPopTakes) {
  using arena::internal::FreeLists;
  constexpr std::size_t kBuffer = 1 << 20;
  std::vector<char> buffer_a(kBuffer + 16), buffer_b(kBuffer + 16);
  auto align = [](std::vector<char>& v) {
    return reinterpret_cast<char*>(
        (reinterpret_cast<std::uintptr_t>(v.data()) + 15) & ~std::uintptr_t{15});
  };
  char* a = align(buffer_a);
  char* b = align(buffer_b);
  alignas(16) static FreeLists quick, generic;
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    quick.Clear();
    generic.Clear();
    std::size_t offset = 0;
    // Chunks of 16 B to 2 KiB, biased to a few classes so lists get deep
    // and some classes stay empty.
    while (offset + 2048 <= kBuffer) {
      const std::size_t size = 16 * (1 + (rng() % 4 == 0 ? rng() % 128 : rng() % 12));
      quick.Push(a + offset, size);
      generic.Push(b + offset, size);
      offset += size;
      if (rng() % 64 == 0) break;
    }
    for (int i = 0; i < 2000; ++i) {
      const std::size_t size = 16 * (1 + rng() % (FreeLists::kQuickMaxSize / 16));
      std::size_t got_quick = 0, got_generic = 0;
      char* from_quick = static_cast<char*>(quick.PopQuick(size, &got_quick));
      char* from_generic = static_cast<char*>(generic.Pop(size, &got_generic, false));
      ASSERT_EQ(from_quick == nullptr, from_generic == nullptr) << "size " << size;
      if (from_quick != nullptr) {
        ASSERT_EQ(from_quick - a, from_generic - b) << "size " << size;
        ASSERT_EQ(got_quick, got_generic) << "size " << size;
        ASSERT_GE(got_quick, size);
      }
    }
  }
  arena::internal::UnpoisonMemory(a, kBuffer);
  arena::internal::UnpoisonMemory(b, kBuffer);
}

// A long-lived arena with individual frees (the larson shape: random sizes
// and alignments, each new object replacing a random old one) reuses its
// freed chunks, mostly through PopQuick once it files its frees: every
// object keeps its bytes and its alignment, live_bytes is exact, the arena
// stays near its live size, and Resets in between (which end the filing)
// leave it working. Before the size groups, the aligned pop, the remainder
// filing and the splitting of larger chunks, the arena grew without bound
// (about 800 blocks per 100,000 replacements).
TEST(Arena, LongLivedArenaWithIndividualFreesReusesChunksExactly) {
  arena::Arena arena;
  struct Slot {
    char* p = nullptr;
    std::size_t n = 0;
    std::size_t alignment = 0;
    std::uint64_t seed = 0;
  };
  std::vector<Slot> slots(2000);
  std::mt19937_64 rng(11);
  // Mostly alignments the quick path takes (1 to 16); 32 and 64 take the
  // slow path's aligned pop.
  const std::size_t alignments[] = {1, 8, 16, 16, 16, 16, 16, 16, 16, 8, 32, 64};
  std::size_t live = 0;
  std::size_t most_blocks = 0;
  std::uint64_t seed = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 200000; ++i) {
      Slot& slot = slots[rng() % slots.size()];
      if (slot.p != nullptr) {
        ASSERT_TRUE(arena_test::Check(slot.p, slot.n, slot.seed)) << "op " << i;
        arena.Deallocate(slot.p, slot.n);
        live -= slot.n;
      }
      slot.n = rng() % 2048;  // 0 (a unique pointer) to 2 KiB
      slot.alignment = alignments[rng() % 12];
      slot.p = static_cast<char*>(arena.Allocate(slot.n, slot.alignment));
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(slot.p) % slot.alignment, 0u);
      slot.seed = ++seed;
      arena_test::Fill(slot.p, slot.n, slot.seed);
      live += slot.n;
      if (i % 997 == 0) {
        const arena::ArenaStats stats = arena.stats();
        ASSERT_EQ(stats.live_bytes, live) << "op " << i;
        most_blocks = std::max<std::size_t>(most_blocks, stats.blocks);
      }
    }
    for (Slot& slot : slots) {
      if (slot.p != nullptr) {
        EXPECT_TRUE(arena_test::Check(slot.p, slot.n, slot.seed));
      }
    }
    arena.Reset();
    live = 0;
    for (Slot& slot : slots) slot = Slot{};
  }
  // About 2 MB live (2000 objects of 1 KiB on average): 32 blocks of
  // 64 KiB; reuse keeps the arena within three times that.
  EXPECT_LE(most_blocks, 96u);
}

#ifndef NDEBUG
TEST(ArenaDeathTest, DeallocateAfterResetIsCaughtInDebugBuilds) {
  EXPECT_DEATH(
      {
        arena::Arena a;
        void* p = a.Allocate(32);
        a.Reset();
        a.Deallocate(p, 32);
      },
      "not held by this arena");
}
TEST(ArenaDeathTest, DeallocateIntoTheWrongArena) {
  EXPECT_DEATH(
      {
        arena::Arena a;
        arena::Arena b;
        void* p = a.Allocate(32);
        b.Deallocate(p, 32);
      },
      "not held by this arena");
}
#endif

#ifdef ABSL_HAVE_ADDRESS_SANITIZER
TEST(ArenaPoisonDeathTest, UnusedBlockSpaceIsPoisoned) {
  EXPECT_DEATH(
      {
        arena::Arena a;
        char* p = static_cast<char*>(a.Allocate(32));
        p[40] = 1;  // past the allocation, inside the block
      },
      "use-after-poison");
}
TEST(ArenaPoisonDeathTest, ResetMemoryIsPoisoned) {
  EXPECT_DEATH(
      {
        arena::Arena a;
        char* p = static_cast<char*>(a.Allocate(32));
        a.Allocate(32);
        a.Reset();
        p[0] = 1;
      },
      "use-after-poison");
}
TEST(ArenaPoisonDeathTest, DeallocatedMemoryIsPoisoned) {
  EXPECT_DEATH(
      {
        arena::Arena a;
        char* p = static_cast<char*>(a.Allocate(64));
        a.Allocate(32);
        a.Deallocate(p, 64);
        p[20] = 1;
      },
      "use-after-poison");
}
#endif

}  // namespace
