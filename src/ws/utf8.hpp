// Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF),
// able to resume in the middle of a code point so a text message can be checked fragment by
// fragment as it arrives.
#pragma once

#include <cstdint>
#include <string_view>

namespace herald::ws {

class Utf8Validator {
 public:
  // Checks more bytes; false as soon as they cannot be part of valid UTF-8.
  bool feed(std::string_view bytes);
  // True when everything fed so far ends on a code point boundary.
  bool complete() const { return state_ == 0; }
  void reset() { state_ = 0; }

 private:
  std::uint32_t state_ = 0;
};

// One-shot check of a complete string.
bool valid_utf8(std::string_view bytes);

}  // namespace herald::ws
