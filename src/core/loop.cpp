#include "core/loop.hpp"

#include <algorithm>

#include "core/gateway.hpp"
#include "util/this_loop.hpp"

namespace herald {

namespace {
constexpr std::size_t kReadBufferBytes = 64 * 1024;
constexpr auto kDrainGrace = std::chrono::milliseconds(2000);
}  // namespace

Loop::Loop(Gateway& gateway, unsigned index)
    : gateway_(gateway),
      index_(index),
      read_buffer_(kReadBufferBytes),
      sweep_timer_(io_),
      drain_timer_(io_) {}

std::uint64_t Loop::add(std::shared_ptr<Peer> peer) {
  auto counter = next_counter_++;
  peers_.emplace(counter, std::move(peer));
  return counter;
}

void Loop::remove(std::uint64_t counter) { peers_.erase(counter); }

Peer* Loop::find(std::uint64_t counter) {
  auto it = peers_.find(counter);
  return it == peers_.end() ? nullptr : it->second.get();
}

void Loop::run_thread() {
  schedule_sweep();
  thread_ = std::thread([this] {
    set_this_loop_index(static_cast<int>(index_));
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
  });
}

void Loop::stop() { io_.stop(); }

void Loop::join() {
  if (thread_.joinable()) thread_.join();
}

void Loop::schedule_sweep() {
  auto tick = std::clamp<std::uint32_t>(gateway_.config().heartbeat_ms / 4, 25, 1000);
  sweep_timer_.expires_after(std::chrono::milliseconds(tick));
  sweep_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    sweep();
    schedule_sweep();
  });
}

void Loop::each(const std::function<void(Peer&)>& fn) {
  // fn may end sessions, which removes them from peers_: walk a snapshot.
  std::vector<std::shared_ptr<Peer>> snapshot;
  snapshot.reserve(peers_.size());
  for (auto& [counter, peer] : peers_) snapshot.push_back(peer);
  for (auto& peer : snapshot) fn(*peer);
}

void Loop::sweep() {
  auto now = unix_ms();
  bool ping_round = now >= next_ping_ms_;
  if (ping_round) next_ping_ms_ = now + gateway_.config().heartbeat_ms;
  each([&](Peer& p) { p.sweep(now, ping_round); });
}

void Loop::drain(std::chrono::milliseconds total, std::function<void()> done) {
  auto order = std::make_shared<std::vector<std::weak_ptr<Peer>>>();
  order->reserve(peers_.size());
  for (auto& [counter, peer] : peers_) order->push_back(peer);
  drain_step(std::move(order), 0, std::chrono::steady_clock::now(), total, std::move(done));
}

void Loop::drain_step(std::shared_ptr<std::vector<std::weak_ptr<Peer>>> order, std::size_t next,
                      std::chrono::steady_clock::time_point start, std::chrono::milliseconds total,
                      std::function<void()> done) {
  auto elapsed = std::chrono::steady_clock::now() - start;
  // Sessions are closed in slices so that clients do not all reconnect in the same instant.
  std::size_t due = order->size();
  if (total.count() > 0 && elapsed < total)
    due = static_cast<std::size_t>(static_cast<double>(order->size()) * elapsed / total);
  for (; next < due; ++next)
    if (auto peer = (*order)[next].lock()) peer->shutdown();
  bool all_closed = next >= order->size();
  if (all_closed && ((peers_.empty() && upgrading_ == 0) || elapsed >= total + kDrainGrace)) {
    // Clients that never answered the close are ended here, so their routes are still given
    // back and their disconnects recorded before the process exits.
    each([](Peer& p) { p.end_now(); });
    done();
    return;
  }
  auto step = std::max<std::chrono::milliseconds>(std::chrono::milliseconds(5), total / 200);
  drain_timer_.expires_after(step);
  drain_timer_.async_wait([this, order = std::move(order), next, start, total,
                           done = std::move(done)](boost::system::error_code ec) mutable {
    if (ec) return;
    drain_step(std::move(order), next, start, total, std::move(done));
  });
}

}  // namespace herald
