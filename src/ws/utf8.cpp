// Incremental UTF-8 validation for text messages and close reasons.
//
// The validator keeps, between calls, only what the next byte must look like: how many
// continuation bytes are still owed and the range the very next one must fall in. RFC 3629's
// exclusions (overlongs, UTF-16 surrogates, code points past U+10FFFF) all show up as a
// narrower range for the first continuation byte after certain lead bytes, so one range check
// per byte covers every rule.
//
// Invariant: state_ is 0 exactly when the bytes seen so far end on a code point boundary; a
// validator that has rejected input stays rejected (poisoned) until reset().
#include "ws/utf8.hpp"

#include <cstring>

namespace herald::ws {
namespace {

// state_ layout while inside a code point: bits 0-7 lowest allowed next byte, bits 8-15
// highest allowed next byte, bits 16-23 continuation bytes still owed (including the next).
constexpr std::uint32_t pack(std::uint32_t owed, std::uint32_t lo, std::uint32_t hi) {
  return owed << 16 | hi << 8 | lo;
}
constexpr std::uint32_t owed_of(std::uint32_t s) { return s >> 16 & 0xFF; }
constexpr std::uint32_t lo_of(std::uint32_t s) { return s & 0xFF; }
constexpr std::uint32_t hi_of(std::uint32_t s) { return s >> 8 & 0xFF; }

// No packed state has its top byte set, so this can never be mistaken for a real one.
constexpr std::uint32_t poisoned = 0xFFFFFFFF;

// What a lead byte demands of what follows; 0 for a byte that cannot start a code point.
// The narrowed ranges are where RFC 3629 forbids overlongs (E0, F0), surrogates (ED) and
// values above U+10FFFF (F4).
constexpr std::uint32_t after_lead(std::uint8_t b) {
  if (b >= 0xC2 && b <= 0xDF) return pack(1, 0x80, 0xBF);
  if (b == 0xE0) return pack(2, 0xA0, 0xBF);
  if (b == 0xED) return pack(2, 0x80, 0x9F);
  if (b >= 0xE1 && b <= 0xEF) return pack(2, 0x80, 0xBF);
  if (b == 0xF0) return pack(3, 0x90, 0xBF);
  if (b >= 0xF1 && b <= 0xF3) return pack(3, 0x80, 0xBF);
  if (b == 0xF4) return pack(3, 0x80, 0x8F);
  return 0;  // 0x80-0xC1 (stray continuation, overlong 2-byte lead) and 0xF5-0xFF
}

}  // namespace

bool Utf8Validator::feed(std::string_view bytes) {
  if (state_ == poisoned) return false;
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  const auto* end = p + bytes.size();
  std::uint32_t s = state_;
  while (p != end) {
    if (s == 0) {
      // Most text is ASCII: skip it eight bytes at a time.
      while (end - p >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        if (word & 0x8080808080808080ull) break;
        p += 8;
      }
      if (p == end) break;
      std::uint8_t b = *p++;
      if (b < 0x80) continue;
      s = after_lead(b);
      if (s == 0) {
        state_ = poisoned;
        return false;
      }
      continue;
    }
    std::uint8_t b = *p++;
    if (b < lo_of(s) || b > hi_of(s)) {
      state_ = poisoned;
      return false;
    }
    std::uint32_t owed = owed_of(s) - 1;
    s = owed == 0 ? 0 : pack(owed, 0x80, 0xBF);
  }
  state_ = s;
  return true;
}

bool valid_utf8(std::string_view bytes) {
  Utf8Validator v;
  return v.feed(bytes) && v.complete();
}

}  // namespace herald::ws
