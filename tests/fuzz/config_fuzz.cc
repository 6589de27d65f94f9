// Fuzz target: the config parsers. The input is tried as TOML text, and as
// environment-style `KEY=VALUE` lines through SetConfigKey and
// ValidateConfig. Checks: no crash or exception escapes; every error names
// what was wrong (a non-empty message); and every config that parses and
// validates prints (ConfigToToml) to TOML that parses back to an equal one.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_split.h"
#include "arena/config.h"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "config_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

void CheckRoundTrip(const arena::Config& c) {
  const std::string toml = arena::ConfigToToml(c);
  absl::StatusOr<arena::Config> back = arena::ParseConfigToml(toml);
  if (!back.ok()) Fail("printed config does not parse", toml);
  if (*back != c) Fail("printed config parses to another config", toml);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<arena::Config> parsed = arena::ParseConfigToml(text);
  if (parsed.ok()) {
    if (!arena::ValidateConfig(*parsed).ok()) Fail("parsed but invalid", text);
    CheckRoundTrip(*parsed);
  } else if (parsed.status().message().empty()) {
    Fail("error without a message", text);
  }
  arena::Config c;
  bool all_set = true;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    const auto eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    absl::Status s = arena::SetConfigKey(&c, line.substr(0, eq), line.substr(eq + 1));
    if (!s.ok()) {
      all_set = false;
      if (s.message().empty()) Fail("SetConfigKey error without a message", text);
    }
  }
  if (all_set && arena::ValidateConfig(c).ok()) CheckRoundTrip(c);
  return 0;
}
