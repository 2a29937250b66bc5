// Tests of the incremental UTF-8 validator: the classic boundary and malformation vectors,
// resumption at every split point, and an exhaustive comparison with a plain reference decoder
// written the obvious (slow) way.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ws/utf8.hpp"

namespace herald::ws {
namespace {

// Decodes code point by code point and checks RFC 3629's rules directly.
bool reference_valid(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<std::uint8_t>(s[i]);
    std::size_t len;
    std::uint32_t cp;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b >> 5) == 0x6) {
      len = 2, cp = b & 0x1F;
    } else if ((b >> 4) == 0xE) {
      len = 3, cp = b & 0x0F;
    } else if ((b >> 3) == 0x1E) {
      len = 4, cp = b & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto c = static_cast<std::uint8_t>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = cp << 6 | (c & 0x3F);
    }
    const std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < smallest[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// The UTF-8 form of a scalar value (or of a surrogate, for negative tests).
std::string encode(std::uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | cp >> 6);
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | cp >> 12);
    s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | cp >> 18);
    s += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
    s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

const std::vector<std::string> kValid = {
    "",
    "plain ASCII, longer than one eight-byte word",
    std::string("\0", 1),
    "\x7F",
    "\xC2\x80",                  // U+0080
    "\xDF\xBF",                  // U+07FF
    "\xE0\xA0\x80",              // U+0800
    "\xED\x9F\xBF",              // U+D7FF, just below the surrogates
    "\xEE\x80\x80",              // U+E000, just above them
    "\xEF\xBF\xBF",              // U+FFFF
    "\xF0\x90\x80\x80",          // U+10000
    "\xF0\x9F\x98\x80",          // 😀
    "\xF4\x8F\xBF\xBF",          // U+10FFFF, the last scalar value
    "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5",  // κόσμε
    "mixed \xC3\xA9t\xC3\xA9 \xE2\x82\xAC and \xF0\x9F\x98\x80 after eight ASCII bytes",
};

const std::vector<std::string> kInvalid = {
    "\x80",                      // lone continuation
    "\xBF",
    "abc\x80xyz",
    "\xC0\x80",                  // overlong NUL
    "\xC1\xBF",                  // overlong U+007F
    "\xE0\x80\x80",              // overlong
    "\xE0\x9F\xBF",              // overlong U+07FF
    "\xF0\x80\x80\x80",          // overlong
    "\xF0\x8F\xBF\xBF",          // overlong U+FFFF
    "\xED\xA0\x80",              // U+D800, a surrogate
    "\xED\xBF\xBF",              // U+DFFF
    "\xED\xA0\x80\xED\xB0\x80",  // a surrogate pair (CESU-8)
    "\xF4\x90\x80\x80",          // U+110000
    "\xF5\x80\x80\x80",
    "\xF7\xBF\xBF\xBF",
    "\xF8\x88\x80\x80\x80",      // old 5-byte form
    "\xFC\x84\x80\x80\x80\x80",  // old 6-byte form
    "\xFE",
    "\xFF",
    "\xC2",                      // truncated
    "\xE2\x82",
    "\xF0\x9F\x98",
    "\xC2\x41",                  // lead then ASCII
    "\xE2\x41\x82",
    "\xF0\x9F\x41\x80",
    "\xC2\xC2\x80",              // lead then lead
    "\xE2\x82\xAC\xAC",          // one continuation too many
    "0123456789abcdef\xFF",      // bad byte after the ASCII fast path
};

TEST(Utf8, ValidVectors) {
  for (const std::string& s : kValid) {
    EXPECT_TRUE(valid_utf8(s)) << testing::PrintToString(s);
    EXPECT_TRUE(reference_valid(s)) << testing::PrintToString(s);
  }
}

TEST(Utf8, InvalidVectors) {
  for (const std::string& s : kInvalid) {
    EXPECT_FALSE(valid_utf8(s)) << testing::PrintToString(s);
    EXPECT_FALSE(reference_valid(s)) << testing::PrintToString(s);
  }
}

TEST(Utf8, TruncatedInputIsIncompleteNotInvalid) {
  for (std::string s : {"\xC2", "\xE2\x82", "\xF0\x9F\x98", "ok\xF0"}) {
    Utf8Validator v;
    EXPECT_TRUE(v.feed(s)) << testing::PrintToString(s);
    EXPECT_FALSE(v.complete()) << testing::PrintToString(s);
  }
}

