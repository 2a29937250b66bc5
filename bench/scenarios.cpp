// The scenarios. Each reads top to bottom as what it does: start herald, open clients, drive,
// wait for the deliveries, check them, write the line. The asynchronous parts (clients in the
// workers, the HTTP driver) live elsewhere; here every wait is a poll with a deadline.
#include "scenarios.hpp"

#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "clock.hpp"
#include "herald_process.hpp"
#include "histogram.hpp"
#include "http_driver.hpp"
#include "report.hpp"
#include "worker_pool.hpp"

namespace bench {

namespace json = boost::json;
namespace asio = boost::asio;

namespace {

// A progress line on stderr once a second while a phase runs (rewritten in place on a terminal).
class Ticker {
 public:
  Ticker(bool quiet, std::string name) : quiet_(quiet), name_(std::move(name)), tty_(isatty(2)) {
    if (quiet_) return;
    start_ = now_us();
    thread_ = std::thread([this] { loop(); });
  }
  ~Ticker() {
    if (quiet_) return;
    stop_ = true;
    thread_.join();
    if (tty_ && shown_) std::fputs("\n", stderr);
  }
  // Shows f() once a second until the returned guard goes (so a lambda that refers to a pool
  // or a driver never outlives them, exceptions included).
  class Showing {
   public:
    explicit Showing(Ticker& t) : t_(t) {}
    ~Showing() { t_.set(nullptr); }
    Showing(const Showing&) = delete;
    Showing& operator=(const Showing&) = delete;

   private:
    Ticker& t_;
  };
  [[nodiscard]] Showing show(std::function<std::string()> f) {
    set(std::move(f));
    return Showing(*this);
  }
  void set(std::function<std::string()> f) {
    std::lock_guard lock(mu_);
    f_ = std::move(f);
  }
  void note(const std::string& text) {
    if (quiet_) return;
    std::lock_guard lock(mu_);
    std::fprintf(stderr, "%s[%s] %5.1fs %s\n", tty_ && shown_ ? "\r\033[K" : "", name_.c_str(),
                 (now_us() - start_) / 1e6, text.c_str());
    shown_ = false;
  }

 private:
  void loop() {
    int tick = 0;
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (++tick % (tty_ ? 5 : 20)) continue;
      std::lock_guard lock(mu_);
      if (!f_) continue;
      auto text = f_();
      std::fprintf(stderr, "%s[%s] %5.1fs %s%s", tty_ ? "\r\033[K" : "", name_.c_str(), (now_us() - start_) / 1e6,
                   text.c_str(), tty_ ? "" : "\n");
      std::fflush(stderr);
      shown_ = true;
    }
  }
  bool quiet_;
  std::string name_;
  bool tty_;
  std::uint64_t start_ = 0;
  std::atomic<bool> stop_{false};
  bool shown_ = false;
  std::mutex mu_;
  std::function<std::string()> f_;
  std::thread thread_;
};

std::string exe_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "." : p.parent_path().string();
}

double seconds(std::uint64_t from_us, std::uint64_t to_us) {
  return to_us > from_us ? static_cast<double>(to_us - from_us) / 1e6 : 0.0;
}

double per_second(std::uint64_t n, double secs) { return secs > 0 ? static_cast<double>(n) / secs : 0.0; }

json::object latency_json(const Histogram& h) {
  auto ms = [](std::uint64_t us) { return static_cast<double>(us) / 1000.0; };
  return {{"p50_ms", ms(h.quantile(0.50))}, {"p90_ms", ms(h.quantile(0.90))},   {"p99_ms", ms(h.quantile(0.99))},
          {"p999_ms", ms(h.quantile(0.999))}, {"max_ms", ms(h.max())},          {"samples", h.count()}};
}

void add_counts(json::object& into, const json::value& from) {
  if (!from.is_object()) return;
  for (auto& kv : from.get_object()) {
    std::uint64_t have = into.contains(kv.key()) ? into.at(kv.key()).to_number<std::uint64_t>() : 0;
    into[kv.key()] = have + kv.value().to_number<std::uint64_t>();
  }
}

std::uint64_t num(const json::object& o, const char* k) {
  return o.contains(k) ? o.at(k).to_number<std::uint64_t>() : 0;
}

// Herald's /metrics (blocking, short timeout): the counters that tell why a run went wrong.
json::object herald_metrics(const std::string& host, unsigned short port) {
  json::object m;
  try {
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::make_address_v4(host), port});
    std::string req = "GET /metrics HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
    asio::write(s, asio::buffer(req));
    std::string text;
    boost::system::error_code ec;
    asio::read(s, asio::dynamic_buffer(text), ec);
    std::istringstream in(text.substr(std::min(text.size(), text.find("\r\n\r\n") + 4)));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      auto sp = line.rfind(' ');
      if (sp == std::string::npos) continue;
      auto name = line.substr(0, sp);
      if (!(name.starts_with("herald_notifications_total") || name.starts_with("herald_disconnects_total") ||
            name.starts_with("herald_connections") || name.starts_with("herald_errors_total") ||
            name.starts_with("herald_pending_notifications")))
        continue;
      double v = std::strtod(line.c_str() + sp + 1, nullptr);
      if (v != 0) m[name] = static_cast<std::int64_t>(v);
    }
  } catch (...) {
  }
  return m;
}

struct ConnectStats {
  std::uint64_t ready = 0, failed = 0, t0 = 0, t1 = 0;
  Histogram latency;
  json::object errors, server_closes;
  double seconds() const { return bench::seconds(t0, t1); }
};

struct Verdict {
  std::uint64_t lost = 0, lost_clients = 0, duplicates = 0, out_of_order = 0, misrouted = 0, id_mismatch = 0;
  std::uint64_t unconfirmed = 0, unexpected = 0, received = 0, unique = 0, first_rx = 0, last_rx = 0;
  std::size_t reports = 0;
  Histogram latency, latency_from_write, rehome_latency;
  json::object errors, server_closes;
};

