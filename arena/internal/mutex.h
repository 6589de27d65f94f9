// A mutex that both ThreadSanitizer and clang's -Wthread-safety understand.
//
// Debian's Abseil is not built with TSan, so absl::Mutex shows false races.
// std::mutex is intercepted by TSan (pthreads); this wrapper adds Abseil's
// capability annotations so that ABSL_GUARDED_BY fields are checked by the
// `clang` config. Not copyable or movable; lives as long as its owner.
#ifndef ARENA_INTERNAL_MUTEX_H_
#define ARENA_INTERNAL_MUTEX_H_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace arena {
namespace internal {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }

  // For std::condition_variable_any and friends.
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }

 private:
  Mutex* const mu_;
};

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_MUTEX_H_
