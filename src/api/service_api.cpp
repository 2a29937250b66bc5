#include "api/service_api.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <memory>
#include <mutex>
#include <openssl/crypto.h>

#include "core/events.hpp"
#include "core/gateway.hpp"
#include "util/json_raw.hpp"

namespace herald::api {

namespace json = boost::json;

ApiResponse error_response(Err e, std::string_view message) {
  ApiResponse r{err_info(e).http_status, error_body(e, message)};
  r.error = e;
  return r;
}

namespace {

ApiResponse json_response(int status, const json::value& v) { return ApiResponse{status, json::serialize(v)}; }

ApiResponse error(Err e, std::string_view message) { return error_response(e, message); }

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      unsigned v = 0;
      auto r = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (r.ec == std::errc{} && r.ptr == s.data() + i + 3) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

struct Target {
  std::string_view path;
  std::string_view query;
};

Target split_target(std::string_view t) {
  auto q = t.find('?');
  if (q == std::string_view::npos) return {t, {}};
  return {t.substr(0, q), t.substr(q + 1)};
}

std::string_view query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

// /v1/clients/{id}[/suffix] → (id, suffix)
bool client_path(std::string_view path, std::string& id, std::string_view& suffix) {
  constexpr std::string_view prefix = "/v1/clients/";
  if (path.substr(0, prefix.size()) != prefix) return false;
  path.remove_prefix(prefix.size());
  auto slash = path.find('/');
  id = percent_decode(path.substr(0, slash));
  suffix = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
  return true;
}

bool authorized(const Gateway& gw, const ApiRequest& req) {
  auto& keys = gw.config().api_keys;
  std::string_view auth = req.authorization;
  // The scheme name is case-insensitive (RFC 9110 §11.1).
  constexpr std::string_view bearer = "bearer ";
  if (auth.size() < bearer.size() ||
      !std::equal(bearer.begin(), bearer.end(), auth.begin(),
                  [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); }))
    return false;
  auth.remove_prefix(bearer.size());
  while (!auth.empty() && auth.front() == ' ') auth.remove_prefix(1);
  bool ok = false;
  for (auto& k : keys)  // constant time per key; every key is compared
    ok |= k.size() == auth.size() && CRYPTO_memcmp(k.data(), auth.data(), k.size()) == 0;
  return ok;
}

// ---- notify --------------------------------------------------------------------------------

struct ParsedNotify {
  NotifyRequest req;
  std::optional<std::pair<Err, std::string>> error;
};

// A number no JSON text can carry: Boost.JSON reads 1e400 as infinity and 0e400 as NaN, and
// would write them back as `Infinity` / `NaN`, which no JSON parser accepts (found by http_fuzz).
bool has_non_finite(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_:
      return !std::isfinite(v.get_double());
    case json::kind::array:
      for (auto& e : v.get_array())
        if (has_non_finite(e)) return true;
      return false;
    case json::kind::object:
      for (auto& m : v.get_object())
        if (has_non_finite(m.value())) return true;
      return false;
    default:
      return false;
  }
}

