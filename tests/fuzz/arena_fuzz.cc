// Fuzz target: a byte string decoded into arena operations, checked against
// a reference model.
//
// Each input drives one Arena (capped or not, per the first byte) through
// Allocate / TryAllocate (with valid and invalid alignments), Deallocate on
// the owner, Deallocate from a second thread, Create of an object with a
// destructor, and Reset. The model remembers every live allocation with a
// byte pattern of its own; the checks: every pointer is aligned and inside
// no other live allocation, patterns survive everything but their own
// free, invalid alignments fail, the cap holds, destructors run exactly once
// at Reset, and the arena's live bytes stay between the model's live bytes
// and that plus the remote frees the owner has not drained yet.
//
// Built two ways: with libFuzzer (clang, tests/fuzz:arena_fuzzer, see
// README "Reliability") and as a plain cc_test that replays the checked-in
// corpus in every configuration (tests/fuzz:arena_fuzz_test).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "arena/arena.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "arena_fuzz: check failed: %s\n", what);
  std::abort();
}
#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) Fail(#cond); \
  } while (false)

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint32_t U16() { return Byte() | (std::uint32_t{Byte()} << 8); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

struct Live {
  unsigned char* p;
  std::size_t n;
  std::uint8_t seed;
};

// The pattern covers the first and last 128 bytes (all of a small
// allocation): enough to see overlap and stray writes at every edge, cheap
// enough for allocations of a megabyte.
template <class F>
void ForPatternBytes(const Live& l, F f) {
  for (std::size_t i = 0; i < l.n; i = (i == 127 && l.n > 256) ? l.n - 128 : i + 1) {
    f(i);
  }
}
void Fill(const Live& l) {
  ForPatternBytes(l, [&](std::size_t i) {
    l.p[i] = static_cast<unsigned char>(l.seed + i * 31);
  });
}
bool Intact(const Live& l) {
  bool ok = true;
  ForPatternBytes(l, [&](std::size_t i) {
    ok = ok && l.p[i] == static_cast<unsigned char>(l.seed + i * 31);
  });
  return ok;
}

struct Counted {
  explicit Counted(int* destroyed) : destroyed(destroyed) {}
  ~Counted() { ++*destroyed; }
  int* destroyed;
  char payload[24] = {};
};

// Sizes: mostly small, some around block and large-threshold boundaries.
std::size_t DecodeSize(Input& in) {
  const std::uint8_t kind = in.Byte();
  switch (kind % 8) {
    case 0:
      return kind / 8;  // 0..31
    case 1:
    case 2:
    case 3:
      return in.Byte() * 4 + 1;  // up to ~1 KiB
    case 4:
      return in.U16();  // up to 64 KiB
    case 5:
      return 32 * 1024 - 64 + in.Byte();  // around the large threshold
    case 6:
      return 64 * 1024 - 128 + in.Byte();  // around a block
    default:
      return std::size_t{in.U16()} * 16 + 65536;  // large, up to ~1 MiB
  }
}

std::size_t DecodeAlignment(Input& in) {
  const std::uint8_t a = in.Byte();
  if (a < 200) return std::size_t{1} << (a % 16);  // 1 .. 32 KiB (valid)
  static constexpr std::size_t kInvalid[] = {0, 3, 24, 65536, 1 << 20, 48};
  return kInvalid[a % 6];
}

bool ValidAlignment(std::size_t a) {
  return a != 0 && (a & (a - 1)) == 0 && a <= 32 * 1024;
}

// A second thread that frees what it is handed, one batch at a time: the
// remote Deallocate path, without creating a thread per operation.
class RemoteFreer {
 public:
  RemoteFreer() : thread_([this] { Loop(); }) {}
  ~RemoteFreer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // Frees `batch` from `a` on the other thread; returns when done.
  void Free(arena::Arena* a, const std::vector<Live>& batch) {
    std::unique_lock<std::mutex> lock(mu_);
    arena_ = a;
    batch_ = &batch;
    cv_.notify_all();
    cv_.wait(lock, [this] { return batch_ == nullptr; });
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || batch_ != nullptr; });
      if (stop_) return;
      for (const Live& l : *batch_) arena_->Deallocate(l.p, l.n);
      batch_ = nullptr;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  arena::Arena* arena_ = nullptr;
  const std::vector<Live>* batch_ = nullptr;
  bool stop_ = false;
  std::thread thread_;
};

