// The client protocol's messages (core/protocol) and the error table (core/errors): what a
// client may send and how each mistake is classified, and the exact bytes of a notification
// frame. (Token checks are in jwt_test.cpp.)
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <variant>

#include "core/errors.hpp"
#include "core/protocol.hpp"

namespace herald {
namespace {

namespace json = boost::json;

ClientMessage ok(std::string_view text) {
  auto r = parse_client_message(text);
  if (auto* e = std::get_if<ProtocolError>(&r)) {
    ADD_FAILURE() << "rejected " << text << ": " << err_code(e->err) << " " << e->message;
    return {};
  }
  return std::get<ClientMessage>(r);
}

Err fails(std::string_view text) {
  auto r = parse_client_message(text);
  if (std::holds_alternative<ClientMessage>(r)) {
    ADD_FAILURE() << "accepted " << text;
    return Err::count_;
  }
  auto& e = std::get<ProtocolError>(r);
  EXPECT_FALSE(e.message.empty()) << text;
  return e.err;
}

// ---- parse_client_message ---------------------------------------------------------------------

TEST(ParseClientMessage, Hello) {
  auto m = ok(R"({"type":"hello","client_id":"u1"})");
  EXPECT_EQ(m.kind, ClientMessage::Kind::hello);
  EXPECT_EQ(m.client_id, "u1");
  EXPECT_EQ(m.token, "");
  EXPECT_FALSE(m.last_id);
}

TEST(ParseClientMessage, HelloWithTokenAndLastId) {
  auto m = ok(R"({"type":"hello","client_id":"user@example.com","token":"a.b.c","last_id":"1700000000000-4"})");
  EXPECT_EQ(m.kind, ClientMessage::Kind::hello);
  EXPECT_EQ(m.client_id, "user@example.com");
  EXPECT_EQ(m.token, "a.b.c");
  ASSERT_TRUE(m.last_id);
  EXPECT_EQ(*m.last_id, (Id{1700000000000, 4}));
}

TEST(ParseClientMessage, HelloNullOptionalsAreAbsent) {
  auto m = ok(R"({"type":"hello","client_id":"u1","token":null,"last_id":null})");
  EXPECT_EQ(m.token, "");
  EXPECT_FALSE(m.last_id);
}

TEST(ParseClientMessage, HelloIgnoresUnknownFieldsAndOrder) {
  auto m = ok(R"( {"extra":{"deep":[1,2,3]},"client_id":"u1","type":"hello","last_id":"7"} )");
  EXPECT_EQ(m.client_id, "u1");
  ASSERT_TRUE(m.last_id);
  EXPECT_EQ(*m.last_id, (Id{7, 0}));
}

TEST(ParseClientMessage, LegacyHello) {
  auto m = ok(R"({"clientId":"legacy-1"})");
  EXPECT_EQ(m.kind, ClientMessage::Kind::legacy_hello);
  EXPECT_EQ(m.client_id, "legacy-1");
}

TEST(ParseClientMessage, TypeWinsOverLegacyField) {
  auto m = ok(R"({"type":"hello","client_id":"u1","clientId":"u2"})");
  EXPECT_EQ(m.kind, ClientMessage::Kind::hello);
  EXPECT_EQ(m.client_id, "u1");
}

TEST(ParseClientMessage, Ack) {
  auto m = ok(R"({"type":"ack","id":"1700000000000-12"})");
  EXPECT_EQ(m.kind, ClientMessage::Kind::ack);
  EXPECT_EQ(m.ack_id, (Id{1700000000000, 12}));
}

TEST(ParseClientMessage, InvalidJson) {
  for (const char* t : {"", " ", "{", "}", "{\"type\":\"hello\",}", "{type:\"hello\"}", "{\"type\":'ack'}",
                        "{} {}", "{\"type\":\"hello\"} x", "nul", "\xff\xfe"})
    EXPECT_EQ(fails(t), Err::invalid_json) << "'" << t << "'";
}

TEST(ParseClientMessage, TooDeepIsInvalidJson) {
  std::string deep = R"({"type":"hello","client_id":"u1","x":)";
  for (int i = 0; i < 40; ++i) deep += "[";
  for (int i = 0; i < 40; ++i) deep += "]";
  deep += "}";
  EXPECT_EQ(fails(deep), Err::invalid_json);
}

TEST(ParseClientMessage, NonObject) {
  for (const char* t : {"[]", "[{\"type\":\"hello\",\"client_id\":\"u1\"}]", "\"hello\"", "42", "null", "true"})
    EXPECT_EQ(fails(t), Err::bad_request) << t;
}

TEST(ParseClientMessage, MissingType) {
  EXPECT_EQ(fails("{}"), Err::bad_request);
  EXPECT_EQ(fails(R"({"client_id":"u1"})"), Err::bad_request);
}

TEST(ParseClientMessage, WrongTypes) {
  for (const char* t : {
           R"({"type":1})",
           R"({"type":null})",
           R"({"type":["hello"]})",
           R"({"type":"hello"})",
           R"({"type":"hello","client_id":1})",
           R"({"type":"hello","client_id":null})",
           R"({"type":"hello","client_id":["u1"]})",
           R"({"type":"hello","client_id":"u1","token":5})",
           R"({"type":"hello","client_id":"u1","token":{}})",
           R"({"type":"hello","client_id":"u1","last_id":5})",
           R"({"type":"hello","client_id":"u1","last_id":true})",
           R"({"type":"ack"})",
           R"({"type":"ack","id":null})",
           R"({"type":"ack","id":12})",
           R"({"clientId":7})",
           R"({"clientId":null})",
       })
    EXPECT_EQ(fails(t), Err::bad_request) << t;
}

TEST(ParseClientMessage, BadLastIdAndAckId) {
  for (const char* id : {"", "x", "1-", "-1", "1-2-3", "1.5", " 1-2", "99999999999999999999999-0"}) {
    EXPECT_EQ(fails(std::string(R"({"type":"hello","client_id":"u1","last_id":")") + id + "\"}"), Err::bad_request)
        << "last_id '" << id << "'";
    EXPECT_EQ(fails(std::string(R"({"type":"ack","id":")") + id + "\"}"), Err::bad_request) << "ack id '" << id << "'";
  }
}

TEST(ParseClientMessage, ClientIdRules) {
  const std::string longest(128, 'a');
  EXPECT_EQ(ok(R"({"type":"hello","client_id":")" + longest + "\"}").client_id, longest);
  EXPECT_EQ(ok(R"({"type":"hello","client_id":"AZaz09._-@:"})").client_id, "AZaz09._-@:");
  EXPECT_EQ(ok(R"({"clientId":"x"})").client_id, "x");

