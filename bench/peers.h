// The allocators the comparison benchmarks measure, behind one shape:
//
//   void* Alloc(size_t n)        one object of n bytes (16-byte aligned)
//   void  Free(void* p, size_t n)  give one object back (may be a no-op)
//   void  EndRequest()           the end of a request (Reset, release, ...)
//   std::pmr::memory_resource* resource()  for pmr containers
//   kName, kIndividualFree (Free really frees), kThreadSafeFree (Free may run
//   on another thread than Alloc), kMallocFamily (the answer depends on the
//   malloc that is loaded: glibc, or jemalloc/tcmalloc/mimalloc by LD_PRELOAD)
//
// One instance per benchmark thread unless a workload says otherwise. The
// floor is a bare bump pointer over a hot, preallocated buffer that never
// checks bounds or frees: the physical limit of a workload.
#ifndef ARENA_BENCH_PEERS_H_
#define ARENA_BENCH_PEERS_H_

#define TBB_PREVIEW_MEMORY_POOL 1

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <memory_resource>
#include <new>
#include <optional>
#include <type_traits>
#include <vector>

#include <google/protobuf/arena.h>
#include <oneapi/tbb/memory_pool.h>
#include <oneapi/tbb/scalable_allocator.h>

#include "arena/arena.h"

namespace arena_bench {

// A pmr view of any peer.
template <class Peer>
class PeerResource final : public std::pmr::memory_resource {
 public:
  explicit PeerResource(Peer* peer) : peer_(peer) {}

 private:
  void* do_allocate(std::size_t n, std::size_t) override { return peer_->Alloc(n); }
  void do_deallocate(void* p, std::size_t n, std::size_t) override { peer_->Free(p, n); }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
    return this == &o;
  }
  Peer* peer_;
};

struct Floor {
  static constexpr const char* kName = "floor";
  static constexpr bool kIndividualFree = false;
  static constexpr bool kThreadSafeFree = true;  // a no-op is thread-safe
  static constexpr bool kMallocFamily = false;
  explicit Floor(std::size_t bytes = 64 << 20)
      : buffer_(static_cast<char*>(std::aligned_alloc(64, bytes))), cursor_(buffer_),
        wrap_(buffer_ + bytes - (64 << 10)) {
    // Hot: touch every page once so the floor never page-faults.
    for (std::size_t i = 0; i < bytes; i += 4096) buffer_[i] = 0;
  }
  ~Floor() { std::free(buffer_); }
  void* Alloc(std::size_t n) {
    char* p = cursor_;
    cursor_ = p + ((n + 15) & ~std::size_t{15});
    return p;
  }
  void Free(void*, std::size_t) {}
  void EndRequest() {
    // Rewinding per request keeps the buffer hot; workloads that never end
    // a request wrap around instead (MaybeWrap).
    cursor_ = buffer_;
  }
  void MaybeWrap() {
    if (cursor_ > wrap_) cursor_ = buffer_;
  }
  std::pmr::memory_resource* resource() { return &resource_; }

  char* buffer_;
  char* cursor_;
  char* wrap_;
  PeerResource<Floor> resource_{this};
};

// Reference rows between the floor and the arena: the floor plus what a
// request arena cannot drop. floor_counted (FloorPlus<false>) keeps an exact
// count of requested bytes (the arena's live_bytes); floor_checked
// (FloorPlus<true>) also checks the bump against its buffer's end (a bounded
// buffer needs it). Neither has an owner, blocks, frees or statistics
// beyond that count.
template <bool kChecked>
struct FloorPlus {
  static constexpr const char* kName = kChecked ? "floor_checked" : "floor_counted";
  static constexpr bool kIndividualFree = false;
  static constexpr bool kThreadSafeFree = false;
  static constexpr bool kMallocFamily = false;
  static constexpr std::size_t kBytes = 64 << 20;
  FloorPlus()
      : buffer_(static_cast<char*>(std::aligned_alloc(64, kBytes))), cursor_(buffer_),
        limit_(buffer_ + kBytes) {
    for (std::size_t i = 0; i < kBytes; i += 4096) buffer_[i] = 0;
  }
  ~FloorPlus() { std::free(buffer_); }
  FloorPlus(const FloorPlus&) = delete;
  FloorPlus& operator=(const FloorPlus&) = delete;
  void* Alloc(std::size_t n) {
    char* p = cursor_;
    if constexpr (kChecked) {
      if (__builtin_expect(n - 1 >= static_cast<std::size_t>(limit_ - p), 0)) {
        return Overflow(n);
      }
    }
    cursor_ = p + ((n + 15) & ~std::size_t{15});
    live_ += n;
    return p;
  }
  void Free(void*, std::size_t) {}
  void EndRequest() {
    cursor_ = buffer_;
    live_ = 0;
  }
  std::pmr::memory_resource* resource() { return &resource_; }

