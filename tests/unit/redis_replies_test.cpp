// The Redis client's reply reader (engine/redis/reply_reader) and the Redis engine's reading of
// replies (engine/redis/redis_replies), without a server: RESP bytes in, engine values out.
// Replies of the wrong type or shape must read as "unusable", never as something else.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/redis/redis_replies.hpp"
#include "engine/redis/reply_reader.hpp"

namespace {

using herald::Id;
using herald::redis::Reply;
using herald::redis::ReplyReader;
namespace rr = herald::engine::redis_replies;

std::string bulk(const std::string& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }
std::string array(const std::vector<std::string>& items) {
  std::string out = "*" + std::to_string(items.size()) + "\r\n";
  for (auto& i : items) out += i;
  return out;
}

// The one reply in `resp`.
Reply read_one(const std::string& resp) {
  ReplyReader reader;
  EXPECT_TRUE(reader.feed(resp.data(), resp.size()));
  Reply r;
  EXPECT_EQ(reader.next(r), ReplyReader::Next::reply) << reader.error();
  Reply rest;
  EXPECT_EQ(reader.next(rest), ReplyReader::Next::need_more);
  return r;
}

TEST(ReplyReader, ConvertsEveryType) {
  auto r = read_one(array({bulk("a\r\nb"), "+OK\r\n", "-ERR no\r\n", ":-42\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n"}));
  ASSERT_EQ(r.type, Reply::Type::array);
  ASSERT_EQ(r.elements.size(), 7u);
  EXPECT_EQ(r.elements[0].type, Reply::Type::string);
  EXPECT_EQ(r.elements[0].str, "a\r\nb");
  EXPECT_EQ(r.elements[1].type, Reply::Type::status);
  EXPECT_EQ(r.elements[1].str, "OK");
  EXPECT_TRUE(r.elements[2].is_error());
  EXPECT_EQ(r.elements[2].str, "ERR no");
  EXPECT_EQ(r.elements[3].type, Reply::Type::integer);
  EXPECT_EQ(r.elements[3].integer, -42);
  EXPECT_TRUE(r.elements[4].is_nil());
  EXPECT_TRUE(r.elements[5].is_nil());
  EXPECT_EQ(r.elements[6].type, Reply::Type::array);
  EXPECT_TRUE(r.elements[6].elements.empty());
}

TEST(ReplyReader, ByteByByteGivesTheSameReplies) {
  const std::string resp = bulk("hello") + array({":1\r\n", bulk("x")}) + "+PONG\r\n";
  ReplyReader reader;
  std::vector<Reply> got;
  for (char c : resp) {
    ASSERT_TRUE(reader.feed(&c, 1));
    Reply r;
    while (reader.next(r) == ReplyReader::Next::reply) got.push_back(r);
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].str, "hello");
  EXPECT_EQ(got[1].elements[1].str, "x");
  EXPECT_EQ(got[2].str, "PONG");
}

TEST(ReplyReader, ProtocolErrorIsFinal) {
  ReplyReader reader;
  std::string bad = "+OK\r\n?what\r\n+OK\r\n";
  ASSERT_TRUE(reader.feed(bad.data(), bad.size()));
  Reply r;
  EXPECT_EQ(reader.next(r), ReplyReader::Next::reply);
  EXPECT_EQ(reader.next(r), ReplyReader::Next::error);
  EXPECT_FALSE(reader.error().empty());
  EXPECT_NE(reader.next(r), ReplyReader::Next::reply);
}