  for (std::string bad : {std::string(""), std::string(129, 'a'), std::string("a b"), std::string("a/b"),
                          std::string("a\\\\b"), std::string("\\u00fc"), std::string("caf\xc3\xa9"),
                          std::string("a\\u0000b"), std::string("a\\nb"), std::string("a+b"), std::string("a#b"),
                          std::string("*")}) {
    EXPECT_EQ(fails(R"({"type":"hello","client_id":")" + bad + "\"}"), Err::invalid_client_id) << bad;
    EXPECT_EQ(fails(R"({"clientId":")" + bad + "\"}"), Err::invalid_client_id) << "legacy " << bad;
  }
}

TEST(ParseClientMessage, UnknownType) {
  for (const char* t : {R"({"type":"bye"})", R"({"type":""})", R"({"type":"HELLO","client_id":"u1"})",
                        R"({"type":"welcome"})", R"({"type":"notification","id":"1-0"})"})
    EXPECT_EQ(fails(t), Err::unknown_type) << t;
}

// ---- messages Herald sends --------------------------------------------------------------------

TEST(Welcome, IsTheDocumentedObject) {
  auto v = json::parse(welcome_json("sess-1", "herald-ab", 20000));
  auto& o = v.as_object();
  EXPECT_EQ(o.at("type").as_string(), "welcome");
  EXPECT_EQ(o.at("session").as_string(), "sess-1");
  EXPECT_EQ(o.at("instance").as_string(), "herald-ab");
  EXPECT_EQ(o.at("heartbeat_ms").to_number<std::int64_t>(), 20000);
  EXPECT_EQ(o.size(), 4u);
}

