// One event loop on one thread, with its own shard of client sessions. A session never changes
// loop; anything that concerns it is posted here. The loop also runs the one sweep that does the
// heartbeat and time-outs for all of its sessions, instead of a timer per connection.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/metrics.hpp"
#include "core/peer.hpp"

namespace herald {

class Gateway;

class Loop {
 public:
  Loop(Gateway& gateway, unsigned index);
  Loop(const Loop&) = delete;

  boost::asio::io_context& io() { return io_; }
  unsigned index() const { return index_; }
  Gateway& gateway() { return gateway_; }
  Metrics& metrics() { return metrics_; }
  const Metrics& metrics() const { return metrics_; }

  // Scratch space every session of this loop reads into; nothing in it survives a handler.
  std::span<std::uint8_t> read_buffer() { return read_buffer_; }

  // Registers a session; returns its counter (unique in this process for this loop).
  std::uint64_t add(std::shared_ptr<Peer> peer);
  void remove(std::uint64_t counter);
  Peer* find(std::uint64_t counter);
  std::size_t size() const { return peers_.size(); }
  // Calls fn for every session (on this loop's thread); fn may end sessions.
  void each(const std::function<void(Peer&)>& fn);

  // WebSocket upgrades answered 101 whose session has not started yet; the drain waits for them.
  void upgrade_begun() { ++upgrading_; }
  void upgrade_done() { --upgrading_; }

  void run_thread();
  void join();
  void stop();

  // Closes every session with 1012, spread evenly over `total`; calls done (on this loop)
  // once the loop holds no session or `total` plus a grace period has passed.
  void drain(std::chrono::milliseconds total, std::function<void()> done);

 private:
  void schedule_sweep();
  void sweep();
  void drain_step(std::shared_ptr<std::vector<std::weak_ptr<Peer>>> order, std::size_t next,
                  std::chrono::steady_clock::time_point start, std::chrono::milliseconds total,
                  std::function<void()> done);

  Gateway& gateway_;
  unsigned index_;
  boost::asio::io_context io_{1};
  Metrics metrics_;
  std::vector<std::uint8_t> read_buffer_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Peer>> peers_;
  std::uint64_t next_counter_ = 1;
  boost::asio::steady_timer sweep_timer_;
  boost::asio::steady_timer drain_timer_;
  std::int64_t next_ping_ms_ = 0;
  int upgrading_ = 0;
  std::thread thread_;
};

}  // namespace herald
