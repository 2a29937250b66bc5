#include "core/metrics.hpp"

#include <sstream>

namespace herald {

const char* close_reason_name(CloseReason r) {
  static const char* names[] = {"client_closed",  "heartbeat_timeout", "taken_over",
                                "server_shutdown", "backpressure",     "protocol_error",
                                "disconnected_by_service", "internal_error"};
  return names[static_cast<size_t>(r)];
}

const char* route_name(ApiRoute r) {
  static const char* names[] = {"notify",       "notify_batch", "client_status", "client_events",
                                "client_pending", "client_disconnect", "legacy_notify", "healthz",
                                "readyz",       "metrics",      "websocket",     "other"};
  return names[static_cast<size_t>(r)];
}

const char* service_auth_failure_name(ServiceAuthFailure f) {
  return f == ServiceAuthFailure::missing ? "missing" : "wrong";
}

void Metrics::count_http(ApiRoute r, int status) {
  for (size_t i = 0; i < kStatuses.size(); ++i)
    if (kStatuses[i] == status) return http[static_cast<size_t>(r)][i].add();
}

namespace {
template <class F>
std::uint64_t sum(const std::vector<const Metrics*>& loops, F&& pick) {
  std::uint64_t total = 0;
  for (auto* m : loops) total += pick(*m);
  return total;
}
}  // namespace

std::string render_prometheus(const std::vector<const Metrics*>& loops, const EngineFigures& engine,
                              bool draining) {
  std::ostringstream o;
  auto line = [&](const char* name, const std::string& labels, std::uint64_t value) {
    o << name;
    if (!labels.empty()) o << '{' << labels << '}';
    o << ' ' << value << '\n';
  };
  auto head = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };

  head("herald_connections", "gauge", "WebSocket client sessions open now.");
  std::int64_t open = 0;
  for (auto* m : loops) open += m->connections.get();
  line("herald_connections", "", static_cast<std::uint64_t>(std::max<std::int64_t>(0, open)));
  head("herald_connections_total", "counter", "WebSocket connections accepted.");
  line("herald_connections_total", "", sum(loops, [](auto& m) { return m.connections_total.get(); }));

  head("herald_notifications_total", "counter", "Notifications by outcome.");
  auto outcome = [&](const char* what, std::uint64_t v) { line("herald_notifications_total", std::string("outcome=\"") + what + '"', v); };
  outcome("accepted", sum(loops, [](auto& m) { return m.notifications_accepted.get(); }));
  outcome("delivered", sum(loops, [](auto& m) { return m.notifications_delivered.get(); }));
  outcome("acked", sum(loops, [](auto& m) { return m.notifications_acked.get(); }));
  outcome("dropped", sum(loops, [](auto& m) { return m.notifications_dropped.get(); }));
  outcome("duplicate", sum(loops, [](auto& m) { return m.notifications_duplicate.get(); }));
  outcome("refused", sum(loops, [](auto& m) { return m.notifications_refused.get(); }));
  outcome("expired", engine.expired);
  outcome("evicted", engine.evicted);

  head("herald_pending_notifications", "gauge", "Notifications stored and not yet acknowledged.");
  line("herald_pending_notifications", "", engine.pending);

  head("herald_status_events_total", "counter", "Client status events recorded, by type.");
  static const char* types[] = {"connected", "reconnected", "disconnected"};
  for (size_t t = 0; t < 3; ++t)
    line("herald_status_events_total", std::string("type=\"") + types[t] + '"',
         sum(loops, [t](auto& m) { return m.status_events[t].get(); }));

  head("herald_disconnects_total", "counter", "Client sessions ended, by reason.");
  for (size_t r = 0; r < static_cast<size_t>(CloseReason::count_); ++r)
    line("herald_disconnects_total",
         std::string("reason=\"") + close_reason_name(static_cast<CloseReason>(r)) + '"',
         sum(loops, [r](auto& m) { return m.disconnects[r].get(); }));

  head("herald_errors_total", "counter", "Errors reported to clients and services, by code.");
  for (size_t e = 0; e < static_cast<size_t>(Err::count_); ++e)
    line("herald_errors_total", std::string("code=\"") + err_code(static_cast<Err>(e)) + '"',
         sum(loops, [e](auto& m) { return m.errors[e].get(); }));

  head("herald_http_requests_total", "counter", "HTTP requests, by route and status.");
  for (size_t r = 0; r < static_cast<size_t>(ApiRoute::count_); ++r)
    for (size_t s = 0; s < kStatuses.size(); ++s) {
      auto v = sum(loops, [r, s](auto& m) { return m.http[r][s].get(); });
      if (v)
        line("herald_http_requests_total",
             std::string("route=\"") + route_name(static_cast<ApiRoute>(r)) + "\",status=\"" +
                 std::to_string(kStatuses[s]) + '"',
             v);
    }

  head("herald_auth_failures_total", "counter", "Refused client tokens and service API keys, by kind and reason.");
  for (size_t f = 0; f < static_cast<size_t>(jwt::Failure::count_); ++f)
    line("herald_auth_failures_total",
         std::string("kind=\"client\",reason=\"") + jwt::failure_name(static_cast<jwt::Failure>(f)) + '"',
         sum(loops, [f](auto& m) { return m.client_auth_failures[f].get(); }));
  for (size_t f = 0; f < static_cast<size_t>(ServiceAuthFailure::count_); ++f)
    line("herald_auth_failures_total",
         std::string("kind=\"service\",reason=\"") +
             service_auth_failure_name(static_cast<ServiceAuthFailure>(f)) + '"',
         sum(loops, [f](auto& m) { return m.service_auth_failures[f].get(); }));
  head("herald_connections_refused_total", "counter",
       "TCP connections closed at accept by a per-address limit, by reason.");
  static const char* refused[] = {"per_ip_cap", "per_ip_rate"};
  for (size_t r = 0; r < static_cast<size_t>(Refused::count_); ++r)
    line("herald_connections_refused_total", std::string("reason=\"") + refused[r] + '"',
         sum(loops, [r](auto& m) { return m.connections_refused[r].get(); }));
  head("herald_rate_limited_total", "counter",
       "Refused by a rate limit: service API requests (429) and hellos (1013), by kind.");
  static const char* kinds[] = {"api", "hello"};
  for (size_t k = 0; k < static_cast<size_t>(Limited::count_); ++k)
    line("herald_rate_limited_total", std::string("kind=\"") + kinds[k] + '"',
         sum(loops, [k](auto& m) { return m.rate_limited[k].get(); }));
  head("herald_http_timeouts_total", "counter",
       "HTTP connections closed because a request was not complete within --http-timeout-ms.");
  line("herald_http_timeouts_total", "", sum(loops, [](auto& m) { return m.http_timeouts.get(); }));
  head("herald_tls_handshake_failures_total", "counter",
       "TLS connections that failed or did not finish their handshake in time (plain-text clients, timeouts, bad ClientHellos).");
  line("herald_tls_handshake_failures_total", "", sum(loops, [](auto& m) { return m.tls_handshake_failures.get(); }));

  head("herald_engine_ready", "gauge", "1 when the engine can store.");
  line("herald_engine_ready", "", engine.ready ? 1 : 0);
  head("herald_engine_probe_failures_total", "counter", "Self-probes through the engine's broker that did not come back.");
  line("herald_engine_probe_failures_total", "", engine.probe_failures);
  head("herald_draining", "gauge", "1 while shutting down.");
  line("herald_draining", "", draining ? 1 : 0);
  return o.str();
}

}  // namespace herald
