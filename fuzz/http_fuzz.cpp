// libFuzzer target for the service API: arbitrary bytes from an HTTP client go through Beast's
// request parser with Herald's limits, and each request through api::handle() against a real
// Gateway on the memory engine (no sockets: the memory engine answers inline, and the loop's
// queue is drained by hand). This repeats the few lines of api/http_session.cpp that turn a
// parsed request into an ApiRequest, or a parse error into an answer.
//
// Input layout: byte 0 holds flags (bit 0: the gateway with --api-key set, bit 1: the caller is
// on loopback, bit 2: a small header limit so that limit is reachable), the rest is what the
// client sends: one or more pipelined requests.
//
// Checked on every answer, besides "no crash, no leak, no undefined behaviour":
// - handle() responds exactly once;
// - the status is one Herald counts (kStatuses) and a JSON answer is well-formed JSON;
// - an error answer is {"error":{"code","message"}} with a known code whose status it carries;
// - an accepted notification (202 with an id, alone or in a batch) was stored with `data` exactly
//   as a JSON parser reads it from the request: the raw passthrough (util/json_raw) cuts the
//   right bytes out of the body;
// - raw_member / raw_elements agree with the parser on any body that parses.
#include <algorithm>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <spdlog/spdlog.h>
#include <string>
#include <string_view>

#include "api/service_api.hpp"
#include "core/errors.hpp"
#include "core/gateway.hpp"
#include "core/loop.hpp"
#include "util/json_raw.hpp"
#include "fuzz_check.hpp"

namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
using namespace herald;
using api::ApiResponse;

// api/http_session.cpp's header limit.
constexpr std::uint32_t kHeaderLimit = 16 * 1024;
constexpr std::uint32_t kSmallHeaderLimit = 300;
const std::string kOnlineClient = "alice";

struct Gateways {
  std::unique_ptr<Gateway> open, keyed;  // without and with --api-key
};

// Limits small enough for inputs of a few KB to reach both sides of them.
Config fuzz_config(bool keyed) {
  Config c;
  c.engine = "memory";
  c.threads = 1;
  c.max_body_bytes = 2048;
  c.max_message_bytes = 300;
  c.max_batch = 4;
  c.inbox_max = 4;
  if (keyed) c.api_keys = {"key-one", "the second key"};
  return c;
}

std::unique_ptr<Gateway> make_gateway(bool keyed) {
  auto gw = std::make_unique<Gateway>(fuzz_config(keyed), "fuzz-instance");
  // One client is online here, so disconnect and client_online=true are reachable.
  gw->engine().open_session(kOnlineClient, engine::Route{gw->instance_id(), gw->session_id(0, 1), 0},
                            [](engine::Result<engine::SessionOpened>) {});
  return gw;
}

// Built once and reused; rebuilt now and then, so that the clients and idempotency keys the
// fuzzer invents do not pile up in the memory engine for the whole run.
Gateways& gateways(bool renew = false) {
  static Gateways g;
  if (renew || !g.open) g = Gateways{make_gateway(false), make_gateway(true)};
  return g;
}

// Values compared through their serialisation: Boost.JSON reads 0e400 as NaN, and NaN != NaN.
bool same(const json::value& a, const json::value& b) { return json::serialize(a) == json::serialize(b); }

std::optional<json::value> parse_json(std::string_view text) {
  json::error_code ec;
  json::parse_options opts;
  opts.max_depth = 64;  // as the service API parses bodies
  auto v = json::parse(text, ec, {}, opts);
  if (ec) return std::nullopt;
  return v;
}

