// What only the in-process engine (engine/memory) does, beyond the Engine contract: ids taken from
// the request's clock, one event id sequence across all clients, the expiry sweeper, the pending
// count in stats(), and publish with no handler. The contract itself (ids and prev, the inbox,
// routes, status events, publish) is tested against every engine in engine_conformance_test.cpp.
// Every call of this engine completes inline, so each test reads results straight from the callback.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/memory/memory_engine.hpp"

namespace herald::engine {
namespace {

std::int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Runs one engine call and returns what its callback got; fails the test if the callback did not
// run inline (the memory engine promises it does).
template <class T, class Call>
Result<T> run(Call&& call) {
  std::optional<Result<T>> got;
  call([&](Result<T> r) { got = std::move(r); });
  EXPECT_TRUE(got.has_value()) << "callback did not run inline";
  return got.value_or(Result<T>{Status::unavailable, T{}});
}

class MemoryEngineTest : public ::testing::Test {
 protected:
  EngineOptions options() const {
    EngineOptions o;
    o.instance_id = "inst-a";
    o.inbox_max = 100;
    o.inbox_ttl_s = 3600;
    o.events_max = 5;
    o.global_events_max = 50;
    return o;
  }
  void SetUp() override { engine_ = std::make_unique<MemoryEngine>(options()); }
  void reset(EngineOptions o) { engine_ = std::make_unique<MemoryEngine>(std::move(o)); }

