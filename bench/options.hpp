// herald-bench's options: one struct, and one list (for_each_option) that states each option's
// name, default (the member initialiser) and meaning once; --help is made from it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

struct Options {
  std::string scenario;  // positional: idle, notify, batch, burst, replay, churn, storm

  std::string herald;                     // default: the herald built beside this binary
  std::string target;                     // host:port of a running herald (no RSS figures then)
  std::string api_target;                 // host:port for the service calls, when not the same herald
  std::string server_pids;                // with --target: pids whose RSS and CPU the bench reads
  unsigned herald_threads = 2;
  std::vector<std::string> herald_args;   // extra arguments for the herald the bench starts
  std::string out;                        // default: results.jsonl beside this binary
  std::string label;
  std::string client_prefix;              // default: bench-<random>-
  std::string engine;                     // memory or redis (default memory; storm: redis)
  unsigned instances = 0;                 // heralds to start (0 = 1; storm: 3)
  std::string redis_server = "redis-server";
  std::string redis_url;                  // an existing Redis instead of starting one

  std::uint64_t connections = 1000;
  std::uint64_t clients = 0;
  std::uint64_t count = 0;
  double rate = 0;
  unsigned batch = 0;
  std::uint64_t backlog = 1000;
  unsigned loops = 64;
  double seconds = 5;
  unsigned http_connections = 0;
  unsigned payload = 0;
  std::uint64_t pending = 2;
  unsigned reconnect_jitter_ms = 500;
  unsigned redis_pause_ms = 0;

  std::uint64_t per_worker = 19000;
  std::uint64_t per_source = 5000;
  unsigned workers = 0;
  unsigned worker_threads = 1;
  unsigned connect_inflight = 256;
  unsigned ack_every = 32;
  unsigned ack_ms = 5;
  std::string protocol = "herald";  // or "legacy": the replaced system's wire (bench/baseline/)

  double timeout = 300;
  double drain = 30;
  double settle = 1;
  bool quiet = false;
};

// Calls v(name, member, help) for every option, in the order --help shows them.
template <class Visitor>
void for_each_option(Options& o, Visitor&& v) {
  v("herald", o.herald, "herald binary to start (a fresh one per scenario, on 127.0.0.1:0); default: the one built beside herald-bench");
  v("target", o.target, "host:port of a running herald to use instead (loopback; no RSS figures)");
  v("api-target", o.api_target, "host:port of another running herald to send the service calls to (e.g. instance A while clients are on B)");
  v("server-pids", o.server_pids, "with --target: pid[,pid...] of the server processes, so idle/churn report their RSS and every scenario their CPU (e.g. the baseline)");
  v("herald-threads", o.herald_threads, "--threads for the herald the bench starts");
  v("herald-arg", o.herald_args, "extra argument for the herald the bench starts (repeatable)");
  v("out", o.out, "file the JSON line is appended to; default: results.jsonl beside herald-bench");
  v("label", o.label, "free text stored with the result");
  v("client-prefix", o.client_prefix, "client ids are this prefix + a number (default bench-<random>-)");
  v("engine", o.engine, "herald's engine for the heralds the bench starts: memory or redis (default memory; storm: redis)");
  v("instances", o.instances, "heralds to start (default 1; storm 3). With 2 or more (redis engine) the clients connect to the last one and the service calls go to the first; storm: clients on the first, which is killed");
  v("redis-server", o.redis_server, "redis-server binary the bench starts for --engine redis (a fresh one per scenario, on a free loopback port)");
  v("redis-url", o.redis_url, "use this Redis (loopback) instead of starting one");
  v("connections", o.connections, "idle: connections to open and hold");
  v("clients", o.clients, "notify/batch/burst/replay/storm: connected clients (default 100; burst 10000; storm 15000)");
  v("count", o.count, "notifications to send (default notify 50000, batch 500000, burst 20 per client)");
  v("rate", o.rate, "notifications per second offered; 0 = flat out");
  v("batch", o.batch, "notifications per batch request (default batch 100, burst min(clients, 1000), replay 100)");
  v("backlog", o.backlog, "replay: notifications stored per client before it connects");
  v("loops", o.loops, "churn: concurrent connect-hello-close loops");
  v("seconds", o.seconds, "churn: how long to run");
  v("http-connections", o.http_connections, "keep-alive connections of the service driver, one request in flight on each (0 = notify 32, batch and replay 16, burst 8)");
  v("payload", o.payload, "extra bytes of padding in each notification's data");
  v("pending", o.pending, "storm: notifications per client posted through the surviving instances right after the kill");
  v("redis-pause-ms", o.redis_pause_ms, "storm: 1 s after the kill, stall Redis this long (DEBUG SLEEP; CLIENT PAUSE ... ALL with --redis-url): a Redis hiccup in the middle of the storm (0 = none)");
  v("reconnect-jitter-ms", o.reconnect_jitter_ms, "storm: a client that lost its server reconnects after a random delay up to this (then backs off to 2 s while it fails), resuming with last_id");
  v("per-worker", o.per_worker, "clients per worker process at most (the file limit here is 20000 per process)");
  v("per-source", o.per_source, "clients per source address at most (127.0.0.1, .2, .3, ... beyond; the kernel's port search slows as one source's ~28k ports fill)");
  v("workers", o.workers, "worker processes (0 = as few as --per-worker allows)");
  v("worker-threads", o.worker_threads, "event loops per worker");
  v("connect-inflight", o.connect_inflight, "connects in flight per worker while opening");
  v("ack-every", o.ack_every, "a client acks after this many notifications ...");
  v("ack-ms", o.ack_ms, "... or after this many ms, whichever comes first");
  v("protocol", o.protocol, "herald, or legacy: hello {\"clientId\"}, bare data frames, no acks, POST /notify (notify/idle/churn; for bench/baseline/ and herald's legacy mode)");
  v("timeout", o.timeout, "seconds a scenario may take before it gives up (everything is bounded)");
  v("drain", o.drain, "seconds to wait for deliveries after the last answer");
  v("settle", o.settle, "idle/churn: seconds to wait before reading RSS");
}

// Parses argv; false after printing help or an error (exit_code says how to exit).
bool parse_options(int argc, char** argv, Options& out, int& exit_code);

}  // namespace bench
