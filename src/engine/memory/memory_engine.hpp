// The embedded engine: everything in this process, for a single Herald instance with nothing
// else to run. State is split into stripes by client id, each behind its own mutex, so two
// threads notifying different clients rarely meet; every call completes inline.
//
// Invariant: per client, inbox ids are strictly increasing and `last` is the newest id ever
// assigned (it survives trimming), which is what `prev` of the next append reports.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <vector>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "engine/engine.hpp"
#include "engine/memory/compact.hpp"

namespace herald::engine {

class MemoryEngine final : public Engine {
 public:
  explicit MemoryEngine(EngineOptions options);
  ~MemoryEngine() override;

  void start() override;
  void stop() override;
  bool ready() const override { return true; }
  const char* name() const override { return "memory"; }

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
  void on_reconnected(std::function<void(int)>) override {}  // never disconnected
  void flush(Callback<bool> cb) override { cb({Status::ok, true}); }
  EngineStats stats() const override;

  // Drops expired notifications everywhere (also done by a background timer once a second).
  void sweep_expired();

 private:
  struct Entry {
    Id id;
    std::int64_t ts_ms;
    std::int64_t expires_ms;
    std::shared_ptr<const std::string> data;
  };
  struct Client {
    LazyQueue<Entry> inbox;
    Id last;
    std::int64_t next_expiry_ms = INT64_MAX;  // earliest expires_ms in inbox
    std::optional<Route> route;
    EventLog events;  // capped
    LazyQueue<std::pair<std::string, Id>> idempotency;  // newest at the back
  };
  struct Stripe {
    std::mutex mu;
    std::unordered_map<std::string, Client> clients;
  };

  Stripe& stripe_for(const std::string& client_id);
  void expire(Client& c, std::int64_t now_ms);

  EngineOptions options_;
  std::array<Stripe, 64> stripes_;
  std::mutex global_mu_;
  std::deque<PackedEvent> global_events_;  // the same events, shared
  Id last_event_id_;
  std::function<void(InstanceMessage)> handler_;
  std::atomic<std::uint64_t> expired_{0}, evicted_{0};
  std::atomic<std::int64_t> pending_{0};

  std::mutex sweep_mu_;
  std::condition_variable sweep_cv_;
  bool stopping_ = false;
  std::thread sweeper_;
};

}  // namespace herald::engine
