// Notification ids: "<ms>-<seq>", the form of Redis stream ids, increasing per client.
// Id{} (0-0) means "none" and sorts before every real id.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald {

struct Id {
  std::uint64_t ms = 0;
  std::uint64_t seq = 0;

  bool none() const { return ms == 0 && seq == 0; }
  std::string str() const;
  auto operator<=>(const Id&) const = default;

  // Parses "<ms>-<seq>" (both decimal, no sign, no spaces) or "<ms>" (seq 0).
  static std::optional<Id> parse(std::string_view text);
  // The smallest id greater than this one (the largest id is its own successor).
  Id next() const {
    if (seq != UINT64_MAX) return Id{ms, seq + 1};
    return ms == UINT64_MAX ? *this : Id{ms + 1, 0};
  }
  // The id a new entry gets when the clock says now_ms and the last id is *this.
  Id successor_at(std::uint64_t now_ms) const { return now_ms > ms ? Id{now_ms, 0} : next(); }
};

}  // namespace herald
