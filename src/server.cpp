#include "server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <functional>
#include <random>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/http_session.hpp"
#include "core/gateway.hpp"
#include "core/limits.hpp"
#include "tls/tls.hpp"

namespace herald {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

tcp::endpoint parse_endpoint(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("address '" + text + "' needs host:port");
  auto host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "*") host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || port > 65535) throw std::invalid_argument("port");
  } catch (const std::exception&) {
    throw std::invalid_argument("address '" + text + "' has a bad port");
  }
  error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) throw std::invalid_argument("address '" + text + "': host must be an IP address");
  return {addr, static_cast<unsigned short>(port)};
}

// One acceptor on one loop; all of a listener's acceptors share a port.
class Acceptor : public std::enable_shared_from_this<Acceptor> {
 public:
  Acceptor(Loop& loop, const tcp::endpoint& ep, bool api_only, std::shared_ptr<asio::ssl::context> tls)
      : loop_(loop), acceptor_(loop.io()), retry_(loop.io()), api_only_(api_only), tls_(std::move(tls)) {
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    int one = 1;
    ::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    acceptor_.bind(ep);
    acceptor_.listen(4096);
  }
  tcp::endpoint local() const { return acceptor_.local_endpoint(); }
  void start() { accept(); }
  void close() {
    asio::post(loop_.io(), [self = shared_from_this()] {
      error_code ec;
      self->acceptor_.close(ec);
      self->retry_.cancel();
    });
  }

 private:
  void accept() {
    acceptor_.async_accept(loop_.io(), [self = shared_from_this()](error_code ec, LoopSocket s) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors (or similar): wait a little instead of spinning.
        spdlog::warn("accept failed: {}", ec.message());
        self->retry_.expires_after(std::chrono::milliseconds(50));
        self->retry_.async_wait([self](error_code ec) {
          if (!ec) self->accept();
        });
        return;
      }
      limits::IpSlot slot;
      if (self->admit(s, slot))
        api::start_http_session(self->loop_, std::move(s), self->api_only_, std::move(slot), self->tls_.get());
      self->accept();
    });
  }

  // The per-address limits, checked before anything is read: a refused connection costs one
  // accept and one close (a reset, so that it leaves no TIME_WAIT behind here).
  bool admit(LoopSocket& s, limits::IpSlot& slot) {
    auto& table = loop_.gateway().limits().connections;
    if (!table.on()) return true;
    error_code ec;
    auto peer = s.remote_endpoint(ec);
    if (ec) return false;  // already gone
    auto now = limits::now_ns();
    auto verdict = table.admit(limits::IpKey::of(peer.address()), now, slot);
    if (verdict == limits::ConnectionTable::Verdict::admitted) return true;
    bool cap = verdict == limits::ConnectionTable::Verdict::over_cap;
    loop_.metrics().connections_refused[static_cast<size_t>(cap ? Refused::per_ip_cap : Refused::per_ip_rate)].add();
    if (now >= next_warn_ns_) {  // one line per 10 s per loop, not one per refusal
      next_warn_ns_ = now + 10'000'000'000LL;
      auto& cfg = loop_.gateway().config();
      spdlog::warn("connection from {} refused: over {} (behind a proxy or NAT? see docs/operations.md)",
                   peer.address().to_string(),
                   cap ? "--max-connections-per-ip " + std::to_string(cfg.max_connections_per_ip)
                       : "--connect-rate-per-ip " + std::to_string(cfg.connect_rate_per_ip));
    }
    s.set_option(asio::socket_base::linger(true, 0), ec);
    s.close(ec);
    return false;
  }

  Loop& loop_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  bool api_only_;
  std::int64_t next_warn_ns_ = 0;
  std::shared_ptr<asio::ssl::context> tls_;  // null: plain TCP
};

std::vector<std::shared_ptr<Acceptor>> bind_all(Gateway& gw, const std::string& address, bool api_only,
                                                const std::shared_ptr<asio::ssl::context>& tls,
                                                tcp::endpoint& bound) {
  auto ep = parse_endpoint(address);
  if (ep.port() != 0) {
    // SO_REUSEPORT would let a second herald share the port silently (and split its clients):
    // a plain bind first tells whether anyone listens there already.
    tcp::acceptor probe(gw.loops().front()->io());
    probe.open(ep.protocol());
    probe.set_option(tcp::acceptor::reuse_address(true));
    error_code ec;
    probe.bind(ep, ec);
    if (ec) throw std::invalid_argument("cannot bind " + address + ": " + ec.message());
  }
  std::vector<std::shared_ptr<Acceptor>> out;
  for (auto& loop : gw.loops()) {
    out.push_back(std::make_shared<Acceptor>(*loop, ep, api_only, tls));
    if (ep.port() == 0) ep.port(out.back()->local().port());  // the others join the port picked
  }
  bound = out.front()->local();
  return out;
}

std::string random_instance_id() {
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof buf, "herald-%08x", rd());
  return buf;
}

