// libFuzzer target for the frame decoder: arbitrary client bytes, arriving in arbitrary pieces.
//
// Input layout: byte 0 picks the largest piece size, byte 1 seeds the generator that picks each
// piece's size, byte 2 picks the message size limit (small ones too, so that both sides of the
// limit fit in an input), and the rest is the byte stream a client sends. The stream goes to two
// decoders, one in a single call and one piece by piece, which must agree exactly: chunking is
// the transport's business and must never change what the decoder reports.
//
// Invariant checked on every input: nothing the sink receives breaks RFC 6455 (text and close
// reasons are UTF-8 per an independent reference decoder, messages within the limit, control
// payloads within 125 bytes, close codes legal, nothing after close or failure), and the
// decoder's own promises hold (failure is final, nothing is buffered after close or failure,
// buffering is bounded by the limit).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ws/frame.hpp"
#include "ws/utf8.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace herald::ws;

// Message size limits to decode under; 4096 is the common case, the others put the limit's
// edges within reach of inputs a few hundred bytes long.
constexpr std::size_t kLimits[] = {4096, 0, 1, 16, 125, 126, 300, 1000};

// UTF-8 checked code point by code point, written independently of ws/utf8.cpp.
bool reference_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<std::uint8_t>(s[i]);
    std::size_t len;
    std::uint32_t cp;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b >> 5) == 0x6) {
      len = 2, cp = b & 0x1F;
    } else if ((b >> 4) == 0xE) {
      len = 3, cp = b & 0x0F;
    } else if ((b >> 3) == 0x1E) {
      len = 4, cp = b & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto c = static_cast<std::uint8_t>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = cp << 6 | (c & 0x3F);
    }
    const std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < smallest[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

bool legal_close_code(std::uint16_t c) {
  return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

// Checks each event as it arrives and logs it, so two decoders can be compared.
struct CheckingSink : DecoderSink {
  explicit CheckingSink(std::size_t max) : max(max) {}
  std::size_t max;
  std::string log;
  bool closed = false;

  void record(char kind, std::uint32_t extra, std::string_view payload) {
    FUZZ_CHECK(!closed);
    log += kind;
    log += std::to_string(extra);
    log += ':';
    log += std::to_string(payload.size());
    log += ':';
    log.append(payload);
  }
  void on_message(Opcode op, std::string_view p) override {
    FUZZ_CHECK(op == Opcode::text || op == Opcode::binary);
    FUZZ_CHECK(p.size() <= max);
    if (op == Opcode::text) FUZZ_CHECK(reference_utf8(p));
    record('m', static_cast<std::uint32_t>(op), p);
  }
  void on_ping(std::string_view p) override {
    FUZZ_CHECK(p.size() <= 125);
    record('i', 0, p);
  }
  void on_pong(std::string_view p) override {
    FUZZ_CHECK(p.size() <= 125);
    record('o', 0, p);
  }
  void on_close(std::uint16_t code, std::string_view reason) override {
    if (code == close_code::no_status) {
      FUZZ_CHECK(reason.empty());
    } else {
      FUZZ_CHECK(legal_close_code(code));
    }
    FUZZ_CHECK(reason.size() <= 123);
    FUZZ_CHECK(reference_utf8(reason));
    record('c', code, reason);
    closed = true;
  }
};

struct Run {
  std::string log;
  DecodeResult result;
};

// Checks what a decoder promises after each call, given what it returned.
void check_after_call(const Decoder& d, const CheckingSink& sink, const DecodeResult& r) {
  if (!r.ok) {
    FUZZ_CHECK(r.close_code == close_code::protocol_error ||
               r.close_code == close_code::invalid_payload || r.close_code == close_code::too_big);
    FUZZ_CHECK(r.message != nullptr && r.message[0] != '\0');
    FUZZ_CHECK(d.buffered_bytes() == 0);
  }
  if (sink.closed) FUZZ_CHECK(d.buffered_bytes() == 0);
  // A frame header is at most 14 bytes; a data frame's payload plus the message reassembled so
  // far never exceeds the limit, and a control frame's payload is at most 125 bytes.
  FUZZ_CHECK(d.buffered_bytes() <= sink.max + 14 + 125);
}

// Feeds `stream` in pieces of 1..max_piece bytes drawn from `seed` (max_piece 0: all at once).
Run decode(std::vector<std::uint8_t> stream, std::size_t max, std::uint8_t max_piece,
           std::uint8_t seed) {
  Decoder d(max);
  CheckingSink sink(max);
  Run run;
  PieceSizer pieces(seed, max_piece);
  std::size_t pos = 0;
  do {
    std::size_t n = pieces.next(stream.size() - pos);
    const std::size_t events_before = sink.log.size();
    const bool was_closed = sink.closed;
    DecodeResult r = d.feed(std::span(stream.data() + pos, n), sink);
    pos += n;
    check_after_call(d, sink, r);
    if (was_closed) {
      FUZZ_CHECK(r.ok);
      FUZZ_CHECK(sink.log.size() == events_before);
    }
    if (!r.ok) {
      run.result = r;
      // Failure is final: a later call, with or without input, changes nothing.
      std::vector<std::uint8_t> rest(stream.begin() + static_cast<std::ptrdiff_t>(pos),
                                     stream.end());
      const std::size_t log_size = sink.log.size();
      for (int i = 0; i < 2; ++i) {
        DecodeResult again = d.feed(i == 0 ? std::span(rest) : std::span<std::uint8_t>(), sink);
        FUZZ_CHECK(!again.ok && again.close_code == r.close_code && again.message == r.message);
      }
      FUZZ_CHECK(sink.log.size() == log_size);
      break;
    }
  } while (pos < stream.size());
  run.log = std::move(sink.log);
  return run;
}

// The incremental validator, split at an input-chosen point, against the reference.
void check_utf8(std::string_view s, std::size_t split) {
  split = s.empty() ? 0 : split % (s.size() + 1);
  Utf8Validator v;
  const bool incremental = v.feed(s.substr(0, split)) && v.feed(s.substr(split)) && v.complete();
  FUZZ_CHECK(incremental == reference_utf8(s));
  FUZZ_CHECK(valid_utf8(s) == incremental);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  // Piece size limits worth exploring: byte by byte, around header sizes, and larger.
  static constexpr std::uint8_t kPieceLimits[] = {1, 2, 3, 5, 7, 11, 14, 16, 31, 64, 127, 200};
  const std::uint8_t mode = data[0];
  const std::uint8_t seed = data[1];
  const std::size_t max = kLimits[data[2] % std::size(kLimits)];
  const std::vector<std::uint8_t> stream(data + 3, data + size);

  const Run whole = decode(stream, max, 0, 0);
  const std::uint8_t piece_limit = kPieceLimits[mode % sizeof kPieceLimits];
  const Run pieces = decode(stream, max, piece_limit, seed);
  FUZZ_CHECK(whole.log == pieces.log);
  FUZZ_CHECK(whole.result.ok == pieces.result.ok);
  FUZZ_CHECK(whole.result.close_code == pieces.result.close_code);
  FUZZ_CHECK(whole.result.message == pieces.result.message);

  check_utf8({reinterpret_cast<const char*>(stream.data()), stream.size()}, seed);
  return 0;
}
