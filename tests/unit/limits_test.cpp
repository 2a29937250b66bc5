// The limiters (core/limits.*): token-bucket arithmetic, per-address connection counts, per-key
// API buckets, per-id hello buckets, and that every table stays bounded whatever is thrown at it.
#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>
#include <thread>
#include <vector>

#include "core/limits.hpp"

namespace herald::limits {
namespace {

constexpr std::int64_t kSec = 1'000'000'000;
constexpr std::int64_t kT0 = 1'000 * kSec;  // an arbitrary "now"

IpKey ip(const char* text) { return IpKey::of(boost::asio::ip::make_address(text)); }

IpKey nth_v4(std::uint32_t n) {
  return IpKey::of(boost::asio::ip::address_v4(0x0a000000u + n));  // 10.x.y.z
}

TEST(Rate, BurstThenOnePerInterval) {
  Rate r(10, 3);  // 10/s: one token per 100 ms, 3 at once
  std::int64_t tat = 0;
  EXPECT_EQ(r.take(tat, kT0), 0);
  EXPECT_EQ(r.take(tat, kT0), 0);
  EXPECT_EQ(r.take(tat, kT0), 0);
  auto wait = r.take(tat, kT0);
  EXPECT_EQ(wait, kSec / 10);               // the next token comes in 100 ms
  EXPECT_EQ(r.take(tat, kT0), wait);        // a refused take costs nothing
  EXPECT_NE(r.take(tat, kT0 + wait - 1), 0);
  EXPECT_EQ(r.take(tat, kT0 + wait), 0);
  // After a long pause the bucket is full again, and no fuller than the burst.
  auto later = kT0 + 60 * kSec;
  int allowed = 0;
  while (r.take(tat, later) == 0) ++allowed;
  EXPECT_EQ(allowed, 3);
}

TEST(Rate, OffAllowsEverything) {
  Rate r;
  EXPECT_FALSE(r.on());
  std::int64_t tat = 0;
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(r.take(tat, kT0), 0);
  EXPECT_FALSE(Rate(0, 10).on());
}

TEST(Rate, SharedStateGivesExactlyTheBurstAcrossThreads) {
  Rate r(1, 500);
  std::atomic<std::int64_t> tat{0};
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i)
        if (r.take(tat, kT0) == 0) ++allowed;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 500);
}

TEST(RetryAfter, WholeSecondsAtLeastOne) {
  EXPECT_EQ(retry_after_s(0), 1u);
  EXPECT_EQ(retry_after_s(1), 1u);
  EXPECT_EQ(retry_after_s(kSec), 1u);
  EXPECT_EQ(retry_after_s(kSec + 1), 2u);
  EXPECT_EQ(retry_after_s(90 * kSec / 2), 45u);
}

