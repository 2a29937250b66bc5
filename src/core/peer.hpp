// What the core needs of a client session, whatever carries it. A Peer lives on exactly one
// event loop and every call below is made on that loop's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/ids.hpp"

namespace herald {

// A notification on its way to an online client.
struct Live {
  Id id;      // none for a non-durable notification (it has no place in the id chain)
  Id prev;    // the client's previous id: equal to the session's cursor means "no gap"
  std::int64_t ts_ms = 0;
  std::shared_ptr<const std::string> data;  // JSON text
};

class Peer {
 public:
  virtual ~Peer() = default;
  virtual void deliver(const Live& n) = 0;
  // A newer session of the same client id took the route: close with taken_over.
  virtual void kick() = 0;
  // A service asked to disconnect this client.
  virtual void disconnect(bool reconnect) = 0;
  // Called by the loop's sweep: time-outs, and a ping when ping_round is set.
  virtual void sweep(std::int64_t now_ms, bool ping_round) = 0;
  // Graceful shutdown: close with 1012.
  virtual void shutdown() = 0;
  // The drain's grace is over: end now, without waiting for the client (routes are still given
  // back and the disconnect recorded).
  virtual void end_now() = 0;
  // The engine reconnected: make sure the route still names this session, then read the inbox
  // (a notification published while the instance was not subscribed reached nobody).
  virtual void reassert() = 0;
};

}  // namespace herald
