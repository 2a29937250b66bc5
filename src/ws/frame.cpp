// RFC 6455 frame decoding (client to server) and encoding (server to client).
//
// The decoder works on the caller's buffer: every frame that arrived whole is checked, unmasked
// in place and handed to the sink straight from that buffer. Only two things are ever copied:
// the incomplete frame at the end of a read (tail_), and the fragments of a fragmented message
// (message_). Both are freed, not merely emptied, as soon as they are done with, so the
// thousands of idle connections a gateway holds cost no heap at all.
//
// Every header is judged before its payload is waited for: a frame that breaks a rule, or that
// would push its message past the size limit, fails the connection from its header alone, so a
// peer cannot make us buffer a payload we would refuse anyway.
//
// Invariant: between calls, tail_ holds a strict prefix of one frame (never a whole frame) and
// message_ is non-empty only while message_op_ names a fragmented message in flight.
#include "ws/frame.hpp"

#include <algorithm>
#include <cstring>

namespace herald::ws {
namespace {

struct FrameHeader {
  bool fin = false;
  Opcode op = Opcode::continuation;
  std::size_t header_len = 0;     // bytes before the payload, mask key included
  std::uint64_t payload_len = 0;  // within the limits once inspect() said ready
  std::uint8_t mask[4] = {};
};

// The verdict on the first bytes of a frame.
struct Inspection {
  enum Kind { need_more, ready, bad } kind = need_more;
  std::size_t need = 0;  // need_more: the byte count worth waiting for before looking again
  std::uint16_t code = 0;
  const char* message = "";
};

// What the header checks need to know about the message in flight.
struct InFlight {
  Opcode op;          // continuation: none
  std::size_t bytes;  // already reassembled
  std::size_t max;    // the connection's limit for a whole message
};

Inspection bad(std::uint16_t code, const char* message) {
  return {Inspection::bad, 0, code, message};
}

Inspection need(std::size_t bytes) { return {Inspection::need_more, bytes, 0, ""}; }

bool is_control(Opcode op) { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }

bool known_opcode(std::uint8_t op) {
  return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

// Judges the header at p. Every rule that the first two bytes decide is applied as soon as
// those two bytes exist, so a bad frame fails without waiting for the rest of its header.
Inspection inspect(const std::uint8_t* p, std::size_t n, const InFlight& flight, FrameHeader& h) {
  if (n < 2) return need(2);
  const std::uint8_t b0 = p[0];
  const std::uint8_t b1 = p[1];
  if (b0 & 0x70) return bad(close_code::protocol_error, "reserved bits set");
  if (!known_opcode(b0 & 0x0F)) return bad(close_code::protocol_error, "unknown opcode");
  if (!(b1 & 0x80)) return bad(close_code::protocol_error, "client frame not masked");
  h.fin = (b0 & 0x80) != 0;
  h.op = static_cast<Opcode>(b0 & 0x0F);
  const std::uint8_t len7 = b1 & 0x7F;

  if (is_control(h.op)) {
    if (!h.fin) return bad(close_code::protocol_error, "fragmented control frame");
    if (len7 > 125) return bad(close_code::protocol_error, "control frame over 125 bytes");
  } else if (h.op == Opcode::continuation) {
    if (flight.op == Opcode::continuation)
      return bad(close_code::protocol_error, "continuation frame without a message");
  } else if (flight.op != Opcode::continuation) {
    return bad(close_code::protocol_error, "new message inside a fragmented one");
  }

  const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  h.header_len = 2 + ext + 4;
  if (n < h.header_len) return need(h.header_len);

  if (len7 == 126) {
    h.payload_len = std::uint64_t{p[2]} << 8 | p[3];
    if (h.payload_len < 126) return bad(close_code::protocol_error, "non-minimal 16-bit length");
  } else if (len7 == 127) {
    h.payload_len = 0;
    for (int i = 0; i < 8; ++i) h.payload_len = h.payload_len << 8 | p[2 + i];
    if (h.payload_len >> 63) return bad(close_code::protocol_error, "64-bit length top bit set");
    if (h.payload_len <= 0xFFFF) return bad(close_code::protocol_error, "non-minimal 64-bit length");
  } else {
    h.payload_len = len7;
  }
  // Control frames are bounded by the 125 above; only messages count against the limit.
  // flight.bytes <= flight.max always holds, so the subtraction cannot wrap.
  if (!is_control(h.op) && h.payload_len > flight.max - flight.bytes)
    return bad(close_code::too_big, "message exceeds the size limit");

  std::memcpy(h.mask, p + 2 + ext, 4);
  return {Inspection::ready, 0, 0, ""};
}

// XORs the payload with the repeating 4-byte key, a word at a time where it can.
void unmask(std::uint8_t* p, std::size_t n, const std::uint8_t key[4]) {
  std::uint8_t key8[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
  std::uint64_t k;
  std::memcpy(&k, key8, 8);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    w ^= k;
    std::memcpy(p + i, &w, 8);
  }
  for (; i < n; ++i) p[i] ^= key[i & 3];
}

// clear() keeps the capacity; an idle connection must keep none.
void release(HeldBytes& s) { s.release(); }

}  // namespace

bool valid_close_code_on_wire(std::uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;  // registered (3xxx) and private (4xxx) use
  if (code < 1000 || code > 1014) return false;
  // 1004 is reserved; 1005 and 1006 only describe a close locally; 1015 (TLS) is above.
  return code != 1004 && code != 1005 && code != 1006;
}

DecodeResult Decoder::fail(std::uint16_t code, const char* message) {
  failed_ = true;
  failure_ = DecodeResult{false, code, message};
  // The connection is over; nothing buffered will ever be read again.
  release(tail_);
  release(message_);
  message_op_ = Opcode::continuation;
  return failure_;
}

DecodeResult Decoder::feed(std::span<std::uint8_t> in, DecoderSink& sink) {
  if (failed_) return failure_;
  if (closed_) return {};
  std::uint8_t* p = in.data();
  std::size_t n = in.size();

  if (!tail_.empty()) {
    // Top the carried frame up with exactly the bytes it lacks, first its header, then its
    // payload, so the rest of `in` can still be decoded where it lies.
    FrameHeader h;
    for (;;) {
      const auto* t = reinterpret_cast<const std::uint8_t*>(tail_.data());
      Inspection r = inspect(t, tail_.size(), {message_op_, message_.size(), max_message_}, h);
      if (r.kind == Inspection::bad) return fail(r.code, r.message);
      const std::uint64_t want =
          r.kind == Inspection::ready ? h.header_len + h.payload_len : r.need;
      if (r.kind == Inspection::ready && tail_.size() == want) break;
      if (n == 0) return {};
      const std::size_t take =
          static_cast<std::size_t>(std::min<std::uint64_t>(want - tail_.size(), n));
      tail_.append(reinterpret_cast<const char*>(p), take);
      p += take;
      n -= take;
    }
    auto* payload = reinterpret_cast<std::uint8_t*>(tail_.data()) + h.header_len;
    const auto len = static_cast<std::size_t>(h.payload_len);
    unmask(payload, len, h.mask);
    DecodeResult r =
        deliver(h.fin, h.op, {reinterpret_cast<const char*>(payload), len}, sink);
    release(tail_);
    if (!r.ok) return r;
  }

  while (n > 0 && !closed_) {
    FrameHeader h;
    Inspection r = inspect(p, n, {message_op_, message_.size(), max_message_}, h);
    if (r.kind == Inspection::bad) return fail(r.code, r.message);
    if (r.kind == Inspection::need_more || n - h.header_len < h.payload_len) {
      // Keep only what arrived; growing with the bytes actually received means a peer that
      // announces a big frame and stalls holds no more memory than it has sent.
      tail_.assign(reinterpret_cast<const char*>(p), n);
      break;
    }
    const auto len = static_cast<std::size_t>(h.payload_len);
    std::uint8_t* payload = p + h.header_len;
    unmask(payload, len, h.mask);
    DecodeResult d = deliver(h.fin, h.op, {reinterpret_cast<const char*>(payload), len}, sink);
    if (!d.ok) return d;
    p += h.header_len + len;
    n -= h.header_len + len;
  }
  return {};
}

DecodeResult Decoder::deliver(bool fin, Opcode op, std::string_view payload,
                              DecoderSink& sink) {
  switch (op) {
    case Opcode::ping:
      sink.on_ping(payload);
      return {};
    case Opcode::pong:
      sink.on_pong(payload);
      return {};
    case Opcode::close: {
      std::uint16_t code = close_code::no_status;
      std::string_view reason;
      if (payload.size() == 1) return fail(close_code::protocol_error, "1-byte close body");
      if (payload.size() >= 2) {
        code = static_cast<std::uint16_t>(static_cast<std::uint8_t>(payload[0]) << 8 |
                                          static_cast<std::uint8_t>(payload[1]));
        if (!valid_close_code_on_wire(code))
          return fail(close_code::protocol_error, "invalid close code");
        reason = payload.substr(2);
        if (!valid_utf8(reason)) return fail(close_code::invalid_payload, "close reason not UTF-8");
      }
      // A message cut short by a close is never delivered; drop it now. The payload itself
      // may live in tail_, which feed() frees once the sink has seen it.
      closed_ = true;
      release(message_);
      message_op_ = Opcode::continuation;
      utf8_.reset();
      sink.on_close(code, reason);
      return {};
    }
    case Opcode::text:
    case Opcode::binary:
      if (fin) {
        if (op == Opcode::text && !valid_utf8(payload))
          return fail(close_code::invalid_payload, "text message not UTF-8");
        sink.on_message(op, payload);
        return {};
      }
      if (op == Opcode::text) {
        utf8_.reset();
        if (!utf8_.feed(payload)) return fail(close_code::invalid_payload, "text message not UTF-8");
      }
      message_op_ = op;
      message_.assign(payload);
      return {};
    case Opcode::continuation: {
      // Text is checked fragment by fragment so a bad byte fails the connection at once,
      // not after the peer has made us hold the rest of the message.
      if (message_op_ == Opcode::text && !utf8_.feed(payload))
        return fail(close_code::invalid_payload, "text message not UTF-8");
      message_.append(payload);
      if (!fin) return {};
      if (message_op_ == Opcode::text && !utf8_.complete())
        return fail(close_code::invalid_payload, "text message ends inside a code point");
      const Opcode done = message_op_;
      message_op_ = Opcode::continuation;
      sink.on_message(done, message_);
      release(message_);
      return {};
    }
  }
  return fail(close_code::protocol_error, "unknown opcode");  // inspect() already refused it
}

void append_frame_header(std::string& out, Opcode op, std::size_t payload_len) {
  out.push_back(static_cast<char>(0x80 | static_cast<std::uint8_t>(op)));
  if (payload_len < 126) {
    out.push_back(static_cast<char>(payload_len));
  } else if (payload_len <= 0xFFFF) {
    out.push_back(static_cast<char>(126));
    out.push_back(static_cast<char>(payload_len >> 8));
    out.push_back(static_cast<char>(payload_len & 0xFF));
  } else {
    out.push_back(static_cast<char>(127));
    const auto len = static_cast<std::uint64_t>(payload_len);
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(len >> shift));
  }
}

std::string make_frame(Opcode op, std::string_view payload) {
  std::string out;
  out.reserve(frame_header_size(payload.size()) + payload.size());
  append_frame_header(out, op, payload.size());
  out.append(payload);
  return out;
}

std::string make_close_frame(std::uint16_t code, std::string_view reason) {
  // A code that may not appear on the wire (1005 "no status" above all) becomes a close frame
  // without a body, which is what "no status" means; sending it would make the peer fail us.
  if (!valid_close_code_on_wire(code)) return make_frame(Opcode::close, {});
  // 125 bytes of control payload minus the 2-byte code. Back up to a lead byte so the cut
  // never splits a code point (the peer must reject a reason that is not UTF-8).
  constexpr std::size_t max_reason = 123;
  if (reason.size() > max_reason) {
    std::size_t cut = max_reason;
    while (cut > 0 && (static_cast<std::uint8_t>(reason[cut]) & 0xC0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  std::string payload;
  payload.reserve(2 + reason.size());
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason);
  return make_frame(Opcode::close, payload);
}

}  // namespace herald::ws
