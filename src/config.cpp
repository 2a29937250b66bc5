#include "config.hpp"

#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <algorithm>
#include <sstream>
#include <thread>
#include <type_traits>

#include "core/api_keys.hpp"

namespace herald {

namespace {

std::string env_name(std::string_view name) {
  std::string e = "HERALD_";
  for (char ch : name) e += ch == '-' ? '_' : static_cast<char>(std::toupper(ch));
  return e;
}

template <class T>
std::string default_text(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return v.empty() ? "" : v;
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    return "";
  } else {
    return std::to_string(v);
  }
}

}  // namespace

unsigned Config::effective_threads() const {
  if (threads) return threads;
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

bool parse_config(int argc, char** argv, Config& out, int& exit_code) {
  CLI::App app{"herald: a WebSocket notification gateway"};
  app.get_formatter()->column_width(28);
  bool markdown = false;
  app.add_flag("--print-config-markdown", markdown, "Print the configuration table (Markdown) and exit")
      ->group("");
  for_each_option(out, [&](const char* name, auto& field, const char* help) {
    auto* opt = app.add_option(std::string("--") + name, field, help)->envname(env_name(name));
    using T = std::remove_reference_t<decltype(field)>;
    if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      opt->delimiter(',');
    } else {
      opt->default_str(default_text(field));
    }
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e);
    return false;
  }
  if (markdown) {
    std::fputs(config_markdown().c_str(), stdout);
    exit_code = 0;
    return false;
  }
  if (auto err = validate(out); !err.empty()) {
    std::fprintf(stderr, "herald: %s\n", err.c_str());
    exit_code = 2;
    return false;
  }
  return true;
}

std::string client_auth_mode(const Config& c) {
  if (c.client_auth != "auto") return c.client_auth;
  return c.jwt_secret.empty() && c.jwt_public_key.empty() ? "none" : "jwt";
}

bool is_loopback_listen(std::string_view listen) {
  auto colon = listen.rfind(':');
  auto host = std::string(listen.substr(0, colon == std::string_view::npos ? listen.size() : colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  return false;
}

namespace {
std::string validate_auth(const Config& c) {
  if (c.client_auth != "auto" && c.client_auth != "none" && c.client_auth != "jwt")
    return "--client-auth must be auto, jwt or none";
  if (!c.jwt_secret.empty() && !c.jwt_public_key.empty())
    return "give --jwt-secret (HS256) or --jwt-public-key (RS256/ES256), not both";
  if (c.client_auth == "jwt" && c.jwt_secret.empty() && c.jwt_public_key.empty())
    return "--client-auth jwt needs --jwt-secret or --jwt-public-key";
  if (c.jwt_leeway_s > 3600) return "--jwt-leeway-s must be at most 3600";
  auto mode = client_auth_mode(c);
  if (mode == "none" && (!c.jwt_audience.empty() || !c.jwt_issuer.empty()))
    return "--jwt-audience and --jwt-issuer apply to client tokens, but client auth is none";
  if (c.client_auth == "auto" && mode == "none" && !is_loopback_listen(c.listen))
    return "--listen " + c.listen +
           " is not a loopback address and no client authentication is configured: set --jwt-secret or "
           "--jwt-public-key, or start with an explicit --client-auth none to let any client claim any client id";
  return {};
}
}  // namespace

std::string validate(const Config& c) {
  if (c.engine != "memory" && c.engine != "redis") return "--engine must be memory or redis";
  if (auto why = validate_auth(c); !why.empty()) return why;
  if (c.tls_cert.empty() != c.tls_key.empty()) return "--tls-cert and --tls-key go together: give both or neither";
  if (c.api_tls != "auto" && c.api_tls != "off") return "--api-tls must be auto or off";
  if (c.api_tls == "off" && c.api_listen.empty())
    return "--api-tls off needs --api-listen (the --listen address serves clients and keeps TLS)";
  if (c.heartbeat_ms < 100) return "--heartbeat-ms must be at least 100";
  if (c.hello_timeout_ms < 100) return "--hello-timeout-ms must be at least 100";
  if (c.inbox_max < 1) return "--inbox-max must be at least 1";
  if (c.inbox_ttl_s < 1) return "--inbox-ttl-s must be at least 1";
  if (c.events_max < 1 || c.global_events_max < 1) return "event caps must be at least 1";
  if (c.max_message_bytes < 256) return "--max-message-bytes must be at least 256";
  if (c.max_body_bytes < 256) return "--max-body-bytes must be at least 256";
  if (c.max_queue_bytes < 4096) return "--max-queue-bytes must be at least 4096";
  if (c.max_queue_bytes < c.max_message_bytes + 64)
    return "--max-queue-bytes must be larger than --max-message-bytes (one notification must fit)";
  if (c.max_batch < 1) return "--max-batch must be at least 1";
  if (c.max_header_bytes < 1024 || c.max_header_bytes > 1024 * 1024)
    return "--max-header-bytes must be from 1024 to 1048576";
  if (c.http_timeout_ms < 100) return "--http-timeout-ms must be at least 100";
  if (c.connect_rate_per_ip > 0 && c.connect_burst_per_ip < 1) return "--connect-burst-per-ip must be at least 1";
  if (c.connect_rate_per_ip > 1000000 || c.api_rate_limit > 1000000 || c.hello_rate > 1000000)
    return "rates (--connect-rate-per-ip, --api-rate-limit, --hello-rate) must be at most 1000000 per second";
  if (c.hello_rate > 0 && c.hello_burst < 1) return "--hello-burst must be at least 1";
  if (c.threads > 256) return "--threads must be at most 256";
  if (c.instance_id.size() > 64 ||
      c.instance_id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
          std::string::npos)
    return "--instance-id must be at most 64 characters of A-Z a-z 0-9 . _ -";
  for (auto& k : c.api_keys)
    if (auto why = api_key_problem(k); !why.empty()) return "an --api-key value " + why;
  static const char* levels[] = {"trace", "debug", "info", "warn", "error", "off"};
  if (std::none_of(std::begin(levels), std::end(levels), [&](const char* l) { return c.log_level == l; }))
    return "--log-level must be one of trace, debug, info, warn, error, off";
  return {};
}

std::string config_markdown() {
  Config defaults;
  std::ostringstream out;
  out << "| flag | environment | default | meaning |\n|---|---|---|---|\n";
  for_each_option(defaults, [&](const char* name, auto& field, const char* help) {
    auto d = default_text(field);
    out << "| `--" << name << "` | `" << env_name(name) << "` | " << (d.empty() ? "" : "`" + d + "`")
        << " | " << help << " |\n";
  });
  return out.str();
}

}  // namespace herald
