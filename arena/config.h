// Config: every knob of the library, with its default, its rule, and loaders.
//
// Sources, later wins: the defaults below, a TOML file or string (the
// `[arena]` table; other tables belong to the embedding program and are
// ignored here; an unknown key inside `[arena]` is an error), then `ARENA_*`
// environment variables (`ARENA_BLOCK_SIZE=128KiB`). Sizes take units: B,
// KiB, MiB, GiB, TiB (K, KB, M, MB, ... are read as the same binary units).
// Every error names the key, the value and the rule it breaks.
//
// A Config is a plain value; the loaders are thread-compatible (no shared
// state). The process-wide runtime takes a copy in arena::Configure.
#ifndef ARENA_CONFIG_H_
#define ARENA_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace arena {

struct Config {
  // Size and alignment of every block: a power of two, 8 KiB to 64 MiB.
  std::size_t block_size = 64 * 1024;
  // Allocations larger than this get a dedicated mapping, given back at
  // Reset. 1 KiB to block_size / 2.
  std::size_t large_threshold = 32 * 1024;
  // Most free blocks one thread's cache keeps: at least depot_batch_blocks.
  std::size_t thread_cache_blocks = 32;
  // Blocks moved between a thread cache and the depot in one operation:
  // 1 to 1024, and not more than thread_cache_blocks.
  std::size_t depot_batch_blocks = 8;
  // Committed free bytes the depot keeps ready; batches beyond it are
  // decommitted at once. 0 keeps nothing hot.
  std::size_t depot_max_bytes = 256 * 1024 * 1024;
  // A depot batch (or a thread cache) idle this long is decommitted by the
  // release thread or ReleaseIdleMemory(). 0 to 86400000 (one day).
  std::int64_t release_delay_ms = 1000;
  // Start a background thread that releases idle memory.
  bool background_release = false;
  // How often the background thread wakes: 1 to 3600000.
  std::int64_t release_interval_ms = 250;
  // Cap on bytes mapped by the process-wide runtime; 0: none. When set, at
  // least block_size. Past it Allocate throws std::bad_alloc.
  std::size_t max_total_bytes = 0;
  // Freed large mappings kept for reuse by later large allocations (one of
  // at least the size and at most twice it); idle ones go back after
  // release_delay_ms. 0 unmaps every large mapping at once.
  std::size_t large_cache_bytes = 16 * 1024 * 1024;
  // Bytes of blocks mapped into the depot when the runtime starts, so that
  // the first requests find memory ready. At most depot_max_bytes and
  // max_total_bytes (when set).
  std::size_t prewarm_bytes = 0;
  // Bytes a new (or reset) arena takes at its first slow path, in whole
  // blocks, unless its ArenaOptions::first_block_hint says otherwise: so that
  // a request known to be large does not go back to the cache once per
  // block. 0: one block. At most 1GiB, and at most max_total_bytes when set.
  std::size_t first_block_hint = 0;
  static constexpr std::size_t kMaxFirstBlockHint = std::size_t{1} << 30;
  // Size that first reservation from what recent requests on the arena's
  // thread held: each thread keeps its last 256 requests' block counts and
  // a new or reset arena takes their adaptive_percentile-th percentile
  // (never below one block, never past the arena's max_bytes). Overrides
  // first_block_hint once a thread has seen 16 requests. Per arena:
  // ArenaOptions::adaptive_first_block.
  bool adaptive_first_block = false;
  // The percentile adaptive_first_block takes: 1 to 100.
  std::size_t adaptive_percentile = 90;

  friend bool operator==(const Config& a, const Config& b);
  friend bool operator!=(const Config& a, const Config& b) { return !(a == b); }
};

// OK, or InvalidArgument naming the first key that breaks its rule.
absl::Status ValidateConfig(const Config& config);

// Parses TOML text; keys of its `[arena]` table override `base`. The result
// is validated. `origin` names the text in errors (a file name).
absl::StatusOr<Config> ParseConfigToml(absl::string_view toml_text,
                                       const Config& base = Config(),
                                       absl::string_view origin = "<string>");

// Reads and parses a TOML file as ParseConfigToml does.
absl::StatusOr<Config> LoadConfigFile(const std::string& path,
                                      const Config& base = Config());

// Applies every set `ARENA_<KEY>` environment variable (key upper-cased) to
// `base`, then validates. An `ARENA_` variable naming no key is an error.
absl::StatusOr<Config> ApplyEnvironment(const Config& base);

// Sets one key from its text form (as in the environment or a flag).
// Does not validate the whole config.
absl::Status SetConfigKey(Config* config, absl::string_view key,
                          absl::string_view value);

// The key names, in declaration order.
std::vector<std::string> ConfigKeys();

// "65536" or "64KiB" or "1 MiB" -> bytes. Errors say what was wrong.
absl::StatusOr<std::size_t> ParseByteSize(absl::string_view text);

// The config as an `[arena]` TOML table, one `key = value` line per knob.
std::string ConfigToToml(const Config& config);

}  // namespace arena

#endif  // ARENA_CONFIG_H_
