// Helpers shared by the test suites: a start barrier made of std:: parts
// (TSan sees them; absl::Barrier would show false races with Debian's
// uninstrumented Abseil), byte patterns, and sanitizer-aware budgets.
#ifndef ARENA_TESTS_TEST_UTIL_H_
#define ARENA_TESTS_TEST_UTIL_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/base/config.h"

namespace arena_test {

class StartBarrier {
 public:
  explicit StartBarrier(int parties) : remaining_(parties) {}
  void ArriveAndWait() {
    std::unique_lock<std::mutex> lock(mu_);
    if (--remaining_ == 0) {
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [this] { return remaining_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int remaining_;
};

// A long-lived thread running closures one at a time (Run waits for each),
// as a server's worker: the queue's mutex orders the hand-overs.
class Worker {
 public:
  Worker() : thread_([this] { Loop(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Run(std::function<void()> f) {
    std::mutex done_mu;
    std::condition_variable done_cv;
    bool done = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back([&] {
        f();
        std::lock_guard<std::mutex> l(done_mu);
        done = true;
        done_cv.notify_all();
      });
    }
    cv_.notify_all();
    std::unique_lock<std::mutex> lock(done_mu);
    done_cv.wait(lock, [&] { return done; });
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        f = std::move(queue_.front());
        queue_.pop_front();
      }
      f();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

// Fills [p, p + n) with a pattern derived from `seed`; Check verifies it.
inline void Fill(void* p, std::size_t n, std::uint64_t seed) {
  auto* b = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    b[i] = static_cast<unsigned char>((seed * 131 + i * 7) ^ (seed >> 8));
  }
}
inline bool Check(const void* p, std::size_t n, std::uint64_t seed) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (b[i] != static_cast<unsigned char>((seed * 131 + i * 7) ^ (seed >> 8))) {
      return false;
    }
  }
  return true;
}

constexpr bool kUnderSanitizer =
#if defined(ABSL_HAVE_ADDRESS_SANITIZER) || defined(ABSL_HAVE_THREAD_SANITIZER) || \
    defined(ARENA_UBSAN)
    true;
#else
    false;
#endif

// Stress tests run for a fixed time budget, shorter under sanitizers.
inline std::chrono::milliseconds StressBudget() {
  return std::chrono::milliseconds(kUnderSanitizer ? 700 : 1500);
}

// A small deterministic generator (xorshift), so tests do not share state.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed * 0x9e3779b97f4a7c15ull + 1) {}
  std::uint64_t Next() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 7;
    s_ ^= s_ << 17;
    return s_;
  }
  std::size_t Below(std::size_t n) { return static_cast<std::size_t>(Next() % n); }

 private:
  std::uint64_t s_;
};

}  // namespace arena_test

#endif  // ARENA_TESTS_TEST_UTIL_H_