TEST(IpKey, SpellingsOfOneAddressAreOneKeyAndIpv6CountsByPrefix) {
  EXPECT_EQ(ip("192.0.2.7"), ip("::ffff:192.0.2.7"));
  EXPECT_NE(ip("192.0.2.7"), ip("192.0.2.8"));
  EXPECT_EQ(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff:1:2:3"));  // same /64
  EXPECT_NE(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
  EXPECT_NE(ip("::1"), ip("127.0.0.1"));
  EXPECT_NE(ip("2001:db8::"), ip("32.1.13.184"));  // 2001:0db8 spelled as IPv4
  IpKeyHash h;
  EXPECT_EQ(h(ip("192.0.2.7")), h(ip("::ffff:192.0.2.7")));
}

TEST(ConnectionTable, CapPerAddressAndPlacesComeBack) {
  ConnectionTable t(2, Rate{});
  IpSlot a, b, c, d;
  EXPECT_EQ(t.admit(ip("192.0.2.1"), kT0, a), ConnectionTable::Verdict::admitted);
  EXPECT_EQ(t.admit(ip("192.0.2.1"), kT0, b), ConnectionTable::Verdict::admitted);
  EXPECT_EQ(t.admit(ip("192.0.2.1"), kT0, c), ConnectionTable::Verdict::over_cap);
  EXPECT_EQ(t.admit(ip("192.0.2.2"), kT0, d), ConnectionTable::Verdict::admitted);  // its own count
  a.reset();
  EXPECT_EQ(t.admit(ip("192.0.2.1"), kT0, c), ConnectionTable::Verdict::admitted);
  {
    IpSlot moved = std::move(b);  // the place moves with the connection, and is given back once
  }
  b.reset();
  EXPECT_EQ(t.size(), 2u);
  c.reset();
  d.reset();
  EXPECT_EQ(t.size(), 0u);  // removed at zero
}

TEST(ConnectionTable, OffCountsNothing) {
  ConnectionTable t(0, Rate{});
  EXPECT_FALSE(t.on());
  std::vector<IpSlot> slots(5000);
  for (auto& s : slots) ASSERT_EQ(t.admit(ip("192.0.2.1"), kT0, s), ConnectionTable::Verdict::admitted);
  EXPECT_EQ(t.size(), 0u);
}

TEST(ConnectionTable, RatePerAddressAndTheCapSpendsNoToken) {
  // A slot gives its place back at the real time: this test runs on it.
  auto t0 = now_ns();
  ConnectionTable t(1, Rate(1, 2));
  IpSlot a, b;
  EXPECT_EQ(t.admit(ip("192.0.2.1"), t0, a), ConnectionTable::Verdict::admitted);
  EXPECT_EQ(t.admit(ip("192.0.2.1"), t0, b), ConnectionTable::Verdict::over_cap);
  EXPECT_EQ(t.admit(ip("192.0.2.1"), t0, b), ConnectionTable::Verdict::over_cap);
  a.reset();
  EXPECT_EQ(t.admit(ip("192.0.2.1"), t0, a), ConnectionTable::Verdict::admitted);  // second token
  a.reset();
  EXPECT_EQ(t.admit(ip("192.0.2.1"), t0, a), ConnectionTable::Verdict::over_rate);  // remembered at zero
  EXPECT_EQ(t.admit(ip("192.0.2.1"), t0 + kSec, a), ConnectionTable::Verdict::admitted);
}

TEST(ConnectionTable, StaysBoundedUnderAFloodOfAddresses) {
  // Each address connects once and leaves; its bucket is not refilled for a second, so its entry
  // lingers. The table forgets the surplus instead of growing with the flood.
  ConnectionTable t(10, Rate(1, 5), 1024);
  for (std::uint32_t i = 0; i < 200'000; ++i) {
    IpSlot s;
    ASSERT_EQ(t.admit(nth_v4(i), kT0 + i, s), ConnectionTable::Verdict::admitted);
  }
  EXPECT_LE(t.size(), 2 * 1024u + 64 * 64);
}

TEST(ConnectionTable, AddressesWithOpenConnectionsAreNeverForgotten) {
  ConnectionTable t(1, Rate(1, 5), 64);
  std::vector<IpSlot> held(5000);
  for (std::uint32_t i = 0; i < held.size(); ++i)
    ASSERT_EQ(t.admit(nth_v4(i), kT0, held[i]), ConnectionTable::Verdict::admitted);
  IpSlot extra;
  for (std::uint32_t i = 0; i < held.size(); i += 499)
    EXPECT_EQ(t.admit(nth_v4(i), kT0, extra), ConnectionTable::Verdict::over_cap) << i;
  held.clear();
  // With the connections gone only refilling buckets remain, and they are bounded.
  for (std::uint32_t i = 0; i < 20'000; ++i) {
    IpSlot s;
    t.admit(nth_v4(100'000 + i), kT0, s);
  }
  EXPECT_LE(t.size(), 2 * 64u + 64 * 64);
}

TEST(ApiRate, OneBucketPerKeyAndPerAddress) {
  ApiRate r(Rate(1, 2));
  EXPECT_EQ(r.take_key("key-zero-0123456789", kT0), 0);
  EXPECT_EQ(r.take_key("key-zero-0123456789", kT0), 0);
  EXPECT_EQ(r.take_key("key-zero-0123456789", kT0), kSec);
  EXPECT_EQ(r.take_key("key-one-0123456789", kT0), 0);  // the other key is untouched
  EXPECT_EQ(r.take_address(ip("127.0.0.1"), kT0), 0);
  EXPECT_EQ(r.take_address(ip("127.0.0.1"), kT0), 0);
  EXPECT_GT(r.take_address(ip("127.0.0.1"), kT0), 0);
  EXPECT_EQ(r.take_address(ip("127.0.0.2"), kT0), 0);
  EXPECT_EQ(r.take_key("key-zero-0123456789", kT0 + kSec), 0);
  ApiRate off(Rate{});
  for (int i = 0; i < 100; ++i) ASSERT_EQ(off.take_key("key-zero-0123456789", kT0), 0);
}

TEST(HelloRate, PerClientIdWithBurstAndRefill) {
  HelloRate h(Rate(5, 10));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(h.take("alice", kT0), 0) << i;
  EXPECT_EQ(h.take("alice", kT0), kSec / 5);
  EXPECT_EQ(h.take("bob", kT0), 0);
  EXPECT_EQ(h.take("alice", kT0 + kSec / 5), 0);
  EXPECT_NE(h.take("alice", kT0 + kSec / 5), 0);
  // Two seconds later the whole burst is back.
  for (int i = 0; i < 10; ++i) ASSERT_EQ(h.take("alice", kT0 + 3 * kSec), 0) << i;
  EXPECT_EQ(h.size(), 2u);
}

TEST(HelloRate, TableIsCappedAndForgetsTheOldestFirst) {
  HelloRate h(Rate(1, 2), 4096);
  for (int i = 0; i < 300'000; ++i) h.take("id-" + std::to_string(i), kT0 + i * 1000);
  EXPECT_LE(h.size(), 2 * 4096u + 64 * 64);
  // The newest ids are still remembered: their second hello is still allowed but the third not.
  auto now = kT0 + 300'000 * 1000;
  EXPECT_EQ(h.take("id-299999", now), 0);
  EXPECT_GT(h.take("id-299999", now), 0);
}

TEST(Limits, BuiltFromTheConfiguration) {
  Config c;
  Limits defaults(c);
  EXPECT_TRUE(defaults.connections.on());
  EXPECT_FALSE(defaults.api.on());
  EXPECT_TRUE(defaults.hello.on());
  c.max_connections_per_ip = 0;
  c.connect_rate_per_ip = 0;
  c.hello_rate = 0;
  c.api_rate_limit = 3;  // burst 0: one second's worth
  c.api_keys = {"k1-aaaaaaaa"};
  Limits l(c);
  EXPECT_FALSE(l.connections.on());
  EXPECT_FALSE(l.hello.on());
  EXPECT_TRUE(l.api.on());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(l.api.take_key("key-zero-0123456789", kT0), 0);
  EXPECT_GT(l.api.take_key("key-zero-0123456789", kT0), 0);
}

}  // namespace
}  // namespace herald::limits
