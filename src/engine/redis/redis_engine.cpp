#include "engine/redis/redis_engine.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <spdlog/spdlog.h>

#include "engine/redis/redis_replies.hpp"
#include "util/this_loop.hpp"

namespace herald::engine {

namespace json = boost::json;
using redis::Errc;
using redis::Reply;
using namespace redis_replies;

namespace {

constexpr std::int64_t kLivenessTtlMs = 10000;
constexpr std::int64_t kLivenessEveryMs = 3000;
constexpr std::int64_t kProbeTimeoutMs = 3000;
constexpr auto kTick = std::chrono::milliseconds(500);
constexpr std::int64_t kIdempotencyTtlMs = 24 * 3600 * 1000;

// KEYS: last, inbox, route, idempotency. ARGV: maxlen, data, expires_ms, ts_ms, key_ttl_ms, idem key,
// idem ttl, this instance, client id. Returns {id, prev, route, duplicate(0/1), evicted(0/1),
// receivers}. When another instance owns the client, the script also PUBLISHes the notification
// to that instance's channel, so a notify is one round trip (receivers -1: not published here).
const std::string kNotifyScript = R"lua(
if ARGV[6] ~= '' then
  local seen = redis.call('HGET', KEYS[4], ARGV[6])
  if seen then return {seen, '', redis.call('GET', KEYS[3]) or '', 1, 0, -1} end
end
local prev = redis.call('GET', KEYS[1]) or ''
local evicted = 0
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[1]) then evicted = 1 end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], '*', 'd', ARGV[2], 'x', ARGV[3], 't', ARGV[4])
redis.call('SET', KEYS[1], id, 'PX', ARGV[5])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[6], id)
  redis.call('PEXPIRE', KEYS[4], ARGV[7])
end
local route = redis.call('GET', KEYS[3]) or ''
local receivers = -1
local colon = string.find(route, ':', 1, true)
if colon then
  local owner = string.sub(route, 1, colon - 1)
  if owner ~= ARGV[8] then
    local p = prev
    if p == '' then p = '0-0' end
    receivers = redis.call('PUBLISH', 'herald:inst:{' .. owner .. '}', 'd\n' .. ARGV[9] .. '\n' ..
      string.sub(route, colon + 1) .. '\n' .. id .. '\n' .. p .. '\n' .. ARGV[4] .. '\n' .. ARGV[2])
  end
end
return {id, prev, route, 0, evicted, receivers}
)lua";

// Compare-and-delete of a route. KEYS: route. ARGV: iid:sid.
const std::string kCloseScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

// Set a route if missing; 1 when it names us afterwards. KEYS: route. ARGV: iid:sid.
const std::string kReassertScript = R"lua(
local cur = redis.call('GET', KEYS[1])
if not cur then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
if cur == ARGV[1] then return 1 end
return 0
)lua";

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string key(const std::string& cid, const char* what) { return "herald:{" + cid + "}:" + what; }
std::string channel_of(const std::string& iid) { return "herald:inst:{" + iid + "}"; }
std::string instance_key(const std::string& iid) { return "herald:instance:{" + iid + "}"; }
const std::string kGlobalEvents = "herald:events";

std::string route_value(const Route& r) { return r.instance + ":" + r.session; }

std::int64_t to_i64(std::string_view s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

template <class T>
Result<T> unavailable() {
  return Result<T>{Status::unavailable, T{}};
}

bool failed(Errc ec, const Reply& r) { return ec != Errc::ok || r.is_error(); }

std::string event_json(const StatusEvent& ev) {
  json::object o{{"type", event_type_name(ev.type)}, {"client_id", ev.client_id}, {"instance", ev.instance},
                 {"session", ev.session}, {"remote", ev.remote}, {"ts", ev.ts_ms}};
  if (ev.type == EventType::disconnected) o["reason"] = ev.reason;
  if (ev.type == EventType::reconnected) {
    o["previous_instance"] = ev.previous_instance;
    o["offline_ms"] = ev.offline_ms;
  }
  return json::serialize(o);
}

}  // namespace

