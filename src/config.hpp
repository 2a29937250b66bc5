// Herald's configuration: one struct, and one list (for_each_option) that states every option's
// name, default (the member initialiser) and meaning exactly once. The command line, the
// HERALD_* environment variables, `herald --help` and the README's table are all made from it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
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
  std::string api_key_file;
  std::vector<std::string> allowed_origins;
  std::string client_auth = "auto";
  std::string jwt_secret;
  std::string jwt_public_key;
  std::string jwt_audience;
  std::string jwt_issuer;
  std::uint32_t jwt_leeway_s = 30;
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
  std::uint32_t max_header_bytes = 16 * 1024;
  std::uint32_t http_timeout_ms = 30000;
  std::uint32_t max_connections_per_ip = 1000;
  std::uint32_t connect_rate_per_ip = 200;
  std::uint32_t connect_burst_per_ip = 1000;
  std::uint32_t api_rate_limit = 0;
  std::uint32_t api_rate_burst = 0;
  std::uint32_t hello_rate = 5;
  std::uint32_t hello_burst = 10;
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
  v("api-key", c.api_keys, "Key services must send as 'Authorization: Bearer <key>' (repeatable, 16+ characters; none = loopback callers only)");
  v("api-key-file", c.api_key_file, "File of further API keys, one per line ('#' comments); re-read on SIGHUP");
  v("allowed-origins", c.allowed_origins, "Origins browsers may connect from (comma-separated, e.g. https://app.example.com; none = any)");
  v("client-auth", c.client_auth, "Client authentication: jwt (token in the hello, sub = client id), none, or auto (jwt when a JWT key is set; else none, allowed only on a loopback --listen)");
  v("jwt-secret", c.jwt_secret, "HS256 secret for client tokens");
  v("jwt-public-key", c.jwt_public_key, "PEM file with the public key for client tokens: RSA (RS256) or EC P-256 (ES256)");
  v("jwt-audience", c.jwt_audience, "When set, a client token's aud (string or array) must contain it");
  v("jwt-issuer", c.jwt_issuer, "When set, a client token's iss must equal it");
  v("jwt-leeway-s", c.jwt_leeway_s, "Clock skew allowed on a client token's exp and nbf");
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
  v("max-header-bytes", c.max_header_bytes, "Largest HTTP request line and header; larger is answered 431");
  v("http-timeout-ms", c.http_timeout_ms, "An HTTP request (or the upgrade) must arrive completely within this; an idle keep-alive connection is closed after it");
  v("max-connections-per-ip", c.max_connections_per_ip, "Open TCP connections per client address (IPv6: per /64), HTTP and WebSocket; beyond it new ones are closed at accept (0 = no cap)");
  v("connect-rate-per-ip", c.connect_rate_per_ip, "New TCP connections per second per client address (token bucket); beyond it they are closed at accept (0 = no limit)");
  v("connect-burst-per-ip", c.connect_burst_per_ip, "Burst of --connect-rate-per-ip: connections one address may open at once");
  v("api-rate-limit", c.api_rate_limit, "Service API requests per second per API key (per caller address when no key is set), token bucket; beyond it 429 (0 = no limit)");
  v("api-rate-burst", c.api_rate_burst, "Burst of --api-rate-limit (0 = one second's worth)");
  v("hello-rate", c.hello_rate, "Hellos per second per client id on this instance, token bucket; beyond it rate_limited and close 1013 (0 = no limit)");
  v("hello-burst", c.hello_burst, "Burst of --hello-rate: hellos one client id may say at once");
  v("log-level", c.log_level, "trace, debug, info, warn, error or off");
}

// Parses argv and HERALD_* variables (the command line wins). Returns false after printing
// help or an error; exit_code says how to exit then.
bool parse_config(int argc, char** argv, Config& out, int& exit_code);

// What --client-auth comes to: "jwt" or "none" ("auto" resolved; c must be valid).
std::string client_auth_mode(const Config& c);

// Whether a --listen value names a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback_listen(std::string_view listen);

// Checks values that CLI parsing cannot (enumerations, ranges, combinations); empty = fine.
std::string validate(const Config& c);

// The README table, generated from for_each_option.
std::string config_markdown();

}  // namespace herald
