#include "engine/memory/memory_engine.hpp"

#include <algorithm>
#include <chrono>

namespace herald::engine {

namespace {
std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}
constexpr std::size_t kIdempotencyKeysPerClient = 256;
}  // namespace

const char* event_type_name(EventType t) {
  switch (t) {
    case EventType::connected: return "connected";
    case EventType::reconnected: return "reconnected";
    case EventType::disconnected: return "disconnected";
  }
  return "?";
}

MemoryEngine::MemoryEngine(EngineOptions options) : options_(std::move(options)) {}

MemoryEngine::~MemoryEngine() { stop(); }

void MemoryEngine::start() {
  sweeper_ = std::thread([this] {
    std::unique_lock lock(sweep_mu_);
    while (!stopping_) {
      sweep_cv_.wait_for(lock, std::chrono::seconds(1));
      if (stopping_) break;
      lock.unlock();
      sweep_expired();
      lock.lock();
    }
  });
}

void MemoryEngine::stop() {
  {
    std::lock_guard lock(sweep_mu_);
    stopping_ = true;
  }
  sweep_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
}

MemoryEngine::Stripe& MemoryEngine::stripe_for(const std::string& client_id) {
  return stripes_[std::hash<std::string>{}(client_id) % stripes_.size()];
}

void MemoryEngine::expire(Client& c, std::int64_t now) {
  if (now < c.next_expiry_ms) return;
  std::int64_t next = INT64_MAX;
  std::uint64_t gone = 0;
  c.inbox.erase_if([&](const Entry& e) {
    if (e.expires_ms <= now) return ++gone, true;
    next = std::min(next, e.expires_ms);
    return false;
  });
  c.next_expiry_ms = next;
  expired_ += gone;
  pending_ -= static_cast<std::int64_t>(gone);
}

void MemoryEngine::sweep_expired() {
  auto now = now_ms();
  for (auto& s : stripes_) {
    std::lock_guard lock(s.mu);
    for (auto& [id, c] : s.clients) expire(c, now);
  }
}

void MemoryEngine::append(AppendRequest req, Callback<AppendResult> cb) {
  AppendResult r;
  {
    auto& s = stripe_for(req.client_id);
    std::lock_guard lock(s.mu);
    auto& c = s.clients[req.client_id];
    if (!req.idempotency_key.empty()) {
      auto seen = c.idempotency.items();
      auto it = std::find_if(seen.begin(), seen.end(), [&](auto& p) { return p.first == req.idempotency_key; });
      if (it != seen.end()) {
        r.id = it->second;
        r.duplicate = true;
        r.owner = c.route;
      }
    }
    if (!r.duplicate) {
      auto now = req.ts_ms ? req.ts_ms : now_ms();
      expire(c, now);
      r.prev = c.last;
      r.id = c.last.successor_at(static_cast<std::uint64_t>(now));
      c.last = r.id;
      auto ttl = req.ttl_s ? req.ttl_s : options_.inbox_ttl_s;
      auto expires = now + static_cast<std::int64_t>(ttl) * 1000;
      c.inbox.emplace_back(Entry{r.id, now, expires, std::move(req.data)});
      c.next_expiry_ms = std::min(c.next_expiry_ms, expires);
      ++pending_;
      while (c.inbox.size() > options_.inbox_max) {
        c.inbox.pop_front();
        ++evicted_;
        --pending_;
      }
      if (!req.idempotency_key.empty()) {
        c.idempotency.emplace_back(std::move(req.idempotency_key), r.id);
        if (c.idempotency.size() > kIdempotencyKeysPerClient) c.idempotency.pop_front();
      }
      r.owner = c.route;
    }
  }
  cb({Status::ok, std::move(r)});
}

void MemoryEngine::read_inbox(const std::string& client_id, Id after, std::size_t limit,
                              Callback<std::vector<StoredNotification>> cb) {
  std::vector<StoredNotification> out;
  {
    auto& s = stripe_for(client_id);
    std::lock_guard lock(s.mu);
    auto it = s.clients.find(client_id);
    if (it != s.clients.end()) {
      auto& c = it->second;
      expire(c, now_ms());
      auto inbox = c.inbox.items();
      auto from = std::upper_bound(inbox.begin(), inbox.end(), after,
                                   [](const Id& a, const Entry& e) { return a < e.id; });
      for (; from != inbox.end() && out.size() < limit; ++from)
        out.push_back(StoredNotification{from->id, from->ts_ms, from->data});
    }
  }
  cb({Status::ok, std::move(out)});
}

void MemoryEngine::trim_inbox(const std::string& client_id, Id upto, Callback<std::uint64_t> cb) {
  std::uint64_t gone = 0;
  {
    auto& s = stripe_for(client_id);
    std::lock_guard lock(s.mu);
    auto it = s.clients.find(client_id);
    if (it != s.clients.end()) {
      auto& inbox = it->second.inbox;
      while (!inbox.empty() && inbox.front().id <= upto) {
        inbox.pop_front();
        ++gone;
      }
    }
  }
  pending_ -= static_cast<std::int64_t>(gone);
  if (cb) cb({Status::ok, gone});
}