// `raw` is the notification's own JSON text, when known: its data is kept byte for byte.
ParsedNotify parse_notify(const Gateway& gw, const json::value& v, std::string_view raw, bool legacy) {
  ParsedNotify p;
  auto bad = [&](Err e, std::string m) {
    p.error = std::make_pair(e, std::move(m));
    return p;
  };
  if (!v.is_object()) return bad(Err::bad_request, "a notification must be a JSON object");
  auto& o = v.get_object();
  auto* cid = o.if_contains(legacy ? "clientId" : "client_id");
  if (!cid || !cid->is_string())
    return bad(Err::bad_request, legacy ? "clientId must be a string" : "client_id must be a string");
  if (!valid_client_id(cid->get_string()))
    return bad(Err::invalid_client_id, "client ids are 1-128 characters of A-Z a-z 0-9 . _ - @ :");
  p.req.client_id = std::string(cid->get_string());
  auto* data = o.if_contains("data");
  if (!data) return bad(Err::bad_request, "data is required");
  // Refused whether or not the raw text is at hand, so the answer never depends on how the
  // body happens to be spelled.
  if (has_non_finite(*data)) return bad(Err::bad_request, "data holds a number out of range (e.g. 1e400)");
  auto exact = raw.empty() ? std::nullopt : raw_member(raw, "data");
  auto text = exact ? std::string(*exact) : json::serialize(*data);
  if (text.size() > gw.config().max_message_bytes)
    return bad(Err::body_too_large, "data is larger than --max-message-bytes");
  p.req.data = std::make_shared<const std::string>(std::move(text));
  if (legacy) return p;
  if (auto* ttl = o.if_contains("ttl_s"); ttl && !ttl->is_null()) {
    auto n = ttl->if_int64();
    if (!n || *n < 1 || *n > 10LL * 365 * 24 * 3600)
      return bad(Err::bad_request, "ttl_s must be an integer from 1 to 315360000");
    p.req.ttl_s = static_cast<std::uint32_t>(*n);
  }
  if (auto* d = o.if_contains("durable"); d && !d->is_null()) {
    if (!d->is_bool()) return bad(Err::bad_request, "durable must be true or false");
    p.req.durable = d->get_bool();
  }
  if (auto* k = o.if_contains("idempotency_key"); k && !k->is_null()) {
    if (!k->is_string() || k->get_string().empty() || k->get_string().size() > 256)
      return bad(Err::bad_request, "idempotency_key must be a string of 1-256 characters");
    p.req.idempotency_key = std::string(k->get_string());
  }
  return p;
}

json::object outcome_json(const NotifyOutcome& out) {
  json::object o;
  if (!out.id.none()) o["id"] = out.id.str();
  o["client_online"] = out.online;
  if (out.dropped) o["dropped"] = true;
  if (out.duplicate) o["duplicate"] = true;
  return o;
}

std::optional<json::value> parse_body(const std::string& body, ApiResponse& err) {
  json::error_code ec;
  json::parse_options opts;
  opts.max_depth = 64;
  auto v = json::parse(body, ec, {}, opts);
  if (ec) {
    err = error(Err::invalid_json, "body is not valid JSON");
    return std::nullopt;
  }
  return v;
}

void notify_one(Gateway& gw, Loop& loop, const std::string& body, bool legacy,
                std::function<void(ApiResponse)> respond) {
  ApiResponse err;
  auto v = parse_body(body, err);
  if (!v) return respond(std::move(err));
  auto p = parse_notify(gw, *v, body, legacy);
  if (p.error) return respond(error(p.error->first, p.error->second));
  gw.notify(std::move(p.req), loop.metrics(), [respond = std::move(respond)](NotifyOutcome out) {
    if (out.error)
      return respond(error(*out.error, "storage did not confirm the notification; retry (with an idempotency_key, a retry is never doubled)"));
    respond(json_response(202, outcome_json(out)));
  });
}

void notify_batch(Gateway& gw, Loop& loop, const std::string& body, std::function<void(ApiResponse)> respond) {
  ApiResponse err;
  auto v = parse_body(body, err);
  if (!v) return respond(std::move(err));
  auto* list = v->is_object() ? v->get_object().if_contains("notifications") : nullptr;
  if (!list || !list->is_array()) return respond(error(Err::bad_request, "notifications must be an array"));
  auto& items = list->get_array();
  // The raw text of each item, so each data is kept as written (when the body is that plain).
  std::vector<std::string_view> raw_items;
  if (auto raw_list = raw_member(body, "notifications"))
    if (auto elems = raw_elements(*raw_list); elems && elems->size() == items.size()) raw_items = std::move(*elems);
  if (items.empty()) return respond(error(Err::bad_request, "notifications is empty"));
  if (items.size() > gw.config().max_batch)
    return respond(error(Err::bad_request, "too many notifications in one batch (see --max-batch)"));

  struct Gather {
    std::mutex mu;
    json::array results;
    std::size_t left;
    std::function<void(ApiResponse)> respond;
  };
  auto g = std::make_shared<Gather>();
  g->results.resize(items.size());
  g->left = items.size();
  g->respond = std::move(respond);
  auto settle = [g](std::size_t i, json::object r) {
    std::unique_lock lock(g->mu);
    g->results[i] = std::move(r);
    if (--g->left) return;
    lock.unlock();
    g->respond(json_response(200, json::object{{"results", std::move(g->results)}}));
  };
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto p = parse_notify(gw, items[i], raw_items.empty() ? std::string_view{} : raw_items[i], false);
    if (p.error) {
      settle(i, json::object{{"status", err_info(p.error->first).http_status},
                             {"error", json::object{{"code", err_code(p.error->first)}, {"message", p.error->second}}}});
      continue;
    }
    gw.notify(std::move(p.req), loop.metrics(), [settle, i](NotifyOutcome out) {
      if (out.error) {
        settle(i, json::object{{"status", 503},
                               {"error", json::object{{"code", err_code(*out.error)},
                                                      {"message", "storage did not confirm it; retry"}}}});
        return;
      }
      auto o = outcome_json(out);
      o["status"] = 202;
      settle(i, std::move(o));
    });
  }
}

