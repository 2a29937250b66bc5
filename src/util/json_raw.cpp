#include "util/json_raw.hpp"

namespace herald {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::size_t skip_ws(std::string_view s, std::size_t i) {
  while (i < s.size() && is_ws(s[i])) ++i;
  return i;
}

// End of the string starting at s[i] == '"' (one past the closing quote), npos if unterminated.
std::size_t skip_string(std::string_view s, std::size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') ++i;
    else if (s[i] == '"') return i + 1;
  }
  return std::string_view::npos;
}

// End of the value starting at s[i] (one past its last character), npos if malformed.
std::size_t skip_value(std::string_view s, std::size_t i) {
  if (i >= s.size()) return std::string_view::npos;
  char c = s[i];
  if (c == '"') return skip_string(s, i);
  if (c == '{' || c == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      char d = s[i];
      if (d == '"') {
        i = skip_string(s, i);
        if (i == std::string_view::npos) return i;
        --i;
      } else if (d == '{' || d == '[') {
        ++depth;
      } else if (d == '}' || d == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return std::string_view::npos;
  }
  while (i < s.size() && !is_ws(s[i]) && s[i] != ',' && s[i] != '}' && s[i] != ']') ++i;
  return i;
}

}  // namespace

std::optional<std::string_view> raw_member(std::string_view s, std::string_view key) {
  auto i = skip_ws(s, 0);
  if (i >= s.size() || s[i] != '{') return std::nullopt;
  std::optional<std::string_view> found;
  i = skip_ws(s, i + 1);
  if (i < s.size() && s[i] == '}') return std::nullopt;
  while (i < s.size()) {
    if (s[i] != '"') return std::nullopt;
    auto key_end = skip_string(s, i);
    if (key_end == std::string_view::npos) return std::nullopt;
    auto k = s.substr(i + 1, key_end - i - 2);
    i = skip_ws(s, key_end);
    if (i >= s.size() || s[i] != ':') return std::nullopt;
    i = skip_ws(s, i + 1);
    auto end = skip_value(s, i);
    if (end == std::string_view::npos) return std::nullopt;
    if (k == key) {
      if (found) return std::nullopt;  // duplicate: leave it to the parser's rules
      found = s.substr(i, end - i);
    } else if (k.find('\\') != std::string_view::npos) {
      return std::nullopt;  // an escaped key might spell `key`
    }
    i = skip_ws(s, end);
    if (i < s.size() && s[i] == ',') {
      i = skip_ws(s, i + 1);
      continue;
    }
    if (i < s.size() && s[i] == '}') return found;
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<std::vector<std::string_view>> raw_elements(std::string_view s) {
  auto i = skip_ws(s, 0);
  if (i >= s.size() || s[i] != '[') return std::nullopt;
  std::vector<std::string_view> out;
  i = skip_ws(s, i + 1);
  if (i < s.size() && s[i] == ']') return out;
  while (i < s.size()) {
    auto end = skip_value(s, i);
    if (end == std::string_view::npos) return std::nullopt;
    out.push_back(s.substr(i, end - i));
    i = skip_ws(s, end);
    if (i < s.size() && s[i] == ',') {
      i = skip_ws(s, i + 1);
      continue;
    }
    if (i < s.size() && s[i] == ']') return out;
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace herald