  // Out of line, as a real slow path is: rewinds (the buffer never fills in
  // these workloads; n == 0 gets the 16 bytes a real allocator would give).
  __attribute__((noinline)) void* Overflow(std::size_t n) {
    if (n > kBytes / 2) throw std::bad_alloc();
    cursor_ = buffer_;
    char* p = cursor_;
    cursor_ = p + ((n + 15 + (n == 0 ? 1 : 0)) & ~std::size_t{15});
    live_ += n;
    return p;
  }

  char* buffer_;
  char* cursor_;
  char* limit_;
  std::size_t live_ = 0;
  PeerResource<FloorPlus> resource_{this};
};

struct Malloc {
  static constexpr const char* kName = "malloc";
  static constexpr bool kIndividualFree = true;
  static constexpr bool kThreadSafeFree = true;
  static constexpr bool kMallocFamily = true;
  void* Alloc(std::size_t n) { return std::malloc(n); }
  void Free(void* p, std::size_t) { std::free(p); }
  void EndRequest() {}
  std::pmr::memory_resource* resource() { return &resource_; }
  PeerResource<Malloc> resource_{this};
};

struct NewDelete {
  static constexpr const char* kName = "new_delete";
  static constexpr bool kIndividualFree = true;
  static constexpr bool kThreadSafeFree = true;
  static constexpr bool kMallocFamily = true;
  void* Alloc(std::size_t n) { return ::operator new(n); }
  void Free(void* p, std::size_t n) { ::operator delete(p, n); }
  void EndRequest() {}
  std::pmr::memory_resource* resource() { return std::pmr::new_delete_resource(); }
};

// arena::Arena, Reset at the end of each request (the intended use).
struct ArenaReset {
  static constexpr const char* kName = "arena";
  static constexpr bool kIndividualFree = false;
  static constexpr bool kThreadSafeFree = true;
  static constexpr bool kMallocFamily = false;
  void* Alloc(std::size_t n) { return arena_.Allocate(n); }
  void Free(void*, std::size_t) {}
  void EndRequest() { arena_.Reset(); }
  std::pmr::memory_resource* resource() { return arena_.resource(); }
  arena::Arena arena_;
};

// A fresh arena::Arena per request.
struct ArenaFresh {
  static constexpr const char* kName = "arena_fresh";
  static constexpr bool kIndividualFree = false;
  static constexpr bool kThreadSafeFree = true;
  static constexpr bool kMallocFamily = false;
  ArenaFresh() { arena_.emplace(); }
  void* Alloc(std::size_t n) { return arena_->Allocate(n); }
  void Free(void*, std::size_t) {}
  void EndRequest() {
    arena_.reset();
    arena_.emplace();
  }
  std::pmr::memory_resource* resource() { return arena_->resource(); }
  std::optional<arena::Arena> arena_;
};

// arena::Arena with every object given back through Deallocate.
struct ArenaDealloc {
  static constexpr const char* kName = "arena_dealloc";
  static constexpr bool kIndividualFree = true;
  static constexpr bool kThreadSafeFree = true;
  static constexpr bool kMallocFamily = false;
  void* Alloc(std::size_t n) { return arena_.Allocate(n); }
  void Free(void* p, std::size_t n) { arena_.Deallocate(p, n); }
  void EndRequest() { arena_.Reset(); }
  std::pmr::memory_resource* resource() { return arena_.resource(); }
  arena::Arena arena_;
};

