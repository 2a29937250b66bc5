// The controller's side of the worker processes: it starts them (this same binary, with
// --worker), splits the clients between them, sends commands and gathers their events.
//
// Clients are numbered 0..N-1 across the whole pool; worker w holds a contiguous range. Source
// addresses: towards one destination a source address has ~28k ephemeral ports, and the kernel's
// search for a free one slows down long before they run out (19k connections from one source
// took 7.5 s here, from four 1 s), so above `per_source` clients the pool spreads them over
// 127.0.0.1, .2, .3, … (client i uses source i mod S).
//
// Invariant: the pool never outlives its scope: the destructor says quit, closes the pipes
// (EOF also ends a worker) and kills what is still running after a grace period.
#pragma once

#include <sys/types.h>

#include <boost/json.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bench {

struct PoolSpec {
  std::string host;
  unsigned short port = 0;
  std::vector<unsigned short> spread;  // more ports on `host`: client i connects to [port, spread...][i mod n]
  std::uint64_t clients = 0;
  std::string prefix;               // client id = prefix + index
  std::uint64_t per_worker = 19000; // clients per worker process at most
  std::uint64_t per_source = 5000;  // clients per source address at most
  unsigned workers = 0;             // 0 = as few as per_worker allows
  unsigned threads = 1;             // event loops per worker
  unsigned connect_inflight = 256;  // connects in flight per worker
  unsigned ack_every = 32;
  unsigned ack_ms = 5;
  bool legacy = false;              // legacy protocol: hello {"clientId"}, bare data frames, no acks
  unsigned deadline_s = 600;        // a worker ends itself after this long, whatever happens
};

// Sums of the workers' latest progress events.
struct PoolProgress {
  std::uint64_t opened = 0, ready = 0, failed = 0, received = 0, unique = 0, errors = 0, closed = 0, connects = 0;
  std::uint64_t first_rx = 0, last_rx = 0;
  // storm: connections lost in rehome mode, of those welcomed again elsewhere, clients welcomed
  // elsewhere at least once, when the last welcome came.
  std::uint64_t dropped = 0, moved = 0, rehomed = 0, last_rehome = 0;
  unsigned dead = 0;  // workers whose pipe ended
};

class WorkerPool {
 public:
  explicit WorkerPool(const PoolSpec& spec);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  std::size_t size() const { return workers_.size(); }
  std::uint64_t first(std::size_t w) const { return workers_[w]->first; }
  std::uint64_t count(std::size_t w) const { return workers_[w]->count; }
  std::size_t worker_of(std::uint64_t client) const;
  std::vector<std::string> sources() const { return sources_; }
  // CPU seconds the workers have used so far, together.
  double cpu_seconds() const;

  void send(std::size_t w, const boost::json::object& cmd);
  void send_all(const boost::json::object& cmd);

  PoolProgress progress();
  // Waits for one event named `ev` from every worker; missing ones (timeout, dead worker) are
  // left out, so the result may be shorter than size().
  std::vector<boost::json::object> collect(const std::string& ev, double timeout_s);

 private:
  struct Worker {
    pid_t pid = -1;
    int to = -1;    // its stdin
    int from = -1;  // its stdout
    std::uint64_t first = 0, count = 0;
    std::thread reader;
    boost::json::object last_progress;
    std::deque<boost::json::object> events;
    bool dead = false;
  };
  void read_events(Worker& w);

  PoolSpec spec_;
  std::vector<std::string> sources_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace bench
