#include "arena/page_source.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "arena/testing/test_page_sources.h"

namespace {

using arena::PageSource;

bool Aligned(void* p, std::size_t a) {
  return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

TEST(MmapPageSource, MapsAlignedAndCounts) {
  arena::MmapPageSource source;
  std::vector<void*> spans;
  for (std::size_t align : {4096u, 65536u, 1u << 20}) {
    void* p = source.Map(align * 2, align);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(Aligned(p, align));
    std::memset(p, 0x5a, align * 2);  // writable
    spans.push_back(p);
  }
  const std::size_t total = 4096 * 2 + 65536 * 2 + (2u << 20);
  EXPECT_EQ(source.stats().mapped_bytes, total);
  EXPECT_EQ(source.stats().committed_bytes, total);
  EXPECT_EQ(source.stats().map_calls, 3u);

  // Decommit keeps the mapping; the pages read as zero afterwards.
  auto* bytes = static_cast<unsigned char*>(spans[1]);
  source.Decommit(bytes + 4096, 65536 * 2 - 4096);
  EXPECT_EQ(source.stats().committed_bytes, total - (65536 * 2 - 4096));
  EXPECT_EQ(bytes[8192], 0);
  EXPECT_EQ(bytes[0], 0x5a);
  source.Recommit(65536 * 2 - 4096);

  source.Unmap(spans[0], 4096 * 2);
  source.Unmap(spans[1], 65536 * 2);
  source.Unmap(spans[2], 2u << 20);
  EXPECT_EQ(source.stats().mapped_bytes, 0u);
  EXPECT_EQ(source.stats().committed_bytes, 0u);
}

TEST(PageSource, CapRefusesMapsPastIt) {
  arena::MmapPageSource source;
  source.set_max_mapped_bytes(3 * 65536);
  void* a = source.Map(2 * 65536, 65536);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(source.Map(2 * 65536, 65536), nullptr);
  EXPECT_EQ(source.stats().map_failures, 1u);
  EXPECT_EQ(source.stats().mapped_bytes, 2u * 65536);
  void* b = source.Map(65536, 65536);
  ASSERT_NE(b, nullptr);
  source.Unmap(a, 2 * 65536);
  source.Unmap(b, 65536);
}

TEST(FixedRegionPageSource, CarvesAndCoalesces) {
  const std::size_t size = 1 << 20;
  void* region = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(region, MAP_FAILED);
  {
    arena::FixedRegionPageSource source(region, size);
    EXPECT_EQ(source.free_bytes(), size);
    std::vector<void*> spans;
    while (void* p = source.Map(65536, 65536)) {
      EXPECT_TRUE(Aligned(p, 65536));
      EXPECT_GE(static_cast<char*>(p), static_cast<char*>(region));
      EXPECT_LE(static_cast<char*>(p) + 65536, static_cast<char*>(region) + size);
      spans.push_back(p);
    }
    EXPECT_GE(spans.size(), 15u);  // the region may start unaligned: one lost
    EXPECT_EQ(source.stats().map_failures, 1u);
    // Give back every other span, then the rest: all coalesces again.
    for (std::size_t i = 0; i < spans.size(); i += 2) source.Unmap(spans[i], 65536);
    EXPECT_EQ(source.Map(2 * 65536, 65536), nullptr);  // only holes of one span
    for (std::size_t i = 1; i < spans.size(); i += 2) source.Unmap(spans[i], 65536);
    EXPECT_EQ(source.free_bytes(), size);
    void* big = source.Map(8 * 65536, 65536);
    EXPECT_NE(big, nullptr);
    source.Unmap(big, 8 * 65536);
    EXPECT_EQ(source.stats().mapped_bytes, 0u);
  }
  munmap(region, size);
}

TEST(MallocPageSource, TracksSpans) {
  arena::testing::MallocPageSource source;
  void* p = source.Map(65536, 65536);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(Aligned(p, 65536));
  EXPECT_EQ(source.outstanding_spans(), 1u);
  source.Decommit(static_cast<char*>(p) + 4096, 4096);
  source.Recommit(4096);
  source.Unmap(p, 65536);
  EXPECT_EQ(source.outstanding_spans(), 0u);
}

TEST(MallocPageSourceDeathTest, DestructorCatchesLeaks) {
  EXPECT_DEATH(
      {
        arena::testing::MallocPageSource source;
        source.Map(65536, 65536);
      },
      "blocks leaked");
}

TEST(FaultInjectingPageSource, FailsOnDemand) {
  arena::testing::MallocPageSource target;
  arena::testing::FaultInjectingPageSource source(&target);
  source.FailAfter(2);
  void* a = source.Map(65536, 65536);
  void* b = source.Map(65536, 65536);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(b, nullptr);
  EXPECT_EQ(source.Map(65536, 65536), nullptr);
  source.Heal();
  void* c = source.Map(65536, 65536);
  EXPECT_NE(c, nullptr);
  source.set_failing(true);
  EXPECT_EQ(source.Map(65536, 65536), nullptr);
  EXPECT_EQ(source.attempts(), 5);
  EXPECT_EQ(source.stats().map_failures, 2u);
  for (void* p : {a, b, c}) source.Unmap(p, 65536);
  EXPECT_EQ(target.outstanding_spans(), 0u);
}


// A large mapping is a page multiple aligned to block_size, not a multiple
// of it: the malloc-backed test source must take such spans (under ASan and
// TSan, aligned_alloc refuses them).
TEST(MallocPageSource, SpansThatAreNotAMultipleOfTheAlignment) {
  arena::testing::MallocPageSource source;
  void* p = source.Map(9 * PageSource::kPageSize, 64 * 1024);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % (64 * 1024), 0u);
  std::memset(p, 1, 9 * PageSource::kPageSize);
  source.Unmap(p, 9 * PageSource::kPageSize);
}

}  // namespace