void MemoryEngine::clear_inbox(const std::string& client_id, Callback<std::uint64_t> cb) {
  std::uint64_t gone = 0;
  {
    auto& s = stripe_for(client_id);
    std::lock_guard lock(s.mu);
    auto it = s.clients.find(client_id);
    if (it != s.clients.end()) {
      gone = it->second.inbox.size();
      it->second.inbox.clear();
      it->second.next_expiry_ms = INT64_MAX;
    }
  }
  pending_ -= static_cast<std::int64_t>(gone);
  cb({Status::ok, gone});
}

void MemoryEngine::open_session(const std::string& client_id, Route route, Callback<SessionOpened> cb) {
  SessionOpened r;
  {
    auto& s = stripe_for(client_id);
    std::lock_guard lock(s.mu);
    auto& c = s.clients[client_id];
    if (c.route && c.route->session != route.session) r.previous = c.route;
    if (!c.events.empty()) r.last_event = c.events.newest().unpack();
    c.route = std::move(route);
  }
  cb({Status::ok, std::move(r)});
}

void MemoryEngine::close_session(const std::string& client_id, const std::string& session,
                                 Callback<bool> cb) {
  bool deleted = false;
  {
    auto& s = stripe_for(client_id);
    std::lock_guard lock(s.mu);
    auto it = s.clients.find(client_id);
    if (it != s.clients.end() && it->second.route && it->second.route->session == session) {
      it->second.route.reset();
      deleted = true;
    }
  }
  if (cb) cb({Status::ok, deleted});
}

void MemoryEngine::client_status(const std::string& client_id, Callback<ClientStatus> cb) {
  ClientStatus st;
  {
    auto& s = stripe_for(client_id);
    std::lock_guard lock(s.mu);
    auto it = s.clients.find(client_id);
    if (it != s.clients.end()) {
      auto& c = it->second;
      expire(c, now_ms());
      st.route = c.route;
      st.pending = c.inbox.size();
      if (!c.events.empty()) st.last_seen_ms = c.events.newest().ts_ms();
    }
  }
  cb({Status::ok, std::move(st)});
}

void MemoryEngine::route_of(const std::string& client_id, Callback<std::optional<Route>> cb) {
  std::optional<Route> route;
  {
    auto& s = stripe_for(client_id);
    std::lock_guard lock(s.mu);
    auto it = s.clients.find(client_id);
    if (it != s.clients.end()) route = it->second.route;
  }
  cb({Status::ok, std::move(route)});
}

void MemoryEngine::record_event(StatusEvent ev, Callback<std::string> cb) {
  std::string id;
  {
    // Ids are taken and both streams appended under one lock, so every stream is in id order
    // (lock order: global, then stripe; nothing else takes both).
    std::lock_guard lock(global_mu_);
    last_event_id_ = last_event_id_.successor_at(static_cast<std::uint64_t>(ev.ts_ms));
    ev.id = id = last_event_id_.str();
    PackedEvent packed(ev);
    global_events_.push_back(packed);
    while (global_events_.size() > options_.global_events_max) global_events_.pop_front();
    auto& s = stripe_for(ev.client_id);
    std::lock_guard stripe_lock(s.mu);
    s.clients[ev.client_id].events.push(std::move(packed), options_.events_max);
  }
  if (cb) cb({Status::ok, std::move(id)});
}

void MemoryEngine::client_events(const std::string& client_id, std::size_t limit,
                                 Callback<std::vector<StatusEvent>> cb) {
  std::vector<StatusEvent> out;
  {
    auto& s = stripe_for(client_id);
    std::lock_guard lock(s.mu);
    auto it = s.clients.find(client_id);
    if (it != s.clients.end()) {
      it->second.events.newest_first(limit, [&](const PackedEvent& e) { out.push_back(e.unpack()); });
    }
  }
  cb({Status::ok, std::move(out)});
}

void MemoryEngine::publish(const std::string& instance, InstanceMessage msg, Callback<bool> cb) {
  // One instance only: a message for ourselves is handed straight back; any other instance
  // cannot exist on this engine.
  bool delivered = instance == options_.instance_id && handler_;
  if (delivered) handler_(std::move(msg));
  if (cb) cb({Status::ok, delivered});
}

void MemoryEngine::reassert_route(const std::string& client_id, Route route, Callback<bool> cb) {
  bool ours = false;
  {
    auto& s = stripe_for(client_id);
    std::lock_guard lock(s.mu);
    auto& c = s.clients[client_id];
    if (!c.route) c.route = route;
    ours = c.route->instance == route.instance && c.route->session == route.session;
  }
  cb({Status::ok, ours});
}

EngineStats MemoryEngine::stats() const {
  return EngineStats{expired_.load(), evicted_.load(),
                     static_cast<std::uint64_t>(std::max<std::int64_t>(0, pending_.load()))};
}

}  // namespace herald::engine
