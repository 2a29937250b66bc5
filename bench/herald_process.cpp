#include "herald_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "clock.hpp"

extern char** environ;

namespace bench {

namespace {
// The processes started and not yet stopped, for the watchdog (no locks: it may run at any time).
constexpr int kTracked = 16;
std::atomic<pid_t> g_running[kTracked];

void track(pid_t pid) {
  for (auto& slot : g_running) {
    pid_t none = 0;
    if (slot.compare_exchange_strong(none, pid)) return;
  }
}
void untrack(pid_t pid) {
  for (auto& slot : g_running) {
    pid_t p = pid;
    if (slot.compare_exchange_strong(p, 0)) return;
  }
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string tail_of(const std::string& text, std::size_t n) {
  return text.size() <= n ? text : text.substr(text.size() - n);
}

// The number after `key` in a /proc text, or 0.
std::uint64_t field(const std::string& text, const std::string& key) {
  auto at = text.find(key);
  if (at == std::string::npos) return 0;
  return std::strtoull(text.c_str() + at + key.size(), nullptr, 10);
}
}  // namespace

bool split_host_port(const std::string& hp, std::string& host, unsigned short& port) {
  auto colon = hp.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = hp.substr(0, colon);
  auto p = std::strtoul(hp.c_str() + colon + 1, nullptr, 10);
  if (p == 0 || p > 65535) return false;
  port = static_cast<unsigned short>(p);
  return true;
}

std::unique_ptr<HeraldProcess> HeraldProcess::start(const std::string& path, const std::vector<std::string>& args,
                                                    const std::string& log_path, double timeout_s) {
  std::vector<std::string> argv_s{path};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  // The load comes from few addresses and reuses client ids: herald's abuse limits are off unless asked for.
  for (const char* f : {"--max-connections-per-ip", "--connect-rate-per-ip", "--hello-rate"})
    if (std::find(args.begin(), args.end(), f) == args.end()) argv_s.insert(argv_s.end(), {f, "0"});
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot start " + path + ": " + std::strerror(rc));

  std::unique_ptr<HeraldProcess> h(new HeraldProcess);
  h->pid_ = pid;
  h->log_path_ = log_path;
  track(pid);
  static const std::regex listening(R"(listening on [0-9.]+:([0-9]+))");
  auto deadline = now_us() + static_cast<std::uint64_t>(timeout_s * 1e6);
  while (now_us() < deadline) {
    auto log = read_file(log_path);
    std::smatch m;
    if (std::regex_search(log, m, listening)) {
      h->port_ = static_cast<unsigned short>(std::stoul(m[1]));
      return h;
    }
    if (!h->alive()) throw std::runtime_error("herald exited at start-up:\n" + tail_of(log, 2000));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto log = read_file(log_path);
  h->stop(1);
  throw std::runtime_error("herald did not print 'listening on' in time:\n" + tail_of(log, 2000));
}

HeraldProcess::~HeraldProcess() {
  if (!reaped_) stop(2);
}

bool HeraldProcess::alive() {
  if (reaped_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
}

std::uint64_t HeraldProcess::rss_bytes() const { return rss_bytes_of(pid_); }

std::uint64_t rss_bytes_of(pid_t pid) {
  return field(read_file("/proc/" + std::to_string(pid) + "/status"), "VmRSS:") * 1024;
}

double cpu_seconds(pid_t pid) {
  auto text = read_file("/proc/" + std::to_string(pid) + "/stat");
  // Fields after the command name (which may hold spaces, so start after its closing paren):
  // state is field 3; utime and stime are fields 14 and 15.
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(text.substr(close + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int field = 3; field <= 15 && in >> f; ++field) {
    if (field == 14) utime = std::stoull(f);
    if (field == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void kill_started_herald() {
  for (auto& slot : g_running) {
    auto pid = slot.exchange(0);
    if (pid > 0) kill(pid, SIGKILL);
  }
}

std::unique_ptr<HeraldProcess> HeraldProcess::start_redis(const std::string& path, const std::string& log_path,
                                                          double timeout_s) {
  // A free port: bind :0, read it, close. Another process could take it in between; on this
  // machine's loopback that is rare, and start-up then fails with redis' own message.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len)) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot find a free port for redis-server");
  }
  unsigned short port = ntohs(a.sin_port);
  ::close(fd);
  std::vector<std::string> argv_s{path, "--bind", "127.0.0.1", "--port", std::to_string(port), "--save", "",
                                  "--appendonly", "no", "--daemonize", "no", "--logfile", "",
                                  "--enable-debug-command", "local"};
  std::vector<char*> argv;
  for (auto& x : argv_s) argv.push_back(x.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, path.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot start " + path + ": " + std::strerror(rc));
  std::unique_ptr<HeraldProcess> h(new HeraldProcess);
  h->pid_ = pid;
  h->port_ = port;
  h->log_path_ = log_path;
  track(pid);
  auto deadline = now_us() + static_cast<std::uint64_t>(timeout_s * 1e6);
  while (now_us() < deadline) {
    if (read_file(log_path).find("Ready to accept connections") != std::string::npos) return h;
    if (!h->alive()) throw std::runtime_error("redis-server exited at start-up:\n" + tail_of(read_file(log_path), 2000));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  h->stop(1);
  throw std::runtime_error("redis-server did not become ready in time:\n" + tail_of(read_file(log_path), 2000));
}

void HeraldProcess::terminate() {
  if (!reaped_ && !term_sent_) kill(pid_, SIGTERM);
  term_sent_ = true;
}

void HeraldProcess::kill_now() {
  if (reaped_) return;
  untrack(pid_);
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  reaped_ = true;
}

std::string HeraldProcess::stop(double grace_s) {
  if (reaped_) return "already exited";
  untrack(pid_);
  terminate();
  auto deadline = now_us() + static_cast<std::uint64_t>(grace_s * 1e6);
  int status = 0;
  while (now_us() < deadline) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
      return "signal " + std::to_string(WTERMSIG(status));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  reaped_ = true;
  return "killed after " + std::to_string(grace_s) + " s";
}

KernelMemory KernelMemory::read() {
  KernelMemory k;
  auto mi = read_file("/proc/meminfo");
  k.slab_bytes = field(mi, "\nSlab:") * 1024;
  k.sunreclaim_bytes = field(mi, "\nSUnreclaim:") * 1024;
  auto ss = read_file("/proc/net/sockstat");
  k.sockets_used = field(ss, "sockets: used ");
  k.tcp_inuse = field(ss, "TCP: inuse ");
  auto tcp = ss.find("TCP:");
  if (tcp != std::string::npos) {
    auto line = ss.substr(tcp, ss.find('\n', tcp) - tcp);
    k.tcp_mem_bytes = field(line, " mem ") * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  }
  return k;
}

}  // namespace bench
