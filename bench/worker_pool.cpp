#include "worker_pool.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "clock.hpp"
#include "herald_process.hpp"

extern char** environ;

namespace bench {

namespace json = boost::json;

WorkerPool::WorkerPool(const PoolSpec& spec) : spec_(spec) {
  std::uint64_t n = spec.clients;
  unsigned w = spec.workers;
  if (!w) w = static_cast<unsigned>(std::max<std::uint64_t>(1, (n + spec.per_worker - 1) / spec.per_worker));
  if (n && w > n) w = static_cast<unsigned>(n);
  if (!w) w = 1;
  std::uint64_t sources = std::max<std::uint64_t>(1, (n + spec.per_source - 1) / spec.per_source);
  for (std::uint64_t s = 0; s < sources && s < 250; ++s) sources_.push_back("127.0.0." + std::to_string(1 + s));

  std::uint64_t at = 0;
  for (unsigned i = 0; i < w; ++i) {
    auto wk = std::make_unique<Worker>();
    wk->first = at;
    wk->count = n / w + (i < n % w ? 1 : 0);
    at += wk->count;

    json::array src;
    for (auto& s : sources_) src.push_back(json::string(s));
    json::array spread;
    for (auto p : spec.spread) spread.push_back(json::array{json::string(spec.host), p});
    json::object js{{"host", spec.host},
                    {"port", spec.port},
                    {"first", wk->first},
                    {"count", wk->count},
                    {"prefix", spec.prefix},
                    {"sources", std::move(src)},
                    {"threads", spec.threads},
                    {"connect_inflight", spec.connect_inflight},
                    {"ack_every", spec.ack_every},
                    {"ack_ms", spec.ack_ms},
                    {"legacy", spec.legacy},
                    {"deadline_s", spec.deadline_s},
                    {"spread", std::move(spread)}};
    auto spec_text = json::serialize(js);

    int in_pipe[2], out_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC)) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    std::string self = "/proc/self/exe";
    std::string flag = "--worker";
    char* argv[] = {self.data(), flag.data(), spec_text.data(), nullptr};
    int rc = posix_spawn(&wk->pid, "/proc/self/exe", &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in_pipe[0]);
    close(out_pipe[1]);
    if (rc) throw std::runtime_error(std::string("cannot start a worker: ") + std::strerror(rc));
    wk->to = in_pipe[1];
    wk->from = out_pipe[0];
    workers_.push_back(std::move(wk));
  }
  for (auto& wk : workers_) wk->reader = std::thread([this, p = wk.get()] { read_events(*p); });
}

WorkerPool::~WorkerPool() {
  for (auto& w : workers_) {
    static const char quit[] = "{\"cmd\":\"quit\"}\n";
    [[maybe_unused]] auto r = write(w->to, quit, sizeof quit - 1);
    close(w->to);
  }
  auto deadline = now_us() + 5'000'000;
  for (auto& w : workers_) {
    int status = 0;
    while (waitpid(w->pid, &status, WNOHANG) == 0) {
      if (now_us() > deadline) {
        kill(w->pid, SIGKILL);
        waitpid(w->pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  for (auto& w : workers_) {
    if (w->reader.joinable()) w->reader.join();
  }
}

double WorkerPool::cpu_seconds() const {
  double s = 0;
  for (auto& w : workers_) s += bench::cpu_seconds(w->pid);
  return s;
}

std::size_t WorkerPool::worker_of(std::uint64_t client) const {
  for (std::size_t i = 0; i < workers_.size(); ++i)
    if (client < workers_[i]->first + workers_[i]->count) return i;
  return workers_.size() - 1;
}

void WorkerPool::read_events(Worker& w) {
  FILE* f = fdopen(w.from, "r");  // fclose closes the pipe
  char* line = nullptr;
  std::size_t cap = 0;
  while (f && getline(&line, &cap, f) > 0) {
    json::value v;
    try {
      v = json::parse(line);
    } catch (...) {
      continue;
    }
    if (!v.is_object()) continue;
    auto& o = v.get_object();
    std::lock_guard lock(mu_);
    if (o.contains("ev") && o.at("ev") == "progress") {
      w.last_progress = std::move(o);
    } else {
      w.events.push_back(std::move(o));
    }
    cv_.notify_all();
  }
  std::free(line);
  if (f) std::fclose(f);
  std::lock_guard lock(mu_);
  w.dead = true;
  cv_.notify_all();
}

void WorkerPool::send(std::size_t w, const json::object& cmd) {
  auto s = json::serialize(cmd);
  s += '\n';
  const char* p = s.data();
  std::size_t left = s.size();
  while (left) {
    auto n = write(workers_[w]->to, p, left);
    if (n <= 0) return;  // a dead worker shows up as missing events
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void WorkerPool::send_all(const json::object& cmd) {
  for (std::size_t i = 0; i < workers_.size(); ++i) send(i, cmd);
}

PoolProgress WorkerPool::progress() {
  PoolProgress p;
  std::lock_guard lock(mu_);
  for (auto& w : workers_) {
    if (w->dead) ++p.dead;
    auto& o = w->last_progress;
    auto get = [&](const char* k) { return o.contains(k) ? o.at(k).to_number<std::uint64_t>() : 0; };
    p.opened += get("opened");
    p.ready += get("ready");
    p.failed += get("failed");
    p.received += get("received");
    p.unique += get("unique");
    p.errors += get("errors");
    p.closed += get("closed");
    p.connects += get("connects");
    auto fr = get("first_rx");
    if (fr && (!p.first_rx || fr < p.first_rx)) p.first_rx = fr;
    p.last_rx = std::max(p.last_rx, get("last_rx"));
    p.dropped += get("dropped");
    p.moved += get("moved");
    p.rehomed += get("rehomed");
    p.last_rehome = std::max(p.last_rehome, get("last_rehome"));
  }
  return p;
}

std::vector<json::object> WorkerPool::collect(const std::string& ev, double timeout_s) {
  std::vector<json::object> out(workers_.size());
  std::vector<bool> got(workers_.size(), false);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(static_cast<long long>(timeout_s * 1e6));
  std::unique_lock lock(mu_);
  for (;;) {
    std::size_t pending = 0;
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      if (got[i]) continue;
      auto& q = workers_[i]->events;
      for (auto it = q.begin(); it != q.end(); ++it)
        if (it->contains("ev") && it->at("ev") == ev.c_str()) {
          out[i] = std::move(*it);
          q.erase(it);
          got[i] = true;
          break;
        }
      if (!got[i] && !workers_[i]->dead) ++pending;
    }
    if (!pending) break;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) break;
  }
  std::vector<json::object> r;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (got[i]) r.push_back(std::move(out[i]));
  return r;
}

}  // namespace bench
