#include "arena/config.h"

#include <cstdlib>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {

using ::testing::HasSubstr;
using arena::Config;

TEST(ParseByteSize, AcceptsUnits) {
  EXPECT_EQ(*arena::ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*arena::ParseByteSize("64KiB"), 65536u);
  EXPECT_EQ(*arena::ParseByteSize("64 kib"), 65536u);
  EXPECT_EQ(*arena::ParseByteSize("1MiB"), 1u << 20);
  EXPECT_EQ(*arena::ParseByteSize("2GiB"), 2ull << 30);
  EXPECT_EQ(*arena::ParseByteSize("1TiB"), 1ull << 40);
  EXPECT_EQ(*arena::ParseByteSize("3 B"), 3u);
  EXPECT_EQ(*arena::ParseByteSize("8K"), 8192u);
}

TEST(ParseByteSize, RejectsGarbage) {
  EXPECT_THAT(arena::ParseByteSize("").status().message(), HasSubstr("must be a size"));
  EXPECT_THAT(arena::ParseByteSize("KiB").status().message(), HasSubstr("must be a size"));
  EXPECT_THAT(arena::ParseByteSize("12 parsecs").status().message(),
              HasSubstr("unknown size unit 'parsecs'"));
  EXPECT_THAT(arena::ParseByteSize("99999999999999999999").status().message(),
              HasSubstr("too large"));
  EXPECT_THAT(arena::ParseByteSize("17000000TiB").status().message(),
              HasSubstr("too large"));
}

TEST(Config, DefaultsAreValid) {
  EXPECT_TRUE(arena::ValidateConfig(Config()).ok());
  Config c;
  EXPECT_EQ(c.block_size, 64u * 1024);
  EXPECT_EQ(c.large_threshold, 32u * 1024);
  EXPECT_EQ(c.thread_cache_blocks, 32u);
  EXPECT_EQ(c.depot_batch_blocks, 8u);
  EXPECT_EQ(c.depot_max_bytes, 256u << 20);
  EXPECT_EQ(c.release_delay_ms, 1000);
  EXPECT_FALSE(c.background_release);
  EXPECT_EQ(c.release_interval_ms, 250);
  EXPECT_EQ(c.max_total_bytes, 0u);
  EXPECT_EQ(c.prewarm_bytes, 0u);
  EXPECT_EQ(c.large_cache_bytes, 16u << 20);
}

// One case per rule: the message names the key, the value and the rule.
struct RuleCase {
  const char* name;
  void (*mutate)(Config&);
  const char* key;
  const char* value;
  const char* rule;
};

class ConfigRuleTest : public ::testing::TestWithParam<RuleCase> {};

TEST_P(ConfigRuleTest, NamesKeyValueAndRule) {
  Config c;
  GetParam().mutate(c);
  absl::Status s = arena::ValidateConfig(c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(std::string("'") + GetParam().key + "'"));
  EXPECT_THAT(s.message(), HasSubstr(GetParam().value));
  EXPECT_THAT(s.message(), HasSubstr(GetParam().rule));
}

INSTANTIATE_TEST_SUITE_P(
    Rules, ConfigRuleTest,
    ::testing::Values(
        RuleCase{"BlockNotPowerOfTwo", [](Config& c) { c.block_size = 65537; },
                 "block_size", "65537", "power of two"},
        RuleCase{"BlockTooSmall", [](Config& c) { c.block_size = 4096; },
                 "block_size", "4096", "from 8KiB to 64MiB"},
        RuleCase{"BlockTooLarge", [](Config& c) { c.block_size = 128u << 20; },
                 "block_size", "134217728", "from 8KiB to 64MiB"},
        RuleCase{"LargeThresholdTooBig",
                 [](Config& c) { c.large_threshold = 40000; }, "large_threshold",
                 "40000", "block_size / 2"},
        RuleCase{"LargeThresholdTooSmall",
                 [](Config& c) { c.large_threshold = 100; }, "large_threshold",
                 "100", "from 1KiB"},
        RuleCase{"BatchZero", [](Config& c) { c.depot_batch_blocks = 0; },
                 "depot_batch_blocks", "0", "from 1 to 1024"},
        RuleCase{"BatchLargerThanCache",
                 [](Config& c) {
                   c.depot_batch_blocks = 16;
                   c.thread_cache_blocks = 8;
                 },
                 "thread_cache_blocks", "8", "at least depot_batch_blocks (16)"},
        RuleCase{"NegativeDelay", [](Config& c) { c.release_delay_ms = -1; },
                 "release_delay_ms", "-1", "from 0 to 86400000"},
        RuleCase{"ZeroInterval", [](Config& c) { c.release_interval_ms = 0; },
                 "release_interval_ms", "0", "from 1 to 3600000"},
        RuleCase{"CapBelowBlock", [](Config& c) { c.max_total_bytes = 1000; },
                 "max_total_bytes", "1000", "at least block_size"},
        RuleCase{"PrewarmOverDepot",
                 [](Config& c) {
                   c.depot_max_bytes = 1 << 20;
                   c.prewarm_bytes = 2 << 20;
                 },
                 "prewarm_bytes", "2097152", "depot_max_bytes"},
        RuleCase{"PrewarmOverCap",
                 [](Config& c) {
                   c.max_total_bytes = 1 << 20;
                   c.prewarm_bytes = 2 << 20;
                 },
                 "prewarm_bytes", "2097152", "max_total_bytes"}),
    [](const ::testing::TestParamInfo<RuleCase>& info) { return info.param.name; });

