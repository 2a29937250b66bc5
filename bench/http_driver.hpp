// The service side of the bench: drives Herald's notify API over keep-alive HTTP/1.1
// connections, at a fixed rate or flat out, one notification per request or a batch per request,
// and keeps a ledger of every answer.
//
// Notification k (0 ≤ k < total) goes to client k % clients with seq k / clients, so each client's
// seqs count 0, 1, 2, … and a batch of consecutive k reaches distinct clients. Its data is
// {"c":client,"s":seq,"t":stamp}: the stamp (CLOCK_MONOTONIC µs) is the moment the request was
// written — or, at a fixed rate, the moment it was *due*, so a server that falls behind shows
// the delay in latency instead of hiding it (no coordinated omission).
//
// Invariant: every seq issued for a client ends in the ledger either as a 202 (counted, and its id
// folded into the client's sum, see checks.hpp) or in the client's `failed` list.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "histogram.hpp"

namespace bench {

struct DriveSpec {
  std::string host;
  unsigned short port = 0;
  std::string prefix;          // client id = prefix + index
  std::uint64_t clients = 1;   // notifications go to clients 0..clients-1
  std::uint64_t total = 0;     // notifications to send
  std::uint64_t first = 0;     // the first k: a later phase continues the seqs of an earlier one
  unsigned batch = 0;          // 0: POST /v1/notifications; N: POST /v1/notifications/batch, N per request
  double rate = 0;             // notifications per second; 0 = flat out
  unsigned connections = 32;   // keep-alive connections, one request in flight on each
  unsigned payload = 0;        // extra bytes of padding in each notification's data
  double deadline_s = 120;     // requests still unanswered then count as failed
  bool legacy = false;         // POST /notify {"clientId","data"}, 202 without an id (single only)
};

struct Ledger {
  std::uint64_t sent = 0;  // seqs 0..sent-1 were issued
  std::uint64_t n202 = 0;
  std::uint64_t sum = 0;   // Σ delivery_hash(seq, id) over the 202 answers
  std::vector<std::uint64_t> failed;
};

struct DriveResult {
  std::vector<Ledger> clients;
  std::uint64_t requests = 0, accepted = 0, failed = 0, transport_errors = 0, connects = 0;
  std::map<std::string, std::uint64_t> statuses;  // HTTP status (or item status) -> count, non-202 only
  std::uint64_t t_start = 0, t_end = 0;           // first request written, last answer read
  Histogram request_latency;                      // request written -> answer read, µs
  Histogram send_lag;                             // at a fixed rate: written - due, µs (the bench's own lateness)
  bool cut = false;                               // the deadline stopped the run
};

// Progress counters another thread may read while drive() runs.
struct DriveProgress {
  std::atomic<std::uint64_t> issued{0}, answered{0}, accepted{0};
};

// Runs the whole drive on the calling thread and returns when every issued request is answered
// or the deadline passes.
DriveResult drive(const DriveSpec& spec, DriveProgress& progress);

}  // namespace bench
