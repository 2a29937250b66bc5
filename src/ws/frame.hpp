// Herald's own RFC 6455 framing, server side.
//
// Why our own: pushing small frames to many idle sockets is Herald's hot path. A connection that
// is idle must hold no buffer at all, so the decoder reads from a per-thread buffer that the
// session fills, keeps only the tail of a frame that has not fully arrived, and reassembles
// fragments only while a fragmented message is in flight. Server frames are never masked, so
// one encoded frame can be shared by every connection it goes to.
//
// Invariant: the decoder never hands out a message that violates RFC 6455 (masking, control
// frame rules, fragmentation order, UTF-8 of text and close reasons, size limit); the first
// violation yields a CloseCode and the decoder stays failed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ws/utf8.hpp"

namespace herald::ws {

enum class Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// Close codes Herald sends or checks (RFC 6455 §7.4 and DESIGN §2).
namespace close_code {
constexpr std::uint16_t normal = 1000;
constexpr std::uint16_t going_away = 1001;
constexpr std::uint16_t protocol_error = 1002;
constexpr std::uint16_t unsupported_data = 1003;
constexpr std::uint16_t no_status = 1005;  // never on the wire
constexpr std::uint16_t abnormal = 1006;   // never on the wire
constexpr std::uint16_t invalid_payload = 1007;
constexpr std::uint16_t policy = 1008;
constexpr std::uint16_t too_big = 1009;
constexpr std::uint16_t internal_error = 1011;
constexpr std::uint16_t service_restart = 1012;
constexpr std::uint16_t try_again_later = 1013;
constexpr std::uint16_t disconnected_by_service = 4000;
constexpr std::uint16_t taken_over = 4001;
constexpr std::uint16_t disconnected_no_reconnect = 4003;
}  // namespace close_code

// True for a code a peer may legally put in a close frame (RFC 6455 §7.4.1, §7.4.2).
bool valid_close_code_on_wire(std::uint16_t code);

// What the decoder hands to its owner.
class DecoderSink {
 public:
  virtual ~DecoderSink() = default;
  // A complete text or binary message (fragments already joined, text already UTF-8 checked).
  virtual void on_message(Opcode op, std::string_view payload) = 0;
  virtual void on_ping(std::string_view payload) = 0;
  virtual void on_pong(std::string_view payload) = 0;
  // code is close_code::no_status when the close frame had no body.
  virtual void on_close(std::uint16_t code, std::string_view reason) = 0;
};

struct DecodeResult {
  bool ok = true;
  std::uint16_t close_code = 0;  // set when !ok: 1002, 1007 or 1009
  const char* message = "";      // static text saying what was wrong
};

// Bytes the decoder holds between reads: one pointer while there are none (a std::string is 32
// bytes even empty, and an idle connection's decoder holds nothing).
class HeldBytes {
 public:
  bool empty() const { return !s_ || s_->empty(); }
  std::size_t size() const { return s_ ? s_->size() : 0; }
  char* data() { return s_->data(); }
  void assign(const char* p, std::size_t n) { get().assign(p, n); }
  void assign(std::string_view v) { get().assign(v); }
  void append(const char* p, std::size_t n) { get().append(p, n); }
  void append(std::string_view v) { get().append(v); }
  void release() { s_.reset(); }
  operator std::string_view() const { return s_ ? std::string_view(*s_) : std::string_view(); }

 private:
  std::string& get() {
    if (!s_) s_ = std::make_unique<std::string>();
    return *s_;
  }
  std::unique_ptr<std::string> s_;
};

class Decoder {
 public:
  explicit Decoder(std::size_t max_message_bytes) : max_message_(max_message_bytes) {}

  // Decodes every complete frame in `in`, calling the sink for each, and keeps an incomplete
  // tail for the next call. `in` is modified (payloads are unmasked in place). Once a call
  // returns !ok, the decoder is failed and every later call returns the same result.
  // The sink may not destroy the decoder during the call; after on_close no more frames are
  // decoded from this call (the rest is ignored).
  DecodeResult feed(std::span<std::uint8_t> in, DecoderSink& sink);

  // Bytes held between calls (an incomplete frame, a message being reassembled).
  std::size_t buffered_bytes() const { return tail_.size() + message_.size(); }

 private:
  DecodeResult fail(std::uint16_t code, const char* message);
  // Acts on one complete, already unmasked frame whose header passed every check.
  DecodeResult deliver(bool fin, Opcode op, std::string_view payload, DecoderSink& sink);

  HeldBytes tail_;     // incomplete frame carried over; empty (no allocation) while idle
  HeldBytes message_;  // fragments of a message in flight; empty while idle
  Utf8Validator utf8_;   // incremental check of the text message in flight
  std::size_t max_message_;
  Opcode message_op_ = Opcode::continuation;  // continuation = no message in flight
  bool failed_ = false;
  bool closed_ = false;
  DecodeResult failure_;
};

// Appends the header of an unmasked server frame (FIN set) carrying `payload_len` bytes.
void append_frame_header(std::string& out, Opcode op, std::size_t payload_len);

// A whole unmasked server frame.
std::string make_frame(Opcode op, std::string_view payload);

// A close frame; `reason` is cut to fit the 125-byte control frame limit at a UTF-8 boundary.
std::string make_close_frame(std::uint16_t code, std::string_view reason);

// Size of the header append_frame_header writes for this payload length.
constexpr std::size_t frame_header_size(std::size_t payload_len) {
  return payload_len < 126 ? 2 : payload_len <= 0xFFFF ? 4 : 10;
}

}  // namespace herald::ws