class Scenario {
 public:
  explicit Scenario(Options& o) : o_(o), ticker_(o.quiet, o.scenario) {
    std::random_device rd;
    char tag[16];
    std::snprintf(tag, sizeof tag, "%06x", rd() & 0xFFFFFF);
    prefix_ = o.client_prefix.empty() ? std::string("bench-") + tag + "-" : o.client_prefix;
    deadline_ = now_us() + static_cast<std::uint64_t>(o.timeout * 1e6);
    if (o_.herald.empty()) o_.herald = exe_dir() + "/../herald";
    if (o_.out.empty()) o_.out = exe_dir() + "/results.jsonl";
  }

  int run() {
    try {
      start_target();
      auto& s = o_.scenario;
      if (s == "idle") idle();
      else if (s == "notify" || s == "batch" || s == "burst") notify();
      else if (s == "replay") replay();
      else if (s == "churn") churn();
      else if (s == "storm") storm();
    } catch (const std::exception& e) {
      problem(std::string("error: ") + e.what());
    }
    return finish();
  }

 private:
  void problem(std::string p) {
    ok_ = false;
    ticker_.note(p);
    problems_.push_back(json::string(p));
  }

  bool time_left() const { return now_us() < deadline_; }
  double seconds_left() const { return deadline_ > now_us() ? static_cast<double>(deadline_ - now_us()) / 1e6 : 0; }

  bool have_server() const { return herald_ || !server_pids_.empty(); }
  // RSS of the server the clients are on: the herald the bench started, or the --server-pids.
  std::uint64_t server_rss() const {
    std::uint64_t r = 0;
    if (herald_) {
      r = herald_->rss_bytes();
      if (o_.scenario == "idle")
        for (auto& o : others_) r += o->rss_bytes();
      return r;
    }
    for (auto pid : server_pids_) r += rss_bytes_of(pid);
    return r;
  }

  void start_target() {
    if (!o_.target.empty()) {
      std::stringstream pids(o_.server_pids);
      for (std::string p; std::getline(pids, p, ',');)
        if (!p.empty()) server_pids_.push_back(static_cast<pid_t>(std::stoul(p)));
      std::string host;
      unsigned short port = 0;
      if (!split_host_port(o_.target, host, port)) throw std::runtime_error("--target must be host:port");
      boost::system::error_code ec;
      auto a = asio::ip::make_address_v4(host, ec);
      if (ec || !a.is_loopback()) throw std::runtime_error("--target must be an IPv4 loopback address (127.x.y.z)");
      host_ = host;
      port_ = port;
      herald_info_["target"] = o_.target;
      return;
    }
    bool storm = o_.scenario == "storm";
    auto engine = o_.engine.empty() ? std::string(storm ? "redis" : "memory") : o_.engine;
    unsigned n = o_.instances ? o_.instances : storm ? 3 : 1;
    if (engine != "memory" && engine != "redis") throw std::runtime_error("--engine must be memory or redis");
    if (n > 1 && engine != "redis") throw std::runtime_error("--instances above 1 needs --engine redis");
    if (storm && (n < 2 || engine != "redis")) throw std::runtime_error("storm needs --engine redis and --instances 2 or more");
    if (n > 8) throw std::runtime_error("--instances: at most 8");
    auto logs = std::filesystem::path(o_.out).parent_path() / "logs";
    std::error_code ec;
    std::filesystem::create_directories(logs, ec);
    std::vector<std::string> args{"--listen", "127.0.0.1:0", "--threads", std::to_string(o_.herald_threads)};
    if (engine == "redis") {
      auto url = o_.redis_url;
      if (url.empty()) {
        redis_ = HeraldProcess::start_redis(o_.redis_server, (logs / ("redis-" + o_.scenario + ".log")).string(), 10);
        url = "redis://127.0.0.1:" + std::to_string(redis_->port());
        ticker_.note("redis-server pid " + std::to_string(redis_->pid()) + " on " + url);
      }
      herald_info_["redis_url"] = url;
      args.insert(args.end(), {"--engine", "redis", "--redis-url", url});
    }
    args.insert(args.end(), o_.herald_args.begin(), o_.herald_args.end());
    herald_info_["engine"] = engine;
    herald_info_["instances"] = n;
    // Clients go to the last instance and the service calls to the first (a notification then
    // crosses instances, as in a deployment); storm puts the clients on the first, which it kills.
    std::vector<std::unique_ptr<HeraldProcess>> started;
    json::array logs_json;
    for (unsigned i = 0; i < n; ++i) {
      auto a = args;
      std::string name = o_.scenario + (n > 1 ? "-" + std::string(1, static_cast<char>('a' + i)) : "");
      if (n > 1) a.insert(a.end(), {"--instance-id", prefix_ + std::string(1, static_cast<char>('a' + i))});
      auto log = (logs / ("herald-" + name + ".log")).string();
      started.push_back(HeraldProcess::start(o_.herald, a, log, 10));
      logs_json.push_back(json::string(log));
      ticker_.note("herald " + name + " pid " + std::to_string(started.back()->pid()) + " on 127.0.0.1:" +
                   std::to_string(started.back()->port()));
    }
    std::size_t client_side = storm ? 0 : n - 1;
    herald_ = std::move(started[client_side]);
    for (std::size_t i = 0; i < started.size(); ++i)
      if (i != client_side) others_.push_back(std::move(started[i]));
    host_ = "127.0.0.1";
    port_ = herald_->port();
    json::array a;
    for (auto& x : args) a.push_back(json::string(x));
    herald_info_["args"] = std::move(a);
    herald_info_["log"] = logs_json.size() == 1 ? json::value(logs_json[0]) : json::value(logs_json);
  }

