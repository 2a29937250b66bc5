// The bench's one clock: CLOCK_MONOTONIC in microseconds.
//
// The HTTP driver (in the controller process) stamps each notification's data with this clock and
// the workers (other processes) subtract it on receipt. CLOCK_MONOTONIC is one clock for the whole
// machine, so the difference is a true end-to-end latency across processes.
#pragma once

#include <cstdint>
#include <ctime>

namespace bench {

inline std::uint64_t now_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace bench
