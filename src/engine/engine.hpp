// The Engine interface: the only place Herald touches storage and the broker between instances.
// Everything above it (core/, ws/, api/) is written against this file alone, and runs the same on
// the in-process memory engine and on Redis.
//
// Contract for every call:
// - Callbacks may run on any thread, possibly inline before the call returns; the caller moves
//   work back to its own event loop.
// - A call either succeeds or reports Status::unavailable; a durable append that reports success
//   is stored (the notification survives the process that answered it).
// - Ids are increasing per client ("<ms>-<seq>"), and `prev` chains them: each append returns the
//   id of the client's previous append, even if acks have trimmed it from the inbox.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/ids.hpp"

namespace boost::asio {
class io_context;
}

namespace herald::engine {

enum class Status { ok, unavailable };

template <class T>
struct Result {
  Status status = Status::ok;
  T value{};
  bool ok() const { return status == Status::ok; }
};

template <class T>
using Callback = std::function<void(Result<T>)>;

// Where a client is connected now.
struct Route {
  std::string instance;
  std::string session;
  std::int64_t connected_at_ms = 0;
};

struct StoredNotification {
  Id id;
  std::int64_t ts_ms = 0;
  std::shared_ptr<const std::string> data;  // JSON text
};

struct AppendRequest {
  std::string client_id;
  std::shared_ptr<const std::string> data;  // JSON text
  std::int64_t ts_ms = 0;
  std::uint32_t ttl_s = 0;                  // 0 = the engine's default
  std::string idempotency_key;              // empty = none
};

struct AppendResult {
  Id id;
  Id prev;                     // none when this is the client's first notification
  std::optional<Route> owner;  // where to deliver now; none = the client is offline
  bool duplicate = false;      // idempotency key seen before: nothing new was stored
  // Set when the engine already handed the notification to the owner instance in the same step
  // (true: that instance is listening); the caller then does not send it again.
  std::optional<bool> forwarded;
};

enum class EventType { connected, reconnected, disconnected };
const char* event_type_name(EventType t);

struct StatusEvent {
  std::string id;  // assigned by the engine when recorded
  EventType type = EventType::connected;
  std::string client_id;
  std::string instance;
  std::string session;
  std::string remote;
  std::int64_t ts_ms = 0;
  std::string reason;             // disconnected
  std::string previous_instance;  // reconnected
  std::int64_t offline_ms = -1;   // reconnected
};

// What a hello learns while it takes the route.
struct SessionOpened {
  std::optional<Route> previous;            // the route it replaced (another session)
  std::optional<StatusEvent> last_event;    // the client's newest status event before this one
};

struct ClientStatus {
  std::optional<Route> route;
  std::int64_t last_seen_ms = 0;  // time of the newest status event, 0 = never seen
  std::uint64_t pending = 0;
};

// A message for the connections of one instance.
struct InstanceMessage {
  enum class Kind { deliver, kick, disconnect } kind = Kind::deliver;
  std::string client_id;
  std::string session;
  Id id;
  Id prev;
  std::int64_t ts_ms = 0;
  std::shared_ptr<const std::string> data;  // deliver
  bool reconnect = true;                    // disconnect
};

struct EngineStats {
  std::uint64_t expired = 0;   // notifications that reached their ttl unacknowledged
  std::uint64_t evicted = 0;   // dropped from a full inbox
  std::uint64_t pending = 0;   // notifications in all inboxes (0 where the engine cannot tell cheaply)
  std::uint64_t probe_failures = 0;  // self-probes that did not come back (redis)
};

class Engine {
 public:
  virtual ~Engine() = default;

  virtual void start() = 0;
  virtual void stop() = 0;
  // True when the engine can store right now.
  virtual bool ready() const = 0;
  virtual const char* name() const = 0;

  // Stores a notification and reads the client's route in one step.
  virtual void append(AppendRequest req, Callback<AppendResult> cb) = 0;
  // Up to `limit` unexpired notifications with id > after, oldest first.
  virtual void read_inbox(const std::string& client_id, Id after, std::size_t limit,
                          Callback<std::vector<StoredNotification>> cb) = 0;
  // Removes every notification with id <= upto (a cumulative ack). Value: how many went.
  virtual void trim_inbox(const std::string& client_id, Id upto, Callback<std::uint64_t> cb) = 0;
  // Removes all pending notifications of a client. Value: how many went.
  virtual void clear_inbox(const std::string& client_id, Callback<std::uint64_t> cb) = 0;

  // Points the client's route at `route` and reports what it replaced, atomically.
  virtual void open_session(const std::string& client_id, Route route, Callback<SessionOpened> cb) = 0;
  // Deletes the route only if it still names this session. Value: whether it did.
  virtual void close_session(const std::string& client_id, const std::string& session,
                             Callback<bool> cb) = 0;
  virtual void client_status(const std::string& client_id, Callback<ClientStatus> cb) = 0;
  // Where the client is connected now, if anywhere.
  virtual void route_of(const std::string& client_id, Callback<std::optional<Route>> cb) = 0;

  // Appends to the client's and the global status streams (capped). Value: the event's id.
  virtual void record_event(StatusEvent ev, Callback<std::string> cb) = 0;
  // Newest first.
  virtual void client_events(const std::string& client_id, std::size_t limit,
                             Callback<std::vector<StatusEvent>> cb) = 0;

  // Sends a message to the connections of `instance`.
  virtual void publish(const std::string& instance, InstanceMessage msg, Callback<bool> cb) = 0;
  // Receives the messages published to this instance. Set once, before start().
  virtual void on_message(std::function<void(InstanceMessage)> handler) = 0;

  // Makes sure the route still names this session (after the engine lost its state, e.g. Redis
  // restarted empty): sets it if missing. Value: false when another session holds it now.
  virtual void reassert_route(const std::string& client_id, Route route, Callback<bool> cb) = 0;
  // Called after the engine (re)connected to its storage on behalf of event loop `loop`, or (for
  // every loop) after it resubscribed to its messages, so that loop's live sessions can reassert
  // their routes and read what may have been published while nobody listened.
  virtual void on_reconnected(std::function<void(int loop)> fn) = 0;

  // Completes once every command issued before it has been carried out (shutdown uses it so the
  // last route deletions and events are not lost).
  virtual void flush(Callback<bool> cb) = 0;

  virtual EngineStats stats() const = 0;
};

struct EngineOptions {
  std::string instance_id;
  std::uint32_t inbox_max = 10000;
  std::uint32_t inbox_ttl_s = 7 * 24 * 3600;
  std::uint32_t events_max = 1000;
  std::uint32_t global_events_max = 100000;
  std::string redis_url;
  std::string redis_cluster;
  // The event loops: an engine with connections keeps one per loop, so work issued on a loop
  // completes on it (see util/this_loop.hpp).
  std::vector<boost::asio::io_context*> loops;
};

// The one place that knows the concrete engines.
std::unique_ptr<Engine> make_engine(const std::string& kind, const EngineOptions& options);

}  // namespace herald::engine