// Found by resp_fuzz: hiredis allocates an announced array at once, so 13 bytes asked for 16 GB.
TEST(ReplyReader, RefusesHugeArrays) {
  ReplyReader reader;
  std::string huge = "*2000000000\r\n:1\r\n";
  ASSERT_TRUE(reader.feed(huge.data(), huge.size()));
  Reply r;
  EXPECT_EQ(reader.next(r), ReplyReader::Next::error);
  EXPECT_NE(reader.error().find("over the limit"), std::string::npos) << reader.error();

  // Nested, too; and the limit itself is fine.
  ReplyReader nested;
  std::string inner = "*1\r\n*" + std::to_string(ReplyReader::kMaxArrayElements + 1) + "\r\n";
  ASSERT_TRUE(nested.feed(inner.data(), inner.size()));
  EXPECT_EQ(nested.next(r), ReplyReader::Next::error);

  ReplyReader at_limit;
  std::string big = "*" + std::to_string(ReplyReader::kMaxArrayElements) + "\r\n";
  for (int i = 0; i < ReplyReader::kMaxArrayElements; ++i) big += ":7\r\n";
  ASSERT_TRUE(at_limit.feed(big.data(), big.size()));
  ASSERT_EQ(at_limit.next(r), ReplyReader::Next::reply) << at_limit.error();
  EXPECT_EQ(r.elements.size(), static_cast<std::size_t>(ReplyReader::kMaxArrayElements));
}

TEST(ReplyReader, MessagePushes) {
  EXPECT_TRUE(herald::redis::is_message_push(read_one(array({bulk("message"), bulk("ch"), bulk("p")}))));
  EXPECT_TRUE(herald::redis::is_message_push(read_one(array({bulk("smessage"), bulk("ch"), bulk("p")}))));
  // A subscribe confirmation and a pong answer commands.
  EXPECT_FALSE(herald::redis::is_message_push(read_one(array({bulk("subscribe"), bulk("ch"), ":1\r\n"}))));
  EXPECT_FALSE(herald::redis::is_message_push(read_one(array({bulk("pong"), bulk("")}))));
  EXPECT_FALSE(herald::redis::is_message_push(read_one(array({"+message\r\n", bulk("ch"), bulk("p")}))));
  EXPECT_FALSE(herald::redis::is_message_push(read_one(bulk("message"))));
}

TEST(RedisReplies, NotifyScriptReply) {
  auto n = rr::notify_reply(read_one(
      array({bulk("1700000000000-1"), bulk("1700000000000-0"), bulk("inst-b:s9"), ":0\r\n", ":1\r\n", ":1\r\n"})));
  ASSERT_TRUE(n);
  EXPECT_EQ(n->result.id, (Id{1700000000000, 1}));
  EXPECT_EQ(n->result.prev, (Id{1700000000000, 0}));
  ASSERT_TRUE(n->result.owner);
  EXPECT_EQ(n->result.owner->instance, "inst-b");
  EXPECT_EQ(n->result.owner->session, "s9");
  EXPECT_FALSE(n->result.duplicate);
  EXPECT_TRUE(n->evicted);
  EXPECT_EQ(n->result.forwarded, true);

  auto offline = rr::notify_reply(read_one(array({bulk("5-0"), bulk(""), bulk(""), ":1\r\n", ":0\r\n", ":-1\r\n"})));
  ASSERT_TRUE(offline);
  EXPECT_TRUE(offline->result.prev.none());
  EXPECT_FALSE(offline->result.owner);
  EXPECT_TRUE(offline->result.duplicate);
  EXPECT_FALSE(offline->result.forwarded);
}

TEST(RedisReplies, NotifyReplyOfAnotherShapeIsUnusable) {
  EXPECT_FALSE(rr::notify_reply(read_one("+OK\r\n")));
  EXPECT_FALSE(rr::notify_reply(read_one("$-1\r\n")));
  EXPECT_FALSE(rr::notify_reply(read_one(array({bulk("1-0"), bulk(""), bulk("")}))));
  EXPECT_FALSE(rr::notify_reply(read_one(array({bulk("x-y"), bulk(""), bulk(""), ":0\r\n", ":0\r\n", ":0\r\n"}))));
  EXPECT_FALSE(rr::notify_reply(read_one(array({":7\r\n", bulk(""), bulk(""), ":0\r\n", ":0\r\n", ":0\r\n"}))));
}

