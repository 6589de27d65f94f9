#include "server_demo/wordcount.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/config.h"
#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "arena/shared_arena.h"

#ifdef ABSL_HAVE_THREAD_SANITIZER
#include <array>
#include <atomic>
#include <exception>
#include <thread>
#else
#include <oneapi/tbb/parallel_for.h>
#endif

namespace server_demo {
namespace {

constexpr std::size_t kDefaultChunkBytes = 16 * 1024;
constexpr std::size_t kDefaultMaxChunks = 64;

// Runs body(0) ... body(chunks - 1) in parallel and returns once all are
// done; the first exception a body throws is rethrown here, after the
// others finished (the rest of the chunks may be skipped).
//
// oneTBB's parallel_for, except under ThreadSanitizer: Debian's oneTBB is
// not built with it, so its scheduler's synchronization is invisible and
// even correct tasks show races (in tbb's own task objects). TSan builds
// run the same bodies on the calling thread and up to three std::threads,
// which take chunks from a shared counter: the same concurrency on the
// request's memory, all of it visible to TSan.
template <class Body>
void ForEachChunk(std::size_t chunks, const Body& body) {
#ifdef ABSL_HAVE_THREAD_SANITIZER
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  std::exception_ptr error;  // guarded by mu
  const auto work = [&] {
    for (;;) {
      // Relaxed: hands out indices; the joins publish the results.
      const std::size_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= chunks) return;
      try {
        body(c);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (error == nullptr) error = std::current_exception();
        next.store(chunks, std::memory_order_relaxed);  // skip the rest
      }
    }
  };
  std::array<std::thread, 3> threads;
  const std::size_t n = std::min(chunks - 1, threads.size());
  for (std::size_t i = 0; i < n; ++i) threads[i] = std::thread(work);
  work();
  for (std::size_t i = 0; i < n; ++i) threads[i].join();
  if (error != nullptr) std::rethrow_exception(error);
#else
  tbb::parallel_for(std::size_t{0}, chunks, body);
#endif
}

bool IsWordByte(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); }

template <class Alloc, class T>
using Rebind = typename std::allocator_traits<Alloc>::template rebind_alloc<T>;

// std::unordered_map, not absl::flat_hash_map: Debian's Abseil (20220623)
// updates a table's capacity before allocating the new one, so an allocation
// that throws (the request's cap) leaves a table that frees with the wrong
// size. unordered_map's rehash and insert leave the map as it was.
template <class Alloc>
using CountMap =
    std::unordered_map<absl::string_view, std::uint64_t, absl::Hash<absl::string_view>,
                       std::equal_to<absl::string_view>,
                       Rebind<Alloc, std::pair<const absl::string_view, std::uint64_t>>>;

// One chunk's counts. A wrapper without allocator_type, so that a vector of
// them constructs each from the map allocator alone (no uses-allocator
// construction under polymorphic_allocator).
template <class Alloc>
struct ChunkCounts {
  explicit ChunkCounts(const Alloc& alloc) : map(alloc) {}
  CountMap<Alloc> map;
};

using Entry = std::pair<absl::string_view, std::uint64_t>;

// Forwards to a resource that is not thread-safe, one call at a time, so
// that the tasks may share it. Lives on the stack of one WordCountJson call.
class SerializedResource final : public std::pmr::memory_resource {
 public:
  explicit SerializedResource(std::pmr::memory_resource* upstream) : upstream_(upstream) {}

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    std::lock_guard<std::mutex> lock(mu_);
    return upstream_->allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    std::lock_guard<std::mutex> lock(mu_);
    upstream_->deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::mutex mu_;  // held across every call into upstream_
  std::pmr::memory_resource* const upstream_;
};

void AppendUint(std::pmr::string* out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr - buf);
}

// Alloc: an allocator of char whose allocate/deallocate are thread-safe.
template <class Alloc>
void CountWords(absl::string_view text, std::size_t chunks, const Alloc& alloc,
                std::pmr::string* out) {
  const std::size_t n = text.size();
  // Chunk i is [bounds[i], bounds[i + 1]), cut where no word straddles.
  std::vector<std::size_t, Rebind<Alloc, std::size_t>> bounds(chunks + 1, 0, alloc);
  for (std::size_t i = 1; i < chunks; ++i) {
    std::size_t p = std::max(n / chunks * i + n % chunks * i / chunks, bounds[i - 1]);
    while (p > 0 && p < n && IsWordByte(text[p - 1]) && IsWordByte(text[p])) ++p;
    bounds[i] = p;
  }
  bounds[chunks] = n;

  // The lower-cased text; the maps' keys point into it.
  std::vector<char, Rebind<Alloc, char>> lower(n, '\0', alloc);
  using Map = CountMap<Alloc>;
  std::vector<ChunkCounts<Alloc>, Rebind<Alloc, ChunkCounts<Alloc>>> counts(alloc);
  counts.reserve(chunks);
  for (std::size_t i = 0; i < chunks; ++i) counts.emplace_back(alloc);

  ForEachChunk(chunks, [&](std::size_t c) {
    const std::size_t begin = bounds[c], limit = bounds[c + 1];
    char* const low = lower.data();
    Map& map = counts[c].map;
    std::size_t p = begin;
    while (p < limit) {
      while (p < limit && !IsWordByte(text[p])) ++p;
      const std::size_t start = p;
      while (p < limit && IsWordByte(text[p])) {
        low[p] = absl::ascii_tolower(static_cast<unsigned char>(text[p]));
        ++p;
      }
      if (p > start) ++map[absl::string_view(low + start, p - start)];
    }
  });

  // Merge on the calling thread; the chunk maps go back to the arena first.
  std::size_t largest = 0;
  for (const auto& c : counts) largest = std::max(largest, c.map.size());
  Map total(alloc);
  total.reserve(largest);
  std::uint64_t words = 0;
  for (const auto& c : counts) {
    for (const auto& [word, count] : c.map) {
      total[word] += count;
      words += count;
    }
  }
  counts.clear();
  counts.shrink_to_fit();

  std::vector<Entry, Rebind<Alloc, Entry>> sorted(total.begin(), total.end(), alloc);
  total = Map(alloc);
  std::sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });

  // Exact size: per entry ["word",count] and a comma; counts have <= 20 digits.
  std::size_t size = 64;
  for (const Entry& e : sorted) size += e.first.size() + 6 + 20;
  out->reserve(out->size() + size);
  out->append("{\"words\":");
  AppendUint(out, words);
  out->append(",\"unique\":");
  AppendUint(out, sorted.size());
  out->append(",\"counts\":[");
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i != 0) out->push_back(',');
    out->append("[\"");
    out->append(sorted[i].first.data(), sorted[i].first.size());
    out->append("\",");
    AppendUint(out, sorted[i].second);
    out->push_back(']');
  }
  out->append("]}");
}

}  // namespace

std::size_t WordCountDefaultChunks(std::size_t text_size) {
  const std::size_t chunks = (text_size + kDefaultChunkBytes - 1) / kDefaultChunkBytes;
  return std::clamp<std::size_t>(chunks, 1, kDefaultMaxChunks);
}

void WordCountJson(absl::string_view text, std::size_t chunks, arena::SharedArena* shared,
                   std::pmr::string* out) {
  CountWords(text, chunks, arena::SharedArenaAllocator<char>(*shared), out);
}

void WordCountJson(absl::string_view text, std::size_t chunks,
                   std::pmr::memory_resource* memory, std::pmr::string* out) {
  SerializedResource serialized(memory);
  CountWords(text, chunks, std::pmr::polymorphic_allocator<char>(&serialized), out);
}

}  // namespace server_demo
