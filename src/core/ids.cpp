#include "core/ids.hpp"

#include <charconv>

namespace herald {

std::string Id::str() const {
  char a[24], b[24];
  auto ra = std::to_chars(a, a + sizeof a, ms);
  auto rb = std::to_chars(b, b + sizeof b, seq);
  std::string out(a, ra.ptr);
  out += '-';
  out.append(b, rb.ptr);
  return out;
}

static std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<Id> Id::parse(std::string_view text) {
  auto dash = text.find('-');
  auto ms = parse_u64(text.substr(0, dash));
  if (!ms) return std::nullopt;
  if (dash == std::string_view::npos) return Id{*ms, 0};
  auto seq = parse_u64(text.substr(dash + 1));
  if (!seq) return std::nullopt;
  return Id{*ms, *seq};
}

}  // namespace herald