// ---- clients -------------------------------------------------------------------------------

json::value optional_string(const std::optional<engine::Route>& r, std::string engine::Route::*field) {
  if (!r) return nullptr;
  return json::value(json::string((*r).*field));
}

void client_status(Gateway& gw, const std::string& cid, std::function<void(ApiResponse)> respond) {
  gw.engine().client_status(cid, [cid, respond = std::move(respond)](engine::Result<engine::ClientStatus> r) {
    if (!r.ok()) return respond(error(Err::engine_unavailable, "storage is unavailable"));
    auto& s = r.value;
    json::object o;
    o["client_id"] = cid;
    o["online"] = s.route.has_value();
    o["instance"] = optional_string(s.route, &engine::Route::instance);
    o["session"] = optional_string(s.route, &engine::Route::session);
    o["connected_at"] = s.route ? json::value(s.route->connected_at_ms) : json::value(nullptr);
    o["last_seen"] = s.last_seen_ms ? json::value(s.last_seen_ms) : json::value(nullptr);
    o["pending"] = s.pending;
    respond(json_response(200, o));
  });
}

void client_events(Gateway& gw, const std::string& cid, std::string_view query,
                   std::function<void(ApiResponse)> respond) {
  std::size_t limit = 100;
  if (auto l = query_param(query, "limit"); !l.empty()) {
    auto r = std::from_chars(l.data(), l.data() + l.size(), limit);
    if (r.ec != std::errc{} || r.ptr != l.data() + l.size() || limit < 1 || limit > 1000)
      return respond(error(Err::bad_request, "limit must be an integer from 1 to 1000"));
  }
  gw.engine().client_events(cid, limit, [cid, respond = std::move(respond)](engine::Result<std::vector<engine::StatusEvent>> r) {
    if (!r.ok()) return respond(error(Err::engine_unavailable, "storage is unavailable"));
    json::array events;
    for (auto& e : r.value) events.push_back(event_to_json(e));
    respond(json_response(200, json::object{{"client_id", cid}, {"events", std::move(events)}}));
  });
}

void client_disconnect(Gateway& gw, const std::string& cid, const std::string& body,
                       std::function<void(ApiResponse)> respond) {
  bool reconnect = true;
  if (!body.empty()) {
    ApiResponse err;
    auto v = parse_body(body, err);
    if (!v) return respond(std::move(err));
    if (!v->is_object()) return respond(error(Err::bad_request, "body must be a JSON object"));
    if (auto* r = v->get_object().if_contains("reconnect"); r && !r->is_null()) {
      if (!r->is_bool()) return respond(error(Err::bad_request, "reconnect must be true or false"));
      reconnect = r->get_bool();
    }
  }
  gw.disconnect(cid, reconnect, [cid, respond = std::move(respond)](std::optional<Err> e, bool online) {
    if (e) return respond(error(*e, "storage is unavailable"));
    if (!online) return respond(error(Err::not_found, "client is not connected"));
    respond(json_response(202, json::object{{"client_id", cid}, {"disconnected", true}}));
  });
}

}  // namespace