  PoolSpec pool_spec(std::uint64_t clients) const {
    PoolSpec p;
    p.host = host_;
    p.port = port_;
    p.clients = clients;
    p.prefix = prefix_;
    p.per_worker = std::min<std::uint64_t>(o_.per_worker, 19900);
    p.per_source = o_.per_source;
    p.workers = o_.workers;
    p.threads = o_.worker_threads;
    p.connect_inflight = o_.connect_inflight;
    p.ack_every = o_.ack_every;
    p.ack_ms = o_.ack_ms;
    p.legacy = legacy();
    p.deadline_s = static_cast<unsigned>(o_.timeout + 60);
    return p;
  }

  struct CpuMark {
    double herald = 0, workers = 0, self = 0;
    std::uint64_t at = 0;
    double redis = 0;
  };
  CpuMark cpu_mark(const WorkerPool& pool) {
    double h = herald_ && herald_->alive() ? cpu_seconds(herald_->pid()) : dead_cpu_;
    for (auto& o : others_) h += cpu_seconds(o->pid());
    for (auto pid : server_pids_) h += cpu_seconds(pid);
    return {h, pool.cpu_seconds(), cpu_seconds(getpid()), now_us(), redis_ ? cpu_seconds(redis_->pid()) : 0};
  }
  // Where the machine's time went during the measured phase: tells a slow herald from a bench
  // that could not keep up (both share the same cores).
  void record_cpu(const CpuMark& a, const CpuMark& b) {
    json::object c{{"wall_s", seconds(a.at, b.at)},
                   {"bench_workers_s", b.workers - a.workers},
                   {"bench_driver_s", b.self - a.self}};
    if (herald_) c["herald_s"] = b.herald - a.herald;  // every instance the bench started
    if (!server_pids_.empty()) c["server_s"] = b.herald - a.herald;  // the --server-pids
    if (redis_) c["redis_s"] = b.redis - a.redis;
    figures_["cpu"] = std::move(c);
  }

  // Herald's counters while the clients are still connected.
  void snapshot_metrics() {
    if (port_) herald_info_["metrics"] = herald_metrics(host_, port_);
    if (herald_) herald_info_["rss_bytes"] = herald_->rss_bytes();
  }

  void record_pool(WorkerPool& pool) {
    if (o_.protocol != "herald" && o_.protocol != "legacy") throw std::runtime_error("--protocol must be herald or legacy");
    params_["protocol"] = o_.protocol;
    params_["workers"] = pool.size();
    params_["worker_threads"] = o_.worker_threads;
    params_["source_addresses"] = pool.sources().size();
  }

  // Opens every client of the pool (hello, welcome) and waits until each is in or given up.
  ConnectStats connect(WorkerPool& pool, std::uint64_t n) {
    ConnectStats st;
    pool.send_all({{"cmd", "connect"}});
    auto showing = ticker_.show([&pool, n] {
      auto p = pool.progress();
      return "connecting: " + std::to_string(p.ready) + "/" + std::to_string(n) + " ready, " +
             std::to_string(p.failed) + " failed";
    });
    auto events = pool.collect("connected", seconds_left());
    ticker_.set(nullptr);
    if (events.size() < pool.size()) problem("a worker did not finish connecting in time");
    for (auto& e : events) {
      st.ready += num(e, "ready");
      st.failed += num(e, "failed");
      auto t0 = num(e, "t0"), t1 = num(e, "t1");
      if (t0 && (!st.t0 || t0 < st.t0)) st.t0 = t0;
      st.t1 = std::max(st.t1, t1);
      st.latency.merge(Histogram::from_json(e.at("connect_latency")));
      add_counts(st.errors, e.at("errors"));
      add_counts(st.server_closes, e.at("server_closes"));
    }
    if (st.ready < n) problem(std::to_string(n - st.ready) + " clients could not connect");
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3f", st.seconds());
    ticker_.note(std::to_string(st.ready) + " clients connected in " + secs + " s");
    return st;
  }

  bool legacy() const { return o_.protocol == "legacy"; }

  DriveResult drive_phase(DriveSpec d, const char* what) {
    d.host = host_;
    d.port = port_;
    d.legacy = legacy();
    if (d.legacy && d.batch) throw std::runtime_error("--protocol legacy has no batch endpoint (notify, idle or churn only)");
    if (o_.api_target.empty() && !others_.empty()) d.port = others_[0]->port();
    if (!o_.api_target.empty()) {
      std::string host;
      unsigned short port = 0;
      if (!split_host_port(o_.api_target, host, port)) throw std::runtime_error("--api-target must be host:port");
      boost::system::error_code ec;
      if (!asio::ip::make_address_v4(host, ec).is_loopback() || ec)
        throw std::runtime_error("--api-target must be an IPv4 loopback address (127.x.y.z)");
      d.host = host;
      d.port = port;
    }
    d.prefix = prefix_;
    d.deadline_s = std::max(1.0, seconds_left() - 5);
    DriveProgress progress;
    auto showing = ticker_.show([&progress, &d, what] {
      return std::string(what) + ": " + std::to_string(progress.answered.load()) + "/" + std::to_string(d.total) +
             " answered, " + std::to_string(progress.accepted.load()) + " accepted";
    });
    auto r = drive(d, progress);
    ticker_.set(nullptr);
    if (r.cut) problem("the service driver ran out of time");
    if (r.failed) problem(std::to_string(r.failed) + " notifications were not answered 202");
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3f", seconds(r.t_start, r.t_end));
    ticker_.note(std::string(what) + ": " + std::to_string(r.accepted) + " accepted in " + secs + " s");
    return r;
  }

