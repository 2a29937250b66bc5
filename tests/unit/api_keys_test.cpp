// Service API keys (core/api_keys): the key file's format, the rules for a usable key, reloading,
// and the log limiter that keeps refused calls and tokens from flooding the log.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

#include "core/api_keys.hpp"
#include "core/log_limit.hpp"

namespace herald {
namespace {

TEST(ApiKeyFile, ParsesKeysCommentsAndBlankLines) {
  std::vector<std::string> keys;
  EXPECT_EQ(parse_api_key_file("# rotated 2026-12-01\n\nkey-aaaaaaaaaaaaaaaa\n   \n  key-bbbbbbbbbbbbbbbb  \r\n"
                               "\t# key-old-cccccccccccc\nkey-dddd#dddddddddddd",
                               keys),
            "");
  EXPECT_EQ(keys, (std::vector<std::string>{"key-aaaaaaaaaaaaaaaa", "key-bbbbbbbbbbbbbbbb", "key-dddd#dddddddddddd"}));
}

TEST(ApiKeyFile, RefusesShortOrOddKeysNamingTheLine) {
  std::vector<std::string> keys;
  auto why = parse_api_key_file("key-aaaaaaaaaaaaaaaa\n# c\nshort-key\n", keys);
  EXPECT_NE(why.find("line 3"), std::string::npos) << why;
  EXPECT_NE(why.find("16"), std::string::npos) << why;
  EXPECT_EQ(why.find("short-key"), std::string::npos) << "a key is never echoed: " << why;
  keys.clear();
  why = parse_api_key_file("key-aaaa aaaaaaaaaaaa\n", keys);
  EXPECT_NE(why.find("line 1"), std::string::npos) << why;
  EXPECT_EQ(api_key_problem("0123456789abcdef"), "");
  EXPECT_NE(api_key_problem("0123456789abcde"), "");
  EXPECT_NE(api_key_problem("0123456789abcdef\x7f"), "");
}

class ApiKeysFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/herald-keys-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  void write(const std::string& text) { std::ofstream(path_, std::ios::trunc) << text; }
  std::string path_;
};

TEST_F(ApiKeysFileTest, CombinesWithFixedKeysAndReloads) {
  write("file-key-one-0000000\n");
  ApiKeys keys({"fixed-key-000000000"}, path_);
  EXPECT_EQ(keys.size(), 2u);
  EXPECT_TRUE(keys.matches("fixed-key-000000000"));
  EXPECT_TRUE(keys.matches("file-key-one-0000000"));
  EXPECT_FALSE(keys.matches("file-key-two-0000000"));
  EXPECT_FALSE(keys.matches("file-key-one-000000"));
  EXPECT_FALSE(keys.matches(""));
  // Rotation: the new key is added, the old one removed.
  write("file-key-two-0000000\n");
  EXPECT_EQ(keys.reload(), "");
  EXPECT_TRUE(keys.matches("file-key-two-0000000"));
  EXPECT_FALSE(keys.matches("file-key-one-0000000"));
  EXPECT_TRUE(keys.matches("fixed-key-000000000"));
  // A broken file keeps the keys in force.
  write("# nothing here\n");
  EXPECT_NE(keys.reload(), "");
  EXPECT_TRUE(keys.matches("file-key-two-0000000"));
  write("tiny\n");
  EXPECT_NE(keys.reload(), "");
  EXPECT_TRUE(keys.matches("file-key-two-0000000"));
  std::remove(path_.c_str());
  EXPECT_NE(keys.reload().find(path_), std::string::npos);
  EXPECT_TRUE(keys.matches("file-key-two-0000000"));
}

TEST_F(ApiKeysFileTest, UnusableFileIsAStartUpError) {
  write("\n# only comments\n");
  EXPECT_THROW(ApiKeys({}, path_), std::invalid_argument);
  write("too-short\n");
  EXPECT_THROW(ApiKeys({}, path_), std::invalid_argument);
  EXPECT_THROW(ApiKeys({}, "/nonexistent/keys"), std::invalid_argument);
  EXPECT_TRUE(ApiKeys({}, "").empty());
}

TEST(LogLimit, AllowsABurstPerWindowAndCountsWhatItHeldBack) {
  LogLimit limit(3, 1000);
  std::uint64_t held = 99;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(limit.allow(10'000 + i, held));
    EXPECT_EQ(held, 0u);
  }
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(limit.allow(10'100, held));
  EXPECT_FALSE(limit.allow(10'999, held));
  EXPECT_TRUE(limit.allow(11'000, held));
  EXPECT_EQ(held, 51u);
  EXPECT_TRUE(limit.allow(11'001, held));
  EXPECT_EQ(held, 0u);
}

}  // namespace
}  // namespace herald