TEST(ParseConfigToml, ReadsArenaTableAndIgnoresOthers) {
  auto c = arena::ParseConfigToml(R"(
    [server]
    port = 9000
    [arena]
    block_size = "128KiB"
    large_threshold = 16384
    thread_cache_blocks = 64
    depot_batch_blocks = 16
    depot_max_bytes = "1GiB"
    release_delay_ms = 50
    background_release = true
    release_interval_ms = 10
    max_total_bytes = "4GiB"
    prewarm_bytes = "1MiB"
    large_cache_bytes = "8MiB"
  )");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->block_size, 128u * 1024);
  EXPECT_EQ(c->large_threshold, 16384u);
  EXPECT_EQ(c->thread_cache_blocks, 64u);
  EXPECT_EQ(c->depot_batch_blocks, 16u);
  EXPECT_EQ(c->depot_max_bytes, 1ull << 30);
  EXPECT_EQ(c->release_delay_ms, 50);
  EXPECT_TRUE(c->background_release);
  EXPECT_EQ(c->release_interval_ms, 10);
  EXPECT_EQ(c->max_total_bytes, 4ull << 30);
  EXPECT_EQ(c->prewarm_bytes, 1u << 20);
  EXPECT_EQ(c->large_cache_bytes, 8u << 20);
}

TEST(ParseConfigToml, EmptyTextGivesBase) {
  Config base;
  base.block_size = 1 << 20;
  base.large_threshold = 1 << 16;
  auto c = arena::ParseConfigToml("", base);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, base);
}

