// A worker process: holds a slice of the bench's WebSocket clients and reports to the controller.
//
// Why processes: one process may hold at most ~19,900 sockets here (the hard limit of 20,000
// open files cannot be raised), so the controller runs one worker per ~19,000 clients. Each
// worker runs one or more event loops; a client never changes loop, and everything a client
// checks (order, duplicates, which notification it got) lives inline in its own state.
//
// The conversation with the controller is JSON lines: commands on stdin, events on stdout.
//   stdin:  {"cmd":"connect"} | {"cmd":"churn","seconds":T} | {"cmd":"verify","clients":[...]}
//           | {"cmd":"rehome","targets":[[host,port],...],"jitter_ms":J}  (from now on a client
//             whose connection ends reconnects to one of the targets with last_id: storm)
//           | {"cmd":"quit"}   (EOF on stdin also quits: a worker never outlives its controller)
//   stdout: {"ev":"progress",...} every 200 ms, {"ev":"connected",...}, {"ev":"churn",...},
//           {"ev":"rehome",...}, {"ev":"verify",...}
//
// Invariant: a worker exits by itself, whatever happens: on "quit", on EOF, or when its
// deadline (SIGALRM) passes.
#pragma once

#include <boost/json/object.hpp>

namespace bench {

// Runs a worker described by `spec` (built by the controller, see worker_pool.cpp). Returns the
// process exit code.
int run_worker(const boost::json::object& spec);

}  // namespace bench
