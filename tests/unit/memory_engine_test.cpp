// The in-process engine (engine/memory) against the Engine contract of engine/engine.hpp:
// per-client increasing ids chained by `prev`, the inbox (read, cumulative trim, clear, bound,
// expiry, idempotency), routes with compare-and-delete, status events and publish. Every call of
// this engine completes inline, so each test reads results straight from the callback.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
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
  SessionOpened open(const std::string& cid, const std::string& instance, const std::string& session,
                     std::int64_t at = 1000) {
    auto r = run<SessionOpened>(
        [&](auto cb) { engine_->open_session(cid, Route{instance, session, at}, cb); });
    EXPECT_TRUE(r.ok());
    return r.value;
  }
  bool close(const std::string& cid, const std::string& session) {
    return run<bool>([&](auto cb) { engine_->close_session(cid, session, cb); }).value;
  }
  std::optional<Route> route(const std::string& cid) {
    return run<std::optional<Route>>([&](auto cb) { engine_->route_of(cid, cb); }).value;
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
  std::vector<StatusEvent> events(const std::string& cid, std::size_t limit = 100) {
    return run<std::vector<StatusEvent>>([&](auto cb) { engine_->client_events(cid, limit, cb); }).value;
  }

  std::unique_ptr<MemoryEngine> engine_;
};

std::vector<std::string> data_of(const std::vector<StoredNotification>& v) {
  std::vector<std::string> out;
  for (auto& n : v) out.push_back(*n.data);
  return out;
}

TEST_F(MemoryEngineTest, Basics) {
  EXPECT_TRUE(engine_->ready());
  EXPECT_STREQ(engine_->name(), "memory");
  engine_->start();  // the sweeper thread starts and stops cleanly
  engine_->stop();
}

TEST_F(MemoryEngineTest, AppendIdsIncreaseAndChainByPrev) {
  Id last;
  for (int i = 0; i < 50; ++i) {
    auto r = append("u1", "{\"n\":" + std::to_string(i) + "}");
    EXPECT_FALSE(r.duplicate);
    EXPECT_EQ(r.prev, last) << "append " << i;
    EXPECT_GT(r.id, last);
    last = r.id;
  }
  auto first = read("u1");
  ASSERT_EQ(first.size(), 50u);
  for (std::size_t i = 1; i < first.size(); ++i) EXPECT_LT(first[i - 1].id, first[i].id);
  EXPECT_EQ(*first[0].data, "{\"n\":0}");
  EXPECT_EQ(first.back().id, last);
}

TEST_F(MemoryEngineTest, FirstAppendHasNoPrev) {
  auto r = append("fresh", "1");
  EXPECT_TRUE(r.prev.none());
  EXPECT_FALSE(r.id.none());
  EXPECT_FALSE(r.owner.has_value());
}

