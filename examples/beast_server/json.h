// The /json answer of examples/beast_server: the same records and the same
// bytes as server_demo's BuildJsonItems (server_demo/handlers.cc), built
// from containers that all take one allocator, so that with
// arena::ArenaAllocator every record, tag and string lives in the
// request's arena and with std::allocator on the heap.
//
// Thread-compatible: a call touches only its arguments. Memory: everything
// comes from `alloc`; the records are freed before BuildJsonItems returns,
// the text is the caller's.
#ifndef EXAMPLES_BEAST_SERVER_JSON_H_
#define EXAMPLES_BEAST_SERVER_JSON_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace beast_server {

template <class Alloc>
using BasicString = std::basic_string<
    char, std::char_traits<char>,
    typename std::allocator_traits<Alloc>::template rebind_alloc<char>>;

template <class T, class Alloc>
using BasicVector =
    std::vector<T, typename std::allocator_traits<Alloc>::template rebind_alloc<T>>;

// server_demo's limits: 400 above this many items.
inline constexpr std::size_t kJsonMaxItems = 50000;

namespace internal {

inline constexpr char kNamePrefix[] = "record-name-with-enough-text-to-leave-sso-";
// The longest record (see server_demo/handlers.cc): reserve once.
inline constexpr std::size_t kJsonRecordMaxBytes = 215;

template <class Alloc>
struct Attribute {
  explicit Attribute(const Alloc& a) : key(a) {}
  BasicString<Alloc> key;
  double value = 0;
};

template <class Alloc>
struct Record {
  explicit Record(const Alloc& a) : name(a), tags(a), attributes(a) {}
  std::int64_t id = 0;
  BasicString<Alloc> name;
  BasicVector<BasicString<Alloc>, Alloc> tags;
  BasicVector<Attribute<Alloc>, Alloc> attributes;
  bool active = false;
};

template <class String>
void AppendFormatted(String* out, const char* format, double v) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), format, v);
  out->append(buf, n);
}

template <class String>
void AppendInt(String* out, long long v) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof(buf), "%lld", v);
  out->append(buf, n);
}

}  // namespace internal

// Appends the JSON array of `items` records to `out`.
template <class Alloc>
void BuildJsonItems(std::size_t items, const Alloc& alloc, BasicString<Alloc>* out) {
  using internal::Attribute;
  using internal::Record;
  static const char* const kTags[] = {"alpha", "beta", "gamma", "delta", "epsilon"};
  BasicVector<Record<Alloc>, Alloc> records(alloc);
  records.reserve(items);
  for (std::size_t i = 0; i < items; ++i) {
    Record<Alloc>& r = records.emplace_back(alloc);
    r.id = static_cast<std::int64_t>(i);
    r.name.reserve(sizeof(internal::kNamePrefix) - 1 + 20);
    r.name.append(internal::kNamePrefix);
    internal::AppendInt(&r.name, static_cast<long long>(i));
    r.tags.reserve(1 + i % 3);
    for (std::size_t t = 0; t < 1 + i % 3; ++t) {
      r.tags.emplace_back(kTags[(i + t) % 5], alloc);
    }
    r.attributes.reserve(2);
    for (int a = 0; a < 2; ++a) {
      Attribute<Alloc>& attr = r.attributes.emplace_back(alloc);
      attr.key.assign(a == 0 ? "weight" : "score");
      attr.value = (i * 0.37) + a;
    }
    r.active = i % 2 == 0;
  }
  out->reserve(out->size() + 2 + items * internal::kJsonRecordMaxBytes);
  out->append("[");
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record<Alloc>& r = records[i];
    if (i != 0) out->append(",");
    out->append("{\"id\":");
    internal::AppendInt(out, r.id);
    out->append(",\"name\":\"");
    out->append(r.name);
    out->append("\",\"tags\":[");
    for (std::size_t t = 0; t < r.tags.size(); ++t) {
      if (t != 0) out->append(",");
      out->append("\"");
      out->append(r.tags[t]);
      out->append("\"");
    }
    out->append("],\"attributes\":{");
    for (std::size_t a = 0; a < r.attributes.size(); ++a) {
      if (a != 0) out->append(",");
      out->append("\"");
      out->append(r.attributes[a].key);
      out->append("\":");
      internal::AppendFormatted(out, "%.6g", r.attributes[a].value);
    }
    out->append("},\"active\":");
    out->append(r.active ? "true" : "false");
    out->append("}");
  }
  out->append("]");
}

}  // namespace beast_server

#endif  // EXAMPLES_BEAST_SERVER_JSON_H_
