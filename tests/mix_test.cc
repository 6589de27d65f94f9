// The route-mix syntax shared by load, compare and tune: parsing, errors
// that name the entry, and the schedule (exact weights, spread out).
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server_demo/mix.h"

namespace {

using ::server_demo::ParseRouteMix;
using ::server_demo::RouteMix;
using ::testing::HasSubstr;

TEST(RouteMix, ParsesPathsAndWeights) {
  auto mix = ParseRouteMix("/json?items=50:8,/json?items=2000:2,/hello:10");
  ASSERT_TRUE(mix.ok()) << mix.status();
  ASSERT_EQ(mix->routes.size(), 3u);
  EXPECT_EQ(mix->routes[0].path, "/json?items=50");
  EXPECT_EQ(mix->routes[0].weight, 8u);
  EXPECT_EQ(mix->routes[1].path, "/json?items=2000");
  EXPECT_EQ(mix->routes[1].weight, 2u);
  EXPECT_EQ(mix->routes[2].path, "/hello");
  EXPECT_EQ(mix->routes[2].weight, 10u);
  EXPECT_EQ(mix->Period(), 20u);
  EXPECT_EQ(mix->ToString(), "/json?items=50:8,/json?items=2000:2,/hello:10");
}

TEST(RouteMix, WeightDefaultsToOneAndSpacesAreIgnored) {
  auto mix = ParseRouteMix(" /hello , /json?items=3:4 ");
  ASSERT_TRUE(mix.ok()) << mix.status();
  ASSERT_EQ(mix->routes.size(), 2u);
  EXPECT_EQ(mix->routes[0].path, "/hello");
  EXPECT_EQ(mix->routes[0].weight, 1u);
  EXPECT_EQ(mix->routes[1].weight, 4u);
  // The canonical form parses back to the same mix.
  auto again = ParseRouteMix(mix->ToString());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ToString(), mix->ToString());
  EXPECT_EQ(again->schedule, mix->schedule);
}

TEST(RouteMix, BadSyntaxSaysWhatAndWhere) {
  struct Case {
    const char* spec;
    const char* says;
  };
  const Case cases[] = {
      {"", "is empty"},
      {"   ", "is empty"},
      {"/a:1,,/b", "is empty"},
      {"/a:1,", "is empty"},
      {"hello:3", "does not start with '/'"},
      {"/a:0", "from 1 to"},
      {"/a:-2", "not a whole number"},
      {"/a:x", "not a whole number"},
      {"/a:", "not a whole number"},
      {"/a:1.5", "not a whole number"},
      {"/a:2000000", "from 1 to"},
      {":5", "does not start with '/'"},
      {"/a b:1", "space or control"},
  };
  for (const Case& c : cases) {
    auto mix = ParseRouteMix(c.spec);
    ASSERT_FALSE(mix.ok()) << "'" << c.spec << "' parsed";
    EXPECT_THAT(std::string(mix.status().message()), HasSubstr(c.says)) << c.spec;
    EXPECT_THAT(std::string(mix.status().message()), HasSubstr("--mix")) << c.spec;
    EXPECT_THAT(std::string(mix.status().message()), HasSubstr("PATH[:WEIGHT]")) << c.spec;
  }
  EXPECT_FALSE(ParseRouteMix("/a:1000000,/b:1000000,/c:1000000,/d:1000000,/e:1000000").ok());
}

TEST(RouteMix, SchedulePicksEachRouteExactlyItsWeightPerPeriod) {
  auto mix = ParseRouteMix("/a:8,/b:2,/c:10");
  ASSERT_TRUE(mix.ok());
  for (std::uint64_t offset : {0u, 7u, 13u}) {
    std::map<std::uint32_t, int> seen;
    for (std::uint64_t n = 0; n < mix->Period(); ++n) ++seen[mix->Pick(offset + n)];
    EXPECT_EQ(seen[0], 8);
    EXPECT_EQ(seen[1], 2);
    EXPECT_EQ(seen[2], 10);
  }
  // Spread out: the rare route never comes twice in a row, and no run of
  // one route is longer than its share calls for.
  int run = 0, longest = 0;
  for (std::uint64_t n = 1; n < 2 * mix->Period(); ++n) {
    run = mix->Pick(n) == mix->Pick(n - 1) ? run + 1 : 0;
    longest = std::max(longest, run);
    EXPECT_FALSE(mix->Pick(n) == 1 && mix->Pick(n - 1) == 1) << n;
  }
  EXPECT_LE(longest, 1);
}

TEST(RouteMix, SingleRouteAlwaysPicksIt) {
  const RouteMix mix = server_demo::SingleRoute("/hello");
  EXPECT_EQ(mix.Period(), 1u);
  EXPECT_EQ(mix.Pick(12345), 0u);
  EXPECT_EQ(mix.ToString(), "/hello:1");
}

}  // namespace