TEST(Utf8, EverySplitPointGivesTheOneShotAnswer) {
  std::vector<std::string> all = kValid;
  all.insert(all.end(), kInvalid.begin(), kInvalid.end());
  for (const std::string& s : all) {
    const bool expected = valid_utf8(s);
    for (std::size_t a = 0; a <= s.size(); ++a) {
      for (std::size_t b = a; b <= s.size(); ++b) {
        Utf8Validator v;
        bool ok = v.feed(s.substr(0, a)) && v.feed(s.substr(a, b - a)) && v.feed(s.substr(b));
        EXPECT_EQ(ok && v.complete(), expected) << testing::PrintToString(s) << " " << a << " " << b;
      }
    }
  }
}

TEST(Utf8, ByteAtATime) {
  const std::string s = kValid.back();
  Utf8Validator v;
  for (std::size_t i = 0; i < s.size(); ++i) {
    ASSERT_TRUE(v.feed(s.substr(i, 1))) << i;
  }
  EXPECT_TRUE(v.complete());
}

TEST(Utf8, FailsAtTheFirstBadByte) {
  // The surrogate's second byte is what makes it invalid: the validator must say so then.
  Utf8Validator v;
  EXPECT_TRUE(v.feed("ok\xED"));
  EXPECT_FALSE(v.feed("\xA0"));
}

TEST(Utf8, RejectionSticksUntilReset) {
  Utf8Validator v;
  EXPECT_FALSE(v.feed("\xFF"));
  EXPECT_FALSE(v.feed("fine"));
  EXPECT_FALSE(v.complete());
  v.reset();
  EXPECT_TRUE(v.feed("fine"));
  EXPECT_TRUE(v.complete());
}

TEST(Utf8, ResetDropsAPartialCodePoint) {
  Utf8Validator v;
  EXPECT_TRUE(v.feed("\xE2\x82"));
  v.reset();
  EXPECT_TRUE(v.complete());
  EXPECT_TRUE(v.feed("a"));
  EXPECT_TRUE(v.complete());
}

TEST(Utf8, EveryScalarValueIsValidAndEverySurrogateIsNot) {
  for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    ASSERT_EQ(valid_utf8(encode(cp)), !surrogate) << std::hex << cp;
  }
}

TEST(Utf8, OverlongFormsOfEveryShortCodePointAreInvalid) {
  for (std::uint32_t cp = 0; cp < 0x10000; ++cp) {
    // The same value in every longer form than its shortest one.
    std::string two = {static_cast<char>(0xC0 | cp >> 6), static_cast<char>(0x80 | (cp & 0x3F))};
    std::string three = {static_cast<char>(0xE0 | cp >> 12),
                         static_cast<char>(0x80 | (cp >> 6 & 0x3F)),
                         static_cast<char>(0x80 | (cp & 0x3F))};
    std::string four = {static_cast<char>(0xF0), static_cast<char>(0x80 | (cp >> 12 & 0x3F)),
                        static_cast<char>(0x80 | (cp >> 6 & 0x3F)),
                        static_cast<char>(0x80 | (cp & 0x3F))};
    if (cp < 0x80) {
      ASSERT_FALSE(valid_utf8(two)) << cp;
    }
    if (cp < 0x800) {
      ASSERT_FALSE(valid_utf8(three)) << cp;
    }
    ASSERT_FALSE(valid_utf8(four)) << cp;
  }
}

TEST(Utf8, AgreesWithTheReferenceOnAllShortSequences) {
  // Every 1- and 2-byte string, and every 3- and 4-byte string whose first byte is not ASCII
  // paired with interesting followers (the full 3-byte space is 16M strings; lead and second
  // byte are exhaustive, the rest sample the boundaries of the continuation range).
  std::string s;
  for (int a = 0; a < 256; ++a) {
    s.assign(1, static_cast<char>(a));
    ASSERT_EQ(valid_utf8(s), reference_valid(s)) << a;
    for (int b = 0; b < 256; ++b) {
      s.assign({static_cast<char>(a), static_cast<char>(b)});
      ASSERT_EQ(valid_utf8(s), reference_valid(s)) << a << " " << b;
    }
  }
  const int followers[] = {0x00, 0x41, 0x7F, 0x80, 0x81, 0x8F, 0x90, 0x9F,
                           0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xF0, 0xF4, 0xFF};
  for (int a = 0x80; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c : followers) {
        s.assign({static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)});
        ASSERT_EQ(valid_utf8(s), reference_valid(s)) << a << " " << b << " " << c;
        for (int d : followers) {
          s.assign({static_cast<char>(a), static_cast<char>(b), static_cast<char>(c),
                    static_cast<char>(d)});
          ASSERT_EQ(valid_utf8(s), reference_valid(s)) << a << " " << b << " " << c << " " << d;
        }
      }
    }
  }
}

}  // namespace
}  // namespace herald::ws
