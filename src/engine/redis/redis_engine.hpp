// The Redis engine: many Herald instances share routes, inboxes and status events through one
// Redis (DESIGN §4–§5). Every key of a client carries the hash tag {cid}, so one client's keys
// live in one slot and each flow is a single round trip on that slot:
//
//   notify  EVALSHA notify: prev id + XADD to the inbox + SET last + GET route   (1 round trip)
//   hello   MULTI  SET route iid:sid GET + XREVRANGE events COUNT 1  EXEC      (1 round trip)
//   ack     XTRIM inbox MINID <id+1>                                            (1 round trip)
//   close   EVALSHA compare-and-delete of the route                             (1 round trip)
//
// Each event loop has its own pipelined connection, so commands issued on a loop complete on
// it. One subscriber connection receives this instance's channel herald:inst:{iid}; a probe sent
// through it on a timer proves that delivery works, not just that a socket is open.
#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <vector>

#include "engine/engine.hpp"
#include "engine/redis/redis_client.hpp"

namespace herald::engine {

class RedisEngine final : public Engine {
 public:
  explicit RedisEngine(EngineOptions options);
  ~RedisEngine() override;

  void start() override;
  void stop() override;
  bool ready() const override;
  const char* name() const override { return "redis"; }

  void append(AppendRequest req, Callback<AppendResult> cb) override;
  void read_inbox(const std::string& client_id, Id after, std::size_t limit,
                  Callback<std::vector<StoredNotification>> cb) override;
  void trim_inbox(const std::string& client_id, Id upto, Callback<std::uint64_t> cb) override;
  void clear_inbox(const std::string& client_id, Callback<std::uint64_t> cb) override;
  void open_session(const std::string& client_id, Route route, Callback<SessionOpened> cb) override;
  void close_session(const std::string& client_id, const std::string& session, Callback<bool> cb) override;
  void client_status(const std::string& client_id, Callback<ClientStatus> cb) override;
  void route_of(const std::string& client_id, Callback<std::optional<Route>> cb) override;
  void record_event(StatusEvent ev, Callback<std::string> cb) override;
  void client_events(const std::string& client_id, std::size_t limit,
                     Callback<std::vector<StatusEvent>> cb) override;
  void publish(const std::string& instance, InstanceMessage msg, Callback<bool> cb) override;
  void on_message(std::function<void(InstanceMessage)> handler) override { handler_ = std::move(handler); }
  void reassert_route(const std::string& client_id, Route route, Callback<bool> cb) override;
  void on_reconnected(std::function<void(int)> fn) override { reconnected_ = std::move(fn); }
  void flush(Callback<bool> cb) override;
  EngineStats stats() const override;

  // Messages on the instance channel, encoded as newline-separated fields (ids and client ids
  // cannot hold a newline; JSON data is serialised without raw newlines).
  static std::string encode_message(const InstanceMessage& m);
  static std::optional<InstanceMessage> decode_message(std::string_view payload);

 private:
  redis::Connection& conn();
  void on_channel(const std::string& payload);
  void read_unexpired(const std::string& client_id, Id after, std::size_t limit,
                      std::vector<StoredNotification> found, Callback<std::vector<StoredNotification>> cb);
  void tick();

  EngineOptions options_;
  redis::Options redis_;
  std::vector<std::shared_ptr<redis::Connection>> conns_;  // one per loop
  std::shared_ptr<redis::Subscriber> subscriber_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::function<void(InstanceMessage)> handler_;
  std::function<void(int)> reconnected_;
  std::string channel_;
  std::atomic<bool> probe_ok_{false};
  std::atomic<bool> stopped_{false};
  std::uint64_t probe_sent_ = 0;       // nonce of the newest probe sent (loop 0 only)
  std::atomic<std::uint64_t> probe_seen_{0};
  std::int64_t probe_sent_ms_ = 0;
  std::int64_t next_liveness_ms_ = 0;
  std::atomic<std::uint64_t> expired_{0}, evicted_{0}, probe_failures_{0};
};

}  // namespace herald::engine