  AppendResult append(const std::string& cid, const std::string& data, std::int64_t ts_ms = 0,
                      std::uint32_t ttl_s = 0, const std::string& key = {}) {
    AppendRequest req;
    req.client_id = cid;
    req.data = std::make_shared<const std::string>(data);
    req.ts_ms = ts_ms;
    req.ttl_s = ttl_s;
    req.idempotency_key = key;
    auto r = run<AppendResult>([&](auto cb) { engine_->append(std::move(req), cb); });
    EXPECT_TRUE(r.ok());
    return r.value;
  }
  std::vector<StoredNotification> read(const std::string& cid, Id after = {}, std::size_t limit = 1000) {
    auto r = run<std::vector<StoredNotification>>([&](auto cb) { engine_->read_inbox(cid, after, limit, cb); });
    EXPECT_TRUE(r.ok());
    return r.value;
  }
  std::uint64_t trim(const std::string& cid, Id upto) {
    return run<std::uint64_t>([&](auto cb) { engine_->trim_inbox(cid, upto, cb); }).value;
  }
  std::uint64_t clear(const std::string& cid) {
    return run<std::uint64_t>([&](auto cb) { engine_->clear_inbox(cid, cb); }).value;
  }
  ClientStatus status(const std::string& cid) {
    return run<ClientStatus>([&](auto cb) { engine_->client_status(cid, cb); }).value;
  }
  std::string record(const std::string& cid, EventType type, std::int64_t ts_ms, const std::string& reason = {}) {
    StatusEvent ev;
    ev.type = type;
    ev.client_id = cid;
    ev.instance = "inst-a";
    ev.session = "s";
    ev.ts_ms = ts_ms;
    ev.reason = reason;
    auto r = run<std::string>([&](auto cb) { engine_->record_event(std::move(ev), cb); });
    EXPECT_TRUE(r.ok());
    return r.value;
  }
  std::unique_ptr<MemoryEngine> engine_;
};

TEST_F(MemoryEngineTest, SweeperStartsAndStops) {
  engine_->start();  // the sweeper thread starts and stops cleanly
  engine_->stop();
  engine_->stop();  // twice is fine
}

TEST_F(MemoryEngineTest, IdsUseTheRequestClockAndStayIncreasingWhenItGoesBack) {
  const auto t = wall_ms();
  const auto ut = static_cast<std::uint64_t>(t);
  auto r1 = append("u1", "1", t);
  EXPECT_EQ(r1.id, (Id{ut, 0}));
  auto r2 = append("u1", "2", t);
  EXPECT_EQ(r2.id, (Id{ut, 1}));
  auto r3 = append("u1", "3", t - 1000);  // the clock went backwards
  EXPECT_EQ(r3.id, (Id{ut, 2}));
  auto r4 = append("u1", "4", t + 1000);
  EXPECT_EQ(r4.id, (Id{ut + 1000, 0}));
  EXPECT_EQ(r4.prev, r3.id);
  auto got = read("u1");
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[2].ts_ms, t - 1000);  // the stored timestamp is the request's
}

// stats().pending: every notification in every inbox, kept exact through trim, clear, eviction,
// expiry and idempotent duplicates (the memory engine can tell cheaply; Redis reports 0).
TEST_F(MemoryEngineTest, StatsPendingFollowsTrimAndClear) {
  std::vector<Id> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(append("a", std::to_string(i)).id);
  for (int i = 0; i < 2; ++i) append("b", "1");
  EXPECT_EQ(engine_->stats().pending, 8u);
  trim("a", ids[2]);
  EXPECT_EQ(engine_->stats().pending, 5u);
  trim("a", ids[1]);  // an older ack changes nothing
  EXPECT_EQ(engine_->stats().pending, 5u);
  engine_->trim_inbox("a", ids[3], nullptr);
  EXPECT_EQ(engine_->stats().pending, 4u);
  clear("a");
  EXPECT_EQ(engine_->stats().pending, 2u);
  trim("b", Id{UINT64_MAX, UINT64_MAX});
  EXPECT_EQ(engine_->stats().pending, 0u);
}

TEST_F(MemoryEngineTest, StatsPendingExcludesEvictedExpiredAndDuplicates) {
  auto o = options();
  o.inbox_max = 3;
  reset(o);
  for (int i = 0; i < 5; ++i) append("full", std::to_string(i));
  EXPECT_EQ(engine_->stats().pending, 3u);  // 2 evicted
  auto past = wall_ms() - 60'000;
  append("old", "a", past, 1);
  append("old", "b", past, 1);
  EXPECT_EQ(engine_->stats().pending, 5u);  // expired, but nothing has looked since
  EXPECT_EQ(status("old").pending, 0u);
  EXPECT_EQ(engine_->stats().pending, 3u);
  append("old", "c");
  EXPECT_EQ(engine_->stats().pending, 4u);
  append("idem", "x", 0, 0, "k");
  append("idem", "x", 0, 0, "k");
  EXPECT_EQ(engine_->stats().pending, 5u);
}

TEST_F(MemoryEngineTest, SweepExpiresEveryClient) {
  auto past = wall_ms() - 60'000;
  append("a", "1", past, 1);
  append("b", "1", past, 1);
  append("b", "2", past, 1);
  append("c", "1");
  EXPECT_EQ(engine_->stats().pending, 4u);
  engine_->sweep_expired();
  auto st = engine_->stats();
  EXPECT_EQ(st.expired, 3u);
  EXPECT_EQ(st.pending, 1u);
  engine_->sweep_expired();  // nothing twice
  EXPECT_EQ(engine_->stats().expired, 3u);
}

TEST_F(MemoryEngineTest, EventIdsIncreaseAcrossClientsEvenWhenTheClockGoesBack) {
  auto a = Id::parse(record("a", EventType::connected, 5000));
  auto b = Id::parse(record("b", EventType::connected, 4000));
  auto c = Id::parse(record("a", EventType::disconnected, 5000));
  ASSERT_TRUE(a && b && c);
  EXPECT_LT(*a, *b);
  EXPECT_LT(*b, *c);
}

TEST_F(MemoryEngineTest, EventNamesAreStable) {
  EXPECT_STREQ(event_type_name(EventType::connected), "connected");
  EXPECT_STREQ(event_type_name(EventType::reconnected), "reconnected");
  EXPECT_STREQ(event_type_name(EventType::disconnected), "disconnected");
}

TEST_F(MemoryEngineTest, PublishWithoutHandlerIsNotDelivered) {
  auto r = run<bool>([&](auto cb) { engine_->publish("inst-a", InstanceMessage{}, cb); });
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.value);
}

}  // namespace
}  // namespace herald::engine
