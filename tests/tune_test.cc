// The tuner's recommendation logic on synthetic histograms, the TOML
// snippet it prints (loaded back as --config would load it), and the
// histogram formats /stats and /metrics use (parsed back).
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "arena/config.h"
#include "server_demo/server_config.h"
#include "server_demo/stats_format.h"
#include "server_demo/tune.h"

namespace {

using ::server_demo::Recommend;
using ::server_demo::TuneInput;
using ::server_demo::TuneResult;
using ::testing::HasSubstr;

constexpr std::uint64_t kKiB = 1024;
constexpr double kMiB = 1024.0 * 1024.0;

arena::Histogram Repeated(std::initializer_list<std::pair<std::uint64_t, int>> values) {
  arena::Histogram h;
  for (auto [v, n] : values) {
    for (int i = 0; i < n; ++i) h.Add(v);
  }
  return h;
}

const server_demo::Recommendation* Find(const TuneResult& r, const std::string& key) {
  for (const auto& item : r.items) {
    if (item.key == key) return &item;
  }
  return nullptr;
}

// The demo's mix: 50% tiny, 40% one block, 10% about nine 64 KiB blocks.
TuneInput MixInput() {
  TuneInput in;
  in.small_bytes = Repeated({{1 * kKiB, 500}, {40 * kKiB, 400}, {468 * kKiB, 100}});
  in.large_allocations = Repeated({{0, 900}, {3, 100}});
  in.slow_paths = Repeated({{1, 900}, {12, 100}});
  in.peak_rss_bytes = 9 * kMiB;
  in.peak_live_request_bytes = 1.1 * kMiB;
  in.concurrency = 8;
  in.threads = 1;
  in.memory_budget = 0.10;
  return in;
}

// The snippet loads as --config loads a file, and gives the same config.
void ExpectSnippetLoads(const TuneResult& r) {
  const std::string snippet = server_demo::TuneSnippet(r.config, {"a comment", "another"});
  EXPECT_THAT(snippet, HasSubstr("[arena]\n"));
  EXPECT_TRUE(absl::StartsWith(snippet, "# a comment\n# another\n")) << snippet;
  auto parsed = server_demo::ParseDemoConfig(snippet, server_demo::DemoConfig(), "<snippet>");
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << snippet;
  EXPECT_TRUE(parsed->arena == r.config) << snippet;
}

TEST(Tune, MixGetsLargerBlocksWithinTheBudget) {
  const TuneInput in = MixInput();
  const TuneResult r = Recommend(in);
  EXPECT_EQ(r.config.block_size, 128 * kKiB);
  const auto* block = Find(r, "block_size");
  ASSERT_NE(block, nullptr);
  EXPECT_TRUE(block->changed);
  EXPECT_EQ(block->value, "\"128KiB\"");
  EXPECT_THAT(block->reason, HasSubstr("10.0% of requests fill more than one 64 KiB block"));
  EXPECT_THAT(block->reason, HasSubstr("slow paths per request 2.10 -> "));
  EXPECT_NEAR(r.slow_paths_before, 2.1, 1e-9);
  EXPECT_LT(r.slow_paths_after, 0.9 * r.slow_paths_before);
  EXPECT_LE(r.extra_bytes, in.memory_budget * in.peak_rss_bytes);
  // The cache keeps its bytes: half as many blocks of twice the size.
  EXPECT_EQ(r.config.thread_cache_blocks, 16u);
  EXPECT_LE(r.config.depot_batch_blocks, r.config.thread_cache_blocks);
  // p90 sits at one block of 128 KiB or over the budget: no hint.
  EXPECT_EQ(r.config.first_block_hint, 0u);
  ASSERT_NE(Find(r, "first_block_hint"), nullptr);
  ASSERT_NE(Find(r, "adaptive_first_block"), nullptr);
  EXPECT_TRUE(arena::ValidateConfig(r.config).ok());
  ExpectSnippetLoads(r);
}

TEST(Tune, TightBudgetKeepsTheBlockSizeAndSaysWhy) {
  TuneInput in = MixInput();
  in.memory_budget = 0.01;
  const TuneResult r = Recommend(in);
  EXPECT_EQ(r.config.block_size, in.base.block_size);
  const auto* block = Find(r, "block_size");
  ASSERT_NE(block, nullptr);
  EXPECT_FALSE(block->changed);
  EXPECT_THAT(block->reason, HasSubstr("within the memory budget"));
  EXPECT_THAT(block->reason, HasSubstr("over the 1.0% budget"));
  EXPECT_DOUBLE_EQ(r.slow_paths_after, r.slow_paths_before);
  EXPECT_TRUE(r.config == in.base);
  ExpectSnippetLoads(r);
}

TEST(Tune, SmallRequestsKeepTheDefaults) {
  TuneInput in;
  in.small_bytes = Repeated({{900, 1000}, {2 * kKiB, 200}});
  in.large_allocations = Repeated({{0, 1200}});
  in.slow_paths = Repeated({{1, 1200}});
  in.peak_rss_bytes = 8 * kMiB;
  in.peak_live_request_bytes = 64 * kKiB;
  in.concurrency = 4;
  const TuneResult r = Recommend(in);
  EXPECT_TRUE(r.config == in.base);
  for (const auto& item : r.items) EXPECT_FALSE(item.changed) << item.key << ": " << item.reason;
  EXPECT_THAT(Find(r, "first_block_hint")->reason, HasSubstr("within one 64 KiB block"));
}

TEST(Tune, UniformLargeRequestsGetOneBlockEach) {
  TuneInput in;
  in.small_bytes = Repeated({{300 * kKiB, 1000}});
  in.large_allocations = Repeated({{0, 1000}});
  in.slow_paths = Repeated({{6, 1000}});
  in.peak_rss_bytes = 100 * kMiB;
  in.peak_live_request_bytes = 8 * 300 * kKiB;
  in.concurrency = 8;
  const TuneResult r = Recommend(in);
  // 512 KiB is the smallest block that holds a request: the fewest slow
  // paths, then the least memory.
  EXPECT_EQ(r.config.block_size, 512 * kKiB);
  EXPECT_NEAR(r.slow_paths_after, 1.0, 1e-9);
  EXPECT_EQ(r.config.first_block_hint, 0u);
  ExpectSnippetLoads(r);
}

TEST(Tune, HintTakesTheBlocksInOneTripWhenBlocksCannotGrow) {
  // Every request fills three 64 KiB blocks: a first reservation of three
  // costs nothing, larger blocks would cost more than the budget allows.
  TuneInput in;
  in.small_bytes = Repeated({{150 * kKiB, 1000}});
  in.large_allocations = Repeated({{0, 1000}});
  in.slow_paths = Repeated({{3, 1000}});
  in.peak_rss_bytes = 10 * kMiB;
  in.peak_live_request_bytes = 8 * 150 * kKiB;
  in.concurrency = 8;
  in.memory_budget = 0.02;
  const TuneResult r = Recommend(in);
  EXPECT_EQ(r.config.block_size, 64 * kKiB);
  EXPECT_EQ(r.config.first_block_hint, 192 * kKiB);
  const auto* hint = Find(r, "first_block_hint");
  ASSERT_NE(hint, nullptr);
  EXPECT_TRUE(hint->changed);
  EXPECT_EQ(hint->value, "\"192KiB\"");
  EXPECT_THAT(hint->reason, HasSubstr("p90 of small-allocation bytes per request is "));
  EXPECT_THAT(hint->reason, HasSubstr("in one trip instead of 3"));
  ExpectSnippetLoads(r);
}

TEST(Tune, CacheMissesRaiseTheThreadCache) {
  TuneInput in = MixInput();
  in.memory_budget = 0.01;  // keep block_size
  in.thread_cache_misses_per_request = 0.5;
  in.peak_live_request_bytes = 8 * kMiB;
  const TuneResult r = Recommend(in);
  EXPECT_GT(r.config.thread_cache_blocks, in.base.thread_cache_blocks);
  EXPECT_THAT(Find(r, "thread_cache_blocks")->reason, HasSubstr("missed 0.50 times per request"));
  ExpectSnippetLoads(r);
}

TEST(Tune, EmptyHistogramsRecommendNothing) {
  const TuneInput in;
  const TuneResult r = Recommend(in);
  EXPECT_TRUE(r.config == in.base);
  ASSERT_FALSE(r.items.empty());
  EXPECT_THAT(r.items[0].reason, HasSubstr("no requests"));
  ExpectSnippetLoads(r);
}

TEST(Tune, SnippetKeepsANonDefaultBase) {
  TuneInput in = MixInput();
  in.base.block_size = 32 * kKiB;
  in.base.large_threshold = 16 * kKiB;
  in.base.background_release = true;
  in.base.first_block_hint = 96 * kKiB;
  const TuneResult r = Recommend(in);
  EXPECT_TRUE(r.config.background_release);
  EXPECT_EQ(r.config.large_threshold, 16 * kKiB);
  ExpectSnippetLoads(r);
}

TEST(StatsFormat, HistogramJsonParsesBack) {
  const arena::Histogram h = Repeated({{0, 3}, {7, 2}, {1000, 5}, {300 * kKiB, 1}});
  const std::string json = "{\"x\":{\"y\":" + server_demo::HistogramJson(h) + "}}";
  auto back = server_demo::ParseHistogramJson(json, "x", "y");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->buckets, h.buckets);
  EXPECT_EQ(back->count, h.count);
  EXPECT_EQ(back->sum, h.sum);
  EXPECT_EQ(back->max, h.max);
  EXPECT_EQ(back->Percentile(0.9), h.Percentile(0.9));
  // Empty.
  const std::string empty = "{\"x\":{\"y\":" + server_demo::HistogramJson(arena::Histogram()) + "}}";
  auto none = server_demo::ParseHistogramJson(empty, "x", "y");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->count, 0u);
  EXPECT_FALSE(server_demo::ParseHistogramJson(json, "x", "nope").ok());
  EXPECT_EQ(server_demo::JsonNumber(json, "y", "count"), 11);
}

