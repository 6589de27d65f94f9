#include "server_demo/tune.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "server_demo/stats_format.h"

namespace server_demo {
namespace {

constexpr double kPackEfficiency = 0.9;  // usable share of a block (header, tails)
constexpr std::size_t kMinBlock = 8 * 1024;
constexpr std::size_t kMaxBlock = 2 * 1024 * 1024;
constexpr double kMinSaving = 0.05;

// A bucket's representative value: the middle of its range, capped at max.
double BucketValue(const arena::Histogram& h, int i) {
  if (i == 0) return 0;
  const double low = static_cast<double>(arena::Histogram::UpperBound(i - 1)) + 1;
  const double high = static_cast<double>(arena::Histogram::UpperBound(i));
  return std::min((low + high) / 2, static_cast<double>(h.max));
}

std::size_t BlocksFor(double small_bytes, std::size_t block) {
  if (small_bytes <= 0) return 0;
  return static_cast<std::size_t>(std::ceil(small_bytes / (kPackEfficiency * block)));
}

// Mean over requests of the blocks each fills, and of the bytes it holds
// when a first reservation takes at least `hint_blocks`.
double MeanBlocks(const arena::Histogram& h, std::size_t block) {
  if (h.count == 0) return 0;
  double total = 0;
  for (int i = 0; i < arena::Histogram::kBuckets; ++i) {
    if (h.buckets[i] != 0) total += h.buckets[i] * double(BlocksFor(BucketValue(h, i), block));
  }
  return total / h.count;
}

double MeanHeld(const arena::Histogram& h, std::size_t block, std::size_t hint_blocks) {
  if (h.count == 0) return 0;
  double total = 0;
  for (int i = 0; i < arena::Histogram::kBuckets; ++i) {
    if (h.buckets[i] == 0) continue;
    const std::size_t need = BlocksFor(BucketValue(h, i), block);
    total += h.buckets[i] * double(need == 0 ? 0 : std::max(need, hint_blocks)) * block;
  }
  return total / h.count;
}

std::size_t HintBlocks(std::size_t hint, std::size_t block) {
  return hint <= block ? 1 : (hint + block - 1) / block;
}

std::string Blocks(std::size_t n, std::size_t block) {
  return absl::StrCat(n, n == 1 ? " block" : " blocks", " of ", HumanBytes(block));
}

std::string Percent(double part, double whole) {
  return whole <= 0 ? "n/a" : absl::StrFormat("%.1f%%", 100.0 * part / whole);
}

}  // namespace

TuneResult Recommend(const TuneInput& in) {
  TuneResult out;
  out.config = in.base;
  const arena::Config& base = in.base;
  const arena::Histogram& small = in.small_bytes;
  const double concurrency = std::max(1, in.concurrency);
  const double budget = in.memory_budget * in.peak_rss_bytes;
  const double large = in.large_allocations.Mean();
  out.slow_paths_before = in.slow_paths.Mean();
  const std::size_t b0 = base.block_size;
  const std::size_t h0 = HintBlocks(base.first_block_hint, b0);
  const double modeled_base = MeanBlocks(small, b0) + large;
  auto est_slow = [&](std::size_t block) {
    return std::max(0.0, out.slow_paths_before + MeanBlocks(small, block) + large - modeled_base);
  };
  const double held_base = MeanHeld(small, b0, h0);
  auto extra = [&](std::size_t block, std::size_t hint_blocks) {
    return concurrency * (MeanHeld(small, block, hint_blocks) - held_base);
  };
  const std::uint64_t p90 = small.Percentile(0.9);
  const std::uint64_t p99 = small.Percentile(0.99);
  // The share of requests that fill more than one block of `block`.
  auto share_over_one = [&](std::size_t block) {
    std::uint64_t n = 0;
    for (int i = 0; i < arena::Histogram::kBuckets; ++i) {
      if (small.buckets[i] != 0 && BlocksFor(BucketValue(small, i), block) > 1) {
        n += small.buckets[i];
      }
    }
    return small.count == 0 ? 0.0 : double(n) / small.count;
  };

  if (small.count == 0) {
    out.items.push_back({"block_size", TomlBytes(b0),
                         "no requests were measured: nothing to recommend", false});
    out.slow_paths_after = out.slow_paths_before;
    return out;
  }

  // block_size: the fewest slow paths within the budget, then the least memory.
  std::size_t best = b0;
  double best_slow = est_slow(b0), best_extra = 0;
  std::vector<std::size_t> candidates;
  for (std::size_t b = std::max<std::size_t>(kMinBlock, 2 * base.large_threshold);
       b <= kMaxBlock; b *= 2) {
    if ((b & (b - 1)) == 0) candidates.push_back(b);
  }
  double min_slow = best_slow;
  for (std::size_t b : candidates) {
    if (extra(b, h0) <= budget) min_slow = std::min(min_slow, est_slow(b));
  }
  for (std::size_t b : candidates) {
    const double s = est_slow(b), e = extra(b, h0);
    if (e > budget || s > min_slow * 1.01 + 1e-3) continue;
    if (e < best_extra || best_slow > min_slow * 1.01 + 1e-3) {
      best = b;
      best_slow = s;
      best_extra = e;
    }
  }
  const double slow0 = est_slow(b0);
  const bool saves_slow = slow0 - best_slow >= kMinSaving * slow0 && slow0 > 0;
  const bool saves_memory = -best_extra >= budget && best_slow <= slow0 + 1e-3;
  if (best != b0 && (saves_slow || saves_memory)) {
    out.config.block_size = best;
    out.items.push_back(
        {"block_size", TomlBytes(best),
         absl::StrCat(Percent(share_over_one(b0), 1), " of requests fill more than one ",
                      HumanBytes(b0), " block (p99 of small-allocation bytes per request is ",
                      HumanBytes(p99), ", ", Blocks(BlocksFor(p99, b0), b0),
                      "): block_size = ", HumanBytes(best), " fills ", BlocksFor(p99, best),
                      "; slow paths per request ",
                      absl::StrFormat("%.2f -> %.2f", out.slow_paths_before, best_slow),
                      " (est.), held memory ", best_extra >= 0 ? "+" : "-",
                      HumanBytes(std::fabs(best_extra)), " for ", in.concurrency,
                      " requests in flight (", Percent(std::fabs(best_extra), in.peak_rss_bytes),
                      " of peak RSS ", HumanBytes(in.peak_rss_bytes), ")"),
         true});
  } else {
    best = b0;
    best_slow = slow0;
    best_extra = 0;
    std::string alternative;
    double alt_slow = slow0;
    std::size_t alt = b0;
    for (std::size_t b : candidates) {
      if (est_slow(b) < alt_slow) {
        alt_slow = est_slow(b);
        alt = b;
      }
    }
    if (alt != b0) {
      alternative = absl::StrCat("; the fewest, ", HumanBytes(alt), " blocks (",
                                 absl::StrFormat("%.2f", alt_slow), " slow paths), would hold ",
                                 HumanBytes(std::max(0.0, extra(alt, h0))), " more, over the ",
                                 Percent(in.memory_budget, 1), " budget of peak RSS");
    }
    out.items.push_back(
        {"block_size", TomlBytes(b0),
         absl::StrCat(Percent(share_over_one(b0), 1), " of requests fill more than one ",
                      HumanBytes(b0), " block (p90 of small-allocation bytes per request is ",
                      HumanBytes(p90), "): no block size saves ",
                      Percent(kMinSaving, 1), " of the ",
                      absl::StrFormat("%.2f", out.slow_paths_before),
                      " slow paths per request within the memory budget", alternative),
         false});
  }
  const std::size_t block = out.config.block_size;

  // The caches and batches count blocks: keep their bytes when blocks grow.
  std::size_t cache = base.thread_cache_blocks;
  std::string cache_reason;
  if (block != b0) {
    cache = std::max<std::size_t>(1, base.thread_cache_blocks * b0 / block);
    cache_reason = absl::StrCat("scaled with block_size: keeps each thread's cache at ",
                                HumanBytes(double(base.thread_cache_blocks) * b0));
  }
  if (in.thread_cache_misses_per_request > 0.05) {
    const double per_thread = in.peak_live_request_bytes / std::max(1, in.threads);
    const std::size_t want =
        static_cast<std::size_t>(std::ceil(1.5 * per_thread / (kPackEfficiency * block)));
    if (want > cache) {
      cache = std::min<std::size_t>(want, 4096);
      cache_reason = absl::StrCat(
          "the thread cache missed ", absl::StrFormat("%.2f", in.thread_cache_misses_per_request),
          " times per request: ", cache, " blocks hold 1.5x the peak live request bytes of a ",
          "worker (", HumanBytes(per_thread), ")");
    }
  }
  const std::size_t batch = std::min(base.depot_batch_blocks, std::max<std::size_t>(cache, 1));
  cache = std::max(cache, batch);
  out.config.thread_cache_blocks = cache;
  out.config.depot_batch_blocks = batch;
  if (cache_reason.empty()) {
    cache_reason = absl::StrCat("the thread cache missed ",
                                absl::StrFormat("%.3f", in.thread_cache_misses_per_request),
                                " times per request: it holds the working set");
  }
  out.items.push_back({"thread_cache_blocks", absl::StrCat(cache), cache_reason,
                       cache != base.thread_cache_blocks});
  if (batch != base.depot_batch_blocks) {
    out.items.push_back({"depot_batch_blocks", absl::StrCat(batch),
                         "at most thread_cache_blocks (the rule of the config)", true});
  }

  // first_block_hint: the largest percentile (above one block) that fits.
  std::size_t hint_blocks = 1;
  std::string hint_reason;
  const double budget_left = budget - std::max(0.0, best_extra);
  for (double q : {0.9, 0.75, 0.5}) {
    const std::uint64_t at = small.Percentile(q);
    const std::size_t need = BlocksFor(at, block);
    if (need <= 1) {
      if (hint_reason.empty()) {
        hint_reason = absl::StrCat("p", int(q * 100), " of small-allocation bytes per request is ",
                                   HumanBytes(at), ", within one ", HumanBytes(block),
                                   " block: a first reservation of one block serves it");
      }
      continue;
    }
    const double cost = concurrency * (MeanHeld(small, block, need) - MeanHeld(small, block, 1));
    if (cost <= budget_left) {
      hint_blocks = need;
      hint_reason = absl::StrCat(
          "p", int(q * 100), " of small-allocation bytes per request is ", HumanBytes(at),
          ": first_block_hint = ", HumanBytes(double(need) * block),
          " takes its ", need, " blocks from the thread cache in one trip instead of ", need,
          " (each block still starts with a slow path); spare blocks of smaller requests hold ",
          HumanBytes(cost), " more in flight");
      break;
    }
    hint_reason = absl::StrCat("p", int(q * 100), " of small-allocation bytes per request is ",
                               HumanBytes(at), ": reserving ", Blocks(need, block),
                               " for every request would hold ", HumanBytes(cost),
                               " more in flight, over the budget");
  }
  const std::size_t hint = hint_blocks <= 1 ? 0 : hint_blocks * block;
  out.config.first_block_hint = hint;
  out.items.push_back({"first_block_hint", TomlBytes(hint), hint_reason,
                       hint != base.first_block_hint});
  const std::size_t adaptive_blocks =
      std::max<std::size_t>(1, BlocksFor(small.Percentile(base.adaptive_percentile / 100.0),
                                         block));
  const double adaptive_cost =
      concurrency * (MeanHeld(small, block, adaptive_blocks) - MeanHeld(small, block, 1));
  out.items.push_back(
      {"adaptive_first_block", base.adaptive_first_block ? "true" : "false",
       adaptive_blocks <= 1
           ? absl::StrCat("kept: on this mix it would reserve one block (p",
                          base.adaptive_percentile, " of the blocks per request)")
           : absl::StrCat("kept: on this mix it would reserve ", Blocks(adaptive_blocks, block),
                          " for every request (p", base.adaptive_percentile,
                          " of the blocks per request), holding ", HumanBytes(adaptive_cost),
                          " more in flight and saving no slow path (each block still starts "
                          "with one)"),
       false});

  out.slow_paths_after = best_slow;
  out.extra_bytes = std::max(0.0, best_extra) +
                    concurrency * (MeanHeld(small, block, std::max<std::size_t>(hint_blocks, 1)) -
                                   MeanHeld(small, block, 1));
  if (!arena::ValidateConfig(out.config).ok()) {
    // Never print what would not load: fall back to the base.
    out.config = base;
    out.items.clear();
    out.items.push_back({"block_size", TomlBytes(b0),
                         "the recommendation did not validate; keeping the base config", false});
    out.slow_paths_after = out.slow_paths_before;
    out.extra_bytes = 0;
  }
  return out;
}

std::string TuneSnippet(const arena::Config& config, const std::vector<std::string>& comment) {
  std::string out;
  for (const std::string& line : comment) absl::StrAppend(&out, "# ", line, "\n");
  for (absl::string_view line : absl::StrSplit(arena::ConfigToToml(config), '\n')) {
    if (line.empty()) continue;
    const std::size_t eq = line.find(" = ");
    std::uint64_t value = 0;
    if (eq != absl::string_view::npos) {
      const absl::string_view key = line.substr(0, eq);
      const bool size = absl::EndsWith(key, "_bytes") || absl::EndsWith(key, "_size") ||
                        absl::EndsWith(key, "_threshold") || absl::EndsWith(key, "_hint");
      if (size && absl::SimpleAtoi(line.substr(eq + 3), &value)) {
        absl::StrAppend(&out, key, " = ", TomlBytes(value), "\n");
        continue;
      }
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

}  // namespace server_demo
