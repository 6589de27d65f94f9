// Per-request footprints (issue 9): the histogram math, what Reset records,
// merging across threads, the JSON and Prometheus renderings parsed back,
// the new config keys, and adaptive first-block sizing's bounds.
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "arena/arena.h"
#include "tests/json_check.h"

namespace {

using ::testing::HasSubstr;

constexpr std::size_t kBlock = 64 * 1024;

TEST(Histogram, BucketEdges) {
  for (std::uint64_t v = 0; v <= 8; ++v) {
    EXPECT_EQ(arena::Histogram::BucketOf(v), static_cast<int>(v));
    EXPECT_EQ(arena::Histogram::UpperBound(static_cast<int>(v)), v);
  }
  EXPECT_EQ(arena::Histogram::BucketOf(9), 9);
  EXPECT_EQ(arena::Histogram::BucketOf(10), 9);
  EXPECT_EQ(arena::Histogram::BucketOf(11), 10);
  EXPECT_EQ(arena::Histogram::UpperBound(9), 10u);
  // Every value lies in (UpperBound(b - 1), UpperBound(b)], bounds grow by
  // at most 25%, and powers of two are bucket edges.
  for (std::uint64_t v = 1; v < (std::uint64_t{1} << 47);
       v = v < 4096 ? v + 1 : v + v / 7 + 1) {
    const int b = arena::Histogram::BucketOf(v);
    ASSERT_LE(v, arena::Histogram::UpperBound(b)) << v;
    ASSERT_GT(v, arena::Histogram::UpperBound(b - 1)) << v;
    if (b > 9) {
      ASSERT_LE(arena::Histogram::UpperBound(b),
                arena::Histogram::UpperBound(b - 1) * 5 / 4)
          << b;
    }
  }
  for (int e = 4; e < 47; ++e) {
    const std::uint64_t p = std::uint64_t{1} << e;
    EXPECT_EQ(arena::Histogram::UpperBound(arena::Histogram::BucketOf(p)), p);
  }
  EXPECT_EQ(arena::Histogram::BucketOf(~std::uint64_t{0}),
            arena::Histogram::kBuckets - 1);
  // The top power of two: four buckets, the last one open-ended.
  const std::uint64_t top = std::uint64_t{1} << 47;
  EXPECT_EQ(arena::Histogram::BucketOf(top + 1), arena::Histogram::kBuckets - 4);
  EXPECT_EQ(arena::Histogram::BucketOf(2 * top), arena::Histogram::kBuckets - 1);
  EXPECT_EQ(arena::Histogram::BucketOf(2 * top + 1), arena::Histogram::kBuckets - 1);
}

TEST(Histogram, EmptyMergeAndPercentiles) {
  arena::Histogram empty;
  EXPECT_EQ(empty.Percentile(0.5), 0u);
  EXPECT_EQ(empty.Percentile(0.99), 0u);
  EXPECT_EQ(empty.Mean(), 0.0);

  arena::Histogram a, b;
  for (std::uint64_t v = 1; v <= 50; ++v) a.Add(v);
  for (std::uint64_t v = 51; v <= 100; ++v) b.Add(v);
  a.Merge(b);
  a.Merge(empty);
  EXPECT_EQ(a.count, 100u);
  EXPECT_EQ(a.sum, 5050u);
  EXPECT_EQ(a.max, 100u);
  // Bucket bounds: exact up to 8, then at most 25% above the true value.
  EXPECT_EQ(a.Percentile(0.05), 5u);
  const std::uint64_t p50 = a.Percentile(0.5), p90 = a.Percentile(0.9);
  EXPECT_GE(p50, 50u);
  EXPECT_LE(p50, 63u);
  EXPECT_GE(p90, 90u);
  EXPECT_LE(p90, 100u);  // capped at max
  EXPECT_EQ(a.Percentile(1.0), 100u);
}

// Runs `requests` requests on a fresh thread (its footprints merge into the
// retired totals when it exits).
void RequestsOnAThread(int requests, std::size_t bytes_each, int allocations) {
  std::thread([&] {
    arena::Arena a;
    for (int r = 0; r < requests; ++r) {
      for (int i = 0; i < allocations; ++i) a.Allocate(bytes_each);
      a.Reset();
    }
  }).join();
}

TEST(Footprint, ResetRecordsWhatTheRequestHeld) {
  const arena::FootprintStats before = arena::GlobalStats().footprint;
  {
    arena::Arena a;
    std::vector<void*> p;
    for (int i = 0; i < 10; ++i) p.push_back(a.Allocate(10000));  // 2 blocks
    for (int i = 0; i < 10; ++i) a.Deallocate(p[i], 10000);       // peak 100000
    a.Allocate(100);
    void* big = a.Allocate(200 * 1000);  // large
    a.Deallocate(big, 200 * 1000);
    a.Reset();
    a.Reset();  // held nothing: no second record
  }  // destruction after Reset records nothing either
  const arena::FootprintStats after = arena::GlobalStats().footprint;
  ASSERT_EQ(after.held_bytes.count, before.held_bytes.count + 1);
  const std::uint64_t peak = after.peak_live_bytes.sum - before.peak_live_bytes.sum;
  const std::uint64_t held = after.held_bytes.sum - before.held_bytes.sum;
  const std::uint64_t waste = after.waste_bytes.sum - before.waste_bytes.sum;
  EXPECT_EQ(peak, 200u * 1000 + 100);  // the large allocation on top
  EXPECT_GE(held, 2 * kBlock + 200u * 1000);
  EXPECT_EQ(waste, held - peak);
  EXPECT_EQ(after.blocks.sum - before.blocks.sum, 3u);
  EXPECT_EQ(after.large_allocations.sum - before.large_allocations.sum, 1u);
  EXPECT_GE(after.slow_paths.sum - before.slow_paths.sum, 3u);
}

// Values up to 8 are kept only as bucket counts (their bucket is exact);
// sums and maxima must still come out exact, with and without larger values.
TEST(Footprint, SmallCountsKeepExactSumsAndMaxima) {
  const arena::FootprintStats before = arena::GlobalStats().footprint;
  std::thread([] {
    arena::Arena a;
    a.Allocate(100);  // 1 block
    a.Reset();
    for (int i = 0; i < 6; ++i) a.Allocate(30000);  // two per block: 3 blocks
    a.Reset();
  }).join();
  const arena::FootprintStats mid = arena::GlobalStats().footprint;
  EXPECT_EQ(mid.blocks.count - before.blocks.count, 2u);
  EXPECT_EQ(mid.blocks.sum - before.blocks.sum, 4u);
  EXPECT_GE(mid.blocks.max, 3u);
  std::thread([] {
    arena::Arena a;
    for (int i = 0; i < 24; ++i) a.Allocate(30000);  // 12 blocks
    a.Reset();
  }).join();
  const arena::FootprintStats after = arena::GlobalStats().footprint;
  EXPECT_EQ(after.blocks.sum - mid.blocks.sum, 12u);
  EXPECT_GE(after.blocks.max, 12u);
  EXPECT_EQ(after.blocks.buckets[3] - before.blocks.buckets[3], 1u);
}

// The common request (no large allocation, at most 8 blocks) is recorded as
// one counter by block count; held bytes, blocks and large allocations are
// derived from it when read. Every figure must come out as if recorded one
// by one, on a live thread and on one that exited (its recorder absorbed),
// beside requests recorded in full (12 blocks; a large allocation).
TEST(Footprint, CommonRequestsExpandToExactHeldBlocksAndLargeCounts) {
  auto requests = [] {
    arena::Arena a;
    for (int blocks = 1; blocks <= 8; ++blocks) {  // 1..8 blocks, no large
      for (int i = 0; i < 2 * blocks; ++i) a.Allocate(30000);
      a.Reset();
    }
    for (int i = 0; i < 24; ++i) a.Allocate(30000);  // 12 blocks: in full
    a.Reset();
    a.Allocate(100);
    a.Allocate(200 * 1000);  // 1 block and a large mapping: in full
    a.Reset();
  };
  for (bool on_exited_thread : {false, true}) {
    SCOPED_TRACE(on_exited_thread ? "exited thread" : "live thread");
    const arena::FootprintStats before = arena::GlobalStats().footprint;
    if (on_exited_thread) {
      std::thread(requests).join();
    } else {
      requests();
    }
    const arena::FootprintStats after = arena::GlobalStats().footprint;
    EXPECT_EQ(after.held_bytes.count - before.held_bytes.count, 10u);
    EXPECT_EQ(after.blocks.count - before.blocks.count, 10u);
    EXPECT_EQ(after.large_allocations.count - before.large_allocations.count, 10u);
    EXPECT_EQ(after.large_allocations.buckets[0] - before.large_allocations.buckets[0], 9u);
    EXPECT_EQ(after.large_allocations.sum - before.large_allocations.sum, 1u);
    // Blocks: 1+...+8, 12, and 1 + the large mapping.
    EXPECT_EQ(after.blocks.sum - before.blocks.sum, 36u + 12 + 2);
    for (std::size_t b = 1; b <= 8; ++b) {
      EXPECT_EQ(after.blocks.buckets[b] - before.blocks.buckets[b], b == 2 ? 2u : 1u)
          << b;  // the large request counts 2: its block and its mapping
    }
    const std::uint64_t held = after.held_bytes.sum - before.held_bytes.sum;
    EXPECT_GE(held, (36u + 12 + 1) * kBlock + 200 * 1000);
    EXPECT_LE(held, (36u + 12 + 1) * kBlock + 200 * 1000 + 2 * kBlock);
    for (std::size_t b = 1; b <= 8; ++b) {
      const int bucket = arena::Histogram::BucketOf(b * kBlock);
      EXPECT_GE(after.held_bytes.buckets[bucket] - before.held_bytes.buckets[bucket], 1u)
          << b;
    }
    EXPECT_GE(after.held_bytes.max, 12 * kBlock);
    EXPECT_EQ(after.waste_bytes.sum - before.waste_bytes.sum,
              held - (after.peak_live_bytes.sum - before.peak_live_bytes.sum));
  }
}

// Reset's common case (only the kept block was bumped into) rewinds that
// block in place without the full bulk free: such requests must be recorded
// and published exactly as the full path records them, between requests
// that need the full path (a large mapping, a cleanup, a remote free).
TEST(Footprint, RequestsOnTheKeptBlockRecordAsInFull) {
  std::thread([] {
    arena::Arena a;
    a.Allocate(100);
    a.Reset();  // keeps its block
    const arena::ProcessStats g0 = arena::GlobalStats();
    for (std::size_t r = 1; r <= 5; ++r) {  // peaks 1000 .. 5000
      std::vector<void*> p;
      for (std::size_t i = 0; i < r; ++i) p.push_back(a.Allocate(1000));
      if (r > 1) a.Deallocate(p[0], 1000);  // the peak is taken before a free
      a.Reset();
      const arena::ProcessStats g = arena::GlobalStats();
      EXPECT_EQ(g.live_bytes, g0.live_bytes) << r;
      EXPECT_EQ(g.in_arena_bytes, g0.in_arena_bytes) << r;
      EXPECT_EQ(g.retained_bytes, g0.retained_bytes) << r;
      EXPECT_EQ(a.stats().live_bytes, 0u);
    }
    const arena::FootprintStats f1 = arena::GlobalStats().footprint;
    const arena::FootprintStats& f0 = g0.footprint;
    EXPECT_EQ(f1.held_bytes.count - f0.held_bytes.count, 5u);
    EXPECT_EQ(f1.peak_live_bytes.sum - f0.peak_live_bytes.sum, 15000u);
    EXPECT_EQ(f1.held_bytes.sum - f0.held_bytes.sum, 5 * kBlock);
    EXPECT_EQ(f1.waste_bytes.sum - f0.waste_bytes.sum, 5 * kBlock - 15000);
    EXPECT_EQ(f1.blocks.sum - f0.blocks.sum, 5u);
    EXPECT_EQ(f1.slow_paths.sum - f0.slow_paths.sum, 0u);
    EXPECT_EQ(f1.large_allocations.sum - f0.large_allocations.sum, 0u);
    EXPECT_EQ(f1.peak_live_bytes.buckets[arena::Histogram::BucketOf(5000)] -
                  f0.peak_live_bytes.buckets[arena::Histogram::BucketOf(5000)],
              1u);

    // The kept block unused, a large mapping taken and freed: full path.
    void* big = a.Allocate(200 * 1000);
    a.Deallocate(big, 200 * 1000);
    a.Reset();
    const arena::FootprintStats f2 = arena::GlobalStats().footprint;
    EXPECT_EQ(f2.held_bytes.count - f1.held_bytes.count, 1u);
    EXPECT_EQ(f2.peak_live_bytes.sum - f1.peak_live_bytes.sum, 200u * 1000);
    EXPECT_EQ(f2.large_allocations.sum - f1.large_allocations.sum, 1u);
    EXPECT_EQ(arena::GlobalStats().in_arena_bytes, g0.in_arena_bytes);

    // A cleanup on the kept block: its destructor runs.
    struct Counted {
      explicit Counted(int* n) : n(n) {}
      ~Counted() { ++*n; }
      int* n;
    };
    int destroyed = 0;
    a.Create<Counted>(&destroyed);
    a.Reset();
    EXPECT_EQ(destroyed, 1);

    // A remote free waiting at Reset is counted as freed.
    void* q = a.Allocate(64);
    std::thread([&] { a.Deallocate(q, 64); }).join();
    const std::uint64_t frees = a.stats().deallocations;
    a.Reset();
    EXPECT_EQ(a.stats().deallocations, frees + 1);

    a.Allocate(300);  // back on the kept block
    a.Reset();
    const arena::ProcessStats g3 = arena::GlobalStats();
    EXPECT_EQ(g3.footprint.held_bytes.count - f2.held_bytes.count, 3u);
    EXPECT_EQ(g3.live_bytes, g0.live_bytes);
    EXPECT_EQ(g3.in_arena_bytes, g0.in_arena_bytes);
    EXPECT_EQ(g3.retained_bytes, g0.retained_bytes);
  }).join();
}

TEST(Footprint, MergesAcrossThreads) {
  const arena::FootprintStats before = arena::GlobalStats().footprint;
  std::thread t1([] { RequestsOnAThread(20, 1000, 10); });
  std::thread t2([] { RequestsOnAThread(30, 1000, 10); });
  t1.join();
  t2.join();
  arena::Arena here;  // a live thread's recorder merges too
  for (int r = 0; r < 5; ++r) {
    here.Allocate(1000);
    here.Reset();
  }
  const arena::FootprintStats after = arena::GlobalStats().footprint;
  EXPECT_EQ(after.peak_live_bytes.count - before.peak_live_bytes.count, 55u);
  EXPECT_EQ(after.peak_live_bytes.sum - before.peak_live_bytes.sum,
            50u * 10000 + 5 * 1000);
  EXPECT_GE(after.held_bytes.max, kBlock);
}

TEST(Footprint, JsonAndPrometheusParseBack) {
  RequestsOnAThread(10, 3000, 7);
  const arena::ProcessStats s = arena::GlobalStats();
  const std::string json = arena::ToJson(s);
  EXPECT_TRUE(arena_test::JsonChecker::Valid(json)) << json;
  EXPECT_THAT(json, HasSubstr("\"footprint\":{\"peak_live_bytes\":{\"count\":"));
  EXPECT_THAT(json, HasSubstr("\"p99\":"));
  EXPECT_THAT(json, HasSubstr("\"adaptive_first_block_bytes\":"));

  // Prometheus: for each histogram, le bounds increase, cumulative counts
  // never fall, +Inf equals _count, _sum matches.
  std::istringstream in(arena::ToPrometheus(s));
  std::map<std::string, std::vector<std::pair<std::string, std::uint64_t>>> buckets;
  std::map<std::string, std::uint64_t> counts, sums;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    ASSERT_NE(space, std::string::npos) << line;
    const std::string name = line.substr(0, space);
    const std::uint64_t value = std::stoull(line.substr(space + 1));
    if (name.rfind("arena_request_", 0) != 0) continue;
    const auto brace = name.find("_bucket{le=\"");
    if (brace != std::string::npos) {
      const std::string le = name.substr(brace + 12, name.size() - brace - 14);
      buckets[name.substr(0, brace)].push_back({le, value});
    } else if (name.size() > 6 && name.compare(name.size() - 6, 6, "_count") == 0) {
      counts[name.substr(0, name.size() - 6)] = value;
    } else if (name.size() > 4 && name.compare(name.size() - 4, 4, "_sum") == 0) {
      sums[name.substr(0, name.size() - 4)] = value;
    }
  }
  ASSERT_EQ(buckets.size(), 6u);
  for (const auto& [name, list] : buckets) {
    ASSERT_GE(list.size(), 2u) << name;
    EXPECT_EQ(list.back().first, "+Inf") << name;
    EXPECT_EQ(list.back().second, counts[name]) << name;
    for (std::size_t i = 1; i + 1 < list.size(); ++i) {
      EXPECT_LT(std::stoull(list[i - 1].first), std::stoull(list[i].first)) << name;
      EXPECT_LE(list[i - 1].second, list[i].second) << name;
    }
  }
  EXPECT_EQ(counts["arena_request_held_bytes"], s.footprint.held_bytes.count);
  EXPECT_EQ(sums["arena_request_held_bytes"], s.footprint.held_bytes.sum);
}

