// The memory engine's compact containers: LazyQueue keeps FIFO order through every way its block
// is reused or grown, and frees it when empty; PackedEvent gives back every field it was given.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <random>
#include <string>

#include "engine/memory/compact.hpp"

namespace herald::engine {
namespace {

TEST(LazyQueue, FollowsADequeThroughRandomPushesAndPops) {
  LazyQueue<std::shared_ptr<int>> q;
  std::deque<int> model;
  std::mt19937 rng(7);
  int next = 0;
  for (int step = 0; step < 20000; ++step) {
    // Phases that grow the queue and phases that drain it, so every reuse path is taken.
    bool grow = (step / 500) % 2 == 0;
    if (model.empty() || rng() % 10 < (grow ? 7u : 3u)) {
      q.emplace_back(std::make_shared<int>(next));
      model.push_back(next++);
    } else {
      ASSERT_EQ(*q.front(), model.front());
      q.pop_front();
      model.pop_front();
    }
    ASSERT_EQ(q.size(), model.size());
    ASSERT_EQ(q.empty(), model.empty());
    if (!model.empty()) ASSERT_EQ(*q.back(), model.back());
  }
  auto items = q.items();
  ASSERT_EQ(items.size(), model.size());
  for (std::size_t i = 0; i < items.size(); ++i) EXPECT_EQ(*items[i], model[i]);
}

TEST(LazyQueue, EraseIfKeepsOrderAndReleasesElements) {
  LazyQueue<std::shared_ptr<int>> q;
  auto watched = std::make_shared<int>(3);
  for (int i = 0; i < 10; ++i) q.emplace_back(i == 3 ? watched : std::make_shared<int>(i));
  q.pop_front();  // the live part no longer starts at the block's front
  EXPECT_EQ(q.erase_if([](const std::shared_ptr<int>& p) { return *p % 3 == 0; }), 3u);
  EXPECT_EQ(watched.use_count(), 1);  // the erased element was destroyed
  std::vector<int> left;
  for (auto& p : q.items()) left.push_back(*p);
  EXPECT_EQ(left, (std::vector<int>{1, 2, 4, 5, 7, 8}));
  EXPECT_EQ(q.erase_if([](const std::shared_ptr<int>&) { return true; }), 6u);
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(q.items().empty());
}

TEST(LazyQueue, ClearAndMoveReleaseElements) {
  auto watched = std::make_shared<int>(1);
  {
    LazyQueue<std::shared_ptr<int>> a;
    a.emplace_back(watched);
    LazyQueue<std::shared_ptr<int>> b(std::move(a));
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(b.size(), 1u);
    EXPECT_EQ(watched.use_count(), 2);
  }
  EXPECT_EQ(watched.use_count(), 1);
}

TEST(PackedEvent, UnpacksEveryField) {
  StatusEvent ev;
  ev.id = "1700000000000-7";
  ev.type = EventType::reconnected;
  ev.client_id = "user-42";
  ev.instance = "herald-a";
  ev.session = "abcd.1.99";
  ev.remote = "[::1]:5000";
  ev.ts_ms = 1700000000123;
  ev.reason = "";
  ev.previous_instance = "herald-b";
  ev.offline_ms = 250;
  PackedEvent p(ev);
  PackedEvent copy = p;
  auto back = copy.unpack();
  EXPECT_EQ(back.id, ev.id);
  EXPECT_EQ(back.type, ev.type);
  EXPECT_EQ(back.client_id, ev.client_id);
  EXPECT_EQ(back.instance, ev.instance);
  EXPECT_EQ(back.session, ev.session);
  EXPECT_EQ(back.remote, ev.remote);
  EXPECT_EQ(back.ts_ms, ev.ts_ms);
  EXPECT_EQ(back.reason, ev.reason);
  EXPECT_EQ(back.previous_instance, ev.previous_instance);
  EXPECT_EQ(back.offline_ms, ev.offline_ms);
  EXPECT_EQ(p.ts_ms(), ev.ts_ms);
  EXPECT_EQ(p.client_id(), "user-42");
}

}  // namespace
}  // namespace herald::engine

namespace herald::engine {
namespace {

PackedEvent event_at(std::int64_t ts) {
  StatusEvent ev;
  ev.client_id = "c";
  ev.ts_ms = ts;
  return PackedEvent(ev);
}

std::vector<std::int64_t> newest_first(const EventLog& log, std::size_t limit) {
  std::vector<std::int64_t> out;
  log.newest_first(limit, [&](const PackedEvent& e) { out.push_back(e.ts_ms()); });
  return out;
}

TEST(EventLog, KeepsTheNewestUpToItsCap) {
  EventLog log;
  EXPECT_TRUE(log.empty());
  EXPECT_TRUE(newest_first(log, 10).empty());
  for (int ts = 1; ts <= 7; ++ts) log.push(event_at(ts), 5);
  EXPECT_EQ(log.size(), 5u);
  EXPECT_EQ(log.newest().ts_ms(), 7);
  EXPECT_EQ(newest_first(log, 10), (std::vector<std::int64_t>{7, 6, 5, 4, 3}));
  EXPECT_EQ(newest_first(log, 2), (std::vector<std::int64_t>{7, 6}));
  EXPECT_EQ(newest_first(log, 1), (std::vector<std::int64_t>{7}));
  EXPECT_TRUE(newest_first(log, 0).empty());
}

TEST(EventLog, CapOfOneKeepsOnlyTheNewest) {
  EventLog log;
  log.push(event_at(1), 1);
  log.push(event_at(2), 1);
  EXPECT_EQ(log.size(), 1u);
  EXPECT_EQ(newest_first(log, 10), (std::vector<std::int64_t>{2}));
}

}  // namespace
}  // namespace herald::engine