TEST_F(MemoryEngineTest, IdsArePerClient) {
  auto a1 = append("a", "1");
  auto b1 = append("b", "1");
  auto a2 = append("a", "2");
  EXPECT_TRUE(b1.prev.none());  // b's chain does not see a's ids
  EXPECT_EQ(a2.prev, a1.id);
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

TEST_F(MemoryEngineTest, PrevSurvivesTrimAndClear) {
  auto r1 = append("u1", "1");
  auto r2 = append("u1", "2");
  EXPECT_EQ(trim("u1", r2.id), 2u);
  EXPECT_TRUE(read("u1").empty());
  auto r3 = append("u1", "3");
  EXPECT_EQ(r3.prev, r2.id) << "prev must be the newest id ever assigned, even if trimmed";
  EXPECT_GT(r3.id, r2.id);
  EXPECT_EQ(clear("u1"), 1u);
  auto r4 = append("u1", "4");
  EXPECT_EQ(r4.prev, r3.id);
  EXPECT_GT(r4.id, r3.id);
  (void)r1;
}

TEST_F(MemoryEngineTest, ReadInboxAfterAndLimit) {
  // One notification every 10 ms of the request clock: ids {t + 10 i, 0}, with gaps between.
  const auto t = wall_ms();
  std::vector<Id> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(append("u1", std::to_string(i), t + 10 * i).id);
  ASSERT_EQ(ids[4], (Id{static_cast<std::uint64_t>(t + 40), 0}));

  EXPECT_EQ(data_of(read("u1", {}, 3)), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(data_of(read("u1", ids[2], 3)), (std::vector<std::string>{"3", "4", "5"}));
  EXPECT_EQ(data_of(read("u1", ids[8])), (std::vector<std::string>{"9"}));
  EXPECT_TRUE(read("u1", ids[9]).empty());
  EXPECT_TRUE(read("u1", {}, 0).empty());
  // `after` need not be an id in the inbox: everything strictly greater comes back.
  EXPECT_EQ(read("u1", Id{ids[4].ms + 5, 0}).size(), 5u);
  EXPECT_EQ(read("u1", Id{ids[4].ms + 5, 0}).front().id, ids[5]);
  EXPECT_EQ(read("u1", Id{ids[4].ms, 1}).front().id, ids[5]);
  EXPECT_TRUE(read("u1", Id{UINT64_MAX, 0}).empty());
  EXPECT_TRUE(read("nobody").empty());
}

TEST_F(MemoryEngineTest, TrimIsCumulative) {
  const auto t = wall_ms();
  std::vector<Id> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(append("u1", std::to_string(i), t + 10 * i).id);
  EXPECT_EQ(engine_->stats().pending, 6u);

  EXPECT_EQ(trim("u1", ids[2]), 3u);  // 0, 1, 2
  EXPECT_EQ(data_of(read("u1")), (std::vector<std::string>{"3", "4", "5"}));
  EXPECT_EQ(trim("u1", ids[1]), 0u);  // an older ack changes nothing
  EXPECT_EQ(trim("u1", ids[2]), 0u);  // a repeated ack changes nothing
  EXPECT_EQ(engine_->stats().pending, 3u);
  // An id between two stored ids trims up to it.
  EXPECT_EQ(trim("u1", Id{ids[4].ms + 5, 0}), 2u);
  EXPECT_EQ(data_of(read("u1")), (std::vector<std::string>{"5"}));
  EXPECT_EQ(trim("u1", Id{UINT64_MAX, UINT64_MAX}), 1u);
  EXPECT_EQ(engine_->stats().pending, 0u);
  EXPECT_EQ(trim("nobody", ids[0]), 0u);
}

TEST_F(MemoryEngineTest, TrimWithoutCallbackIsAllowed) {
  auto r = append("u1", "1");
  engine_->trim_inbox("u1", r.id, nullptr);
  EXPECT_TRUE(read("u1").empty());
}

TEST_F(MemoryEngineTest, ClearRemovesEverythingOfOneClient) {
  for (int i = 0; i < 4; ++i) append("u1", std::to_string(i));
  append("u2", "x");
  EXPECT_EQ(clear("u1"), 4u);
  EXPECT_TRUE(read("u1").empty());
  EXPECT_EQ(read("u2").size(), 1u);
  EXPECT_EQ(engine_->stats().pending, 1u);
  EXPECT_EQ(clear("u1"), 0u);
  EXPECT_EQ(clear("nobody"), 0u);
}

TEST_F(MemoryEngineTest, FullInboxEvictsOldest) {
  auto o = options();
  o.inbox_max = 3;
  reset(o);
  std::vector<Id> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(append("u1", std::to_string(i)).id);
  EXPECT_EQ(data_of(read("u1")), (std::vector<std::string>{"2", "3", "4"}));
  auto st = engine_->stats();
  EXPECT_EQ(st.evicted, 2u);
  EXPECT_EQ(st.pending, 3u);
  EXPECT_EQ(st.expired, 0u);
  EXPECT_EQ(status("u1").pending, 3u);
  // The chain is unbroken by eviction.
  auto r = append("u1", "5");
  EXPECT_EQ(r.prev, ids[4]);
  EXPECT_EQ(engine_->stats().evicted, 3u);
}

TEST_F(MemoryEngineTest, ExpiredNotificationsAreNotRead) {
  auto past = wall_ms() - 60'000;
  auto gone = append("u1", "old", past, 1);  // lived 1 s, a minute ago
  auto kept = append("u1", "new", 0, 3600);
  EXPECT_EQ(kept.prev, gone.id);
  auto got = read("u1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(*got[0].data, "new");
  auto st = engine_->stats();
  EXPECT_EQ(st.expired, 1u);
  EXPECT_EQ(st.pending, 1u);
  EXPECT_EQ(status("u1").pending, 1u);
}

TEST_F(MemoryEngineTest, DefaultTtlComesFromOptions) {
  auto o = options();
  o.inbox_ttl_s = 1;
  reset(o);
  append("u1", "old", wall_ms() - 10'000);  // ttl_s 0 = the engine's default (1 s here)
  append("u1", "long", wall_ms() - 10'000, 3600);
  EXPECT_EQ(data_of(read("u1")), (std::vector<std::string>{"long"}));
  EXPECT_EQ(engine_->stats().expired, 1u);
}

TEST_F(MemoryEngineTest, ClientStatusCountsOnlyUnexpired) {
  auto past = wall_ms() - 60'000;
  append("u1", "a", past, 1);
  append("u1", "b", past, 1);
  append("u1", "c");
  EXPECT_EQ(status("u1").pending, 1u);
  EXPECT_EQ(engine_->stats().expired, 2u);
  EXPECT_EQ(engine_->stats().pending, 1u);
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

TEST_F(MemoryEngineTest, IdempotencyKeyDuplicateStoresNothing) {
  auto r1 = append("u1", "first", 0, 0, "order-7");
  EXPECT_FALSE(r1.duplicate);
  auto r2 = append("u1", "second", 0, 0, "order-7");
  EXPECT_TRUE(r2.duplicate);
  EXPECT_EQ(r2.id, r1.id);
  EXPECT_EQ(data_of(read("u1")), (std::vector<std::string>{"first"}));
  EXPECT_EQ(engine_->stats().pending, 1u);
  // Another key, or no key, is new.
  auto r3 = append("u1", "third", 0, 0, "order-8");
  EXPECT_FALSE(r3.duplicate);
  EXPECT_EQ(r3.prev, r1.id);
  auto r4 = append("u1", "fourth");
  EXPECT_FALSE(r4.duplicate);
  // Keys are per client.
  auto other = append("u2", "x", 0, 0, "order-7");
  EXPECT_FALSE(other.duplicate);
  // A duplicate is still recognised after the original was acknowledged.
  trim("u1", r4.id);
  auto r5 = append("u1", "again", 0, 0, "order-7");
  EXPECT_TRUE(r5.duplicate);
  EXPECT_EQ(r5.id, r1.id);
  EXPECT_TRUE(read("u1").empty());
}

TEST_F(MemoryEngineTest, DuplicateReportsTheCurrentRoute) {
  append("u1", "x", 0, 0, "k");
  open("u1", "inst-a", "s1");
  auto r = append("u1", "x", 0, 0, "k");
  EXPECT_TRUE(r.duplicate);
  ASSERT_TRUE(r.owner);
  EXPECT_EQ(r.owner->session, "s1");
}

TEST_F(MemoryEngineTest, AppendReportsOwnerWhenOnline) {
  EXPECT_FALSE(append("u1", "1").owner);
  open("u1", "inst-a", "s1", 1234);
  auto r = append("u1", "2");
  ASSERT_TRUE(r.owner);
  EXPECT_EQ(r.owner->instance, "inst-a");
  EXPECT_EQ(r.owner->session, "s1");
  EXPECT_EQ(r.owner->connected_at_ms, 1234);
  close("u1", "s1");
  EXPECT_FALSE(append("u1", "3").owner);
}

TEST_F(MemoryEngineTest, OpenSessionReportsPreviousRouteOfAnotherSessionOnly) {
  auto first = open("u1", "inst-a", "s1", 100);
  EXPECT_FALSE(first.previous);
  EXPECT_FALSE(first.last_event);

  // The same session again (a re-assert) replaced nothing.
  auto again = open("u1", "inst-a", "s1", 100);
  EXPECT_FALSE(again.previous);

  auto second = open("u1", "inst-b", "s2", 200);
  ASSERT_TRUE(second.previous);
  EXPECT_EQ(second.previous->instance, "inst-a");
  EXPECT_EQ(second.previous->session, "s1");
  EXPECT_EQ(second.previous->connected_at_ms, 100);

  auto r = route("u1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->instance, "inst-b");
  EXPECT_EQ(r->session, "s2");
}

TEST_F(MemoryEngineTest, OpenSessionReportsLastEvent) {
  record("u1", EventType::connected, 1000);
  record("u1", EventType::disconnected, 2000, "client_closed");
  auto opened = open("u1", "inst-a", "s2");
  EXPECT_FALSE(opened.previous);  // the earlier session closed
  ASSERT_TRUE(opened.last_event);
  EXPECT_EQ(opened.last_event->type, EventType::disconnected);
  EXPECT_EQ(opened.last_event->ts_ms, 2000);
  EXPECT_EQ(opened.last_event->reason, "client_closed");
  // Other clients' events are not this client's.
  EXPECT_FALSE(open("u2", "inst-a", "s3").last_event);
}

TEST_F(MemoryEngineTest, CloseSessionIsCompareAndDelete) {
  open("u1", "inst-a", "s1");
  open("u1", "inst-a", "s2");  // s2 took over
  EXPECT_FALSE(close("u1", "s1")) << "a stale session must not delete the newer route";
  auto r = route("u1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->session, "s2");
  EXPECT_TRUE(close("u1", "s2"));
  EXPECT_FALSE(route("u1"));
  EXPECT_FALSE(close("u1", "s2"));  // already gone
  EXPECT_FALSE(close("nobody", "s1"));
  engine_->close_session("u1", "s9", nullptr);  // no callback is allowed
}

TEST_F(MemoryEngineTest, ReassertRouteSetsAMissingRouteOnly) {
  auto reassert = [&](const std::string& instance, const std::string& session) {
    return run<bool>([&](auto cb) { engine_->reassert_route("u1", Route{instance, session, 5}, cb); }).value;
  };
  EXPECT_TRUE(reassert("inst-a", "s1"));  // lost (e.g. storage restarted empty): set again
  ASSERT_TRUE(route("u1"));
  EXPECT_EQ(route("u1")->session, "s1");
  EXPECT_TRUE(reassert("inst-a", "s1"));  // still ours
  open("u1", "inst-b", "s2");
  EXPECT_FALSE(reassert("inst-a", "s1")) << "a newer session's route must not be overwritten";
  EXPECT_EQ(route("u1")->session, "s2");
  EXPECT_EQ(route("u1")->instance, "inst-b");
}

TEST_F(MemoryEngineTest, RouteOfUnknownClientIsNone) { EXPECT_FALSE(route("nobody")); }

TEST_F(MemoryEngineTest, EventsAreNewestFirstWithIncreasingIds) {
  std::vector<std::string> ids;
  ids.push_back(record("u1", EventType::connected, 1000));
  ids.push_back(record("u1", EventType::disconnected, 2000, "heartbeat_timeout"));
  ids.push_back(record("u1", EventType::reconnected, 2000));
  for (std::size_t i = 1; i < ids.size(); ++i) {
    auto a = Id::parse(ids[i - 1]), b = Id::parse(ids[i]);
    ASSERT_TRUE(a && b) << ids[i - 1] << " " << ids[i];
    EXPECT_LT(*a, *b);
  }
  auto got = events("u1");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].type, EventType::reconnected);
  EXPECT_EQ(got[0].id, ids[2]);
  EXPECT_EQ(got[1].type, EventType::disconnected);
  EXPECT_EQ(got[1].reason, "heartbeat_timeout");
  EXPECT_EQ(got[2].type, EventType::connected);
  EXPECT_EQ(got[2].id, ids[0]);
  EXPECT_EQ(events("u1", 1).size(), 1u);
  EXPECT_EQ(events("u1", 1)[0].id, ids[2]);
  EXPECT_TRUE(events("u1", 0).empty());
  EXPECT_TRUE(events("nobody").empty());
}

TEST_F(MemoryEngineTest, EventIdsIncreaseAcrossClientsEvenWhenTheClockGoesBack) {
  auto a = Id::parse(record("a", EventType::connected, 5000));
  auto b = Id::parse(record("b", EventType::connected, 4000));
  auto c = Id::parse(record("a", EventType::disconnected, 5000));
  ASSERT_TRUE(a && b && c);
  EXPECT_LT(*a, *b);
  EXPECT_LT(*b, *c);
}

TEST_F(MemoryEngineTest, EventsAreCappedPerClient) {
  // events_max is 5 in these tests.
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(record("u1", EventType::connected, 1000 + i));
  record("u2", EventType::connected, 5000);
  auto got = events("u1");
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got.front().id, ids[7]);
  EXPECT_EQ(got.back().id, ids[3]);
  EXPECT_EQ(got.back().ts_ms, 1003);
  EXPECT_EQ(events("u2").size(), 1u);
}

TEST_F(MemoryEngineTest, EventNamesAreStable) {
  EXPECT_STREQ(event_type_name(EventType::connected), "connected");
  EXPECT_STREQ(event_type_name(EventType::reconnected), "reconnected");
  EXPECT_STREQ(event_type_name(EventType::disconnected), "disconnected");
}

TEST_F(MemoryEngineTest, ClientStatusReportsRoutePendingAndLastSeen) {
  auto unknown = status("nobody");
  EXPECT_FALSE(unknown.route);
  EXPECT_EQ(unknown.pending, 0u);
  EXPECT_EQ(unknown.last_seen_ms, 0);

  append("u1", "1");
  auto r2 = append("u1", "2");
  append("u1", "3");
  auto st = status("u1");
  EXPECT_FALSE(st.route);
  EXPECT_EQ(st.pending, 3u);
  EXPECT_EQ(st.last_seen_ms, 0);

  open("u1", "inst-a", "s1", 7000);
  record("u1", EventType::connected, 7000);
  trim("u1", r2.id);
  st = status("u1");
  ASSERT_TRUE(st.route);
  EXPECT_EQ(st.route->session, "s1");
  EXPECT_EQ(st.pending, 1u);
  EXPECT_EQ(st.last_seen_ms, 7000);

  close("u1", "s1");
  record("u1", EventType::disconnected, 9000, "client_closed");
  st = status("u1");
  EXPECT_FALSE(st.route);
  EXPECT_EQ(st.last_seen_ms, 9000);
}

TEST_F(MemoryEngineTest, PublishToSelfInvokesHandler) {
  std::vector<InstanceMessage> got;
  engine_->on_message([&](InstanceMessage m) { got.push_back(std::move(m)); });
  InstanceMessage msg;
  msg.kind = InstanceMessage::Kind::deliver;
  msg.client_id = "u1";
  msg.session = "s1";
  msg.id = Id{10, 1};
  msg.prev = Id{10, 0};
  msg.ts_ms = 10;
  msg.data = std::make_shared<const std::string>("{\"x\":1}");
  auto r = run<bool>([&](auto cb) { engine_->publish("inst-a", msg, cb); });
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.value);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, InstanceMessage::Kind::deliver);
  EXPECT_EQ(got[0].client_id, "u1");
  EXPECT_EQ(got[0].session, "s1");
  EXPECT_EQ(got[0].id, (Id{10, 1}));
  EXPECT_EQ(got[0].prev, (Id{10, 0}));
  EXPECT_EQ(*got[0].data, "{\"x\":1}");

  InstanceMessage kick;
  kick.kind = InstanceMessage::Kind::kick;
  kick.client_id = "u1";
  kick.session = "s0";
  engine_->publish("inst-a", kick, nullptr);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].kind, InstanceMessage::Kind::kick);
}

TEST_F(MemoryEngineTest, PublishToAnotherInstanceGoesNowhere) {
  int calls = 0;
  engine_->on_message([&](InstanceMessage) { ++calls; });
  auto r = run<bool>([&](auto cb) { engine_->publish("inst-b", InstanceMessage{}, cb); });
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.value);
  EXPECT_EQ(calls, 0);
}

