// A bound on how often one kind of log line is written, so that a client or caller who keeps
// failing cannot flood the log. One per loop (thread_local at the call site): no locking.
#pragma once

#include <cstdint>

namespace herald {

class LogLimit {
 public:
  LogLimit(std::uint32_t per_window, std::int64_t window_ms) : per_window_(per_window), window_ms_(window_ms) {}

  // True when a line may be written at now_ms. `suppressed` is then the number of lines held back
  // since the last one written (worth saying in that line); otherwise it is left unchanged.
  bool allow(std::int64_t now_ms, std::uint64_t& suppressed) {
    if (now_ms - window_start_ms_ >= window_ms_ || now_ms < window_start_ms_) {
      window_start_ms_ = now_ms;
      used_ = 0;
    }
    if (used_ >= per_window_) {
      ++held_back_;
      return false;
    }
    ++used_;
    suppressed = held_back_;
    held_back_ = 0;
    return true;
  }

 private:
  std::uint32_t per_window_;
  std::int64_t window_ms_;
  std::int64_t window_start_ms_ = INT64_MIN / 2;
  std::uint32_t used_ = 0;
  std::uint64_t held_back_ = 0;
};

}  // namespace herald
