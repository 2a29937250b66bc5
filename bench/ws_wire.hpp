// The client side of RFC 6455 as the bench speaks it: the upgrade request, masked frames out,
// unmasked frames in, and a fast scan of Herald's notification envelope.
//
// Herald's own codec (src/ws/frame.*) is server side: it writes unmasked frames and insists on
// masked ones. A client must do the opposite, so the bench has its own small writer and reader.
// The reader never copies a complete frame: it hands out views into the caller's buffer and keeps
// only an incomplete tail (which the caller puts in front of the next read).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace bench::ws {

enum Opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

// "GET /v1/ws HTTP/1.1 ..." with a fixed Sec-WebSocket-Key (the bench checks the accept value).
std::string upgrade_request(std::string_view host_port);
extern const char* const kClientKey;

// Looks at an HTTP response head (up to and including the blank line): true for a 101 with the
// right Sec-WebSocket-Accept. `why` says what was wrong otherwise.
bool upgrade_accepted(std::string_view head, std::string& why);

// Appends one masked frame (FIN set) to `out`.
void append_frame(std::string& out, Opcode op, std::string_view payload, std::uint32_t mask);

// One frame out of a byte stream.
struct Frame {
  Opcode op;
  bool fin;
  std::string_view payload;
};

enum class Parse { frame, need_more, error };

// Parses the frame at the front of `in`. On `frame`, `used` is its size on the wire.
Parse parse_frame(std::string_view in, Frame& f, std::size_t& used, std::size_t max_payload);

// A notification envelope, as the bench needs it. `c`, `s` and `t` come from the bench's own
// data object {"c":client,"s":seq,"t":send_us}.
struct Notification;
// Legacy protocol: the frame is the bench's bare data {"c","s","t"}; no id (id_seq = s, so order is by seq).
bool scan_legacy(std::string_view msg, Notification& n);

struct Notification {
  std::uint64_t id_ms = 0, id_seq = 0;
  std::string_view id;  // the id text, for the ack
  std::uint64_t c = 0, s = 0, t = 0;
  std::uint64_t w = 0;  // when the request was written ("w", at a fixed rate; else = t)
};

// Kind of a server text message, from a cheap look at its "type".
enum class Kind { notification, welcome, error, other };
Kind kind_of(std::string_view msg);

// Fast scan of a notification; false when the text is not the shape the bench sent.
bool scan_notification(std::string_view msg, Notification& n);

// Parses "<ms>-<seq>".
bool parse_id(std::string_view id, std::uint64_t& ms, std::uint64_t& seq);

}  // namespace bench::ws
