// A per-thread identity that costs one %fs-relative address computation.
//
// Arena::Allocate compares the arena's owner with the calling thread's token
// on its fast path, so the token must not go through a TLS wrapper call:
// a trivially-initialized __thread variable with the initial-exec model is
// a fixed offset from the thread pointer. The address of that variable is
// the token. Tokens are unique among live threads; a new thread may reuse
// the token of one that exited.
#ifndef ARENA_INTERNAL_THREAD_TOKEN_H_
#define ARENA_INTERNAL_THREAD_TOKEN_H_

#define ARENA_TLS_INITIAL_EXEC __attribute__((tls_model("initial-exec")))

namespace arena {
namespace internal {

extern __thread char tls_thread_token ARENA_TLS_INITIAL_EXEC;

inline const void* ThreadToken() { return &tls_thread_token; }

}  // namespace internal
}  // namespace arena

#endif  // ARENA_INTERNAL_THREAD_TOKEN_H_
