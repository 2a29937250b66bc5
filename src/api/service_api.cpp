#include "api/service_api.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <memory>
#include <mutex>
#include <spdlog/spdlog.h>

#include "core/events.hpp"
#include "core/gateway.hpp"
#include "core/log_limit.hpp"
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

// Whether the request carries one of the API keys; if not, why not.
std::optional<ServiceAuthFailure> auth_failure(Gateway& gw, const ApiRequest& req) {
  std::string_view auth = req.authorization;
  while (!auth.empty() && auth.front() == ' ') auth.remove_prefix(1);
  if (auth.empty()) return ServiceAuthFailure::missing;
  // The scheme name is case-insensitive (RFC 9110 §11.1); "Bearer" with nothing after it is missing.
  constexpr std::string_view bearer = "bearer";
  if (auth.size() < bearer.size() ||
      !std::equal(bearer.begin(), bearer.end(), auth.begin(),
                  [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); }) ||
      (auth.size() > bearer.size() && auth[bearer.size()] != ' '))
    return ServiceAuthFailure::wrong;
  auth.remove_prefix(bearer.size());
  while (!auth.empty() && auth.front() == ' ') auth.remove_prefix(1);
  if (auth.empty()) return ServiceAuthFailure::missing;
  if (!gw.api_keys().matches(auth)) return ServiceAuthFailure::wrong;
  return std::nullopt;
}

// The key an authorized request presented (its bucket for --api-rate-limit): the credentials
// after the scheme, spaces trimmed.
std::string_view presented_key(std::string_view authorization) {
  while (!authorization.empty() && authorization.back() == ' ') authorization.remove_suffix(1);
  auto sp = authorization.rfind(' ');
  return sp == std::string_view::npos ? authorization : authorization.substr(sp + 1);
}

// --api-rate-limit: answers 429 with Retry-After when the caller's bucket is empty.
bool rate_limited(Gateway& gw, Loop& loop, const ApiRequest& req, std::function<void(ApiResponse)>& respond) {
  auto& rate = gw.limits().api;
  if (!rate.on()) return false;
  auto now = limits::now_ns();
  auto wait = gw.api_keys().empty() ? rate.take_address(req.peer, now)
                                    : rate.take_key(presented_key(req.authorization), now);
  if (wait == 0) return false;
  loop.metrics().rate_limited[static_cast<size_t>(Limited::api)].add();
  auto r = error(Err::rate_limited, "over --api-rate-limit; retry after Retry-After seconds");
  r.headers.emplace_back("Retry-After", std::to_string(limits::retry_after_s(wait)));
  respond(std::move(r));
  return true;
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

// One batch item's answer: outcome_json plus "status", as json::serialize writes it.
void append_outcome(std::string& out, const NotifyOutcome& o) {
  if (o.error) {
    out += json::serialize(json::object{
        {"status", 503},
        {"error", json::object{{"code", err_code(*o.error)}, {"message", "storage did not confirm it; retry"}}}});
    return;
  }
  out += '{';
  if (!o.id.none()) {
    out += R"("id":")";
    out += o.id.str();
    out += R"(",)";
  }
  out += o.online ? R"("client_online":true)" : R"("client_online":false)";
  if (o.dropped) out += R"(,"dropped":true)";
  if (o.duplicate) out += R"(,"duplicate":true)";
  out += R"(,"status":202})";
}

// `sp`: where the parsed value lives (a monotonic resource makes a request's parse and teardown
// nearly free of malloc; the value must not outlive it).
std::optional<json::value> parse_body(const std::string& body, ApiResponse& err, json::storage_ptr sp = {}) {
  json::error_code ec;
  json::parse_options opts;
  opts.max_depth = 64;
  auto v = json::parse(body, ec, std::move(sp), opts);
  if (ec) {
    err = error(Err::invalid_json, "body is not valid JSON");
    return std::nullopt;
  }
  return v;
}

void notify_one(Gateway& gw, Loop& loop, const std::string& body, bool legacy,
                std::function<void(ApiResponse)> respond) {
  ApiResponse err;
  unsigned char scratch[2048];
  json::monotonic_resource mr(scratch, sizeof scratch);
  auto v = parse_body(body, err, &mr);
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
  json::monotonic_resource mr;
  auto v = parse_body(body, err, &mr);
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

  // Items that fail validation are answered in place; the rest go to the gateway as one batch.
  auto n = items.size();
  auto errors = std::make_shared<std::vector<std::string>>(n);  // an item's answer when it failed
  std::vector<NotifyRequest> reqs;
  std::vector<std::size_t> where;  // reqs[k] is item where[k]
  reqs.reserve(n);
  where.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto p = parse_notify(gw, items[i], raw_items.empty() ? std::string_view{} : raw_items[i], false);
    if (p.error) {
      (*errors)[i] = json::serialize(json::object{
          {"status", err_info(p.error->first).http_status},
          {"error", json::object{{"code", err_code(p.error->first)}, {"message", p.error->second}}}});
      continue;
    }
    reqs.push_back(std::move(p.req));
    where.push_back(i);
  }
  gw.notify_batch(std::move(reqs), loop.metrics(),
                  [errors, where = std::move(where), respond = std::move(respond)](std::vector<NotifyOutcome> outs) {
                    // Written out directly: the same text json::serialize gives, without a DOM.
                    std::string body = R"({"results":[)";
                    body.reserve(body.size() + errors->size() * 64);
                    std::size_t k = 0;
                    for (std::size_t i = 0; i < errors->size(); ++i) {
                      if (i) body += ',';
                      if (k < where.size() && where[k] == i) append_outcome(body, outs[k++]);
                      else body += (*errors)[i];
                    }
                    body += "]}";
                    respond(ApiResponse{200, std::move(body)});
                  });
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
  if (!gw.api_keys().empty()) {
    if (auto why = auth_failure(gw, req)) {
      loop.metrics().service_auth_failures[static_cast<size_t>(*why)].add();
      thread_local LogLimit limit(5, 1000);  // a caller with a bad key cannot flood the log
      std::uint64_t held_back = 0;
      if (limit.allow(unix_ms(), held_back))
        spdlog::warn("service call {} {} refused: {} API key{}", req.method, route_name(route),
                     service_auth_failure_name(*why),
                     held_back ? fmt::format(" ({} more such lines suppressed)", held_back) : std::string());
      auto r = error(Err::unauthorized, "missing or wrong 'Authorization: Bearer <key>'");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return respond(std::move(r));
    }
  } else if (!req.peer_is_loopback) {
    return respond(error(Err::forbidden, "no --api-key is set, so the API answers loopback callers only"));
  }
  if (rate_limited(gw, loop, req, respond)) return;

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
