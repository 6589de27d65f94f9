#include "server_demo/server_config.h"

#include <unistd.h>

#include <cstdlib>

#include <toml++/toml.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace server_demo {
namespace {

absl::Status KeyError(absl::string_view key, absl::string_view value,
                      absl::string_view rule) {
  return absl::InvalidArgumentError(
      absl::StrCat("server config key '", key, "' = ", value, ": ", rule));
}

template <class T>
absl::Status ReadInteger(const toml::node& node, absl::string_view key, T* out,
                         bool sizes) {
  if (const auto* i = node.as_integer()) {
    if (i->get() < 0) return KeyError(key, absl::StrCat(i->get()), "must not be negative");
    *out = static_cast<T>(i->get());
    return absl::OkStatus();
  }
  if (const auto* s = node.as_string(); s != nullptr && sizes) {
    absl::StatusOr<std::size_t> bytes = arena::ParseByteSize(s->get());
    if (!bytes.ok()) return KeyError(key, absl::StrCat("\"", s->get(), "\""), bytes.status().message());
    *out = static_cast<T>(*bytes);
    return absl::OkStatus();
  }
  return KeyError(key, "(wrong type)", sizes ? "must be an integer or a size like \"8KiB\""
                                             : "must be an integer");
}

absl::Status ReadString(const toml::node& node, absl::string_view key, std::string* out) {
  if (const auto* s = node.as_string()) {
    *out = s->get();
    return absl::OkStatus();
  }
  return KeyError(key, "(wrong type)", "must be a string");
}

}  // namespace

absl::Status ValidateServerConfig(const ServerConfig& c) {
  if (c.port < 0 || c.port > 65535) {
    return KeyError("port", absl::StrCat(c.port), "must be from 0 to 65535");
  }
  if (c.threads < 0 || c.threads > 256) {
    return KeyError("threads", absl::StrCat(c.threads), "must be from 0 (cores) to 256");
  }
  if (c.allocator != "arena" && c.allocator != "malloc") {
    return KeyError("allocator", absl::StrCat("\"", c.allocator, "\""),
                    "must be \"arena\" or \"malloc\"");
  }
  if (c.arena_scope != "connection" && c.arena_scope != "request") {
    return KeyError("arena_scope", absl::StrCat("\"", c.arena_scope, "\""),
                    "must be \"connection\" or \"request\"");
  }
  if (c.max_header_bytes < 256 || c.max_header_bytes > (1 << 20)) {
    return KeyError("max_header_bytes", absl::StrCat(c.max_header_bytes),
                    "must be from 256 to 1MiB");
  }
  if (c.max_body_bytes > (std::size_t{1} << 30)) {
    return KeyError("max_body_bytes", absl::StrCat(c.max_body_bytes), "must be at most 1GiB");
  }
  if (c.max_connections < 1) {
    return KeyError("max_connections", absl::StrCat(c.max_connections), "must be at least 1");
  }
  if (c.idle_timeout_ms < 1) {
    return KeyError("idle_timeout_ms", absl::StrCat(c.idle_timeout_ms), "must be at least 1");
  }
  if (c.header_timeout_ms < 1) {
    return KeyError("header_timeout_ms", absl::StrCat(c.header_timeout_ms), "must be at least 1");
  }
  if (c.body_rate_window_ms < 1) {
    return KeyError("body_rate_window_ms", absl::StrCat(c.body_rate_window_ms),
                    "must be at least 1");
  }
  if (c.min_body_rate > (std::size_t{1} << 30)) {
    return KeyError("min_body_rate", absl::StrCat(c.min_body_rate),
                    "must be from 0 (no check) to 1GiB per second");
  }
  if (c.send_timeout_ms < 1) {
    return KeyError("send_timeout_ms", absl::StrCat(c.send_timeout_ms), "must be at least 1");
  }
  if (c.max_pinned_bytes < (1 << 20)) {
    return KeyError("max_pinned_bytes", absl::StrCat(c.max_pinned_bytes),
                    "must be at least 1MiB");
  }
  if (c.shutdown_deadline_ms < 0) {
    return KeyError("shutdown_deadline_ms", absl::StrCat(c.shutdown_deadline_ms),
                    "must not be negative");
  }
  if (c.request_memory_limit < 64 * 1024) {
    return KeyError("request_memory_limit", absl::StrCat(c.request_memory_limit),
                    "must be at least 64KiB");
  }
  if (c.max_pending_output < 4096) {
    return KeyError("max_pending_output", absl::StrCat(c.max_pending_output),
                    "must be at least 4KiB");
  }
  return absl::OkStatus();
}