void Run(const std::uint8_t* data, std::size_t size) {
  static RemoteFreer* remote = new RemoteFreer();  // lives for the process
  Input in(data, size);
  arena::ArenaOptions options;
  const std::uint8_t mode = in.Byte();
  if (mode & 1) options.max_bytes = (std::size_t{in.Byte()} + 1) * 16 * 1024;
  if (mode & 2) options.first_block_hint = std::size_t{in.Byte()} * 4096;
  auto a = std::make_unique<arena::Arena>(options);
  std::vector<Live> live;
  std::size_t model_live = 0;
  std::size_t remote_pending = 0;  // freed remotely since the last Reset
  std::size_t create_min = 0, create_max = 0;  // bytes Create took
  int created = 0, destroyed = 0;
  std::uint8_t seed = 1;
  int ops = 0;
  while (!in.empty() && ops++ < 500) {
    const std::uint8_t op = in.Byte();
    switch (op % 8) {
      case 0:
      case 1:
      case 2: {  // allocate
        const std::size_t n = DecodeSize(in);
        const std::size_t align = (op & 0x80) ? DecodeAlignment(in) : 16;
        void* p = nullptr;
        if (op & 0x40) {
          try {
            p = a->Allocate(n, align);
          } catch (const std::bad_alloc&) {
            p = nullptr;
          }
        } else {
          p = a->TryAllocate(n, align);
        }
        if (!ValidAlignment(align)) {
          FUZZ_CHECK(p == nullptr);
          break;
        }
        if (p == nullptr) {
          FUZZ_CHECK(options.max_bytes != 0);  // only the cap may refuse here
          break;
        }
        FUZZ_CHECK(reinterpret_cast<std::uintptr_t>(p) % align == 0);
        FUZZ_CHECK(reinterpret_cast<std::uintptr_t>(p) % 16 == 0);
        Live l{static_cast<unsigned char*>(p), n, seed++};
        for (const Live& o : live) {
          FUZZ_CHECK(l.p + l.n <= o.p || o.p + o.n <= l.p || l.n == 0 || o.n == 0);
        }
        Fill(l);
        live.push_back(l);
        model_live += n;
        break;
      }
      case 3:
      case 4: {  // free on the owner
        if (live.empty()) break;
        const std::size_t i = in.Byte() % live.size();
        FUZZ_CHECK(Intact(live[i]));
        a->Deallocate(live[i].p, live[i].n);
        model_live -= live[i].n;
        live[i] = live.back();
        live.pop_back();
        break;
      }
      case 5: {  // free a few from another thread
        const std::size_t k = in.Byte() % 4 + 1;
        std::vector<Live> batch;
        for (std::size_t j = 0; j < k && !live.empty(); ++j) {
          const std::size_t i = in.Byte() % live.size();
          FUZZ_CHECK(Intact(live[i]));
          batch.push_back(live[i]);
          model_live -= live[i].n;
          remote_pending += live[i].n;
          live[i] = live.back();
          live.pop_back();
        }
        remote->Free(a.get(), batch);
        break;
      }
      case 6: {  // create an object with a destructor
        // Create also allocates a cleanup record (at most 64 bytes).
        try {
          Counted* c = a->Create<Counted>(&destroyed);
          FUZZ_CHECK(c->destroyed == &destroyed);
          ++created;
          create_min += sizeof(Counted);
          create_max += sizeof(Counted) + 64;
        } catch (const std::bad_alloc&) {
          FUZZ_CHECK(options.max_bytes != 0);
          create_max += 64;
        }
        break;
      }
      default: {  // reset (or, rarely, destroy and make a new arena)
        for (const Live& l : live) FUZZ_CHECK(Intact(l));
        if (op & 0x80) {
          a.reset();
          a = std::make_unique<arena::Arena>(options);
        } else {
          a->Reset();
        }
        FUZZ_CHECK(destroyed == created);
        FUZZ_CHECK(a->stats().live_bytes == 0);
        FUZZ_CHECK(a->stats().block_bytes == 0);
        live.clear();
        model_live = 0;
        remote_pending = 0;
        create_min = create_max = 0;
        break;
      }
    }
    const arena::ArenaStats s = a->stats();
    FUZZ_CHECK(s.live_bytes >= model_live + create_min);
    FUZZ_CHECK(s.live_bytes <= model_live + create_max + remote_pending);
    if (options.max_bytes != 0) FUZZ_CHECK(s.block_bytes <= options.max_bytes);
  }
  for (const Live& l : live) FUZZ_CHECK(Intact(l));
  a.reset();
  FUZZ_CHECK(destroyed == created);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Run(data, size);
  return 0;
}