struct PmrMonotonic {
  static constexpr const char* kName = "pmr_monotonic";
  static constexpr bool kIndividualFree = false;
  static constexpr bool kThreadSafeFree = true;  // Free is a no-op
  static constexpr bool kMallocFamily = false;
  void* Alloc(std::size_t n) { return mr_.allocate(n, 16); }
  void Free(void*, std::size_t) {}
  void EndRequest() { mr_.release(); }
  std::pmr::memory_resource* resource() { return &mr_; }
  std::pmr::monotonic_buffer_resource mr_;
};

struct PmrUnsyncPool {
  static constexpr const char* kName = "pmr_unsync_pool";
  static constexpr bool kIndividualFree = true;
  static constexpr bool kThreadSafeFree = false;
  static constexpr bool kMallocFamily = false;
  void* Alloc(std::size_t n) { return mr_.allocate(n, 16); }
  void Free(void* p, std::size_t n) { mr_.deallocate(p, n, 16); }
  void EndRequest() {}
  std::pmr::memory_resource* resource() { return &mr_; }
  std::pmr::unsynchronized_pool_resource mr_;
};

struct PmrSyncPool {
  static constexpr const char* kName = "pmr_sync_pool";
  static constexpr bool kIndividualFree = true;
  static constexpr bool kThreadSafeFree = true;
  static constexpr bool kMallocFamily = false;
  void* Alloc(std::size_t n) { return mr_.allocate(n, 16); }
  void Free(void* p, std::size_t n) { mr_.deallocate(p, n, 16); }
  void EndRequest() {}
  std::pmr::memory_resource* resource() { return &mr_; }
  std::pmr::synchronized_pool_resource mr_;
};

struct ProtobufArena {
  static constexpr const char* kName = "protobuf_arena";
  static constexpr bool kIndividualFree = false;
  static constexpr bool kThreadSafeFree = true;  // Free is a no-op
  static constexpr bool kMallocFamily = false;
  void* Alloc(std::size_t n) { return arena_.AllocateAligned((n + 15) & ~std::size_t{15}, 16); }
  void Free(void*, std::size_t) {}
  void EndRequest() { arena_.Reset(); }
  std::pmr::memory_resource* resource() { return &resource_; }
  google::protobuf::Arena arena_;
  PeerResource<ProtobufArena> resource_{this};
};

struct TbbScalable {
  static constexpr const char* kName = "tbb_scalable";
  static constexpr bool kIndividualFree = true;
  static constexpr bool kThreadSafeFree = true;
  static constexpr bool kMallocFamily = false;
  void* Alloc(std::size_t n) { return scalable_malloc(n); }
  void Free(void* p, std::size_t) { scalable_free(p); }
  void EndRequest() {}
  std::pmr::memory_resource* resource() { return &resource_; }
  PeerResource<TbbScalable> resource_{this};
};

struct TbbMemoryPool {
  static constexpr const char* kName = "tbb_memory_pool";
  static constexpr bool kIndividualFree = true;
  static constexpr bool kThreadSafeFree = true;
  static constexpr bool kMallocFamily = false;
  void* Alloc(std::size_t n) { return pool_.malloc(n); }
  void Free(void* p, std::size_t) { pool_.free(p); }
  void EndRequest() {}
  std::pmr::memory_resource* resource() { return &resource_; }
  tbb::memory_pool<std::allocator<char>> pool_;
  PeerResource<TbbMemoryPool> resource_{this};
};

template <class P>
inline constexpr bool kIsArenaPeer =
    std::is_same_v<P, ArenaReset> || std::is_same_v<P, ArenaFresh> || std::is_same_v<P, ArenaDealloc>;

// Which malloc answers in this process: "glibc", or the LD_PRELOADed one.
const char* LoadedMalloc();

}  // namespace arena_bench

#endif  // ARENA_BENCH_PEERS_H_
