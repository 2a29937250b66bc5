// Notification ids (core/ids): the "<ms>-<seq>" text form, its strict parser, the ordering the
// delivery invariant relies on, and how a new id is chosen when the clock stalls or goes back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/ids.hpp"

namespace herald {
namespace {

TEST(Id, FormatsAsMsDashSeq) {
  EXPECT_EQ(Id{}.str(), "0-0");
  EXPECT_EQ((Id{1700000000123, 0}.str()), "1700000000123-0");
  EXPECT_EQ((Id{5, 42}.str()), "5-42");
  EXPECT_EQ((Id{UINT64_MAX, UINT64_MAX}.str()), "18446744073709551615-18446744073709551615");
}

TEST(Id, NoneIsZeroZeroOnly) {
  EXPECT_TRUE(Id{}.none());
  EXPECT_FALSE((Id{0, 1}.none()));
  EXPECT_FALSE((Id{1, 0}.none()));
}

TEST(Id, ParsesFullForm) {
  auto id = Id::parse("1700000000123-7");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->ms, 1700000000123u);
  EXPECT_EQ(id->seq, 7u);
}

TEST(Id, ParsesMsOnlyAsSeqZero) {
  auto id = Id::parse("42");
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, (Id{42, 0}));
}

TEST(Id, ParsesExtremes) {
  EXPECT_EQ(Id::parse("0-0"), Id{});
  EXPECT_EQ(Id::parse("18446744073709551615-18446744073709551615"), (Id{UINT64_MAX, UINT64_MAX}));
}

TEST(Id, RoundTrips) {
  for (Id id : {Id{}, Id{1, 0}, Id{0, 1}, Id{1700000000000, 99}, Id{UINT64_MAX, 3}}) {
    auto back = Id::parse(id.str());
    ASSERT_TRUE(back) << id.str();
    EXPECT_EQ(*back, id);
  }
}

TEST(Id, RejectsMalformedText) {
  for (const char* bad : {"", "-", "-1", "1-", "1--2", "1-2-3", "a", "1-a", "a-1", " 1-2", "1-2 ", "1 -2",
                          "+1-2", "1-+2", "0x10-1", "1.5-2", "1-2\n", "18446744073709551616-0",
                          "0-18446744073709551616", "123456789012345678901-0"}) {
    EXPECT_FALSE(Id::parse(bad)) << "accepted '" << bad << "'";
  }
}

TEST(Id, RejectsEmbeddedNul) {
  using namespace std::string_view_literals;
  EXPECT_FALSE(Id::parse("1\0-2"sv));
  EXPECT_FALSE(Id::parse("1-2\0"sv));
}

TEST(Id, OrdersByMsThenSeq) {
  EXPECT_LT((Id{1, 5}), (Id{2, 0}));
  EXPECT_LT((Id{2, 0}), (Id{2, 1}));
  EXPECT_LT(Id{}, (Id{0, 1}));
  EXPECT_EQ((Id{3, 4}), (Id{3, 4}));
  EXPECT_GT((Id{10, 0}), (Id{9, UINT64_MAX}));
  // Numeric, not textual: "9-0" < "10-0" although "9" > "1" as text.
  EXPECT_LT(*Id::parse("9-0"), *Id::parse("10-0"));
  EXPECT_LT(*Id::parse("5-9"), *Id::parse("5-10"));
}

TEST(Id, SortsNumerically) {
  std::vector<Id> ids{{10, 0}, {9, 2}, {9, 10}, {0, 1}, {9, 1}};
  std::sort(ids.begin(), ids.end());
  std::vector<Id> want{{0, 1}, {9, 1}, {9, 2}, {9, 10}, {10, 0}};
  EXPECT_EQ(ids, want);
}

TEST(Id, NextIsSmallestGreater) {
  EXPECT_EQ((Id{5, 0}.next()), (Id{5, 1}));
  EXPECT_EQ(Id{}.next(), (Id{0, 1}));
  EXPECT_EQ((Id{5, UINT64_MAX}.next()), (Id{6, 0}));
  EXPECT_GT((Id{5, UINT64_MAX}.next()), (Id{5, UINT64_MAX}));
}

TEST(Id, SuccessorAtLaterMsStartsNewMs) {
  EXPECT_EQ((Id{100, 7}.successor_at(200)), (Id{200, 0}));
  EXPECT_EQ(Id{}.successor_at(1700000000000), (Id{1700000000000, 0}));
}

TEST(Id, SuccessorAtSameMsBumpsSeq) {
  Id id{100, 0};
  id = id.successor_at(100);
  EXPECT_EQ(id, (Id{100, 1}));
  id = id.successor_at(100);
  EXPECT_EQ(id, (Id{100, 2}));
}

TEST(Id, SuccessorWhenClockGoesBackwardsStillIncreases) {
  Id id{1000, 3};
  Id back = id.successor_at(900);
  EXPECT_EQ(back, (Id{1000, 4}));
  EXPECT_GT(back, id);
  // And once the clock passes the last id again, a fresh ms starts.
  EXPECT_EQ(back.successor_at(1001), (Id{1001, 0}));
}

TEST(Id, SuccessorAtClockZeroFromNone) {
  // A caller with no clock (ts 0) still gets distinct, increasing ids.
  Id id;
  Id a = id.successor_at(0);
  Id b = a.successor_at(0);
  EXPECT_EQ(a, (Id{0, 1}));
  EXPECT_EQ(b, (Id{0, 2}));
  EXPECT_FALSE(a.none());
}

TEST(Id, SuccessorSequenceIsStrictlyIncreasing) {
  // An erratic clock: forward, stalled, backwards, forward again.
  std::vector<std::uint64_t> clock{5, 5, 6, 3, 3, 6, 7, 7, 1, 100, 99, 100};
  Id last;
  for (auto now : clock) {
    Id next = last.successor_at(now);
    EXPECT_GT(next, last) << "at clock " << now;
    last = next;
  }
  EXPECT_EQ(last, (Id{100, 2}));
}

}  // namespace
}  // namespace herald