// util/json_raw against the parser, on any text that parses.
void check_raw(std::string_view body, const json::value& v) {
  if (v.is_object()) {
    for (auto key : {"data", "notifications", "client_id"}) {
      auto raw = raw_member(body, key);
      if (!raw) continue;
      auto* member = v.get_object().if_contains(key);
      FUZZ_CHECK(member != nullptr);
      auto parsed = parse_json(*raw);
      FUZZ_CHECK(parsed && same(*parsed, *member));
    }
  }
  if (v.is_array()) {
    auto elems = raw_elements(body);
    FUZZ_CHECK(elems && elems->size() == v.get_array().size());
    for (std::size_t i = 0; i < elems->size(); ++i) {
      auto parsed = parse_json((*elems)[i]);
      FUZZ_CHECK(parsed && same(*parsed, v.get_array()[i]));
    }
  }
}

// The stored data of client `cid`'s notification `id`, if it is still in the inbox.
std::shared_ptr<const std::string> stored(Gateway& gw, const std::string& cid, const Id& id) {
  std::shared_ptr<const std::string> found;
  gw.engine().read_inbox(cid, Id{}, 100, [&](engine::Result<std::vector<engine::StoredNotification>> r) {
    FUZZ_CHECK(r.ok());
    for (auto& n : r.value)
      if (n.id == id) found = n.data;
  });
  return found;
}

// A 202 for the notification `item` (an element of the request): its data was stored as sent.
void check_accepted(Gateway& gw, const json::object& answer, const json::value& item, bool legacy) {
  FUZZ_CHECK(answer.contains("client_online") && answer.at("client_online").is_bool());
  auto* id_text = answer.if_contains("id");
  if (!id_text) return;  // not durable: nothing stored
  if (answer.contains("duplicate")) return;  // stored by an earlier request with this key
  FUZZ_CHECK(id_text->is_string());
  auto id = Id::parse(id_text->get_string());
  FUZZ_CHECK(id && !id->none());
  FUZZ_CHECK(item.is_object());
  auto& cid = item.at(legacy ? "clientId" : "client_id").get_string();
  FUZZ_CHECK(valid_client_id(cid));
  auto data = stored(gw, std::string(cid), *id);
  if (!data) return;  // already evicted by a later one in the same batch (inbox_max)
  FUZZ_CHECK(data->size() <= gw.config().max_message_bytes);
  auto parsed = parse_json(*data);
  FUZZ_CHECK(parsed && same(*parsed, item.at("data")));
  // What clients receive is JSON: no number in it that a JSON parser cannot read back.
  FUZZ_CHECK(parse_json(json::serialize(*parsed)));
}

void check_error(const ApiResponse& r) {
  FUZZ_CHECK(r.error.has_value());
  FUZZ_CHECK(r.status == err_info(*r.error).http_status);
  auto v = parse_json(r.body);
  FUZZ_CHECK(v && v->is_object() && v->get_object().size() == 1);
  auto* e = v->get_object().if_contains("error");
  FUZZ_CHECK(e && e->is_object() && e->get_object().size() == 2);
  auto& code = e->get_object().at("code");
  auto& message = e->get_object().at("message");
  FUZZ_CHECK(code.is_string() && code.get_string() == err_code(*r.error));
  FUZZ_CHECK(message.is_string() && !message.get_string().empty());
}

void check_response(Gateway& gw, const api::ApiRequest& req, ApiRoute route, const ApiResponse& r) {
  FUZZ_CHECK(std::find(kStatuses.begin(), kStatuses.end(), r.status) != kStatuses.end());
  if (r.error || (r.status >= 400 && route != ApiRoute::readyz)) return check_error(r);
  if (route == ApiRoute::metrics) {
    FUZZ_CHECK(r.content_type.starts_with("text/plain"));
    return;
  }
  FUZZ_CHECK(r.content_type == "application/json");
  auto v = parse_json(r.body);
  FUZZ_CHECK(v && v->is_object());
  auto& answer = v->get_object();
  auto body = parse_json(req.body);
  if (body) check_raw(req.body, *body);
  switch (route) {
    case ApiRoute::notify:
    case ApiRoute::legacy_notify:
      FUZZ_CHECK(r.status == 202 && body);
      check_accepted(gw, answer, *body, route == ApiRoute::legacy_notify);
      break;
    case ApiRoute::notify_batch: {
      FUZZ_CHECK(r.status == 200 && body);
      auto& items = body->at("notifications").get_array();
      auto& results = answer.at("results").get_array();
      FUZZ_CHECK(results.size() == items.size());
      for (std::size_t i = 0; i < items.size(); ++i) {
        auto& res = results[i].get_object();
        auto status = res.at("status").to_number<int>();
        if (status == 202) {
          check_accepted(gw, res, items[i], false);
        } else {
          auto& err = res.at("error").get_object();
          FUZZ_CHECK(err.at("code").is_string() && err.at("message").is_string());
          bool known = false;
          for (int e = 0; e < static_cast<int>(Err::count_); ++e)
            known |= err.at("code").get_string() == err_code(static_cast<Err>(e)) &&
                     err_info(static_cast<Err>(e)).http_status == status;
          FUZZ_CHECK(known);
        }
      }
      break;
    }
    default:
      break;
  }
}

