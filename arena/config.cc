#include "arena/config.h"

#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include <toml++/toml.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace arena {
namespace {

enum class Kind { kBytes, kCount, kMillis, kBool };

// The largest size or count a config holds: TOML's largest integer.
constexpr std::uint64_t kMaxConfigInteger =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

// One row per knob: the single place that names a key.
struct KeySpec {
  const char* name;
  Kind kind;
  std::size_t Config::*size_field;
  std::int64_t Config::*int_field;
  bool Config::*bool_field;
};

constexpr KeySpec kKeys[] = {
    {"block_size", Kind::kBytes, &Config::block_size, nullptr, nullptr},
    {"large_threshold", Kind::kBytes, &Config::large_threshold, nullptr, nullptr},
    {"thread_cache_blocks", Kind::kCount, &Config::thread_cache_blocks, nullptr,
     nullptr},
    {"depot_batch_blocks", Kind::kCount, &Config::depot_batch_blocks, nullptr,
     nullptr},
    {"depot_max_bytes", Kind::kBytes, &Config::depot_max_bytes, nullptr, nullptr},
    {"release_delay_ms", Kind::kMillis, nullptr, &Config::release_delay_ms,
     nullptr},
    {"background_release", Kind::kBool, nullptr, nullptr,
     &Config::background_release},
    {"release_interval_ms", Kind::kMillis, nullptr, &Config::release_interval_ms,
     nullptr},
    {"max_total_bytes", Kind::kBytes, &Config::max_total_bytes, nullptr, nullptr},
    {"large_cache_bytes", Kind::kBytes, &Config::large_cache_bytes, nullptr, nullptr},
    {"prewarm_bytes", Kind::kBytes, &Config::prewarm_bytes, nullptr, nullptr},
    {"first_block_hint", Kind::kBytes, &Config::first_block_hint, nullptr,
     nullptr},
    {"adaptive_first_block", Kind::kBool, nullptr, nullptr,
     &Config::adaptive_first_block},
    {"adaptive_percentile", Kind::kCount, &Config::adaptive_percentile, nullptr,
     nullptr},
};

const KeySpec* FindKey(absl::string_view name) {
  for (const KeySpec& spec : kKeys) {
    if (name == spec.name) return &spec;
  }
  return nullptr;
}

std::string KnownKeys() { return absl::StrJoin(ConfigKeys(), ", "); }

absl::Status KeyError(absl::string_view key, absl::string_view value,
                      absl::string_view rule) {
  return absl::InvalidArgumentError(
      absl::StrCat("arena config key '", key, "' = ", value, ": ", rule));
}

bool IsPowerOfTwo(std::size_t x) { return x != 0 && (x & (x - 1)) == 0; }

absl::Status SetFromText(Config* config, const KeySpec& spec,
                         absl::string_view value) {
  const absl::string_view v = absl::StripAsciiWhitespace(value);
  switch (spec.kind) {
    case Kind::kBytes: {
      absl::StatusOr<std::size_t> bytes = ParseByteSize(v);
      if (!bytes.ok()) {
        return KeyError(spec.name, absl::StrCat("\"", value, "\""),
                        bytes.status().message());
      }
      config->*spec.size_field = *bytes;
      return absl::OkStatus();
    }
    case Kind::kCount: {
      std::uint64_t n;
      if (!absl::SimpleAtoi(v, &n)) {
        return KeyError(spec.name, absl::StrCat("\"", value, "\""),
                        "must be a non-negative integer");
      }
      config->*spec.size_field = static_cast<std::size_t>(n);
      return absl::OkStatus();
    }
    case Kind::kMillis: {
      std::int64_t n;
      if (!absl::SimpleAtoi(v, &n)) {
        return KeyError(spec.name, absl::StrCat("\"", value, "\""),
                        "must be an integer number of milliseconds");
      }
      config->*spec.int_field = n;
      return absl::OkStatus();
    }
    case Kind::kBool: {
      const std::string lower = absl::AsciiStrToLower(v);
      if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") {
        config->*spec.bool_field = true;
      } else if (lower == "false" || lower == "0" || lower == "no" ||
                 lower == "off") {
        config->*spec.bool_field = false;
      } else {
        return KeyError(spec.name, absl::StrCat("\"", value, "\""),
                        "must be true or false");
      }
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unreachable");
}

absl::Status SetFromToml(Config* config, const KeySpec& spec,
                         const toml::node& node) {
  if (const auto* s = node.as_string()) {
    if (spec.kind == Kind::kBool) {
      return KeyError(spec.name, absl::StrCat("\"", s->get(), "\""),
                      "must be a TOML boolean (true or false)");
    }
    return SetFromText(config, spec, s->get());
  }
  if (const auto* i = node.as_integer()) {
    const std::int64_t n = i->get();
    switch (spec.kind) {
      case Kind::kBytes:
      case Kind::kCount:
        if (n < 0) return KeyError(spec.name, absl::StrCat(n), "must not be negative");
        config->*spec.size_field = static_cast<std::size_t>(n);
        return absl::OkStatus();
      case Kind::kMillis:
        config->*spec.int_field = n;
        return absl::OkStatus();
      case Kind::kBool:
        return KeyError(spec.name, absl::StrCat(n),
                        "must be a TOML boolean (true or false)");
    }
  }
  if (const auto* b = node.as_boolean()) {
    if (spec.kind != Kind::kBool) {
      return KeyError(spec.name, b->get() ? "true" : "false",
                      "must be a number or a size string, not a boolean");
    }
    config->*spec.bool_field = b->get();
    return absl::OkStatus();
  }
  const char* shown = "a value of another type";
  switch (node.type()) {
    case toml::node_type::table: shown = "a table"; break;
    case toml::node_type::array: shown = "an array"; break;
    case toml::node_type::floating_point: shown = "a floating-point number"; break;
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time: shown = "a date or time"; break;
    default: break;
  }
  return KeyError(spec.name, shown,
                  spec.kind == Kind::kBool
                      ? "must be a boolean"
                      : "must be an integer or a size string like \"64KiB\"");
}

}  // namespace

bool operator==(const Config& a, const Config& b) {
  for (const KeySpec& spec : kKeys) {
    switch (spec.kind) {
      case Kind::kBytes:
      case Kind::kCount:
        if (a.*spec.size_field != b.*spec.size_field) return false;
        break;
      case Kind::kMillis:
        if (a.*spec.int_field != b.*spec.int_field) return false;
        break;
      case Kind::kBool:
        if (a.*spec.bool_field != b.*spec.bool_field) return false;
        break;
    }
  }
  return true;
}

std::vector<std::string> ConfigKeys() {
  std::vector<std::string> keys;
  for (const KeySpec& spec : kKeys) keys.emplace_back(spec.name);
  return keys;
}

absl::StatusOr<std::size_t> ParseByteSize(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  std::size_t digits = 0;
  while (digits < t.size() && absl::ascii_isdigit(t[digits])) ++digits;
  if (digits == 0) {
    return absl::InvalidArgumentError(
        "must be a size: digits with an optional unit (B, KiB, MiB, GiB, TiB)");
  }
  std::uint64_t number;
  if (!absl::SimpleAtoi(t.substr(0, digits), &number)) {
    return absl::InvalidArgumentError(
        absl::StrCat("size is too large (at most ", kMaxConfigInteger, " bytes)"));
  }
  const std::string unit =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(t.substr(digits)));
  std::uint64_t scale;
  if (unit.empty() || unit == "b") {
    scale = 1;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    scale = std::uint64_t{1} << 10;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    scale = std::uint64_t{1} << 20;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    scale = std::uint64_t{1} << 30;
  } else if (unit == "t" || unit == "tb" || unit == "tib") {
    scale = std::uint64_t{1} << 40;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown size unit '", unit, "' (use B, KiB, MiB, GiB or TiB)"));
  }
  // TOML integers are signed 64-bit: a larger size could not be printed back
  // (ConfigToToml) as a config that parses.
  if (number > kMaxConfigInteger / scale) {
    return absl::InvalidArgumentError(
        absl::StrCat("size is too large (at most ", kMaxConfigInteger, " bytes)"));
  }
  return static_cast<std::size_t>(number * scale);
}

