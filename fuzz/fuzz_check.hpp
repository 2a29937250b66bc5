// FUZZ_CHECK(cond): an invariant of a fuzz target. When it does not hold, the target says which
// (file and line) and aborts, so that libFuzzer keeps the input as a crash.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

// Cuts a byte stream into pieces of 1..max_piece bytes (max_piece 0: one piece), the sizes drawn
// from a small xorshift seeded by the input, so a run is reproducible from its input alone.
class PieceSizer {
 public:
  PieceSizer(std::uint8_t seed, std::size_t max_piece)
      : rng_(0x9E3779B9u ^ (seed * 0x01010101u)), max_piece_(max_piece) {}
  // The next piece's size, when `left` bytes remain.
  std::size_t next(std::size_t left) {
    if (max_piece_ == 0) return left;
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 17;
    rng_ ^= rng_ << 5;
    return std::min<std::size_t>(left, 1 + rng_ % max_piece_);
  }

 private:
  std::uint32_t rng_;
  std::size_t max_piece_;
};
