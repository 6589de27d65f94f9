// A small strict JSON validator for tests (RFC 8259 grammar; no numbers
// like NaN or Infinity, which is the point: /stats must never emit them).
#ifndef ARENA_TESTS_JSON_CHECK_H_
#define ARENA_TESTS_JSON_CHECK_H_

#include <cctype>
#include <cstddef>
#include <string>

namespace arena_test {

class JsonChecker {
 public:
  static bool Valid(const std::string& s) {
    JsonChecker c(s);
    c.Ws();
    if (!c.Value()) return false;
    c.Ws();
    return c.i_ == s.size();
  }

 private:
  explicit JsonChecker(const std::string& s) : s_(s) {}
  bool Value() {
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '{') return Object();
    if (c == '[') return Array();
    if (c == '"') return String();
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) return Number();
    return Literal("true") || Literal("false") || Literal("null");
  }
  bool Object() {
    ++i_;
    Ws();
    if (Peek('}')) return ++i_, true;
    for (;;) {
      Ws();
      if (!String()) return false;
      Ws();
      if (!Peek(':')) return false;
      ++i_;
      Ws();
      if (!Value()) return false;
      Ws();
      if (Peek('}')) return ++i_, true;
      if (!Peek(',')) return false;
      ++i_;
    }
  }
  bool Array() {
    ++i_;
    Ws();
    if (Peek(']')) return ++i_, true;
    for (;;) {
      Ws();
      if (!Value()) return false;
      Ws();
      if (Peek(']')) return ++i_, true;
      if (!Peek(',')) return false;
      ++i_;
    }
  }
  bool String() {
    if (!Peek('"')) return false;
    for (++i_; i_ < s_.size(); ++i_) {
      if (s_[i_] == '\\') {
        ++i_;
        continue;
      }
      if (static_cast<unsigned char>(s_[i_]) < 0x20) return false;
      if (s_[i_] == '"') return ++i_, true;
    }
    return false;
  }
  bool Number() {
    const std::size_t start = i_;
    if (Peek('-')) ++i_;
    if (!Digits()) return false;
    if (Peek('.')) {
      ++i_;
      if (!Digits()) return false;
    }
    if (Peek('e') || Peek('E')) {
      ++i_;
      if (Peek('+') || Peek('-')) ++i_;
      if (!Digits()) return false;
    }
    return i_ > start;
  }
  bool Digits() {
    const std::size_t start = i_;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    return i_ > start;
  }
  bool Literal(const char* word) {
    const std::string w(word);
    if (s_.compare(i_, w.size(), w) != 0) return false;
    i_ += w.size();
    return true;
  }
  bool Peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
  void Ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  const std::string& s_;
  std::size_t i_ = 0;
};

}  // namespace arena_test

#endif  // ARENA_TESTS_JSON_CHECK_H_