absl::Status ValidateConfig(const Config& c) {
  constexpr std::size_t kKiB = 1024, kMiB = 1024 * 1024;
  for (const KeySpec& spec : kKeys) {
    if (spec.size_field != nullptr && c.*spec.size_field > kMaxConfigInteger) {
      return KeyError(spec.name, absl::StrCat(c.*spec.size_field),
                      absl::StrCat("must be at most ", kMaxConfigInteger,
                                   " (the largest TOML integer)"));
    }
  }
  if (!IsPowerOfTwo(c.block_size) || c.block_size < 8 * kKiB ||
      c.block_size > 64 * kMiB) {
    return KeyError("block_size", absl::StrCat(c.block_size),
                    "must be a power of two from 8KiB to 64MiB");
  }
  if (c.large_threshold < kKiB || c.large_threshold > c.block_size / 2) {
    return KeyError("large_threshold", absl::StrCat(c.large_threshold),
                    absl::StrCat("must be from 1KiB to block_size / 2 (",
                                 c.block_size / 2, ")"));
  }
  if (c.depot_batch_blocks < 1 || c.depot_batch_blocks > 1024) {
    return KeyError("depot_batch_blocks", absl::StrCat(c.depot_batch_blocks),
                    "must be from 1 to 1024");
  }
  if (c.thread_cache_blocks < c.depot_batch_blocks ||
      c.thread_cache_blocks > 1024 * 1024) {
    return KeyError(
        "thread_cache_blocks", absl::StrCat(c.thread_cache_blocks),
        absl::StrCat("must be at least depot_batch_blocks (",
                     c.depot_batch_blocks,
                     "): a batch larger than the cache cannot be taken whole, "
                     "and at most 1048576"));
  }
  if (c.release_delay_ms < 0 || c.release_delay_ms > 86400000) {
    return KeyError("release_delay_ms", absl::StrCat(c.release_delay_ms),
                    "must be from 0 to 86400000 (one day)");
  }
  if (c.release_interval_ms < 1 || c.release_interval_ms > 3600000) {
    return KeyError("release_interval_ms", absl::StrCat(c.release_interval_ms),
                    "must be from 1 to 3600000 (one hour)");
  }
  if (c.max_total_bytes != 0 && c.max_total_bytes < c.block_size) {
    return KeyError("max_total_bytes", absl::StrCat(c.max_total_bytes),
                    absl::StrCat("must be 0 (no cap) or at least block_size (",
                                 c.block_size, ")"));
  }
  if (c.prewarm_bytes > c.depot_max_bytes) {
    return KeyError("prewarm_bytes", absl::StrCat(c.prewarm_bytes),
                    absl::StrCat("must not exceed depot_max_bytes (",
                                 c.depot_max_bytes, ")"));
  }
  if (c.max_total_bytes != 0 && c.prewarm_bytes > c.max_total_bytes) {
    return KeyError("prewarm_bytes", absl::StrCat(c.prewarm_bytes),
                    absl::StrCat("must not exceed max_total_bytes (",
                                 c.max_total_bytes, ")"));
  }
  if (c.first_block_hint > Config::kMaxFirstBlockHint) {
    return KeyError("first_block_hint", absl::StrCat(c.first_block_hint),
                    "must be at most 1GiB");
  }
  if (c.max_total_bytes != 0 && c.first_block_hint > c.max_total_bytes) {
    return KeyError("first_block_hint", absl::StrCat(c.first_block_hint),
                    absl::StrCat("must not exceed max_total_bytes (",
                                 c.max_total_bytes, ")"));
  }
  if (c.adaptive_percentile < 1 || c.adaptive_percentile > 100) {
    return KeyError("adaptive_percentile", absl::StrCat(c.adaptive_percentile),
                    "must be from 1 to 100");
  }
  return absl::OkStatus();
}