TEST(ParseConfigToml, UnknownKeyIsAnError) {
  auto c = arena::ParseConfigToml("[arena]\nblock_sise = 65536\n", Config(), "my.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("my.toml:2"));
  EXPECT_THAT(c.status().message(), HasSubstr("unknown key 'block_sise'"));
  EXPECT_THAT(c.status().message(), HasSubstr("block_size"));  // lists known keys
}

TEST(ParseConfigToml, WrongTypesAreNamed) {
  auto c = arena::ParseConfigToml("[arena]\nbackground_release = 3\n");
  EXPECT_THAT(c.status().message(), HasSubstr("'background_release' = 3: must be a TOML boolean"));
  c = arena::ParseConfigToml("[arena]\nblock_size = true\n");
  EXPECT_THAT(c.status().message(), HasSubstr("'block_size' = true"));
  c = arena::ParseConfigToml("[arena]\nblock_size = 1.5\n");
  EXPECT_THAT(c.status().message(), HasSubstr("floating-point"));
  c = arena::ParseConfigToml("[arena]\nblock_size = -4\n");
  EXPECT_THAT(c.status().message(), HasSubstr("must not be negative"));
  c = arena::ParseConfigToml("[arena]\nblock_size = \"64 furlongs\"\n");
  EXPECT_THAT(c.status().message(), HasSubstr("unknown size unit 'furlongs'"));
  c = arena::ParseConfigToml("arena = 5\n");
  EXPECT_THAT(c.status().message(), HasSubstr("'arena' must be a table"));
}

TEST(ParseConfigToml, SyntaxErrorHasLineAndColumn) {
  auto c = arena::ParseConfigToml("[arena]\nblock_size = = 3\n", Config(), "x.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("x.toml:2:"));
  EXPECT_THAT(c.status().message(), HasSubstr("TOML syntax error"));
}

TEST(ParseConfigToml, ValidatesTheResult) {
  auto c = arena::ParseConfigToml("[arena]\nblock_size = \"96KiB\"\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("'block_size' = 98304: must be a power of two"));
}

TEST(LoadConfigFile, ReadsFileAndReportsMissingOne) {
  const std::string path = ::testing::TempDir() + "/arena_config_test.toml";
  {
    std::ofstream out(path);
    out << "[arena]\nblock_size = \"256KiB\"\nlarge_threshold = \"64KiB\"\n";
  }
  auto c = arena::LoadConfigFile(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->block_size, 256u * 1024);
  auto missing = arena::LoadConfigFile(path + ".nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(".nope"));
}

TEST(ApplyEnvironment, OverridesAndRejects) {
  ASSERT_EQ(setenv("ARENA_BLOCK_SIZE", "128KiB", 1), 0);
  ASSERT_EQ(setenv("ARENA_BACKGROUND_RELEASE", "true", 1), 0);
  auto c = arena::ApplyEnvironment(Config());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->block_size, 128u * 1024);
  EXPECT_TRUE(c->background_release);

  ASSERT_EQ(setenv("ARENA_DEPOT_BATCH_BLOCKS", "many", 1), 0);
  c = arena::ApplyEnvironment(Config());
  EXPECT_THAT(c.status().message(), HasSubstr("ARENA_DEPOT_BATCH_BLOCKS"));
  EXPECT_THAT(c.status().message(), HasSubstr("non-negative integer"));
  unsetenv("ARENA_DEPOT_BATCH_BLOCKS");

  ASSERT_EQ(setenv("ARENA_NO_SUCH_KNOB", "1", 1), 0);
  c = arena::ApplyEnvironment(Config());
  EXPECT_THAT(c.status().message(), HasSubstr("unknown arena config key 'no_such_knob'"));
  unsetenv("ARENA_NO_SUCH_KNOB");

  ASSERT_EQ(setenv("ARENA_LARGE_THRESHOLD", "1MiB", 1), 0);
  c = arena::ApplyEnvironment(Config());
  EXPECT_THAT(c.status().message(), HasSubstr("'large_threshold'"));
  unsetenv("ARENA_LARGE_THRESHOLD");
  unsetenv("ARENA_BLOCK_SIZE");
  unsetenv("ARENA_BACKGROUND_RELEASE");
}

TEST(ConfigToToml, RoundTrips) {
  Config c;
  c.block_size = 1 << 20;
  c.large_threshold = 1 << 18;
  c.background_release = true;
  c.release_delay_ms = 7;
  auto back = arena::ParseConfigToml(arena::ConfigToToml(c));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, c);
  EXPECT_EQ(arena::ConfigKeys().size(), 14u);
}

// Found by the config fuzzer in CI: `max_total_bytes=011111111111111111kib`
// (about 1.1e19 bytes) was accepted, but TOML integers are signed 64-bit, so
// the printed config did not parse back. Sizes above the largest TOML integer
// are rejected wherever they come from, naming the key and the limit.
TEST(ConfigToToml, SizesBeyondTheLargestTomlIntegerAreRejected) {
  Config c;
  absl::Status s =
      arena::SetConfigKey(&c, "max_total_bytes", "  011111111111111111kib");
  if (s.ok()) s = arena::ValidateConfig(c);
  EXPECT_THAT(s.message(), HasSubstr("'max_total_bytes'"));
  EXPECT_THAT(s.message(), HasSubstr("9223372036854775807"));

  EXPECT_THAT(arena::ParseByteSize("9223372036854775808").status().message(),
              HasSubstr("too large"));
  EXPECT_EQ(*arena::ParseByteSize("9223372036854775807"),
            std::size_t{9223372036854775807u});

  // A config built in code is held to the same limit by ValidateConfig.
  for (std::size_t Config::*field :
       {&Config::depot_max_bytes, &Config::large_cache_bytes,
        &Config::max_total_bytes}) {
    Config big;
    big.*field = std::size_t{1} << 63;
    absl::Status v = arena::ValidateConfig(big);
    EXPECT_FALSE(v.ok());
    EXPECT_THAT(v.message(), HasSubstr("at most 9223372036854775807"));
  }

  // The largest accepted value still round-trips.
  Config edge;
  edge.max_total_bytes = std::size_t{9223372036854775807u};
  edge.depot_max_bytes = std::size_t{9223372036854775807u};
  ASSERT_TRUE(arena::ValidateConfig(edge).ok());
  auto back = arena::ParseConfigToml(arena::ConfigToToml(edge));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, edge);
}

}  // namespace