RedisEngine::RedisEngine(EngineOptions options) : options_(std::move(options)) {
  if (!options_.redis_cluster.empty())
    throw std::invalid_argument("--redis-cluster is not supported yet: use --redis-url");
  auto err = redis::parse_url(options_.redis_url, redis_);
  if (!err.empty()) throw std::invalid_argument("--redis-url: " + err);
  if (options_.loops.empty()) throw std::invalid_argument("the redis engine needs event loops");
  channel_ = channel_of(options_.instance_id);
}

RedisEngine::~RedisEngine() { stop(); }

redis::Connection& RedisEngine::conn() {
  auto i = this_loop_index();
  if (i >= 0 && static_cast<std::size_t>(i) < conns_.size()) return *conns_[i];
  return *conns_[0];
}

void RedisEngine::start() {
  for (auto* io : options_.loops) {
    auto c = redis::Connection::create(*io, redis_);
    conns_.push_back(c);
  }
  // After any connection (re)connects, the sessions of its loop make sure their routes are
  // still there: Redis may have restarted empty or failed over.
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    conns_[i]->on_connected([this, i] {
      if (i == 0) {
        spdlog::info("redis connected ({}:{})", redis_.host, redis_.port);
        next_liveness_ms_ = 0;
      }
      if (reconnected_) reconnected_(static_cast<int>(i));
    });
    conns_[i]->on_disconnected([this, i] {
      if (i == 0) spdlog::warn("redis connection lost ({}); reconnecting", conns_[0]->last_error());
    });
  }
  for (auto& c : conns_) c->start();
  subscriber_ = redis::Subscriber::create(*options_.loops[0], redis_);
  subscriber_->on_message([this](const std::string&, const std::string& payload) { on_channel(payload); });
  // What was published to our channel while the subscriber was away (Redis restarted, the
  // connection dropped, a probe rebuilt it) reached nobody: once subscribed again, the sessions
  // of every loop re-read their inboxes (after reasserting their routes).
  subscriber_->on_subscribed([this] {
    if (!reconnected_) return;
    for (std::size_t i = 0; i < conns_.size(); ++i) reconnected_(static_cast<int>(i));
  });
  subscriber_->subscribe(channel_);
  subscriber_->start();
  timer_ = std::make_unique<boost::asio::steady_timer>(*options_.loops[0]);
  tick();
}

void RedisEngine::stop() {
  if (stopped_.exchange(true)) return;
  if (timer_) timer_->cancel();
  if (subscriber_) subscriber_->stop();
  for (auto& c : conns_) c->stop();
}

bool RedisEngine::ready() const {
  if (conns_.empty() || !subscriber_) return false;
  for (auto& c : conns_)
    if (!c->connected()) return false;
  return subscriber_->connected() && probe_ok_.load();
}

