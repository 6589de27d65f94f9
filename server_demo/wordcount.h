// POST /wordcount: word frequencies of the request body, counted in parallel.
//
// A word is a maximal run of ASCII letters and digits, with the letters
// folded to lower case; every other byte (spaces, punctuation, control
// bytes, bytes >= 0x80) separates words. The answer is JSON:
//
//   {"words":TOTAL,"unique":DISTINCT,"counts":[["the",12],["a",7],...]}
//
// with one [word, count] pair per distinct word, sorted by count descending,
// ties by word ascending (byte order, i.e. ASCII: digits before letters).
// The body is empty of words: {"words":0,"unique":0,"counts":[]}.
//
// The body is cut into chunks at word boundaries (never inside a word); each
// chunk is lower-cased and counted by its own oneTBB task (tbb::parallel_for;
// std::threads in ThreadSanitizer builds, see wordcount.cc) into its own
// hash map; the maps are merged, sorted and serialized on the
// calling thread. Every allocation of that work comes from the memory the
// caller gives, which the tasks use concurrently: a SharedArena (arena mode),
// or the request's memory resource with every call serialized by a mutex
// (malloc mode: the server's per-request counting resource over the heap,
// which counts and caps each allocation but is not thread-safe itself).
//
// Thread-safety: WordCountJson may run on many threads at once; each call
// joins its tasks before it returns (or throws).
#ifndef SERVER_DEMO_WORDCOUNT_H_
#define SERVER_DEMO_WORDCOUNT_H_

#include <cstddef>
#include <memory_resource>

#include "absl/strings/string_view.h"

namespace arena {
class SharedArena;
}  // namespace arena

namespace server_demo {

// At most this many chunks (the `chunks` query parameter of the route).
inline constexpr std::size_t kWordCountMaxChunks = 256;

// The default chunk count for `text_size` bytes: one per 16 KiB, 1 to 64.
std::size_t WordCountDefaultChunks(std::size_t text_size);

// Appends the JSON above for `text` to `out`, counting `chunks` chunks in
// parallel; containers use ArenaAllocator<T, SharedArena> over `shared`.
// Throws std::bad_alloc past the arena's max_bytes. `out` is appended to on
// the calling thread only.
// REQUIRES: 1 <= chunks <= kWordCountMaxChunks.
void WordCountJson(absl::string_view text, std::size_t chunks,
                   arena::SharedArena* shared, std::pmr::string* out);

// The same with every container in `memory`, which need not be thread-safe:
// the tasks' calls into it are serialized by a mutex of this call.
void WordCountJson(absl::string_view text, std::size_t chunks,
                   std::pmr::memory_resource* memory, std::pmr::string* out);

}  // namespace server_demo

#endif  // SERVER_DEMO_WORDCOUNT_H_