ApiRoute classify(std::string_view method, std::string_view target) {
  auto [path, query] = split_target(target);
  if (path == "/v1/notifications") return ApiRoute::notify;
  if (path == "/v1/notifications/batch") return ApiRoute::notify_batch;
  if (path == "/notify") return ApiRoute::legacy_notify;
  if (path == "/healthz") return ApiRoute::healthz;
  if (path == "/readyz") return ApiRoute::readyz;
  if (path == "/metrics") return ApiRoute::metrics;
  if (path == "/v1/ws") return ApiRoute::websocket;
  std::string id;
  std::string_view suffix;
  if (client_path(path, id, suffix)) {
    if (suffix.empty()) return ApiRoute::client_status;
    if (suffix == "/events") return ApiRoute::client_events;
    if (suffix == "/pending") return ApiRoute::client_pending;
    if (suffix == "/disconnect") return ApiRoute::client_disconnect;
  }
  return ApiRoute::other;
}

void handle(Gateway& gw, Loop& loop, ApiRequest req, std::function<void(ApiResponse)> respond) {
  auto route = classify(req.method, req.target);
  auto [path, query] = split_target(req.target);
  auto method_is = [&](const char* m) { return req.method == m; };
  auto wrong_method = [&] { return respond(error(Err::method_not_allowed, "method not allowed on this path")); };

  switch (route) {
    case ApiRoute::healthz:
      return method_is("GET") ? respond(json_response(200, json::object{{"status", "ok"}})) : wrong_method();
    case ApiRoute::readyz: {
      if (!method_is("GET")) return wrong_method();
      const char* why = gw.draining() ? "draining" : !gw.engine().ready() ? "engine_unavailable" : nullptr;
      if (why) return respond(json_response(503, json::object{{"status", why}}));
      return respond(json_response(200, json::object{{"status", "ready"}}));
    }
    case ApiRoute::metrics:
      if (!method_is("GET")) return wrong_method();
      return respond(ApiResponse{200, gw.metrics_text(), "text/plain; version=0.0.4"});
    case ApiRoute::other:
    case ApiRoute::websocket:
      return respond(error(Err::not_found, "no such endpoint"));
    default:
      break;
  }

  // Everything below is a service call.
  if (!gw.config().api_keys.empty()) {
    if (!authorized(gw, req)) {
      auto r = error(Err::unauthorized, "missing or wrong 'Authorization: Bearer <key>'");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return respond(std::move(r));
    }
  } else if (!req.peer_is_loopback) {
    return respond(error(Err::forbidden, "no --api-key is set, so the API answers loopback callers only"));
  }

  std::string cid;
  std::string_view suffix;
  if (client_path(path, cid, suffix) && !valid_client_id(cid))
    return respond(error(Err::invalid_client_id, "client ids are 1-128 characters of A-Z a-z 0-9 . _ - @ :"));

  switch (route) {
    case ApiRoute::notify:
      return method_is("POST") ? notify_one(gw, loop, req.body, false, std::move(respond)) : wrong_method();
    case ApiRoute::legacy_notify:
      return method_is("POST") ? notify_one(gw, loop, req.body, true, std::move(respond)) : wrong_method();
    case ApiRoute::notify_batch:
      return method_is("POST") ? notify_batch(gw, loop, req.body, std::move(respond)) : wrong_method();
    case ApiRoute::client_status:
      return method_is("GET") ? client_status(gw, cid, std::move(respond)) : wrong_method();
    case ApiRoute::client_events:
      return method_is("GET") ? client_events(gw, cid, query, std::move(respond)) : wrong_method();
    case ApiRoute::client_pending:
      if (!method_is("DELETE")) return wrong_method();
      return gw.engine().clear_inbox(cid, [cid, respond = std::move(respond)](engine::Result<std::uint64_t> r) {
        if (!r.ok()) return respond(error(Err::engine_unavailable, "storage is unavailable"));
        respond(json_response(200, json::object{{"client_id", cid}, {"deleted", r.value}}));
      });
    case ApiRoute::client_disconnect:
      return method_is("POST") ? client_disconnect(gw, cid, req.body, std::move(respond)) : wrong_method();
    default:
      return respond(error(Err::not_found, "no such endpoint"));
  }
}

}  // namespace herald::api
