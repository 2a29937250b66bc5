// The herald under test, started and stopped by the bench, and what the bench reads about it
// and about the kernel from /proc.
//
// Each scenario gets a fresh herald on 127.0.0.1:0: the bench reads the port from the
// "listening on" line of its log, so parallel runs never fight over a port. Herald's stdout
// (status events, one JSON line each) goes to /dev/null: churn would otherwise spend the disk.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bench {

class HeraldProcess {
 public:
  // Starts `path args...`, stderr to `log_path`; waits up to `timeout_s` for "listening on".
  // Throws std::runtime_error (with the log's tail) when it does not come up.
  static std::unique_ptr<HeraldProcess> start(const std::string& path, const std::vector<std::string>& args,
                                              const std::string& log_path, double timeout_s);
  // Starts `redis-server` (a path, or a name looked up in PATH) on a free loopback port, without
  // persistence, log to `log_path`; waits up to `timeout_s` until it accepts connections.
  static std::unique_ptr<HeraldProcess> start_redis(const std::string& path, const std::string& log_path,
                                                    double timeout_s);
  ~HeraldProcess();

  pid_t pid() const { return pid_; }
  unsigned short port() const { return port_; }
  bool alive();
  // VmRSS from /proc/<pid>/status, in bytes (0 if unreadable).
  std::uint64_t rss_bytes() const;
  // SIGTERM, wait up to `grace_s`, then SIGKILL. Returns the exit status text.
  std::string stop(double grace_s = 5);
  // SIGTERM without waiting (stop() then waits): lets several instances drain at once.
  void terminate();
  // SIGKILL now (a crash, for the storm scenario), and reap.
  void kill_now();

 private:
  HeraldProcess() = default;
  pid_t pid_ = -1;
  unsigned short port_ = 0;
  std::string log_path_;
  bool reaped_ = false;
  bool term_sent_ = false;  // a second SIGTERM makes herald exit at once: send one
};

// The kernel's side of memory, machine wide: slab (socket structures live there) and the pages
// TCP holds for socket buffers.
struct KernelMemory {
  std::uint64_t slab_bytes = 0;       // /proc/meminfo Slab
  std::uint64_t sunreclaim_bytes = 0; // /proc/meminfo SUnreclaim
  std::uint64_t tcp_mem_bytes = 0;    // /proc/net/sockstat TCP mem (pages) * page size
  std::uint64_t sockets_used = 0;     // /proc/net/sockstat sockets: used
  std::uint64_t tcp_inuse = 0;        // /proc/net/sockstat TCP inuse
  static KernelMemory read();
};

// VmRSS of any process, in bytes (0 if unreadable).
std::uint64_t rss_bytes_of(pid_t pid);

// CPU time (user + system) a process has used so far, in seconds; 0 if unreadable.
double cpu_seconds(pid_t pid);

// SIGKILLs every process (herald, redis-server) this process started and has not stopped yet
// (for the watchdog's last resort).
void kill_started_herald();

// "host:port" -> parts; false when malformed.
bool split_host_port(const std::string& hp, std::string& host, unsigned short& port);

}  // namespace bench
