#include "ws_wire.hpp"

#include <charconv>
#include <cstring>

#include "ws/handshake.hpp"  // herald_ws_codec: accept_key()

namespace bench::ws {

const char* const kClientKey = "aGVyYWxkLWJlbmNoLWtleQ==";  // base64("herald-bench-key")

std::string upgrade_request(std::string_view host_port) {
  std::string r;
  r.reserve(200);
  r += "GET /v1/ws HTTP/1.1\r\nHost: ";
  r += host_port;
  r += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ";
  r += kClientKey;
  r += "\r\n\r\n";
  return r;
}

namespace {
bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
  return true;
}
}  // namespace

bool upgrade_accepted(std::string_view head, std::string& why) {
  if (head.substr(0, 13) != "HTTP/1.1 101 ") {
    why = std::string(head.substr(0, head.find('\r')));
    return false;
  }
  static const std::string expect = herald::ws::accept_key(kClientKey);
  std::size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
    pos += 2;
    auto end = head.find("\r\n", pos);
    if (end == std::string_view::npos) break;
    auto line = head.substr(pos, end - pos);
    auto colon = line.find(':');
    if (colon != std::string_view::npos && iequal(line.substr(0, colon), "sec-websocket-accept")) {
      auto v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      if (v == expect) return true;
      why = "wrong Sec-WebSocket-Accept";
      return false;
    }
  }
  why = "no Sec-WebSocket-Accept";
  return false;
}

void append_frame(std::string& out, Opcode op, std::string_view payload, std::uint32_t mask) {
  std::size_t n = payload.size();
  out.push_back(static_cast<char>(0x80 | op));
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(static_cast<std::uint64_t>(n) >> (8 * i)));
  }
  char key[4];
  std::memcpy(key, &mask, 4);
  out.append(key, 4);
  std::size_t at = out.size();
  out.append(payload);
  for (std::size_t i = 0; i < n; ++i) out[at + i] = static_cast<char>(out[at + i] ^ key[i & 3]);
}

Parse parse_frame(std::string_view in, Frame& f, std::size_t& used, std::size_t max_payload) {
  if (in.size() < 2) return Parse::need_more;
  auto b0 = static_cast<std::uint8_t>(in[0]);
  auto b1 = static_cast<std::uint8_t>(in[1]);
  if (b0 & 0x70) return Parse::error;  // no extensions were negotiated
  if (b1 & 0x80) return Parse::error;  // a server never masks
  std::uint64_t n = b1 & 0x7F;
  std::size_t hdr = 2;
  if (n == 126) {
    if (in.size() < 4) return Parse::need_more;
    n = (static_cast<std::uint64_t>(static_cast<std::uint8_t>(in[2])) << 8) | static_cast<std::uint8_t>(in[3]);
    hdr = 4;
  } else if (n == 127) {
    if (in.size() < 10) return Parse::need_more;
    n = 0;
    for (int i = 0; i < 8; ++i) n = (n << 8) | static_cast<std::uint8_t>(in[2 + i]);
    hdr = 10;
  }
  if (n > max_payload) return Parse::error;
  if (in.size() < hdr + n) return Parse::need_more;
  f.op = static_cast<Opcode>(b0 & 0x0F);
  f.fin = (b0 & 0x80) != 0;
  f.payload = in.substr(hdr, n);
  used = hdr + n;
  return Parse::frame;
}

Kind kind_of(std::string_view msg) {
  // Herald writes "type" first; fall back to a search for other servers' key orders.
  auto at = msg.find("\"type\":\"");
  if (at == std::string_view::npos) return Kind::other;
  auto rest = msg.substr(at + 8);
  if (rest.starts_with("notification\"")) return Kind::notification;
  if (rest.starts_with("welcome\"")) return Kind::welcome;
  if (rest.starts_with("error\"")) return Kind::error;
  return Kind::other;
}

namespace {
bool number_after(std::string_view msg, std::string_view key, std::size_t from, std::uint64_t& out,
                  std::size_t& end) {
  auto at = msg.find(key, from);
  if (at == std::string_view::npos) return false;
  const char* b = msg.data() + at + key.size();
  auto r = std::from_chars(b, msg.data() + msg.size(), out);
  if (r.ec != std::errc{}) return false;
  end = static_cast<std::size_t>(r.ptr - msg.data());
  return true;
}
}  // namespace

bool parse_id(std::string_view id, std::uint64_t& ms, std::uint64_t& seq) {
  auto dash = id.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == id.size()) return false;
  auto r1 = std::from_chars(id.data(), id.data() + dash, ms);
  auto r2 = std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq);
  return r1.ec == std::errc{} && r1.ptr == id.data() + dash && r2.ec == std::errc{} &&
         r2.ptr == id.data() + id.size();
}

bool scan_notification(std::string_view msg, Notification& n) {
  auto at = msg.find("\"id\":\"");
  if (at == std::string_view::npos) return false;
  auto b = at + 6;
  auto e = msg.find('"', b);
  if (e == std::string_view::npos) return false;
  n.id = msg.substr(b, e - b);
  if (!parse_id(n.id, n.id_ms, n.id_seq)) return false;
  auto d = msg.find("\"data\":{", e);
  if (d == std::string_view::npos) return false;
  std::size_t p = d;
  if (!(number_after(msg, "\"c\":", p, n.c, p) && number_after(msg, "\"s\":", p, n.s, p) &&
        number_after(msg, "\"t\":", p, n.t, p)))
    return false;
  if (!number_after(msg, "\"w\":", p, n.w, p)) n.w = n.t;
  return true;
}

bool scan_legacy(std::string_view msg, Notification& n) {
  std::size_t p = 0;
  if (!(number_after(msg, "\"c\":", p, n.c, p) && number_after(msg, "\"s\":", p, n.s, p) &&
        number_after(msg, "\"t\":", p, n.t, p)))
    return false;
  if (!number_after(msg, "\"w\":", p, n.w, p)) n.w = n.t;
  n.id = {};
  n.id_ms = 0;
  n.id_seq = n.s;
  return true;
}

}  // namespace bench::ws