absl::StatusOr<DemoConfig> ParseDemoConfig(absl::string_view toml_text,
                                           const DemoConfig& base,
                                           absl::string_view origin) {
  DemoConfig out = base;
  absl::StatusOr<arena::Config> arena_config =
      arena::ParseConfigToml(toml_text, base.arena, origin);
  if (!arena_config.ok()) return arena_config.status();
  out.arena = *arena_config;
  toml::table root = toml::parse(std::string_view(toml_text.data(), toml_text.size()));
  const toml::node* section = root.get("server");
  if (section == nullptr) return out;
  const toml::table* table = section->as_table();
  if (table == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": 'server' must be a table"));
  }
  ServerConfig& s = out.server;
  for (const auto& [k, node] : *table) {
    const std::string key(k.str());
    absl::Status st;
    if (key == "bind") st = ReadString(node, key, &s.bind);
    else if (key == "port") st = ReadInteger(node, key, &s.port, false);
    else if (key == "threads") st = ReadInteger(node, key, &s.threads, false);
    else if (key == "allocator") st = ReadString(node, key, &s.allocator);
    else if (key == "arena_scope") st = ReadString(node, key, &s.arena_scope);
    else if (key == "max_header_bytes") st = ReadInteger(node, key, &s.max_header_bytes, true);
    else if (key == "max_body_bytes") st = ReadInteger(node, key, &s.max_body_bytes, true);
    else if (key == "max_connections") st = ReadInteger(node, key, &s.max_connections, false);
    else if (key == "idle_timeout_ms") st = ReadInteger(node, key, &s.idle_timeout_ms, false);
    else if (key == "header_timeout_ms") st = ReadInteger(node, key, &s.header_timeout_ms, false);
    else if (key == "min_body_rate") st = ReadInteger(node, key, &s.min_body_rate, true);
    else if (key == "body_rate_window_ms") st = ReadInteger(node, key, &s.body_rate_window_ms, false);
    else if (key == "send_timeout_ms") st = ReadInteger(node, key, &s.send_timeout_ms, false);
    else if (key == "max_pinned_bytes") st = ReadInteger(node, key, &s.max_pinned_bytes, true);
    else if (key == "shutdown_deadline_ms") st = ReadInteger(node, key, &s.shutdown_deadline_ms, false);
    else if (key == "json_max_items") st = ReadInteger(node, key, &s.json_max_items, false);
    else if (key == "request_memory_limit") st = ReadInteger(node, key, &s.request_memory_limit, true);
    else if (key == "max_pending_output") st = ReadInteger(node, key, &s.max_pending_output, true);
    else {
      st = absl::InvalidArgumentError(absl::StrCat(
          "unknown key '", key,
          "' in [server] (known keys: bind, port, threads, allocator, arena_scope, "
          "max_header_bytes, max_body_bytes, max_connections, idle_timeout_ms, "
          "header_timeout_ms, min_body_rate, body_rate_window_ms, send_timeout_ms, "
          "shutdown_deadline_ms, json_max_items, request_memory_limit, "
          "max_pending_output, max_pinned_bytes)"));
    }
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ":", k.source().begin.line, ": ", st.message()));
    }
  }
  absl::Status valid = ValidateServerConfig(s);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", valid.message()));
  }
  return out;
}

absl::StatusOr<std::string> WriteTempConfigFile(absl::string_view prefix,
                                                absl::string_view text) {
  const char* tmp = std::getenv("TMPDIR");
  std::string path =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/", prefix, "XXXXXX");
  const int fd = mkstemp(path.data());
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", path));
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!ok) {
    unlink(path.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  return path;
}

}  // namespace server_demo