TEST_F(MemoryEngineTest, PublishWithoutHandlerIsNotDelivered) {
  auto r = run<bool>([&](auto cb) { engine_->publish("inst-a", InstanceMessage{}, cb); });
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.value);
}

TEST_F(MemoryEngineTest, StatsPendingSumsAllInboxes) {
  for (int i = 0; i < 3; ++i) append("a", "1");
  for (int i = 0; i < 2; ++i) append("b", "1");
  EXPECT_EQ(engine_->stats().pending, 5u);
  clear("a");
  EXPECT_EQ(engine_->stats().pending, 2u);
}

TEST_F(MemoryEngineTest, ConcurrentAppendsToOneClientFormOneChain) {
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::vector<AppendResult>> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        AppendRequest req;
        req.client_id = "hot";
        req.data = std::make_shared<const std::string>("1");
        engine_->append(std::move(req), [&](Result<AppendResult> r) { results[t].push_back(r.value); });
      }
    });
  for (auto& th : threads) th.join();
  std::map<Id, Id> prev_of;  // id -> prev
  for (auto& v : results)
    for (auto& r : v) EXPECT_TRUE(prev_of.emplace(r.id, r.prev).second) << "duplicate id " << r.id.str();
  ASSERT_EQ(prev_of.size(), static_cast<std::size_t>(kThreads * kEach));
  Id expected_prev;
  for (auto& [id, prev] : prev_of) {
    EXPECT_EQ(prev, expected_prev) << "at " << id.str();
    expected_prev = id;
  }
  // The inbox keeps the newest inbox_max (100 here), in order.
  auto kept = read("hot", {}, 100000);
  ASSERT_EQ(kept.size(), 100u);
  EXPECT_EQ(kept.back().id, prev_of.rbegin()->first);
  EXPECT_EQ(engine_->stats().evicted, static_cast<std::uint64_t>(kThreads * kEach - 100));
}

// Events of one client recorded from several threads at once (two sessions of one client on
// different loops: a takeover's "disconnected" and "reconnected") must come back newest first.
// Regression: ids were once taken under one lock and appended under another, so two threads
// could append a client's events out of id order.
TEST_F(MemoryEngineTest, ConcurrentEventsOfOneClientStayInIdOrder) {
  auto o = options();
  o.events_max = 100000;
  o.global_events_max = 100000;
  reset(o);
  constexpr int kThreads = 4, kEach = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        StatusEvent ev;
        ev.client_id = "hot";
        ev.ts_ms = 1000;
        engine_->record_event(std::move(ev), nullptr);
      }
    });
  for (auto& th : threads) th.join();
  auto got = events("hot", 100000);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kThreads * kEach));
  int out_of_order = 0;
  for (std::size_t i = 1; i < got.size(); ++i)
    if (!(*Id::parse(got[i - 1].id) > *Id::parse(got[i].id))) ++out_of_order;
  EXPECT_EQ(out_of_order, 0) << "client_events is not newest-first by id";
}

}  // namespace
}  // namespace herald::engine