TEST(Config, FootprintKnobsParseAndValidate) {
  absl::StatusOr<arena::Config> c = arena::ParseConfigToml(
      "[arena]\nfirst_block_hint = \"256KiB\"\nadaptive_first_block = true\n"
      "adaptive_percentile = 95\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->first_block_hint, 256u * 1024);
  EXPECT_TRUE(c->adaptive_first_block);
  EXPECT_EQ(c->adaptive_percentile, 95u);
  // What ConfigToToml prints loads unchanged.
  absl::StatusOr<arena::Config> again = arena::ParseConfigToml(arena::ConfigToToml(*c));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(*again == *c);
  for (const char* bad : {"adaptive_percentile = 0", "adaptive_percentile = 101",
                          "first_block_hint = \"2GiB\""}) {
    absl::StatusOr<arena::Config> b =
        arena::ParseConfigToml(std::string("[arena]\n") + bad + "\n");
    ASSERT_FALSE(b.ok()) << bad;
    const std::string key = std::string(bad).substr(0, std::string(bad).find(' '));
    EXPECT_THAT(std::string(b.status().message()), HasSubstr("'" + key + "'"));
  }
}

// Adaptive sizing: a thread whose requests need 5 blocks reserves 5 at a
// new arena's first slow path; never past max_bytes, never below a block.
// Found by review: a first_block_hint near SIZE_MAX wrapped when rounded up
// to blocks and reserved nothing; it now counts as 1 GiB (Config's limit),
// and max_bytes still bounds what is taken.
TEST(Adaptive, HugeHintIsClampedNotWrapped) {
  arena::ArenaOptions options;
  options.first_block_hint = ~std::size_t{0};
  options.max_bytes = 16 * kBlock;
  arena::Arena a(options);
  a.Allocate(100);
  EXPECT_EQ(a.stats().blocks, 16u);
  EXPECT_EQ(a.stats().block_bytes, 16 * kBlock);
}

TEST(Adaptive, FirstReservationFollowsRecentRequestsWithinBounds) {
  std::thread([] {
    arena::ArenaOptions on;
    on.adaptive_first_block = arena::ArenaOptions::Adaptive::kOn;
    {
      arena::Arena a(on);
      for (int r = 0; r < 64; ++r) {
        for (int i = 0; i < 10; ++i) a.Allocate(30000);  // 5 blocks
        a.Reset();
      }
    }
    EXPECT_EQ(arena::GlobalStats().adaptive_first_block_bytes, 5 * kBlock);
    arena::Arena fresh(on);
    fresh.Allocate(10);
    EXPECT_EQ(fresh.stats().blocks, 5u);
    EXPECT_EQ(fresh.stats().block_bytes, 5 * kBlock);

    arena::ArenaOptions capped = on;
    capped.max_bytes = 3 * kBlock;
    arena::Arena small(capped);
    small.Allocate(10);
    EXPECT_EQ(small.stats().blocks, 3u);

    arena::ArenaOptions off;
    off.adaptive_first_block = arena::ArenaOptions::Adaptive::kOff;
    arena::Arena plain(off);
    plain.Allocate(10);
    EXPECT_EQ(plain.stats().blocks, 1u);
  }).join();
  std::thread([] {
    arena::ArenaOptions on;
    on.adaptive_first_block = arena::ArenaOptions::Adaptive::kOn;
    {
      arena::Arena a(on);
      for (int r = 0; r < 64; ++r) {
        a.Allocate(100 * 1000);  // large only: no small block
        a.Reset();
      }
    }
    arena::Arena fresh(on);
    fresh.Allocate(10);
    EXPECT_EQ(fresh.stats().blocks, 1u);  // at least one block
  }).join();
}

}  // namespace