  // Waits until the clients hold `expected` distinct notifications, or nothing arrives for
  // --drain seconds, or the scenario's time is up.
  void wait_delivered(WorkerPool& pool, std::uint64_t expected) {
    auto showing = ticker_.show([&pool, expected] {
      auto p = pool.progress();
      return "delivered " + std::to_string(p.unique) + "/" + std::to_string(expected);
    });
    std::uint64_t last = 0, last_change = now_us();
    for (;;) {
      auto p = pool.progress();
      if (p.unique >= expected) break;
      if (p.unique != last) last = p.unique, last_change = now_us();
      if (now_us() - last_change > static_cast<std::uint64_t>(o_.drain * 1e6) || !time_left() ||
          p.dead == pool.size())
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ticker_.set(nullptr);
  }

  Verdict verify(WorkerPool& pool, const DriveResult& dr) {
    for (std::size_t w = 0; w < pool.size(); ++w) {
      json::array clients;
      for (auto c = pool.first(w); c < pool.first(w) + pool.count(w) && c < dr.clients.size(); ++c) {
        auto& l = dr.clients[c];
        if (!l.sent) continue;
        json::array failed;
        for (auto s : l.failed) failed.push_back(s);
        clients.push_back(json::array{c, l.sent, l.n202, l.sum, std::move(failed)});
      }
      pool.send(w, {{"cmd", "verify"}, {"clients", std::move(clients)}});
    }
    Verdict v;
    auto reports = pool.collect("verify", std::max(30.0, seconds_left()));
    v.reports = reports.size();
    if (v.reports < pool.size()) problem("a worker did not report its deliveries");
    for (auto& r : reports) {
      v.lost += num(r, "lost");
      v.lost_clients += num(r, "lost_clients");
      v.duplicates += num(r, "duplicates");
      v.out_of_order += num(r, "out_of_order");
      v.misrouted += num(r, "misrouted");
      v.id_mismatch += num(r, "id_mismatch");
      v.unconfirmed += num(r, "unconfirmed_delivered");
      v.unexpected += num(r, "unexpected");
      v.received += num(r, "received");
      v.unique += num(r, "unique");
      auto fr = num(r, "first_rx");
      if (fr && (!v.first_rx || fr < v.first_rx)) v.first_rx = fr;
      v.last_rx = std::max(v.last_rx, num(r, "last_rx"));
      v.latency.merge(Histogram::from_json(r.at("latency")));
      if (r.contains("latency_from_write")) v.latency_from_write.merge(Histogram::from_json(r.at("latency_from_write")));
      if (r.contains("rehome_latency")) v.rehome_latency.merge(Histogram::from_json(r.at("rehome_latency")));
      add_counts(v.errors, r.at("errors"));
      add_counts(v.server_closes, r.at("server_closes"));
    }
    lost_ = v.lost;
    duplicates_ = v.duplicates;
    if (v.lost) problem(std::to_string(v.lost) + " notifications answered 202 never arrived");
    if (v.duplicates) problem(std::to_string(v.duplicates) + " duplicate deliveries");
    // The legacy wire carries no ids: its "order" is the order the bench issued the requests, and
    // two requests for one client can be in flight at once on different connections (one stalls
    // while others go ahead), so the server may rightly take them in the other order. Reported,
    // not a failure, there.
    if (v.out_of_order && !legacy()) problem(std::to_string(v.out_of_order) + " deliveries out of order");
    if (v.misrouted) problem(std::to_string(v.misrouted) + " notifications reached the wrong client");
    if (v.id_mismatch) problem(std::to_string(v.id_mismatch) + " clients got ids other than the 202 answers");
    if (v.unexpected) problem(std::to_string(v.unexpected) + " deliveries the bench never sent");
    checks_["lost"] = v.lost;
    checks_["lost_clients"] = v.lost_clients;
    checks_["duplicates"] = v.duplicates;
    checks_["out_of_order"] = v.out_of_order;
    checks_["misrouted"] = v.misrouted;
    checks_["id_mismatch"] = v.id_mismatch;
    checks_["unexpected"] = v.unexpected;
    checks_["delivered_without_202"] = v.unconfirmed;
    checks_["client_errors"] = v.errors;
    checks_["server_closes"] = v.server_closes;
    return v;
  }

  void record_drive(const DriveResult& dr) {
    checks_["not_202"] = dr.failed;
    json::object st;
    for (auto& [k, n] : dr.statuses) st[k] = n;
    checks_["api_statuses"] = std::move(st);
    checks_["api_transport_errors"] = dr.transport_errors;
  }

  void record_connect(const ConnectStats& cs, std::uint64_t n) {
    figures_["connect_seconds"] = cs.seconds();
    figures_["connects_per_s"] = per_second(cs.ready, cs.seconds());
    figures_["connect_latency"] = latency_json(cs.latency);
    checks_["connect_failed"] = n - std::min(n, cs.ready);
    checks_["connect_errors"] = cs.errors;
  }

  // ---- idle: memory per held connection -----------------------------------------------------------
  void idle() {
    auto n = o_.connections;
    params_["connections"] = n;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto rss0 = server_rss();
    auto k0 = KernelMemory::read();
    auto ps = pool_spec(n);
    // With --instances, idle spreads the clients over every instance (and counts all their RSS).
    for (auto& o : others_) ps.spread.push_back(o->port());
    params_["instances"] = 1 + others_.size();
    WorkerPool pool(ps);
    record_pool(pool);
    auto c0 = cpu_mark(pool);
    auto cs = connect(pool, n);
    record_cpu(c0, cpu_mark(pool));
    record_connect(cs, n);
    // Let lazily freed memory settle and late timers run, then read both sides.
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long long>(o_.settle * 1e6)));
    auto p = pool.progress();
    auto rss1 = server_rss();
    auto k1 = KernelMemory::read();
    figures_["connections"] = cs.ready;
    if (p.closed) problem(std::to_string(p.closed) + " connections closed while held");
    checks_["closed_while_held"] = p.closed;
    auto held = std::max<std::uint64_t>(1, cs.ready);
    auto delta = [](std::uint64_t a, std::uint64_t b) { return static_cast<double>(b) - static_cast<double>(a); };
    if (have_server()) {
      figures_["rss_before_bytes"] = rss0;
      figures_["rss_after_bytes"] = rss1;
      figures_["bytes_per_connection"] = delta(rss0, rss1) / static_cast<double>(held);
    }
    // Machine-wide: both ends of each loopback connection are on this machine, so these are the
    // kernel's cost of a connection pair (herald's socket plus the bench's).
    json::object kernel{{"slab_delta_bytes", delta(k0.slab_bytes, k1.slab_bytes)},
                        {"sunreclaim_delta_bytes", delta(k0.sunreclaim_bytes, k1.sunreclaim_bytes)},
                        {"tcp_mem_delta_bytes", delta(k0.tcp_mem_bytes, k1.tcp_mem_bytes)},
                        {"sockets_used_delta", delta(k0.sockets_used, k1.sockets_used)},
                        {"slab_bytes_per_connection_both_ends", delta(k0.slab_bytes, k1.slab_bytes) / held},
                        {"slab_bytes_per_connection_server_side_estimate",
                         delta(k0.slab_bytes, k1.slab_bytes) / held / 2}};
    figures_["kernel"] = std::move(kernel);
    snapshot_metrics();
  }

  // ---- notify / batch / burst: connected clients, driven flat out or at a rate -------------------
  void notify() {
    auto& s = o_.scenario;
    std::uint64_t m = o_.clients ? o_.clients : (s == "burst" ? 10000 : 100);
    std::uint64_t k = o_.count ? o_.count : (s == "notify" ? 50000 : s == "batch" ? 500000 : 20 * m);
    unsigned b = s == "notify" ? 0 : o_.batch ? o_.batch : s == "batch" ? 100 : static_cast<unsigned>(std::min<std::uint64_t>(m, 1000));
    params_["clients"] = m;
    params_["notifications"] = k;
    params_["batch"] = b;
    params_["rate"] = o_.rate;
    unsigned hc = o_.http_connections ? o_.http_connections : s == "notify" ? 32 : s == "batch" ? 16 : 8;
    params_["http_connections"] = hc;
    params_["payload"] = o_.payload;
    WorkerPool pool(pool_spec(m));
    record_pool(pool);
    auto cs = connect(pool, m);
    record_connect(cs, m);
    // The legacy hello is not answered: give the server --settle to register the clients.
    if (legacy()) std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long long>(o_.settle * 1e6)));
    DriveSpec d;
    d.clients = m;
    d.total = k;
    d.batch = b;
    d.rate = o_.rate;
    d.connections = hc;
    d.payload = o_.payload;
    auto c0 = cpu_mark(pool);
    auto dr = drive_phase(d, "notify");
    record_drive(dr);
    wait_delivered(pool, dr.accepted);
    record_cpu(c0, cpu_mark(pool));
    snapshot_metrics();
    auto v = verify(pool, dr);
    double elapsed = seconds(dr.t_start, v.last_rx);
    figures_["accepted"] = dr.accepted;
    figures_["delivered"] = v.unique;
    figures_["elapsed_s"] = elapsed;
    figures_[s == "burst" ? "frames_per_s" : "deliveries_per_s"] = per_second(v.unique, elapsed);
    figures_["accepted_per_s"] = per_second(dr.accepted, seconds(dr.t_start, dr.t_end));
    figures_["requests_per_s"] = per_second(dr.requests, seconds(dr.t_start, dr.t_end));
    figures_["latency"] = latency_json(v.latency);
    figures_["api_latency"] = latency_json(dr.request_latency);
    // At a fixed rate latency counts from when a notification was due; this is how late the
    // driver itself was in writing it (a busy machine shows here, not only in herald).
    if (o_.rate > 0) {
      figures_["send_lag"] = latency_json(dr.send_lag);
      // From when each request was actually written: herald's share when the driver ran late.
      figures_["latency_from_write"] = latency_json(v.latency_from_write);
    }
  }

  // ---- replay: a backlog per client, delivered when it connects -----------------------------------
  void replay() {
    std::uint64_t m = o_.clients ? o_.clients : 100;
    std::uint64_t b = o_.backlog;
    unsigned per_request = legacy() ? 0 : o_.batch ? o_.batch : 100;  // legacy: single POST /notify
    params_["clients"] = m;
    params_["backlog_per_client"] = b;
    params_["batch"] = per_request;
    DriveSpec d;
    d.clients = m;
    d.total = m * b;
    d.batch = per_request;
    d.connections = o_.http_connections ? o_.http_connections : 16;
    params_["http_connections"] = d.connections;
    d.payload = o_.payload;
    auto dr = drive_phase(d, "backlog");
    record_drive(dr);
    figures_["stored_per_s"] = per_second(dr.accepted, seconds(dr.t_start, dr.t_end));
    WorkerPool pool(pool_spec(m));
    record_pool(pool);
    auto c0 = cpu_mark(pool);
    auto cs = connect(pool, m);
    record_connect(cs, m);
    wait_delivered(pool, dr.accepted);
    record_cpu(c0, cpu_mark(pool));
    snapshot_metrics();
    auto v = verify(pool, dr);
    double secs = seconds(cs.t0, v.last_rx);
    figures_["accepted"] = dr.accepted;
    figures_["delivered"] = v.unique;
    figures_["replay_seconds"] = secs;
    figures_["notifications_per_s"] = per_second(v.unique, secs);
  }

  // ---- storm: the instance holding every client dies; they move to the others ---------------------
  // Clients on instance A (several worker processes), each with one notification received (so it
  // resumes with last_id, as a client library does). The workers go into rehome mode, A gets
  // SIGKILL, and at once --pending notifications per client are posted through the surviving
  // instances (split between them, batch requests) while the clients reconnect to them after a
  // random delay up to --reconnect-jitter-ms. Measured: kill → every client welcomed elsewhere
  // and holding every pending notification. Nothing in herald is told about the kill: the clients'
  // hellos take the dead instance's routes over, and what was posted meanwhile waits in the inbox.
  void storm() {
    std::uint64_t m = o_.clients ? o_.clients : 15000;
    std::uint64_t pending = o_.pending;
    unsigned b = o_.batch ? o_.batch : 100;
    unsigned hc = o_.http_connections ? o_.http_connections : 8;
    params_["clients"] = m;
    params_["instances"] = 1 + others_.size();
    params_["pending_per_client"] = pending;
    params_["batch"] = b;
    params_["http_connections_per_instance"] = hc;
    params_["reconnect_jitter_ms"] = o_.reconnect_jitter_ms;
    auto ps = pool_spec(m);
    // Several worker processes even below --per-worker: a storm is many clients at once.
    if (!o_.workers) ps.workers = static_cast<unsigned>(std::max<std::uint64_t>(2, (m + ps.per_worker - 1) / ps.per_worker));
    WorkerPool pool(ps);
    record_pool(pool);
    auto cs = connect(pool, m);
    record_connect(cs, m);

    // One live notification per client (through B, delivered by A), so each has a last_id.
    DriveSpec d1;
    d1.clients = m;
    d1.total = m;
    d1.batch = b;
    d1.connections = hc;
    d1.payload = o_.payload;
    auto live = drive_phase(d1, "live");
    wait_delivered(pool, live.accepted);
    if (pool.progress().unique < live.accepted) problem("the live notifications were not all delivered before the kill");

    json::array targets;
    for (auto& o : others_) targets.push_back(json::array{"127.0.0.1", o->port()});
    pool.send_all({{"cmd", "rehome"}, {"targets", std::move(targets)}, {"jitter_ms", o_.reconnect_jitter_ms}});
    if (pool.collect("rehome", 10).size() < pool.size()) problem("a worker did not enter rehome mode");

    auto c0 = cpu_mark(pool);
    dead_cpu_ = cpu_seconds(herald_->pid());
    auto t_kill = now_us();
    herald_->kill_now();
    ticker_.note("instance A (" + std::to_string(cs.ready) + " clients) killed with SIGKILL");
    std::thread pauser;
    if (o_.redis_pause_ms) {
      params_["redis_pause_ms"] = o_.redis_pause_ms;
      pauser = std::thread([this] {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        // DEBUG SLEEP stalls the whole server (a Redis hiccup: nothing is read, answered or
        // published); a Redis the bench did not start gets CLIENT PAUSE (commands wait).
        char secs[32];
        std::snprintf(secs, sizeof secs, "%.3f", o_.redis_pause_ms / 1000.0);
        auto answer = redis_ ? redis_command({"DEBUG", "SLEEP", secs})
                             : redis_command({"CLIENT", "PAUSE", std::to_string(o_.redis_pause_ms), "ALL"});
        ticker_.note("redis paused for " + std::to_string(o_.redis_pause_ms) + " ms: " + answer);
      });
    }

    // The pending notifications, through the survivors, in parallel: instance j posts the j-th
    // share of k in [m, m + pending*m) (each client's seqs 1..pending).
    std::vector<DriveSpec> specs(others_.size());
    std::vector<DriveResult> results(others_.size());
    std::vector<std::unique_ptr<DriveProgress>> progress;
    std::uint64_t total = pending * m, at = m;
    for (std::size_t j = 0; j < others_.size(); ++j) {
      auto& d = specs[j];
      d.host = "127.0.0.1";
      d.port = others_[j]->port();
      d.prefix = prefix_;
      d.clients = m;
      d.first = at;
      d.total = total / others_.size() + (j < total % others_.size() ? 1 : 0);
      at += d.total;
      d.batch = b;
      d.connections = hc;
      d.payload = o_.payload;
      d.deadline_s = std::max(1.0, seconds_left() - 5);
      progress.push_back(std::make_unique<DriveProgress>());
    }
    {
      std::vector<std::thread> threads;
      for (std::size_t j = 0; j < specs.size(); ++j)
        threads.emplace_back([&, j] { results[j] = drive(specs[j], *progress[j]); });
      auto showing = ticker_.show([&] {
        std::uint64_t answered = 0;
        for (auto& p : progress) answered += p->answered.load();
        auto p = pool.progress();
        return "storm: " + std::to_string(p.rehomed) + "/" + std::to_string(cs.ready) + " re-homed, pending " +
               std::to_string(answered) + "/" + std::to_string(total) + " answered, delivered " +
               std::to_string(p.unique) + "/" + std::to_string(live.accepted + total);
      });
      for (auto& t : threads) t.join();
    }
    if (pauser.joinable()) pauser.join();
    results.insert(results.begin(), std::move(live));
    auto dr = merge(results);
    record_drive(dr);
    if (dr.cut) problem("the service driver ran out of time");
    if (dr.failed) problem(std::to_string(dr.failed) + " notifications were not answered 202");
    auto posted = results.size() > 1 ? results[1].t_end : t_kill;
    for (std::size_t j = 1; j < results.size(); ++j) posted = std::max(posted, results[j].t_end);
    ticker_.note("pending: " + std::to_string(dr.accepted - results[0].accepted) + " accepted by " +
                 std::to_string(seconds(t_kill, posted)).substr(0, 5) + " s after the kill");

    // Until every client is back (each one moved, none between servers now) and holds everything
    // (or nothing moves for --drain seconds). When some notifications were refused (a 503 may
    // still have been stored and delivered, so counts alone cannot tell), until deliveries have
    // also been quiet for a second with every client connected. Either way the state must hold
    // for another second (a server may still close sessions it took over) before the check.
    {
      auto showing = ticker_.show([&] {
        auto p = pool.progress();
        return "storm: " + std::to_string(p.rehomed) + "/" + std::to_string(cs.ready) + " re-homed, delivered " +
               std::to_string(p.unique) + "/" + std::to_string(dr.accepted);
      });
      std::uint64_t last = 0, last_change = now_us(), held_since = 0;
      for (;;) {
        auto p = pool.progress();
        bool home = p.rehomed >= cs.ready && p.moved >= p.dropped;
        if (p.unique + p.moved + p.dropped != last) last = p.unique + p.moved + p.dropped, last_change = now_us();
        bool done = home && p.unique >= dr.accepted && (!dr.failed || now_us() - last_change > 1'000'000);
        if (!done) held_since = 0;
        else if (!held_since) held_since = now_us();
        else if (now_us() - held_since > 1'000'000) break;
        if (now_us() - last_change > static_cast<std::uint64_t>(o_.drain * 1e6) || !time_left() || p.dead == pool.size())
          break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    auto p = pool.progress();
    record_cpu(c0, cpu_mark(pool));
    if (p.dropped > cs.ready) problem(std::to_string(p.dropped - cs.ready) + " connections to the surviving instances were lost too");
    checks_["connections_lost_after_rehome"] = p.dropped - std::min(p.dropped, cs.ready);
    checks_["still_moving"] = p.dropped - std::min(p.dropped, p.moved);
    json::object metrics;
    for (std::size_t j = 0; j < others_.size(); ++j)
      metrics[std::string(1, static_cast<char>('b' + j))] = herald_metrics("127.0.0.1", others_[j]->port());
    herald_info_["metrics"] = std::move(metrics);
    auto v = verify(pool, dr);
    if (p.rehomed < cs.ready) problem(std::to_string(cs.ready - p.rehomed) + " clients were not re-homed");
    checks_["not_rehomed"] = cs.ready - std::min(cs.ready, p.rehomed);
    checks_["connections_lost_at_kill"] = std::min(p.dropped, cs.ready);
    auto done = std::max(p.last_rehome, v.last_rx);
    figures_["rehomed"] = p.rehomed;
    figures_["pending_accepted"] = dr.accepted - results[0].accepted;
    figures_["delivered"] = v.unique;
    figures_["storm_seconds"] = seconds(t_kill, done);
    figures_["rehome_seconds"] = seconds(t_kill, p.last_rehome);
    figures_["pending_posted_seconds"] = seconds(t_kill, posted);
    figures_["pending_delivered_seconds"] = seconds(t_kill, v.last_rx);
    figures_["rehome_latency"] = latency_json(v.rehome_latency);
    figures_["rehomes_per_s"] = per_second(p.rehomed, seconds(t_kill, p.last_rehome));
    figures_["latency"] = latency_json(v.latency);
  }

  // One command to the Redis the heralds use (blocking, short timeout); its first answer line.
  std::string redis_command(const std::vector<std::string>& args) {
    try {
      std::string host = "127.0.0.1";
      unsigned short port = redis_ ? redis_->port() : 0;
      if (!redis_) {
        auto hp = o_.redis_url;  // redis://[user:password@]host:port[/db]
        if (auto at = hp.find("://"); at != std::string::npos) hp = hp.substr(at + 3);
        if (auto at = hp.rfind('@'); at != std::string::npos) hp = hp.substr(at + 1);
        hp = hp.substr(0, hp.find('/'));
        if (!split_host_port(hp, host, port)) return "cannot read host:port from --redis-url";
      }
      asio::io_context io;
      asio::ip::tcp::socket s(io);
      s.connect({asio::ip::make_address_v4(host), port});
      std::string req = "*" + std::to_string(args.size()) + "\r\n";
      for (auto& a : args) req += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
      asio::write(s, asio::buffer(req));
      std::string answer;
      asio::read_until(s, asio::dynamic_buffer(answer), "\r\n");
      return answer.substr(0, answer.find("\r\n"));
    } catch (const std::exception& e) {
      return std::string("failed: ") + e.what();
    }
  }

  static DriveResult merge(std::vector<DriveResult>& parts) {
    DriveResult r;
    for (auto& x : parts) {
      if (r.clients.size() < x.clients.size()) r.clients.resize(x.clients.size());
      for (std::size_t c = 0; c < x.clients.size(); ++c) {
        auto& to = r.clients[c];
        auto& from = x.clients[c];
        to.sent = std::max(to.sent, from.sent);
        to.n202 += from.n202;
        to.sum += from.sum;
        to.failed.insert(to.failed.end(), from.failed.begin(), from.failed.end());
      }
      r.requests += x.requests, r.accepted += x.accepted, r.failed += x.failed;
      r.transport_errors += x.transport_errors, r.connects += x.connects;
      for (auto& [k, n] : x.statuses) r.statuses[k] += n;
      if (!r.t_start || (x.t_start && x.t_start < r.t_start)) r.t_start = x.t_start;
      r.t_end = std::max(r.t_end, x.t_end);
      r.request_latency.merge(x.request_latency);
      r.send_lag.merge(x.send_lag);
      r.cut = r.cut || x.cut;
    }
    return r;
  }

  // ---- churn: connect, hello, close, again ---------------------------------------------------------
  void churn() {
    params_["loops"] = o_.loops;
    params_["seconds"] = o_.seconds;
    auto rss0 = server_rss();
    WorkerPool pool(pool_spec(o_.loops));
    record_pool(pool);
    auto c0 = cpu_mark(pool);
    pool.send_all({{"cmd", "churn"}, {"seconds", o_.seconds}});
    auto showing = ticker_.show([&pool] { return "churn: " + std::to_string(pool.progress().connects) + " connects"; });
    auto events = pool.collect("churn", std::min(seconds_left(), o_.seconds + 30));
    record_cpu(c0, cpu_mark(pool));
    ticker_.set(nullptr);
    snapshot_metrics();
    if (events.size() < pool.size()) problem("a churn worker did not report");
    std::uint64_t connects = 0, errors = 0, stuck = 0;
    double elapsed = 0;
    Histogram lat;
    json::object errs, closes;
    for (auto& e : events) {
      connects += num(e, "connects");
      errors += num(e, "round_errors");
      stuck += num(e, "stuck_loops");
      elapsed = std::max(elapsed, static_cast<double>(num(e, "elapsed_us")) / 1e6);
      lat.merge(Histogram::from_json(e.at("connect_latency")));
      add_counts(errs, e.at("errors"));
      add_counts(closes, e.at("server_closes"));
    }
    if (errors) problem(std::to_string(errors) + " churn rounds failed");
    if (stuck) problem(std::to_string(stuck) + " churn loops were stuck at the end");
    figures_["connects"] = connects;
    figures_["elapsed_s"] = elapsed;
    figures_["connects_per_s"] = per_second(connects, elapsed);
    figures_["connect_latency"] = latency_json(lat);
    checks_["round_errors"] = errors;
    checks_["stuck_loops"] = stuck;
    checks_["client_errors"] = errs;
    checks_["server_closes"] = closes;
    if (have_server()) {
      std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long long>(o_.settle * 1e6)));
      auto rss1 = server_rss();
      figures_["rss_before_bytes"] = rss0;
      figures_["rss_after_bytes"] = rss1;
    }
  }

  // One line for people on stderr; the JSON line is for tools.
  void summarise(const json::object& line) {
    if (o_.quiet) return;
    auto& f = line.at("figures").get_object();
    auto d = [&](const json::object& o, const char* k) {
      if (!o.contains(k)) return std::string("-");
      char b[32];
      double v = o.at(k).to_number<double>();
      std::snprintf(b, sizeof b, std::fabs(v) >= 1000 ? "%.0f" : "%.3g", v);
      return std::string(b);
    };
    std::string text;
    if (f.contains("latency")) {
      auto& l = f.at("latency").get_object();
      text = "latency ms p50 " + d(l, "p50_ms") + " p99 " + d(l, "p99_ms") + " p99.9 " + d(l, "p999_ms") + " max " +
             d(l, "max_ms") + "; ";
    }
    auto& s = o_.scenario;
    if (s == "idle")
      text = d(f, "connections") + " connections in " + d(f, "connect_seconds") + " s; herald " +
             d(f, "bytes_per_connection") + " B/connection (RSS); kernel slab " +
             (f.contains("kernel") ? d(f.at("kernel").get_object(), "slab_bytes_per_connection_both_ends") : "-") +
             " B/connection pair";
    else if (s == "notify" || s == "batch") text = d(f, "deliveries_per_s") + " deliveries/s; " + text;
    else if (s == "burst") text = d(f, "frames_per_s") + " frames/s; " + text;
    else if (s == "replay") text = d(f, "notifications_per_s") + " notifications/s replayed; ";
    else if (s == "churn") text = d(f, "connects_per_s") + " connects/s";
    else if (s == "storm")
      text = d(f, "rehomed") + " clients re-homed and " + d(f, "pending_accepted") + " pending delivered in " +
             d(f, "storm_seconds") + " s (re-homed in " + d(f, "rehome_seconds") + " s); ";
    if (s != "idle" && s != "churn")
      text += "lost " + std::to_string(lost_) + ", duplicates " + std::to_string(duplicates_);
    text += ok_ ? " — ok" : " — FAILED";
    ticker_.note(text);
  }

  int finish() {
    ticker_.set(nullptr);
    if (!time_left()) problem("the scenario ran out of time (--timeout)");
    if (port_ && !herald_info_.contains("metrics")) snapshot_metrics();
    if (herald_) {
      // Herald drains open sessions over --drain-ms on SIGTERM; give it a moment to see the
      // workers' connections end first, so stopping does not wait for a drain of nobody.
      for (int i = 0; i < 60; ++i) {
        auto m = herald_metrics(host_, port_);
        if (!m.contains("herald_connections")) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      herald_info_["pid"] = herald_->pid();
      herald_info_["threads"] = o_.herald_threads;
      if (herald_->alive()) herald_->terminate();
      for (auto& o : others_) o->terminate();
      auto t = now_us();
      herald_info_["stop"] = herald_->stop(10);
      herald_info_["stop_seconds"] = seconds(t, now_us());
    }
    if (!others_.empty()) {
      json::array stops;
      for (auto& o : others_) o->terminate();
      for (auto& o : others_) stops.push_back(json::string(o->stop(10)));
      herald_info_["others_stop"] = std::move(stops);
    }
    if (redis_) redis_->stop(5);
    json::object line{{"scenario", o_.scenario},
                      {"at", utc_now()},
                      {"label", o_.label},
                      {"params", std::move(params_)},
                      {"figures", std::move(figures_)},
                      {"lost", lost_},
                      {"duplicates", duplicates_},
                      {"checks", std::move(checks_)},
                      {"herald", std::move(herald_info_)},
                      {"problems", std::move(problems_)},
                      {"ok", ok_}};
    summarise(line);
    auto text = to_text(line);
    std::fputs((text + "\n").c_str(), stdout);
    std::fflush(stdout);
    if (!append_line(o_.out, text)) std::fprintf(stderr, "herald-bench: cannot append to %s\n", o_.out.c_str());
    return ok_ ? 0 : 1;
  }

  Options& o_;
  Ticker ticker_;
  std::unique_ptr<HeraldProcess> herald_;            // the instance the clients connect to
  std::vector<std::unique_ptr<HeraldProcess>> others_;  // further instances (--instances)
  std::unique_ptr<HeraldProcess> redis_;             // --engine redis without --redis-url
  std::vector<pid_t> server_pids_;                   // --server-pids (with --target)
  double dead_cpu_ = 0;                              // storm: CPU of the killed instance
  std::string host_;
  unsigned short port_ = 0;
  std::string prefix_;
  std::uint64_t deadline_ = 0;
  json::object params_, figures_, checks_, herald_info_;
  json::array problems_;
  std::uint64_t lost_ = 0, duplicates_ = 0;
  bool ok_ = true;
};

}  // namespace

int run_scenario(Options& options) {
  Scenario s(options);
  return s.run();
}

}  // namespace bench
