#include "engine/redis/redis_replies.hpp"

#include <boost/json.hpp>
#include <charconv>

namespace herald::engine::redis_replies {

namespace json = boost::json;
using redis::Reply;

namespace {

std::int64_t to_i64(std::string_view s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::string route_value(const Route& r) { return r.instance + ":" + r.session; }

// Stream entry [id, [field, value, ...]] → value of `field`.
const std::string* field_of(const Reply& entry, std::string_view field) {
  if (entry.elements.size() < 2) return nullptr;
  auto& kv = entry.elements[1].elements;
  for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
    if (kv[i].str == field) return &kv[i + 1].str;
  return nullptr;
}

}  // namespace

std::optional<Route> parse_route(const Reply& r) {
  if (r.type != Reply::Type::string || r.str.empty()) return std::nullopt;
  auto colon = r.str.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return Route{r.str.substr(0, colon), r.str.substr(colon + 1), 0};
}

std::optional<StatusEvent> event_of(const Reply& entry) {
  auto* j = field_of(entry, "j");
  if (!j || entry.elements.empty()) return std::nullopt;
  json::error_code ec;
  auto v = json::parse(*j, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto& o = v.get_object();
  auto str = [&](const char* k) -> std::string {
    auto* f = o.if_contains(k);
    return f && f->is_string() ? std::string(f->get_string()) : std::string();
  };
  auto num = [&](const char* k, std::int64_t dflt) -> std::int64_t {
    auto* f = o.if_contains(k);
    return f && f->is_int64() ? f->get_int64() : dflt;
  };
  StatusEvent ev;
  ev.id = entry.elements[0].str;
  auto type = str("type");
  ev.type = type == "reconnected" ? EventType::reconnected
            : type == "disconnected" ? EventType::disconnected
                                     : EventType::connected;
  ev.client_id = str("client_id");
  ev.instance = str("instance");
  ev.session = str("session");
  ev.remote = str("remote");
  ev.ts_ms = num("ts", 0);
  ev.reason = str("reason");
  ev.previous_instance = str("previous_instance");
  ev.offline_ms = num("offline_ms", -1);
  return ev;
}

std::optional<NotifyReply> notify_reply(const Reply& r) {
  if (r.type != Reply::Type::array || r.elements.size() != 6) return std::nullopt;
  auto id = Id::parse(r.elements[0].str);
  if (!id) return std::nullopt;
  NotifyReply out;
  out.result.id = *id;
  if (auto prev = Id::parse(r.elements[1].str)) out.result.prev = *prev;
  out.result.owner = parse_route(r.elements[2]);
  out.result.duplicate = r.elements[3].integer == 1;
  out.evicted = r.elements[4].integer == 1;
  if (r.elements[5].integer >= 0) out.result.forwarded = r.elements[5].integer > 0;
  return out;
}

InboxPage inbox_page(const Reply& r, std::int64_t now_ms) {
  InboxPage page;
  page.entries = r.elements.size();
  for (auto& e : r.elements) {
    auto id = e.elements.empty() ? std::nullopt : Id::parse(e.elements[0].str);
    auto* d = field_of(e, "d");
    auto* x = field_of(e, "x");
    auto* t = field_of(e, "t");
    if (!id || !d) continue;
    page.last = *id;
    if (x && to_i64(*x) <= now_ms) {
      page.expired.push_back(e.elements[0].str);
      continue;
    }
    page.live.push_back(StoredNotification{*id, t ? to_i64(*t) : 0, std::make_shared<const std::string>(*d)});
  }
  return page;
}

std::optional<SessionOpened> session_opened(const Reply& exec, const std::string& value) {
  if (exec.type != Reply::Type::array || exec.elements.size() != 2) return std::nullopt;
  SessionOpened out;
  auto prev = parse_route(exec.elements[0]);
  if (prev && route_value(*prev) != value) out.previous = prev;
  if (!exec.elements[1].elements.empty()) out.last_event = event_of(exec.elements[1].elements[0]);
  return out;
}

std::optional<ClientStatus> client_status_of(const Reply& exec) {
  if (exec.type != Reply::Type::array || exec.elements.size() != 3) return std::nullopt;
  ClientStatus st;
  st.route = parse_route(exec.elements[0]);
  st.pending = exec.elements[1].integer > 0 ? static_cast<std::uint64_t>(exec.elements[1].integer) : 0;
  auto& events = exec.elements[2].elements;
  if (!events.empty())
    if (auto ev = event_of(events[0])) st.last_seen_ms = ev->ts_ms;
  if (st.route) {
    for (auto& e : events)
      if (auto ev = event_of(e); ev && ev->session == st.route->session && ev->type != EventType::disconnected) {
        st.route->connected_at_ms = ev->ts_ms;
        break;
      }
  }
  return st;
}

std::vector<StatusEvent> events_of(const Reply& r) {
  std::vector<StatusEvent> out;
  for (auto& e : r.elements)
    if (auto ev = event_of(e)) out.push_back(std::move(*ev));
  return out;
}

}  // namespace herald::engine::redis_replies
