// The delivery core: takes notifications from the API, stores them through the engine and routes
// them to the session that owns the client, here or on another instance; records status events;
// knows the event loops and the session ids that point into them.
//
// Invariant: a durable notification is answered only after the engine stored it; routing comes
// after storing, so a notification that finds no live session is never lost, only waiting.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "core/api_keys.hpp"
#include "core/errors.hpp"
#include "core/jwt.hpp"
#include "core/limits.hpp"
#include "core/loop.hpp"
#include "engine/engine.hpp"

namespace herald {

struct NotifyRequest {
  std::string client_id;
  std::shared_ptr<const std::string> data;  // JSON text
  std::uint32_t ttl_s = 0;
  bool durable = true;
  std::string idempotency_key;
};

struct NotifyOutcome {
  std::optional<Err> error;  // engine_unavailable when it could not be stored
  Id id;
  bool online = false;
  bool dropped = false;
  bool duplicate = false;
};

// Client ids: 1–128 of A–Z a–z 0–9 . _ - @ :
bool valid_client_id(std::string_view id);

std::int64_t unix_ms();

class Gateway {
 public:
  // Builds the event loops, then the engine the configuration names, on those loops.
  Gateway(Config config, std::string instance_id);
  ~Gateway();

  const Config& config() const { return config_; }
  engine::Engine& engine() { return *engine_; }
  // The client token verifier, made once at start-up; null when client auth is none.
  const jwt::Verifier* client_jwt() const { return jwt_.get(); }
  ApiKeys& api_keys() { return *api_keys_; }
  const std::string& instance_id() const { return instance_id_; }
  std::vector<std::unique_ptr<Loop>>& loops() { return loops_; }

  std::string session_id(unsigned loop, std::uint64_t counter) const;

  bool draining() const { return draining_.load(); }
  void set_draining() { draining_ = true; }

  // The abuse limiters, shared by all loops.
  limits::Limits& limits() { return limits_; }

  // Client connections across all loops, for --max-connections.
  std::atomic<std::int64_t>& connection_count() { return connections_; }

  // Stores (durable) and routes one notification. `done` may run on any thread.
  void notify(NotifyRequest req, Metrics& metrics, std::function<void(NotifyOutcome)> done);

  // Stores and routes a batch: `done` (any thread) gets one outcome per request, in order, once
  // every notification has been stored and handed on. Deliveries to this instance's sessions
  // leave as one post per event loop, in the order the engine stored them.
  void notify_batch(std::vector<NotifyRequest> reqs, Metrics& metrics,
                    std::function<void(std::vector<NotifyOutcome>)> done);

  // Asks the instance that holds client_id's session to disconnect it. Value: was it online.
  void disconnect(const std::string& client_id, bool reconnect, std::function<void(std::optional<Err>, bool)> done);

  // Tells the session named by `route` about `msg`, here or on its instance. `done` (optional,
  // any thread) learns whether the message reached that instance.
  void send_to(const engine::Route& route, engine::InstanceMessage msg,
               std::function<void(bool)> done = nullptr);

  // Records a status event: engine streams, the event log line and the counters.
  void record_event(engine::StatusEvent ev, Metrics& metrics);

  std::string metrics_text() const;

 private:
  void on_instance_message(engine::InstanceMessage msg);
  struct Batch;
  void batch_stored(Batch& b, std::size_t i, engine::Result<engine::AppendResult> r);
  void batch_settle(Batch& b);

  Config config_;
  limits::Limits limits_{config_};
  std::unique_ptr<engine::Engine> engine_;
  std::string instance_id_;
  std::string boot_;  // random per process: a session id is never reused, even across restarts
  std::vector<std::unique_ptr<Loop>> loops_;
  std::atomic<bool> draining_{false};
  std::atomic<std::int64_t> connections_{0};
  std::unique_ptr<jwt::Verifier> jwt_;
  std::unique_ptr<ApiKeys> api_keys_;
};

}  // namespace herald