absl::Status SetConfigKey(Config* config, absl::string_view key,
                          absl::string_view value) {
  const KeySpec* spec = FindKey(key);
  if (spec == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown arena config key '", key, "' (known keys: ", KnownKeys(), ")"));
  }
  return SetFromText(config, *spec, value);
}

absl::StatusOr<Config> ParseConfigToml(absl::string_view toml_text,
                                       const Config& base,
                                       absl::string_view origin) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(toml_text.data(), toml_text.size()),
                       std::string_view(origin.data(), origin.size()));
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ":", where.line, ":", where.column,
                     ": TOML syntax error: ",
                     absl::string_view(e.description().data(),
                                       e.description().size())));
  }
  Config config = base;
  const toml::node* section = root.get("arena");
  if (section != nullptr) {
    const toml::table* table = section->as_table();
    if (table == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ": 'arena' must be a table ([arena])"));
    }
    for (const auto& [key, node] : *table) {
      const absl::string_view name(key.str().data(), key.str().size());
      const KeySpec* spec = FindKey(name);
      if (spec == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(origin, ":", key.source().begin.line,
                         ": unknown key '", name, "' in [arena] (known keys: ",
                         KnownKeys(), ")"));
      }
      absl::Status status = SetFromToml(&config, *spec, node);
      if (!status.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(origin, ":", key.source().begin.line, ": ",
                         status.message()));
      }
    }
  }
  absl::Status valid = ValidateConfig(config);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": ", valid.message()));
  }
  return config;
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path,
                                      const Config& base) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open config file '", path, "'"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseConfigToml(text.str(), base, path);
}

absl::StatusOr<Config> ApplyEnvironment(const Config& base) {
  Config config = base;
  std::vector<std::string> applied;
  for (char** env = environ; env != nullptr && *env != nullptr; ++env) {
    const absl::string_view entry(*env);
    if (!absl::StartsWith(entry, "ARENA_")) continue;
    const std::size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) continue;
    const std::string key = absl::AsciiStrToLower(entry.substr(6, eq - 6));
    const absl::string_view value = entry.substr(eq + 1);
    absl::Status status = SetConfigKey(&config, key, value);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "environment variable ", entry.substr(0, eq), ": ", status.message()));
    }
    applied.emplace_back(entry);
  }
  absl::Status valid = ValidateConfig(config);
  if (!valid.ok() && !applied.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("with environment ", absl::StrJoin(applied, " "), ": ",
                     valid.message()));
  }
  if (!valid.ok()) return valid;
  return config;
}

std::string ConfigToToml(const Config& c) {
  std::string out = "[arena]\n";
  for (const KeySpec& spec : kKeys) {
    switch (spec.kind) {
      case Kind::kBytes:
      case Kind::kCount:
        absl::StrAppend(&out, spec.name, " = ", c.*spec.size_field, "\n");
        break;
      case Kind::kMillis:
        absl::StrAppend(&out, spec.name, " = ", c.*spec.int_field, "\n");
        break;
      case Kind::kBool:
        absl::StrAppend(&out, spec.name, " = ",
                        c.*spec.bool_field ? "true" : "false", "\n");
        break;
    }
  }
  return out;
}

}  // namespace arena