TEST(StatsFormat, SubtractGivesTheWindow) {
  const arena::Histogram before = Repeated({{10, 2}, {5000, 1}});
  arena::Histogram after = before;
  after.Merge(Repeated({{10, 3}, {90000, 4}}));
  const arena::Histogram d = server_demo::Subtract(after, before);
  EXPECT_EQ(d.count, 7u);
  EXPECT_EQ(d.sum, 3u * 10 + 4u * 90000);
  EXPECT_EQ(d.buckets[arena::Histogram::BucketOf(10)], 3u);
  EXPECT_EQ(d.buckets[arena::Histogram::BucketOf(5000)], 0u);
  EXPECT_EQ(server_demo::Subtract(before, before).count, 0u);
}

TEST(StatsFormat, PrometheusHistogramIsCumulative) {
  const arena::Histogram h = Repeated({{1, 1}, {100, 2}, {4096, 3}});
  const std::string text = server_demo::HistogramPrometheus(h, "x_bytes", "help text");
  EXPECT_THAT(text, HasSubstr("# HELP x_bytes help text\n# TYPE x_bytes histogram\n"));
  EXPECT_THAT(text, HasSubstr("x_bytes_bucket{le=\"1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("x_bytes_bucket{le=\"4096\"} 6\n"));
  EXPECT_THAT(text, HasSubstr("x_bytes_bucket{le=\"+Inf\"} 6\nx_bytes_sum 12489\nx_bytes_count 6\n"));
}

TEST(StatsFormat, ArenaConfigJsonParsesBack) {
  arena::Config c;
  c.block_size = 128 * kKiB;
  c.thread_cache_blocks = 16;
  c.background_release = true;
  c.first_block_hint = 256 * kKiB;
  c.adaptive_first_block = true;
  c.adaptive_percentile = 75;
  const std::string json = "{\"server\":{\"arena_config\":" + server_demo::ArenaConfigJson(c) +
                           "},\"x\":1}";
  EXPECT_THAT(json, HasSubstr("\"block_size\":131072,"));
  EXPECT_TRUE(server_demo::ArenaConfigFromStats(json, arena::Config()) == c) << json;
  // Absent or broken: the fallback.
  arena::Config fallback;
  fallback.block_size = 32 * kKiB;
  fallback.large_threshold = 16 * kKiB;
  EXPECT_TRUE(server_demo::ArenaConfigFromStats("{}", fallback) == fallback);
  EXPECT_TRUE(server_demo::ArenaConfigFromStats("{\"arena_config\":{\"block_size\":3}}",
                                                fallback) == fallback);
}

TEST(StatsFormat, TomlBytesLoadsBackExactly) {
  for (std::size_t v : {std::size_t{0}, std::size_t{4096}, std::size_t{65536},
                        std::size_t{3} << 20, std::size_t{1} << 30, std::size_t{1000}}) {
    std::string text = server_demo::TomlBytes(v);
    if (text.front() == '"') text = text.substr(1, text.size() - 2);
    auto back = arena::ParseByteSize(text);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(*back, v) << text;
  }
}

}  // namespace
