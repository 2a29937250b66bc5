// What a TLS WebSocket session holds beyond a plain one. Only session.cpp and session_tls.cpp
// see it; a plain session carries just the empty pointer to it.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "tls/tls.hpp"
#include "ws/session.hpp"

namespace herald::ws {

struct Session::TlsLink {
  explicit TlsLink(tls::Stream&& s) : stream(std::move(s)) {}

  tls::Stream stream;  // owns the socket
  // A read is always pending on a TLS stream, so it needs a buffer of its own (the loop's shared
  // one may be written by another session's read meanwhile). Client messages are small.
  std::array<std::uint8_t, 4096> in;
  // Small frames gathered into one TLS record while a write is under way; empty when idle.
  std::string out;
};

}  // namespace herald::ws