TEST(Welcome, EscapesText) {
  auto v = json::parse(welcome_json("a\"b", "c\\d", 1));
  EXPECT_EQ(v.as_object().at("session").as_string(), "a\"b");
  EXPECT_EQ(v.as_object().at("instance").as_string(), "c\\d");
}

std::string text_frame_header(std::size_t n) {
  std::string h;
  h += static_cast<char>(0x81);  // FIN + text, unmasked
  if (n < 126) {
    h += static_cast<char>(n);
  } else if (n <= 0xFFFF) {
    h += static_cast<char>(126);
    h += static_cast<char>(n >> 8);
    h += static_cast<char>(n & 0xFF);
  } else {
    h += static_cast<char>(127);
    for (int i = 7; i >= 0; --i) h += static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xFF);
  }
  return h;
}

TEST(NotificationFrame, ExactBytesSmall) {
  auto frame = notification_frame(Id{1700000000000, 3}, 1700000000123, R"({"text":"hi"})");
  const std::string body = R"({"type":"notification","id":"1700000000000-3","data":{"text":"hi"},"ts":1700000000123})";
  EXPECT_EQ(frame, text_frame_header(body.size()) + body);
  ASSERT_LT(body.size(), 126u);
}

TEST(NotificationFrame, ExactBytesMedium) {
  std::string data = "\"" + std::string(300, 'x') + "\"";
  auto frame = notification_frame(Id{5, 0}, 9, data);
  const std::string body = R"({"type":"notification","id":"5-0","data":)" + data + R"(,"ts":9})";
  ASSERT_GE(body.size(), 126u);
  EXPECT_EQ(frame, text_frame_header(body.size()) + body);
  EXPECT_EQ(static_cast<unsigned char>(frame[1]), 126);
}

TEST(NotificationFrame, ExactBytesLarge) {
  std::string data = "[\"" + std::string(70000, 'y') + "\"]";
  auto frame = notification_frame(Id{6, 1}, 10, data);
  const std::string body = R"({"type":"notification","id":"6-1","data":)" + data + R"(,"ts":10})";
  ASSERT_GT(body.size(), 0xFFFFu);
  EXPECT_EQ(frame, text_frame_header(body.size()) + body);
  EXPECT_EQ(static_cast<unsigned char>(frame[1]), 127);
}

TEST(NotificationFrame, PayloadIsValidJsonWithEveryDataKind) {
  for (const char* data : {"null", "true", "0", "-1.5e3", "\"s\"", "[]", "{}", R"({"a":[1,{"b":null}]})"}) {
    auto frame = notification_frame(Id{1, 2}, 3, data);
    auto body = frame.substr(2);
    auto v = json::parse(body);
    auto& o = v.as_object();
    EXPECT_EQ(o.at("type").as_string(), "notification");
    EXPECT_EQ(o.at("id").as_string(), "1-2");
    EXPECT_EQ(o.at("data"), json::parse(data)) << data;
    EXPECT_EQ(o.at("ts").to_number<std::int64_t>(), 3);
  }
}

TEST(NotificationFrame, WithoutId) {
  auto frame = notification_frame_no_id(1700000000123, "[1,2]");
  const std::string body = R"({"type":"notification","data":[1,2],"ts":1700000000123})";
  EXPECT_EQ(frame, text_frame_header(body.size()) + body);
}

// ---- the error table ---------------------------------------------------------------------------

