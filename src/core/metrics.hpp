// Counters for /metrics. Each event loop owns one Metrics and is almost the only thread that
// bumps it, so increments do not bounce cache lines between cores; a scrape sums all loops.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/errors.hpp"
#include "core/jwt.hpp"

namespace herald {

struct Counter {
  std::atomic<std::uint64_t> v{0};
  void add(std::uint64_t n = 1) { v.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

struct Gauge {
  std::atomic<std::int64_t> v{0};
  void add(std::int64_t n) { v.fetch_add(n, std::memory_order_relaxed); }
  std::int64_t get() const { return v.load(std::memory_order_relaxed); }
};

// Why a client session ended (DESIGN §5, Close).
enum class CloseReason {
  client_closed,
  heartbeat_timeout,
  taken_over,
  server_shutdown,
  backpressure,
  protocol_error,
  disconnected_by_service,
  internal_error,
  count_
};
const char* close_reason_name(CloseReason r);

enum class ApiRoute {
  notify,
  notify_batch,
  client_status,
  client_events,
  client_pending,
  client_disconnect,
  legacy_notify,
  healthz,
  readyz,
  metrics,
  websocket,
  other,
  count_
};
const char* route_name(ApiRoute r);

// Why a service call was refused 401: no key at all, or a key that is none of ours.
enum class ServiceAuthFailure { missing, wrong, count_ };
const char* service_auth_failure_name(ServiceAuthFailure f);

inline constexpr std::array<int, 14> kStatuses{101, 200, 202, 400, 401, 403, 404, 405, 413, 426, 429, 431, 500, 503};

// Abuse limits (core/limits.hpp): why a connection was closed at accept, what was rate limited.
enum class Refused { per_ip_cap, per_ip_rate, count_ };
enum class Limited { api, hello, count_ };

struct Metrics {
  Gauge connections;  // WebSocket sessions open
  Counter connections_total;
  Counter notifications_accepted;   // durable, answered 202
  Counter notifications_delivered;  // written to a client socket
  Counter notifications_acked;      // removed from inboxes by acks
  Counter notifications_dropped;    // non-durable with nobody to take them
  Counter notifications_duplicate;  // idempotency key seen before
  Counter notifications_refused;    // engine could not store: 503
  Counter tls_handshake_failures;   // TLS connections that never completed a handshake
  std::array<Counter, 3> status_events;  // by engine::EventType
  std::array<Counter, static_cast<size_t>(CloseReason::count_)> disconnects;
  std::array<Counter, static_cast<size_t>(Err::count_)> errors;  // every error reported, by code
  std::array<std::array<Counter, kStatuses.size()>, static_cast<size_t>(ApiRoute::count_)> http;
  std::array<Counter, static_cast<size_t>(jwt::Failure::count_)> client_auth_failures;
  std::array<Counter, static_cast<size_t>(ServiceAuthFailure::count_)> service_auth_failures;
  std::array<Counter, static_cast<size_t>(Refused::count_)> connections_refused;
  std::array<Counter, static_cast<size_t>(Limited::count_)> rate_limited;
  Counter http_timeouts;  // requests not complete within --http-timeout-ms

  void count_http(ApiRoute r, int status);
};

// Prometheus text exposition of the sum of `loops`, plus the engine's own figures.
struct EngineFigures {
  std::uint64_t pending = 0, expired = 0, evicted = 0, probe_failures = 0;
  bool ready = false;
};
std::string render_prometheus(const std::vector<const Metrics*>& loops, const EngineFigures& engine,
                              bool draining);

}  // namespace herald
