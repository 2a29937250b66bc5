// Herald's configuration: one struct, and one list (for_each_option) that states every option's
// name, default (the member initialiser) and meaning exactly once. The command line, the
// HERALD_* environment variables, `herald --help` and the README's table are all made from it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace herald {

struct Config {
  std::string listen = "127.0.0.1:8080";
  std::string api_listen;
  std::string tls_cert;
  std::string tls_key;
  std::string api_tls = "auto";
  unsigned threads = 0;
  std::string engine = "memory";
  std::string redis_url = "redis://127.0.0.1:6379";
  std::string redis_cluster;
  std::string instance_id;
  std::vector<std::string> api_keys;
  std::vector<std::string> allowed_origins;
  std::string client_auth = "none";
  std::string jwt_secret;
  std::uint32_t heartbeat_ms = 20000;
  std::uint32_t drain_ms = 5000;
  std::uint32_t hello_timeout_ms = 10000;
  std::uint32_t inbox_max = 10000;
  std::uint32_t inbox_ttl_s = 7 * 24 * 3600;
  std::uint32_t events_max = 1000;
  std::uint32_t global_events_max = 100000;
  std::uint32_t max_message_bytes = 64 * 1024;
  std::uint32_t max_body_bytes = 1024 * 1024;
  std::uint32_t max_connections = 1000000;
  std::uint32_t max_queue_bytes = 1024 * 1024;
  std::uint32_t max_batch = 1000;
  std::string log_level = "info";

  unsigned effective_threads() const;
};

// Calls v(name, member, help) for every option, in the order --help shows them.
template <class Visitor>
void for_each_option(Config& c, Visitor&& v) {
  v("listen", c.listen, "Address for WebSocket clients and the service API (host:port; port 0 binds a free port)");
  v("api-listen", c.api_listen, "Optional separate address for the service API only (host:port)");
  v("tls-cert", c.tls_cert, "PEM certificate chain (server certificate first): serve wss:// and https:// (needs --tls-key)");
  v("tls-key", c.tls_key, "PEM private key (unencrypted) of --tls-cert");
  v("api-tls", c.api_tls, "TLS on --api-listen: auto (when --tls-cert is set) or off (plain HTTP there, e.g. an internal scrape address)");
  v("threads", c.threads, "Event loops, one per thread (0 = one per core)");
  v("engine", c.engine, "Storage and routing engine: memory (one instance) or redis (many instances)");
  v("redis-url", c.redis_url, "Redis for --engine redis: redis://[[user]:password@]host[:port][/db]");
  v("redis-cluster", c.redis_cluster, "Redis Cluster seed nodes host:port,... (instead of --redis-url)");
  v("instance-id", c.instance_id, "This instance's id (default: random, printed at start-up)");
  v("api-key", c.api_keys, "Key services must send as 'Authorization: Bearer <key>' (repeatable; none = loopback callers only)");
  v("allowed-origins", c.allowed_origins, "Origins browsers may connect from (comma-separated, e.g. https://app.example.com; none = any)");
  v("client-auth", c.client_auth, "Client authentication: none or jwt (HS256 token in the hello, sub = client id)");
  v("jwt-secret", c.jwt_secret, "HS256 secret for --client-auth jwt");
  v("heartbeat-ms", c.heartbeat_ms, "Ping interval; a connection with no pong by the next ping is terminated");
  v("drain-ms", c.drain_ms, "On shutdown, client closes (1012) are spread over this many ms");
  v("hello-timeout-ms", c.hello_timeout_ms, "A connection that has not said hello by then is closed");
  v("inbox-max", c.inbox_max, "Notifications kept per client; the oldest is dropped beyond it");
  v("inbox-ttl-s", c.inbox_ttl_s, "Default lifetime of a stored notification (ttl_s overrides per notification)");
  v("events-max", c.events_max, "Status events kept per client");
  v("global-events-max", c.global_events_max, "Status events kept in the global stream");
  v("max-message-bytes", c.max_message_bytes, "Largest client message (frames joined); larger closes with 1009");
  v("max-body-bytes", c.max_body_bytes, "Largest HTTP request body; larger is answered 413");
  v("max-connections", c.max_connections, "Client connections per instance; beyond it new ones are closed with 1013");
  v("max-queue-bytes", c.max_queue_bytes, "Outgoing bytes queued per connection; beyond it the client is closed with 1013");
  v("max-batch", c.max_batch, "Notifications per batch request");
  v("log-level", c.log_level, "trace, debug, info, warn, error or off");
}

// Parses argv and HERALD_* variables (the command line wins). Returns false after printing
// help or an error; exit_code says how to exit then.
bool parse_config(int argc, char** argv, Config& out, int& exit_code);

// Checks values that CLI parsing cannot (enumerations, ranges, combinations); empty = fine.
std::string validate(const Config& c);

// The README table, generated from for_each_option.
std::string config_markdown();

}  // namespace herald
