#include "core/gateway.hpp"

#include <boost/asio/post.hpp>
#include <charconv>
#include <mutex>
#include <chrono>
#include <random>
#include <spdlog/spdlog.h>

#include "core/events.hpp"

namespace herald {

bool valid_client_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '@' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::int64_t unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Gateway::Gateway(Config config, std::string instance_id)
    : config_(std::move(config)), instance_id_(std::move(instance_id)) {
  // Keys first: a bad key file stops the start-up before anything is built (std::invalid_argument).
  api_keys_ = std::make_unique<ApiKeys>(config_.api_keys, config_.api_key_file);
  if (client_auth_mode(config_) == "jwt") {
    jwt::Options o;
    o.leeway_s = config_.jwt_leeway_s;
    o.audience = config_.jwt_audience;
    o.issuer = config_.jwt_issuer;
    jwt_ = std::make_unique<jwt::Verifier>(config_.jwt_public_key.empty()
                                               ? jwt::Verifier::hs256(config_.jwt_secret, std::move(o))
                                               : jwt::Verifier::from_public_key_file(config_.jwt_public_key, std::move(o)));
  }
  std::random_device rd;
  char buf[16];
  auto n = std::snprintf(buf, sizeof buf, "%08x", rd());
  boot_.assign(buf, n);
  auto threads = config_.effective_threads();
  for (unsigned i = 0; i < threads; ++i) loops_.push_back(std::make_unique<Loop>(*this, i));
  engine::EngineOptions eo{instance_id_,          config_.inbox_max, config_.inbox_ttl_s,
                           config_.events_max,    config_.global_events_max,
                           config_.redis_url,     config_.redis_cluster, {}};
  for (auto& l : loops_) eo.loops.push_back(&l->io());
  engine_ = engine::make_engine(config_.engine, eo);
  engine_->on_message([this](engine::InstanceMessage msg) { on_instance_message(std::move(msg)); });
  engine_->on_reconnected([this](int index) {
    // Storage may have come back empty (restart, failover): live sessions claim their routes again,
    // and read their inboxes (what was published while the instance was not subscribed is there).
    if (index < 0 || static_cast<std::size_t>(index) >= loops_.size()) return;
    auto* loop = loops_[index].get();
    boost::asio::post(loop->io(), [loop] { loop->each([](Peer& p) { p.reassert(); }); });
  });
}

Gateway::~Gateway() {
  // The engine's connections and timers live on the loops' io_contexts: it goes first.
  engine_->stop();
  engine_.reset();
}

// "<boot>.<loop>.<counter>": the loop and the counter find the session without any shared map.
std::string Gateway::session_id(unsigned loop, std::uint64_t counter) const {
  return boot_ + "." + std::to_string(loop) + "." + std::to_string(counter);
}

namespace {
struct SessionAddress {
  unsigned loop;
  std::uint64_t counter;
};

std::optional<SessionAddress> parse_session(std::string_view sid, std::string_view boot) {
  if (sid.substr(0, boot.size()) != boot || sid.size() < boot.size() + 4 || sid[boot.size()] != '.')
    return std::nullopt;
  sid.remove_prefix(boot.size() + 1);
  SessionAddress a{};
  auto dot = sid.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto r1 = std::from_chars(sid.data(), sid.data() + dot, a.loop);
  auto r2 = std::from_chars(sid.data() + dot + 1, sid.data() + sid.size(), a.counter);
  if (r1.ec != std::errc{} || r2.ec != std::errc{} || r2.ptr != sid.data() + sid.size()) return std::nullopt;
  return a;
}
}  // namespace

void Gateway::send_to(const engine::Route& route, engine::InstanceMessage msg, std::function<void(bool)> done) {
  if (route.instance != instance_id_) {
    engine::Callback<bool> cb;
    if (done) cb = [done = std::move(done)](engine::Result<bool> r) { done(r.ok() && r.value); };
    engine_->publish(route.instance, std::move(msg), std::move(cb));
    return;
  }
  msg.session = route.session;
  on_instance_message(std::move(msg));
  if (done) done(true);
}

void Gateway::on_instance_message(engine::InstanceMessage msg) {
  auto where = parse_session(msg.session, boot_);
  if (!where || where->loop >= loops_.size()) return;  // a session of an earlier run: gone
  auto& loop = *loops_[where->loop];
  boost::asio::post(loop.io(), [&loop, counter = where->counter, msg = std::move(msg)] {
    auto* peer = loop.find(counter);
    if (!peer) return;  // closed meanwhile; a durable notification waits in the inbox
    switch (msg.kind) {
      case engine::InstanceMessage::Kind::deliver:
        peer->deliver(Live{msg.id, msg.prev, msg.ts_ms, msg.data});
        break;
      case engine::InstanceMessage::Kind::kick:
        peer->kick();
        break;
      case engine::InstanceMessage::Kind::disconnect:
        peer->disconnect(msg.reconnect);
        break;
    }
  });
}

void Gateway::notify(NotifyRequest req, Metrics& metrics, std::function<void(NotifyOutcome)> done) {
  auto ts = unix_ms();
  if (!req.durable) {
    auto cid = req.client_id;
    engine_->route_of(cid, [this, &metrics, req = std::move(req), ts, done = std::move(done)](
                               engine::Result<std::optional<engine::Route>> r) mutable {
      NotifyOutcome out;
      if (!r.ok()) {
        out.error = Err::engine_unavailable;
      } else if (r.value) {
        engine::InstanceMessage msg;
        msg.client_id = req.client_id;
        msg.session = r.value->session;
        msg.ts_ms = ts;
        msg.data = std::move(req.data);
        send_to(*r.value, std::move(msg), [&metrics, done = std::move(done)](bool reached) {
          NotifyOutcome out;
          out.online = reached;
          out.dropped = !reached;
          if (!reached) metrics.notifications_dropped.add();
          done(std::move(out));
        });
        return;
      } else {
        out.dropped = true;
        metrics.notifications_dropped.add();
      }
      done(std::move(out));
    });
    return;
  }
  engine::AppendRequest a{req.client_id, req.data, ts, req.ttl_s, std::move(req.idempotency_key)};
  engine_->append(std::move(a), [this, &metrics, cid = std::move(req.client_id), data = req.data, ts,
                                 done = std::move(done)](engine::Result<engine::AppendResult> r) {
    NotifyOutcome out;
    if (!r.ok()) {
      out.error = Err::engine_unavailable;
      metrics.notifications_refused.add();
      done(std::move(out));
      return;
    }
    out.id = r.value.id;
    out.online = r.value.owner.has_value();
    out.duplicate = r.value.duplicate;
    if (out.duplicate) {
      metrics.notifications_duplicate.add();
      return done(std::move(out));
    }
    metrics.notifications_accepted.add();
    if (!r.value.owner) return done(std::move(out));
    if (r.value.forwarded) {  // the engine published it to the owner in the same round trip
      out.online = *r.value.forwarded;
      return done(std::move(out));
    }
    engine::InstanceMessage msg;
    msg.client_id = cid;
    msg.session = r.value.owner->session;
    msg.id = r.value.id;
    msg.prev = r.value.prev;
    msg.ts_ms = ts;
    msg.data = data;
    // Stored already; the answer waits for the hand-off so client_online says whether an
    // instance took it (a route to a dead instance is stale: the client will replay it).
    send_to(*r.value.owner, std::move(msg), [out, done = std::move(done)](bool reached) mutable {
      out.online = reached;
      done(std::move(out));
    });
  });
}

// ---- batches ---------------------------------------------------------------------------------
// One batch request: the engine's answers fill `outs`; deliveries for this instance's sessions
// are gathered per loop and leave together when the last answer is in (one post per loop
// instead of one per notification). `left` counts the answers still to come (plus one for the
// issuing loop itself, so a batch that completes inline settles only once).

namespace {
struct LocalDelivery {
  std::uint64_t counter;
  Live live;
};
}  // namespace

struct Gateway::Batch {
  Batch(Gateway& g, Metrics& m, std::size_t n, std::size_t loops) : gw(g), metrics(m), outs(n), per_loop(loops) {}
  Gateway& gw;
  Metrics& metrics;
  std::int64_t ts = 0;
  std::vector<NotifyRequest> reqs;
  std::vector<NotifyOutcome> outs;
  std::mutex mu;  // per_loop: engine answers may come from any thread
  std::vector<std::vector<LocalDelivery>> per_loop;
  std::atomic<std::size_t> left{1};
  std::function<void(std::vector<NotifyOutcome>)> done;
};

void Gateway::notify_batch(std::vector<NotifyRequest> reqs, Metrics& metrics,
                           std::function<void(std::vector<NotifyOutcome>)> done) {
  auto* b = new Batch(*this, metrics, reqs.size(), loops_.size());
  b->ts = unix_ms();
  b->reqs = std::move(reqs);
  b->done = std::move(done);
  for (std::size_t i = 0; i < b->reqs.size(); ++i) {
    auto& req = b->reqs[i];
    ++b->left;
    if (!req.durable) {  // rare in a batch: the single path, its outcome copied in
      notify(std::move(req), metrics, [b, i](NotifyOutcome out) {
        b->outs[i] = std::move(out);
        b->gw.batch_settle(*b);
      });
      continue;
    }
    engine::AppendRequest a{req.client_id, req.data, b->ts, req.ttl_s, std::move(req.idempotency_key)};
    // Two words of capture: std::function keeps it without an allocation.
    engine_->append(std::move(a), [b, i](engine::Result<engine::AppendResult> r) {
      b->gw.batch_stored(*b, i, std::move(r));
    });
  }
  batch_settle(*b);
}

void Gateway::batch_stored(Batch& b, std::size_t i, engine::Result<engine::AppendResult> r) {
  auto& out = b.outs[i];
  if (!r.ok()) {
    out.error = Err::engine_unavailable;
    b.metrics.notifications_refused.add();
    return batch_settle(b);
  }
  out.id = r.value.id;
  out.online = r.value.owner.has_value();
  out.duplicate = r.value.duplicate;
  if (out.duplicate) {
    b.metrics.notifications_duplicate.add();
    return batch_settle(b);
  }
  b.metrics.notifications_accepted.add();
  if (!r.value.owner) return batch_settle(b);
  if (r.value.forwarded) {
    out.online = *r.value.forwarded;
    return batch_settle(b);
  }
  auto& owner = *r.value.owner;
  auto& req = b.reqs[i];
  if (owner.instance == instance_id_) {
    auto where = parse_session(owner.session, boot_);
    if (where && where->loop < loops_.size()) {
      std::lock_guard lock(b.mu);
      b.per_loop[where->loop].push_back(LocalDelivery{where->counter, Live{r.value.id, r.value.prev, b.ts, req.data}});
    }
    out.online = true;
    return batch_settle(b);
  }
  engine::InstanceMessage msg;
  msg.client_id = req.client_id;
  msg.session = owner.session;
  msg.id = r.value.id;
  msg.prev = r.value.prev;
  msg.ts_ms = b.ts;
  msg.data = req.data;
  send_to(owner, std::move(msg), [b = &b, i](bool reached) {
    b->outs[i].online = reached;
    b->gw.batch_settle(*b);
  });
}

void Gateway::batch_settle(Batch& b) {
  if (--b.left) return;
  for (std::size_t l = 0; l < b.per_loop.size(); ++l) {
    if (b.per_loop[l].empty()) continue;
    auto& loop = *loops_[l];
    boost::asio::post(loop.io(), [&loop, ds = std::move(b.per_loop[l])] {
      for (auto& d : ds)
        if (auto* peer = loop.find(d.counter)) peer->deliver(d.live);
    });
  }
  auto done = std::move(b.done);
  auto outs = std::move(b.outs);
  delete &b;
  done(std::move(outs));
}

void Gateway::disconnect(const std::string& client_id, bool reconnect,
                         std::function<void(std::optional<Err>, bool)> done) {
  engine_->route_of(client_id, [this, client_id, reconnect, done = std::move(done)](
                                   engine::Result<std::optional<engine::Route>> r) {
    if (!r.ok()) return done(Err::engine_unavailable, false);
    if (!r.value) return done(std::nullopt, false);
    engine::InstanceMessage msg;
    msg.kind = engine::InstanceMessage::Kind::disconnect;
    msg.client_id = client_id;
    msg.session = r.value->session;
    msg.reconnect = reconnect;
    // A route to an instance that no longer listens is stale: the client is not connected.
    send_to(*r.value, std::move(msg), [done](bool reached) { done(std::nullopt, reached); });
  });
}

void Gateway::record_event(engine::StatusEvent ev, Metrics& metrics) {
  metrics.status_events[static_cast<size_t>(ev.type)].add();
  engine_->record_event(ev, [ev](engine::Result<std::string> r) mutable {
    if (r.ok()) ev.id = r.value;
    else spdlog::warn("status event for {} not stored: engine unavailable", ev.client_id);
    log_event(ev);
  });
}

std::string Gateway::metrics_text() const {
  std::vector<const Metrics*> all;
  for (auto& l : loops_) all.push_back(&l->metrics());
  auto s = engine_->stats();
  return render_prometheus(all, EngineFigures{s.pending, s.expired, s.evicted, s.probe_failures, engine_->ready()},
                           draining());
}

}  // namespace herald
