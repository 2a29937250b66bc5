// A redis-server of a test's own: started on a free loopback port, stopped with the test. Shared
// by the Redis client tests and the engine conformance suite.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace herald::testing {

// HERALD_REDIS_SERVER, else Debian's path; empty when not installed.
inline std::string redis_server_path() {
  const char* env = std::getenv("HERALD_REDIS_SERVER");
  std::string path = env && *env ? env : "/usr/bin/redis-server";
  return ::access(path.c_str(), X_OK) == 0 ? path : std::string();
}

// A port nobody listens on right now: bind to port 0, read what the kernel chose, close.
inline std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Sends one raw RESP command and returns the first reply line ("" when nothing answered).
inline std::string raw_command(std::uint16_t port, const std::string& resp) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{0, 500 * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  std::string line;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(resp.size())) {
    char c = 0;
    while (::recv(fd, &c, 1, 0) == 1 && c != '\n') line += c;
  }
  ::close(fd);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

class RedisServer {
 public:
  explicit RedisServer(std::vector<std::string> extra = {}) : port_(free_port()), extra_(std::move(extra)) {}
  ~RedisServer() { kill(); }
  RedisServer(const RedisServer&) = delete;

  std::uint16_t port() const { return port_; }

  // Starts redis-server on port() (the same port again after kill()) and waits until it answers
  // a PING (with a status or an error line: a server that wants AUTH answers too).
  bool start() {
    using namespace std::chrono_literals;
    if (port_ == 0) return false;
    std::vector<std::string> args = {redis_server_path(), "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--daemonize", "no"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      return false;
    }
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto line = raw_command(port_, "PING\r\n");
      if (!line.empty() && (line[0] == '+' || line[0] == '-')) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited (port taken?)
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(5ms);  // polling an external process, not synchronisation
    }
    return false;
  }

  bool flushall() { return raw_command(port_, "*1\r\n$8\r\nFLUSHALL\r\n") == "+OK"; }

  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  void pause() { ::kill(pid_, SIGSTOP); }  // a silent server: TCP stays up, nothing answers
  void resume() { ::kill(pid_, SIGCONT); }

 private:
  std::uint16_t port_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
};

}  // namespace herald::testing