TEST(Errors, TableMatchesDesign) {
  EXPECT_STREQ(err_code(Err::invalid_json), "invalid_json");
  EXPECT_EQ(err_info(Err::invalid_json).http_status, 400);
  EXPECT_EQ(err_info(Err::invalid_json).close, 1008);
  EXPECT_EQ(err_info(Err::invalid_client_id).http_status, 400);
  EXPECT_EQ(err_info(Err::invalid_client_id).close, 1008);
  EXPECT_EQ(err_info(Err::unauthorized).http_status, 401);
  EXPECT_EQ(err_info(Err::unauthorized).close, 1008);
  EXPECT_EQ(err_info(Err::engine_unavailable).http_status, 503);
  EXPECT_EQ(err_info(Err::body_too_large).http_status, 413);
  EXPECT_EQ(err_info(Err::unknown_type).close, 1008);
  EXPECT_EQ(err_info(Err::duplicate_hello).close, 1008);
  EXPECT_EQ(err_info(Err::hello_required).close, 1008);
  EXPECT_EQ(err_info(Err::unknown_ack_id).close, 1008);
  EXPECT_EQ(err_info(Err::message_too_big).close, 1009);
  EXPECT_EQ(err_info(Err::invalid_utf8).close, 1007);
  EXPECT_EQ(err_info(Err::internal).close, 1011);
  EXPECT_EQ(err_info(Err::server_shutdown).close, 1012);
  EXPECT_EQ(err_info(Err::backpressure).close, 1013);
  EXPECT_EQ(err_info(Err::too_many_connections).close, 1013);
  EXPECT_EQ(err_info(Err::disconnected).close, 4000);
  EXPECT_EQ(err_info(Err::taken_over).close, 4001);
  EXPECT_EQ(err_info(Err::disconnected_final).close, 4003);
}

TEST(Errors, EveryCodeIsNamedUniquelyAndSurfacesSomewhere) {
  std::set<std::string> words;
  for (int i = 0; i < static_cast<int>(Err::count_); ++i) {
    auto& info = err_info(static_cast<Err>(i));
    ASSERT_NE(info.code, nullptr) << i;
    std::string w = info.code;
    EXPECT_FALSE(w.empty()) << i;
    EXPECT_TRUE(words.insert(w).second) << "duplicate word " << w;
    EXPECT_TRUE(info.http_status != 0 || info.close != 0) << w << " never reaches anyone";
  }
}

TEST(Errors, Bodies) {
  auto b = json::parse(error_body(Err::bad_request, "client_id \"x\" is bad"));
  EXPECT_EQ(b.at("error").at("code").as_string(), "bad_request");
  EXPECT_EQ(b.at("error").at("message").as_string(), "client_id \"x\" is bad");
  auto f = json::parse(error_frame_json(Err::unknown_type, "what"));
  EXPECT_EQ(f.at("type").as_string(), "error");
  EXPECT_EQ(f.at("code").as_string(), "unknown_type");
  EXPECT_EQ(f.at("message").as_string(), "what");
}

}  // namespace
}  // namespace herald

// ---- raw JSON spans: notification data is kept exactly as the service wrote it ----------------
#include "util/json_raw.hpp"

TEST(JsonRaw, FindsMemberTextExactly) {
  auto v = herald::raw_member(R"({"client_id":"u1", "data" : {"x":1.5,"s":"a\"}"} ,"ttl_s":3})", "data");
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, R"({"x":1.5,"s":"a\"}"})");
  EXPECT_EQ(*herald::raw_member(R"({"data":1.0})", "data"), "1.0");
  EXPECT_EQ(*herald::raw_member(R"({"data":[1,[2,{"a":"]"}]],"z":null})", "data"), R"([1,[2,{"a":"]"}]])");
  EXPECT_EQ(*herald::raw_member(R"({"data":12345678901234567890123})", "data"), "12345678901234567890123");
}

TEST(JsonRaw, RefusesWhatTheParserMightReadDifferently) {
  EXPECT_FALSE(herald::raw_member(R"({"data":1,"data":2})", "data"));       // duplicate
  EXPECT_FALSE(herald::raw_member(R"({"d\u0061ta":1})", "data"));           // escaped key
  EXPECT_FALSE(herald::raw_member(R"({"other":1})", "data"));
  EXPECT_FALSE(herald::raw_member(R"([1,2])", "data"));
  EXPECT_FALSE(herald::raw_member(R"({})", "data"));
}

TEST(JsonRaw, SplitsArrayElements) {
  auto e = herald::raw_elements(R"( [ {"a":[1,2]} , "x,y" ,3 ] )");
  ASSERT_TRUE(e);
  ASSERT_EQ(e->size(), 3u);
  EXPECT_EQ((*e)[0], R"({"a":[1,2]})");
  EXPECT_EQ((*e)[1], R"("x,y")");
  EXPECT_EQ((*e)[2], "3");
  EXPECT_EQ(herald::raw_elements("[]")->size(), 0u);
  EXPECT_FALSE(herald::raw_elements("{}"));
}
