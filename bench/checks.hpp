// The end-to-end check, shared by the controller (which records every 202) and the workers
// (which record every delivery).
//
// Every notification the bench sends carries {"c":client,"s":seq,"t":send_us} in its data; seq
// counts from 0 per client. The controller keeps, per client, how many seqs it sent, which of them
// were answered 202, and a sum of delivery_hash(seq, id) over the 202 answers. A worker keeps, per
// client, a bitmap of the seqs it received and the same sum over what it received. Then:
//   lost        = seqs answered 202 and never received;
//   duplicates  = deliveries of a seq already received;
//   out_of_order= a new seq arriving with an id not above the newest id already received;
//   id_mismatch = clients whose sums differ although nothing was lost (a 202 id that is not the
//                 id delivered for that seq);
//   misrouted   = notifications that reached a client other than the one they were sent to.
// So "every 202 arrives, in order per client, with the id it was answered with" is checked exactly,
// and the only state that crosses the pipe per client is a handful of numbers.
#pragma once

#include <cstdint>

namespace bench {

inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline std::uint64_t delivery_hash(std::uint64_t seq, std::uint64_t id_ms, std::uint64_t id_seq) {
  return mix64(seq ^ mix64(id_ms ^ mix64(id_seq)));
}

}  // namespace bench
