// A per-thread identity that is never reused while the process lives.
//
// Arena::Allocate compares the arena's owner with the calling thread's id on
// its fast path, so reading the id must not go through a TLS wrapper call: a
// trivially-initialized __thread variable with the initial-exec model is one
// %fs-relative load. The id is a 64-bit counter value assigned on the
// thread's first slow path (ThreadId()); it is never reused, unlike the
// address of a thread_local, which glibc hands to the next thread created
// after one exits (with its cached stack and TLS block). 2^64 ids do not run
// out.
//
// kNoThread (0) is the id of a thread that has not been assigned one yet.
//
// ThreadToken() is the address of a thread_local: one %fs-relative address
// computation, invariant for the thread, so a loop of allocations computes it
// once. Arena's bump fast path compares tokens; everything that decides
// whether a thread may touch the owner-only state (Deallocate's local path,
// the slow path's ownership claim) compares ids. A token may be reused (glibc
// gives a joined thread's TLS to the next thread it creates): such a thread
// can then pass the fast path of an arena whose owner exited, and bump into
// it until its first slow path claims the arena. That is a hand-over (the
// exited thread cannot use the arena any more), and it is safe: the
// arena's owner id is still the exited thread's, so no live thread takes the
// owner-only local free path until the claim (frees go to a remote batch).
#ifndef ARENA_INTERNAL_THREAD_TOKEN_H_
#define ARENA_INTERNAL_THREAD_TOKEN_H_

#include <cstdint>

#include "absl/base/optimization.h"

#define ARENA_TLS_INITIAL_EXEC __attribute__((tls_model("initial-exec")))

namespace arena {
namespace internal {

inline constexpr std::uint64_t kNoThread = 0;

extern __thread std::uint64_t tls_thread_id ARENA_TLS_INITIAL_EXEC;
extern __thread char tls_thread_token ARENA_TLS_INITIAL_EXEC;

// The fast path's identity: unique among live threads, may be reused.
inline const void* ThreadToken() { return &tls_thread_token; }

// Assigns the calling thread its id (from a process-wide counter).
std::uint64_t AssignThreadId() noexcept;

// The calling thread's id as stored: kNoThread before the first ThreadId().
// For the fast path only.
inline std::uint64_t ThreadIdIfAssigned() { return tls_thread_id; }

// The calling thread's id, assigned on first use; never kNoThread.
inline std::uint64_t ThreadId() {
  const std::uint64_t id = tls_thread_id;
  return ABSL_PREDICT_TRUE(id != kNoThread) ? id : AssignThreadId();
}

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_THREAD_TOKEN_H_