std::string endpoint_text(const tcp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace

int run_server(Config config) {
  std::signal(SIGPIPE, SIG_IGN);
  if (config.instance_id.empty()) config.instance_id = random_instance_id();
  // Every connection costs a descriptor: never promise more clients than the process can hold.
  if (rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    auto room = rl.rlim_cur > 256 ? rl.rlim_cur - 256 : rl.rlim_cur / 2;
    if (config.max_connections > room) {
      spdlog::info("--max-connections {} is above what the open-file limit ({}) allows: using {}",
                   config.max_connections, rl.rlim_cur, room);
      config.max_connections = static_cast<std::uint32_t>(room);
    }
  }
  std::unique_ptr<Gateway> gw;
  std::vector<std::shared_ptr<Acceptor>> acceptors;
  std::unique_ptr<asio::signal_set> signals, hup;
  try {
    gw = std::make_unique<Gateway>(config, config.instance_id);
    // Signals are caught from here on, before anyone can connect: a SIGTERM at any moment drains.
    signals = std::make_unique<asio::signal_set>(gw->loops().front()->io(), SIGINT, SIGTERM);
    // Certificate and key are read once, here: a bad file stops the start with its name and why.
    std::shared_ptr<asio::ssl::context> tls;
    if (!config.tls_cert.empty()) tls = tls::make_server_context(config.tls_cert, config.tls_key);
    auto api_tls = config.api_tls == "off" ? nullptr : tls;
    // SIGHUP re-reads --api-key-file; without one it keeps its default action.
    if (!config.api_key_file.empty()) hup = std::make_unique<asio::signal_set>(gw->loops().front()->io(), SIGHUP);
    tcp::endpoint main_ep, api_ep;
    acceptors = bind_all(*gw, config.listen, false, tls, main_ep);
    if (!config.api_listen.empty()) {
      auto api = bind_all(*gw, config.api_listen, true, api_tls, api_ep);
      acceptors.insert(acceptors.end(), api.begin(), api.end());
    }
    auto& cfg = gw->config();
    spdlog::info("herald instance {} engine {} threads {}", gw->instance_id(), config.engine, gw->loops().size());
    if (gw->api_keys().empty())
      spdlog::warn("no --api-key set: the service API answers loopback callers only");
    else
      spdlog::info("service API keys: {}{}", gw->api_keys().size(),
                   cfg.api_key_file.empty() ? "" : " (--api-key-file is re-read on SIGHUP)");
    if (auto* v = gw->client_jwt()) {
      spdlog::info("client auth: jwt {}{}{}", jwt::alg_name(v->alg()),
                   cfg.jwt_audience.empty() ? "" : ", audience " + cfg.jwt_audience,
                   cfg.jwt_issuer.empty() ? "" : ", issuer " + cfg.jwt_issuer);
      if (v->alg() == jwt::Alg::HS256 && cfg.jwt_secret.size() < 32)
        spdlog::warn("--jwt-secret is shorter than 32 bytes: use a longer random secret for HS256");
    } else {
      spdlog::warn("client auth none{}: any client may claim any client id{}",
                   cfg.client_auth == "auto" ? " (auto: no JWT key set, loopback --listen)" : "",
                   cfg.jwt_secret.empty() && cfg.jwt_public_key.empty() ? "" : " (the JWT key given is not used)");
    }
    spdlog::info("listening on {} (WebSocket {}://{}/v1/ws, API {}://{}/v1/...)", endpoint_text(main_ep),
                 tls ? "wss" : "ws", endpoint_text(main_ep), tls ? "https" : "http", endpoint_text(main_ep));
    if (!config.api_listen.empty())
      spdlog::info("service API listening on {} ({})", endpoint_text(api_ep), api_tls ? "https" : "http");
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }

  // Shutdown: refuse new WebSocket clients (503) and fail /readyz while the API keeps answering,
  // close sessions with 1012 spread over --drain-ms (routes are given back as each closes), wait
  // for the engine to carry out what those closes asked, then stop.
  std::atomic<int> loops_left{static_cast<int>(gw->loops().size())};
  auto stop_all = [&] {
    for (auto& a : acceptors) a->close();
    for (auto& loop : gw->loops()) loop->stop();
  };
  signals->async_wait([&](error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: draining {} connections over {} ms", sig, gw->connection_count().load(),
                 gw->config().drain_ms);
    gw->set_draining();
    signals->async_wait([](error_code ec, int) {
      if (ec) return;
      spdlog::warn("second signal: exiting now");
      spdlog::default_logger()->flush();
      ::_exit(1);
    });
    for (auto& loop : gw->loops()) {
      auto* l = loop.get();
      asio::post(l->io(), [&, l] {
        l->drain(std::chrono::milliseconds(gw->config().drain_ms), [&] {
          if (--loops_left > 0) return;
          auto flush_timer = std::make_shared<asio::steady_timer>(gw->loops().front()->io(), std::chrono::seconds(2));
          auto once = std::make_shared<std::atomic<bool>>(false);
          auto finish = [&, once, flush_timer] {
            if (!once->exchange(true)) asio::post(gw->loops().front()->io(), stop_all);
          };
          flush_timer->async_wait([finish](error_code ec) {
            if (!ec) finish();
          });
          gw->engine().flush([finish](engine::Result<bool>) { finish(); });
        });
      });
    }
  });

  // SIGHUP re-reads --api-key-file (key rotation); a bad file keeps the keys in force.
  std::function<void()> on_hup = [&] {
    hup->async_wait([&](error_code ec, int) {
      if (ec) return;
      if (auto why = gw->api_keys().reload(); !why.empty()) {
        spdlog::error("SIGHUP: keeping the {} API keys in force: {}", gw->api_keys().size(), why);
      } else {
        spdlog::info("SIGHUP: API keys re-read: {} in force", gw->api_keys().size());
      }
      on_hup();
    });
  };
  if (hup) on_hup();

  gw->engine().start();
  for (auto& a : acceptors) a->start();
  for (auto& loop : gw->loops()) loop->run_thread();
  for (auto& loop : gw->loops()) loop->join();
  gw->engine().stop();
  spdlog::info("stopped");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace herald