// Once per tick on loop 0: refresh this instance's liveness key, and send a probe through our own
// channel; a probe not back in time means delivery is broken whatever the sockets say.
void RedisEngine::tick() {
  if (stopped_) return;
  auto now = now_ms();
  auto& c = *conns_[0];
  if (c.connected() && now >= next_liveness_ms_) {
    next_liveness_ms_ = now + kLivenessEveryMs;
    json::object meta{{"instance", options_.instance_id}, {"ts", now}};
    c.command({"SET", instance_key(options_.instance_id), json::serialize(meta), "PX", std::to_string(kLivenessTtlMs)},
              [](Errc, Reply) {});
  }
  if (probe_sent_ > probe_seen_.load()) {
    if (now - probe_sent_ms_ > kProbeTimeoutMs) {
      probe_ok_ = false;
      ++probe_failures_;
      spdlog::warn("redis probe {} did not come back through {}: rebuilding the subscriber", probe_sent_, channel_);
      subscriber_->reconnect();
      probe_sent_ = probe_seen_.load();  // start a fresh probe
    }
  }
  if (probe_sent_ == probe_seen_.load() && c.connected() && subscriber_->connected()) {
    probe_sent_ = probe_seen_.load() + 1;
    probe_sent_ms_ = now;
    c.command({"PUBLISH", channel_, "p\n" + std::to_string(probe_sent_)}, [](Errc, Reply) {});
  } else if (!subscriber_->connected() || !c.connected()) {
    probe_ok_ = false;
  }
  // Quick ticks until the probe proves delivery, so an instance is ready soon after Redis is.
  timer_->expires_after(probe_ok_ ? kTick : kTick / 10);
  timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

void RedisEngine::on_channel(const std::string& payload) {
  if (payload.size() > 2 && payload[0] == 'p' && payload[1] == '\n') {
    auto n = static_cast<std::uint64_t>(to_i64(std::string_view(payload).substr(2)));
    if (n > probe_seen_.load()) probe_seen_ = n;
    probe_ok_ = true;
    return;
  }
  auto msg = decode_message(payload);
  if (!msg) {
    spdlog::warn("unreadable message on {} ignored", channel_);
    return;
  }
  if (handler_) handler_(std::move(*msg));
}

std::string RedisEngine::encode_message(const InstanceMessage& m) {
  std::string out;
  switch (m.kind) {
    case InstanceMessage::Kind::deliver:
      out = "d\n" + m.client_id + "\n" + m.session + "\n" + (m.id.none() ? "" : m.id.str()) + "\n" +
            m.prev.str() + "\n" + std::to_string(m.ts_ms) + "\n";
      if (m.data) out += *m.data;
      break;
    case InstanceMessage::Kind::kick:
      out = "k\n" + m.client_id + "\n" + m.session;
      break;
    case InstanceMessage::Kind::disconnect:
      out = "x\n" + m.client_id + "\n" + m.session + "\n" + (m.reconnect ? "1" : "0");
      break;
  }
  return out;
}

std::optional<InstanceMessage> RedisEngine::decode_message(std::string_view p) {
  std::vector<std::string_view> f;
  std::size_t fields = p.substr(0, 1) == "d" ? 7 : p.substr(0, 1) == "x" ? 4 : 3;
  while (f.size() + 1 < fields) {
    auto nl = p.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    f.push_back(p.substr(0, nl));
    p.remove_prefix(nl + 1);
  }
  f.push_back(p);  // the rest (data may be anything but is last)
  InstanceMessage m;
  m.client_id = std::string(f[1]);
  m.session = std::string(f[2]);
  if (f[0] == "d") {
    m.kind = InstanceMessage::Kind::deliver;
    if (!f[3].empty()) {
      auto id = Id::parse(f[3]);
      if (!id) return std::nullopt;
      m.id = *id;
    }
    auto prev = Id::parse(f[4]);
    if (!prev) return std::nullopt;
    m.prev = *prev;
    m.ts_ms = to_i64(f[5]);
    m.data = std::make_shared<const std::string>(f[6]);
  } else if (f[0] == "k") {
    m.kind = InstanceMessage::Kind::kick;
  } else if (f[0] == "x") {
    m.kind = InstanceMessage::Kind::disconnect;
    m.reconnect = f[3] == "1";
  } else {
    return std::nullopt;
  }
  return m;
}

void RedisEngine::append(AppendRequest req, Callback<AppendResult> cb) {
  auto ts = req.ts_ms ? req.ts_ms : now_ms();
  std::int64_t ttl_ms = static_cast<std::int64_t>(req.ttl_s ? req.ttl_s : options_.inbox_ttl_s) * 1000;
  std::int64_t key_ttl = std::max<std::int64_t>(ttl_ms, static_cast<std::int64_t>(options_.inbox_ttl_s) * 1000);
  auto& cid = req.client_id;
  conn().eval(kNotifyScript,
              {key(cid, "last"), key(cid, "inbox"), key(cid, "route"), key(cid, "idem")},
              {std::to_string(options_.inbox_max), *req.data, std::to_string(ts + ttl_ms), std::to_string(ts),
               std::to_string(key_ttl), req.idempotency_key, std::to_string(kIdempotencyTtlMs),
               options_.instance_id, cid},
              [this, cb = std::move(cb)](Errc ec, Reply r) {
                auto out = failed(ec, r) ? std::nullopt : notify_reply(r);
                if (!out) {
                  if (ec == Errc::ok) spdlog::warn("notify script failed: {}", r.str);
                  return cb(unavailable<AppendResult>());
                }
                if (out->evicted) ++evicted_;
                cb({Status::ok, std::move(out->result)});
              });
}

void RedisEngine::read_inbox(const std::string& client_id, Id after, std::size_t limit,
                             Callback<std::vector<StoredNotification>> cb) {
  read_unexpired(client_id, after, limit, {}, std::move(cb));
}

// Reads pages until `limit` unexpired notifications are found or the inbox ends: expired
// entries must not make a page look like the end of the inbox.
void RedisEngine::read_unexpired(const std::string& client_id, Id after, std::size_t limit,
                                 std::vector<StoredNotification> found, Callback<std::vector<StoredNotification>> cb) {
  auto start = after.none() ? std::string("-") : "(" + after.str();
  auto want = limit - found.size();
  conn().command({"XRANGE", key(client_id, "inbox"), start, "+", "COUNT", std::to_string(want)},
                 [this, client_id, limit, want, found = std::move(found), cb = std::move(cb)](Errc ec, Reply r) mutable {
                   if (failed(ec, r)) return cb(unavailable<std::vector<StoredNotification>>());
                   auto page = inbox_page(r, now_ms());
                   auto& gone = page.expired;
                   for (auto& n : page.live) found.push_back(std::move(n));
                   if (!gone.empty()) {
                     // Expired: nobody will get them, so they leave the inbox now.
                     expired_ += gone.size();
                     std::vector<std::string> argv{"XDEL", key(client_id, "inbox")};
                     argv.insert(argv.end(), gone.begin(), gone.end());
                     conn().command(std::move(argv), [](Errc, Reply) {});
                   }
                   bool page_full = page.entries == want;
                   if (page_full && found.size() < limit && !gone.empty())
                     return read_unexpired(client_id, page.last, limit, std::move(found), std::move(cb));
                   cb({Status::ok, std::move(found)});
                 });
}

void RedisEngine::trim_inbox(const std::string& client_id, Id upto, Callback<std::uint64_t> cb) {
  // XTRIM MINID keeps ids >= the threshold, so "up to and including upto" is MINID upto+1.
  conn().command({"XTRIM", key(client_id, "inbox"), "MINID", upto.next().str()}, [cb = std::move(cb)](Errc ec, Reply r) {
    if (!cb) return;
    if (failed(ec, r)) return cb(unavailable<std::uint64_t>());
    cb({Status::ok, static_cast<std::uint64_t>(r.integer)});
  });
}

void RedisEngine::clear_inbox(const std::string& client_id, Callback<std::uint64_t> cb) {
  // XTRIM, not DEL: the stream keeps its last id, so ids keep increasing after a clear.
  conn().command({"XTRIM", key(client_id, "inbox"), "MAXLEN", "0"}, [cb = std::move(cb)](Errc ec, Reply r) {
    if (failed(ec, r)) return cb(unavailable<std::uint64_t>());
    cb({Status::ok, static_cast<std::uint64_t>(r.integer)});
  });
}

void RedisEngine::open_session(const std::string& client_id, Route route, Callback<SessionOpened> cb) {
  auto& c = conn();
  auto value = route_value(route);
  c.command({"MULTI"}, [](Errc, Reply) {});
  c.command({"SET", key(client_id, "route"), value, "GET"}, [](Errc, Reply) {});
  c.command({"XREVRANGE", key(client_id, "events"), "+", "-", "COUNT", "1"}, [](Errc, Reply) {});
  c.command({"EXEC"}, [value, cb = std::move(cb)](Errc ec, Reply r) {
    auto out = failed(ec, r) ? std::nullopt : session_opened(r, value);
    if (!out) return cb(unavailable<SessionOpened>());
    cb({Status::ok, std::move(*out)});
  });
}

void RedisEngine::close_session(const std::string& client_id, const std::string& session, Callback<bool> cb) {
  conn().eval(kCloseScript, {key(client_id, "route")}, {options_.instance_id + ":" + session},
              [cb = std::move(cb)](Errc ec, Reply r) {
                if (!cb) return;
                if (failed(ec, r)) return cb(unavailable<bool>());
                cb({Status::ok, r.integer == 1});
              });
}

void RedisEngine::reassert_route(const std::string& client_id, Route route, Callback<bool> cb) {
  conn().eval(kReassertScript, {key(client_id, "route")}, {route_value(route)}, [cb = std::move(cb)](Errc ec, Reply r) {
    if (failed(ec, r)) return cb(unavailable<bool>());
    cb({Status::ok, r.integer == 1});
  });
}

void RedisEngine::route_of(const std::string& client_id, Callback<std::optional<Route>> cb) {
  conn().command({"GET", key(client_id, "route")}, [cb = std::move(cb)](Errc ec, Reply r) {
    if (failed(ec, r)) return cb(unavailable<std::optional<Route>>());
    cb({Status::ok, parse_route(r)});
  });
}

void RedisEngine::client_status(const std::string& client_id, Callback<ClientStatus> cb) {
  auto& c = conn();
  c.command({"MULTI"}, [](Errc, Reply) {});
  c.command({"GET", key(client_id, "route")}, [](Errc, Reply) {});
  c.command({"XLEN", key(client_id, "inbox")}, [](Errc, Reply) {});
  c.command({"XREVRANGE", key(client_id, "events"), "+", "-", "COUNT", "20"}, [](Errc, Reply) {});
  c.command({"EXEC"}, [this, cb = std::move(cb)](Errc ec, Reply r) mutable {
    auto status = failed(ec, r) ? std::nullopt : client_status_of(r);
    if (!status) return cb(unavailable<ClientStatus>());
    auto st = std::move(*status);
    if (!st.route) return cb({Status::ok, std::move(st)});
    // A route to an instance whose liveness key expired is stale: that instance died.
    auto alive_key = instance_key(st.route->instance);
    conn().command({"EXISTS", std::move(alive_key)}, [st = std::move(st), cb = std::move(cb)](Errc ec, Reply r) mutable {
      if (failed(ec, r)) return cb(unavailable<ClientStatus>());
      if (r.integer == 0) st.route.reset();
      cb({Status::ok, std::move(st)});
    });
  });
}

void RedisEngine::record_event(StatusEvent ev, Callback<std::string> cb) {
  auto body = event_json(ev);
  auto& c = conn();
  c.command({"XADD", key(ev.client_id, "events"), "MAXLEN", std::to_string(options_.events_max), "*", "j", body},
            [cb = std::move(cb)](Errc ec, Reply r) {
              if (!cb) return;
              if (failed(ec, r)) return cb(unavailable<std::string>());
              cb({Status::ok, r.str});
            });
  c.command({"XADD", kGlobalEvents, "MAXLEN", "~", std::to_string(options_.global_events_max), "*", "j", body},
            [](Errc, Reply) {});
}

void RedisEngine::client_events(const std::string& client_id, std::size_t limit, Callback<std::vector<StatusEvent>> cb) {
  conn().command({"XREVRANGE", key(client_id, "events"), "+", "-", "COUNT", std::to_string(limit)},
                 [cb = std::move(cb)](Errc ec, Reply r) {
                   if (failed(ec, r)) return cb(unavailable<std::vector<StatusEvent>>());
                   cb({Status::ok, events_of(r)});
                 });
}

void RedisEngine::publish(const std::string& instance, InstanceMessage msg, Callback<bool> cb) {
  conn().command({"PUBLISH", channel_of(instance), encode_message(msg)}, [cb = std::move(cb)](Errc ec, Reply r) {
    if (!cb) return;
    if (failed(ec, r)) return cb(unavailable<bool>());
    cb({Status::ok, r.integer > 0});
  });
}

void RedisEngine::flush(Callback<bool> cb) {
  // Replies come in order per connection: a PING answered means all before it were answered.
  // Twice, because a command answered NOSCRIPT is sent again (as EVAL) behind the first PING.
  struct Pending {
    std::atomic<std::size_t> left;
    std::atomic<bool> ok{true};
    Callback<bool> cb;
  };
  auto p = std::make_shared<Pending>();
  p->left = conns_.size();
  p->cb = std::move(cb);
  for (auto& c : conns_) {
    auto conn = c;
    c->command({"PING"}, [p, conn](Errc ec, Reply r) {
      if (failed(ec, r)) p->ok = false;
      conn->command({"PING"}, [p](Errc ec, Reply r) {
        if (failed(ec, r)) p->ok = false;
        if (--p->left == 0) p->cb({p->ok ? Status::ok : Status::unavailable, p->ok.load()});
      });
    });
  }
}

EngineStats RedisEngine::stats() const {
  EngineStats s;
  s.expired = expired_.load();
  s.evicted = evicted_.load();
  s.probe_failures = probe_failures_.load();
  return s;
}

}  // namespace herald::engine