TEST(RedisReplies, InboxPageSkipsUnreadableAndSplitsExpired) {
  auto entry = [](const std::string& id, const std::vector<std::string>& kv) {
    std::vector<std::string> fields;
    for (auto& s : kv) fields.push_back(bulk(s));
    return array({bulk(id), array(fields)});
  };
  auto page = rr::inbox_page(read_one(array({
                                 entry("10-0", {"d", "{\"a\":1}", "x", "2000", "t", "7"}),
                                 entry("11-0", {"d", "2", "x", "500", "t", "8"}),
                                 entry("12-0", {"t", "9"}),          // no data: skipped
                                 entry("nope", {"d", "3"}),           // bad id: skipped
                                 ":5\r\n",                            // not an entry at all
                                 array({bulk("13-0")}),               // no fields
                                 entry("14-0", {"d", "4", "x"}),     // odd field list
                             })),
                             1000);
  EXPECT_EQ(page.entries, 7u);
  ASSERT_EQ(page.live.size(), 2u);
  EXPECT_EQ(page.live[0].id, (Id{10, 0}));
  EXPECT_EQ(*page.live[0].data, "{\"a\":1}");
  EXPECT_EQ(page.live[0].ts_ms, 7);
  EXPECT_EQ(page.live[1].id, (Id{14, 0}));
  EXPECT_EQ(page.live[1].ts_ms, 0);
  ASSERT_EQ(page.expired.size(), 1u);
  EXPECT_EQ(page.expired[0], "11-0");
  EXPECT_EQ(page.last, (Id{14, 0}));

  EXPECT_EQ(rr::inbox_page(read_one("-ERR x\r\n"), 0).entries, 0u);
}

TEST(RedisReplies, ExecRepliesOfAnotherShapeAreUnusable) {
  EXPECT_FALSE(rr::session_opened(read_one("+OK\r\n"), "a:b"));
  EXPECT_FALSE(rr::session_opened(read_one(array({bulk("a:b")})), "a:b"));
  EXPECT_FALSE(rr::client_status_of(read_one("*-1\r\n")));
  EXPECT_FALSE(rr::client_status_of(read_one(array({bulk("a:b"), ":1\r\n"}))));

  // The right length with odd members: read as far as they make sense.
  auto st = rr::client_status_of(read_one(array({":3\r\n", ":-4\r\n", bulk("events?")})));
  ASSERT_TRUE(st);
  EXPECT_FALSE(st->route);
  EXPECT_EQ(st->pending, 0u);  // a negative count is no count
  EXPECT_EQ(st->last_seen_ms, 0);

  auto opened = rr::session_opened(read_one(array({bulk("a:b"), array({":1\r\n"})})), "a:b");
  ASSERT_TRUE(opened);
  EXPECT_FALSE(opened->previous);  // our own route
  EXPECT_FALSE(opened->last_event);
}

TEST(RedisReplies, ClientStatusReadsRouteAndEvents) {
  auto ev = [](const std::string& id, const std::string& json) {
    return array({bulk(id), array({bulk("j"), bulk(json)})});
  };
  auto st = rr::client_status_of(read_one(array({
      bulk("inst-a:s2"),
      ":3\r\n",
      array({ev("3-0", R"({"type":"disconnected","session":"s1","ts":30})"), ev("2-0", "not json"),
             ev("1-0", R"({"type":"connected","session":"s2","ts":10})")}),
  })));
  ASSERT_TRUE(st);
  ASSERT_TRUE(st->route);
  EXPECT_EQ(st->route->instance, "inst-a");
  EXPECT_EQ(st->route->connected_at_ms, 10);
  EXPECT_EQ(st->last_seen_ms, 30);
  EXPECT_EQ(st->pending, 3u);
}

TEST(RedisReplies, Routes) {
  EXPECT_FALSE(rr::parse_route(read_one("$-1\r\n")));
  EXPECT_FALSE(rr::parse_route(read_one(bulk(""))));
  EXPECT_FALSE(rr::parse_route(read_one(bulk("no-colon"))));
  EXPECT_FALSE(rr::parse_route(read_one("+a:b\r\n")));  // a status is not a stored value
  auto r = rr::parse_route(read_one(bulk("i:s:t")));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->instance, "i");
  EXPECT_EQ(r->session, "s:t");
}

}  // namespace
