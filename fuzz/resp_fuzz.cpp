// libFuzzer target for what Herald does with the bytes a Redis server sends: hiredis's RESP
// reader and the conversion to Reply (engine/redis/reply_reader), the subscriber's test for a
// pushed message, and the Redis engine's reading of each command's reply
// (engine/redis/redis_replies, RedisEngine::decode_message), fed replies of any type and shape.
//
// Input layout: byte 0 picks the largest piece size, byte 1 seeds the generator that picks each
// piece's size, and the rest is the server's byte stream. Two readers take it, one in a single
// call and one piece by piece; they must produce the same replies and fail at the same point,
// as the client reads whatever TCP hands it.
//
// Checked on every input, besides "no crash, no leak, no undefined behaviour":
// - a reply written back as RESP reads back as the same reply (nothing is lost in conversion);
// - a reader error is final;
// - each engine interpretation keeps its promises (see check_interpretations);
// - a pushed message's payload that decodes as an instance message decodes to the same message
//   after encode_message (decode ∘ encode ∘ decode = decode).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "engine/redis/redis_engine.hpp"
#include "engine/redis/redis_replies.hpp"
#include "engine/redis/reply_reader.hpp"
#include "fuzz_check.hpp"

namespace {

using herald::redis::Reply;
using herald::redis::ReplyReader;
namespace rr = herald::engine::redis_replies;

// Writes a reply as RESP (nil as a nil bulk string, which reads back as nil).
void write_resp(const Reply& r, std::string& out) {
  switch (r.type) {
    case Reply::Type::string:
      out += '$' + std::to_string(r.str.size()) + "\r\n" + r.str + "\r\n";
      break;
    case Reply::Type::status:
      out += '+' + r.str + "\r\n";
      break;
    case Reply::Type::error:
      out += '-' + r.str + "\r\n";
      break;
    case Reply::Type::integer:
      out += ':' + std::to_string(r.integer) + "\r\n";
      break;
    case Reply::Type::nil:
      out += "$-1\r\n";
      break;
    case Reply::Type::array:
      out += '*' + std::to_string(r.elements.size()) + "\r\n";
      for (auto& e : r.elements) write_resp(e, out);
      break;
  }
}

bool same(const Reply& a, const Reply& b) {
  if (a.type != b.type || a.str != b.str || a.integer != b.integer || a.elements.size() != b.elements.size())
    return false;
  for (std::size_t i = 0; i < a.elements.size(); ++i)
    if (!same(a.elements[i], b.elements[i])) return false;
  return true;
}

std::size_t depth(const Reply& r) {
  std::size_t d = 0;
  for (auto& e : r.elements) d = std::max(d, depth(e));
  return d + 1;
}

struct Run {
  std::vector<Reply> replies;
  bool failed = false;
};

// Reads `stream` in pieces of 1..max_piece bytes drawn from `seed` (max_piece 0: all at once).
Run read_all(std::string_view stream, std::uint8_t max_piece, std::uint8_t seed) {
  ReplyReader reader;
  Run run;
  PieceSizer pieces(seed, max_piece);
  std::size_t pos = 0;
  while (pos < stream.size() && !run.failed) {
    std::size_t n = pieces.next(stream.size() - pos);
    if (!reader.feed(stream.data() + pos, n)) {
      run.failed = true;
      break;
    }
    pos += n;
    for (;;) {
      Reply r;
      auto next = reader.next(r);
      if (next == ReplyReader::Next::need_more) break;
      if (next == ReplyReader::Next::error) {
        FUZZ_CHECK(!reader.error().empty());
        run.failed = true;
        // An error is final: the reader yields nothing more.
        Reply again;
        FUZZ_CHECK(reader.next(again) != ReplyReader::Next::reply);
        break;
      }
      run.replies.push_back(std::move(r));
    }
  }
  return run;
}

void check_round_trip(const Reply& r) {
  std::string resp;
  write_resp(r, resp);
  ReplyReader reader;
  FUZZ_CHECK(reader.feed(resp.data(), resp.size()));
  Reply back;
  FUZZ_CHECK(reader.next(back) == ReplyReader::Next::reply);
  FUZZ_CHECK(same(r, back));
  Reply none;
  FUZZ_CHECK(reader.next(none) == ReplyReader::Next::need_more);
}

void check_instance_message(std::string_view payload) {
  using herald::engine::RedisEngine;
  auto m = RedisEngine::decode_message(payload);
  if (!m) return;
  auto again = RedisEngine::decode_message(RedisEngine::encode_message(*m));
  FUZZ_CHECK(again);
  FUZZ_CHECK(again->kind == m->kind && again->client_id == m->client_id && again->session == m->session);
  if (m->kind == herald::engine::InstanceMessage::Kind::deliver) {
    FUZZ_CHECK(again->id == m->id && again->prev == m->prev && again->ts_ms == m->ts_ms);
    FUZZ_CHECK(m->data && again->data && *again->data == *m->data);
  }
  if (m->kind == herald::engine::InstanceMessage::Kind::disconnect) FUZZ_CHECK(again->reconnect == m->reconnect);
}

void check_route(const Reply& r) {
  auto route = rr::parse_route(r);
  if (!route) return;
  FUZZ_CHECK(r.type == Reply::Type::string);
  FUZZ_CHECK(route->instance.find(':') == std::string::npos);
  FUZZ_CHECK(route->instance + ":" + route->session == r.str);
}

// Every reading of the engine applied to `r`, as if it answered each of its commands.
void check_interpretations(const Reply& r) {
  check_route(r);
  (void)rr::event_of(r);

  if (auto n = rr::notify_reply(r)) {
    FUZZ_CHECK(r.type == Reply::Type::array && r.elements.size() == 6);
    FUZZ_CHECK(herald::Id::parse(r.elements[0].str) == n->result.id);
    if (n->result.owner) check_route(r.elements[2]);
  }

  constexpr std::int64_t kNow = 1'700'000'000'000;
  auto page = rr::inbox_page(r, kNow);
  FUZZ_CHECK(page.entries == r.elements.size());
  FUZZ_CHECK(page.live.size() + page.expired.size() <= page.entries);
  for (auto& n : page.live) FUZZ_CHECK(n.data != nullptr);

  const std::string value = "inst-a:sess-1";
  if (auto s = rr::session_opened(r, value)) {
    FUZZ_CHECK(r.type == Reply::Type::array && r.elements.size() == 2);
    if (s->previous) FUZZ_CHECK(s->previous->instance + ":" + s->previous->session != value);
  }

  if (auto st = rr::client_status_of(r)) {
    FUZZ_CHECK(r.type == Reply::Type::array && r.elements.size() == 3);
    FUZZ_CHECK(st->pending <= static_cast<std::uint64_t>(INT64_MAX));
  }

  FUZZ_CHECK(rr::events_of(r).size() <= r.elements.size());
}

void check_reply(const Reply& r) {
  // hiredis's read stack has 9 levels (arrays and the value at the bottom); deeper input is a
  // reader error. So convert()'s recursion is bounded.
  FUZZ_CHECK(depth(r) <= 9);
  check_round_trip(r);
  if (herald::redis::is_message_push(r)) {
    FUZZ_CHECK(r.elements.size() == 3);
    check_instance_message(r.elements[2].str);
  }
  if (r.type == Reply::Type::string) check_instance_message(r.str);
  check_interpretations(r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static constexpr std::uint8_t kPieceLimits[] = {1, 2, 3, 4, 5, 7, 11, 16, 31, 64, 200};
  const std::uint8_t piece_limit = kPieceLimits[data[0] % std::size(kPieceLimits)];
  const std::uint8_t seed = data[1];
  const std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);

  const Run whole = read_all(stream, 0, 0);
  const Run pieces = read_all(stream, piece_limit, seed);
  FUZZ_CHECK(whole.failed == pieces.failed);
  FUZZ_CHECK(whole.replies.size() == pieces.replies.size());
  for (std::size_t i = 0; i < whole.replies.size(); ++i) FUZZ_CHECK(same(whole.replies[i], pieces.replies[i]));

  for (auto& r : whole.replies) check_reply(r);
  return 0;
}