// A client's request, as api/http_session.cpp hands it on; `ended` says the connection closes.
void serve(Gateway& gw, bool loopback, const http::request<http::string_body>& msg, bool& ended) {
  auto target = std::string(msg.target());
  auto path = std::string_view(target).substr(0, target.find('?'));
  auto upgrade = msg[http::field::upgrade];
  bool websocket = upgrade.size() >= 9 && boost::beast::iequals(upgrade.substr(0, 9), "websocket");
  if (websocket) {
    ended = true;  // a WebSocket upgrade leaves the service API (or is refused 404)
    if (path != "/v1/ws" && path != "/")
      check_error(api::error_response(Err::not_found, "WebSocket endpoint is /v1/ws"));
    return;
  }
  api::ApiRequest req;
  req.method = std::string(msg.method_string());
  req.target = std::move(target);
  req.body = msg.body();
  req.authorization = std::string(msg[http::field::authorization]);
  req.peer_is_loopback = loopback;
  ended = !msg.keep_alive();
  auto route = api::classify(req.method, req.target);

  int calls = 0;
  ApiResponse answer;
  api::handle(gw, *gw.loops()[0], req, [&](ApiResponse r) {
    ++calls;
    answer = std::move(r);
  });
  auto& io = gw.loops()[0]->io();
  io.restart();
  io.poll();
  FUZZ_CHECK(calls == 1);
  check_response(gw, req, route, answer);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  gateways();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  static std::uint64_t runs = 0;
  auto& g = gateways(++runs % 50000 == 0);
  Gateway& gw = (flags & 1) ? *g.keyed : *g.open;
  const bool loopback = flags & 2;
  const std::uint32_t header_limit = (flags & 4) ? kSmallHeaderLimit : kHeaderLimit;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

  // Pipelined requests, one after another, until the connection would close.
  bool ended = false;
  while (!rest.empty() && !ended) {
    http::request_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(gw.config().max_body_bytes);
    parser.header_limit(header_limit);
    boost::beast::error_code ec;
    std::size_t used = 0;
    while (!parser.is_done()) {
      // Out of bytes (or none the parser can take: it needs a header whole): the client sent
      // nothing more.
      auto out_of_bytes = [&] {
        parser.put_eof(ec);
        if (!ec && !parser.is_done()) ec = http::error::partial_message;
      };
      if (used == rest.size()) {
        out_of_bytes();
        break;
      }
      auto n = parser.put(boost::asio::buffer(rest.data() + used, rest.size() - used), ec);
      used += n;
      if (ec == http::error::need_more) ec = {};
      if (ec) break;
      if (n == 0) {
        out_of_bytes();
        break;
      }
    }
    rest.remove_prefix(used);
    if (ec) {
      // The answers api/http_session.cpp gives before closing.
      if (ec == http::error::body_limit)
        check_error(api::error_response(Err::body_too_large, "request body is over the limit"));
      else
        check_error(api::error_response(Err::bad_request, "malformed HTTP request"));
      break;
    }
    serve(gw, loopback, parser.get(), ended);
  }
  return 0;
}
