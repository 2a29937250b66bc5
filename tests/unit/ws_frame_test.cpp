// Tests of the RFC 6455 frame codec: the RFC's own sample frames, every rule the decoder
// enforces with the close code it must produce, independence from how input is chunked, and
// the memory discipline (zero-copy delivery, no heap held by an idle decoder).
//
// This binary replaces global operator new/delete to count live allocations; the counting is
// only read by the memory tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "ws/frame.hpp"

namespace {
std::atomic<long> g_live_allocations{0};
std::atomic<std::size_t> g_largest_request{0};
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = std::malloc(n ? n : 1)) {
    ++g_live_allocations;
    std::size_t seen = g_largest_request.load();
    while (n > seen && !g_largest_request.compare_exchange_weak(seen, n)) {
    }
    return p;
  }
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  if (p) {
    --g_live_allocations;
    std::free(p);
  }
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace herald::ws {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytes(std::initializer_list<int> list) {
  Bytes b;
  for (int v : list) b.push_back(static_cast<std::uint8_t>(v));
  return b;
}

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// How a test frame states its payload length.
enum class Len { minimal, bits16, bits64 };

constexpr std::uint8_t kFin = 0x80;
constexpr std::array<std::uint8_t, 4> kKey = {0x37, 0xfa, 0x21, 0x3d};  // RFC 6455 §5.7's key

// The header a client would send: first byte as given (FIN, RSV, opcode), then the length
// `announced` in the requested encoding, then the mask key if masked.
Bytes client_header(std::uint8_t b0, std::uint64_t announced, Len enc = Len::minimal,
                    bool masked = true, std::array<std::uint8_t, 4> key = kKey) {
  Bytes out{b0};
  const std::uint8_t m = masked ? 0x80 : 0;
  if (enc == Len::minimal) enc = announced < 126 ? Len::minimal : announced <= 0xFFFF ? Len::bits16 : Len::bits64;
  if (enc == Len::minimal) {
    out.push_back(static_cast<std::uint8_t>(m | announced));
  } else if (enc == Len::bits16) {
    out.push_back(m | 126);
    out.push_back(static_cast<std::uint8_t>(announced >> 8));
    out.push_back(static_cast<std::uint8_t>(announced));
  } else {
    out.push_back(m | 127);
    for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(announced >> s));
  }
  if (masked) out.insert(out.end(), key.begin(), key.end());
  return out;
}

// A whole client frame carrying `payload`, masked with `key` unless masked is false.
Bytes client_frame(std::uint8_t b0, std::string_view payload, Len enc = Len::minimal,
                   bool masked = true, std::array<std::uint8_t, 4> key = kKey) {
  Bytes out = client_header(b0, payload.size(), enc, masked, key);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    auto c = static_cast<std::uint8_t>(payload[i]);
    out.push_back(masked ? c ^ key[i & 3] : c);
  }
  return out;
}

Bytes text(std::string_view s, bool fin = true) { return client_frame((fin ? kFin : 0) | 0x1, s); }
Bytes binary(std::string_view s, bool fin = true) { return client_frame((fin ? kFin : 0) | 0x2, s); }
Bytes cont(std::string_view s, bool fin = true) { return client_frame((fin ? kFin : 0) | 0x0, s); }
Bytes ping(std::string_view s) { return client_frame(kFin | 0x9, s); }
Bytes pong(std::string_view s) { return client_frame(kFin | 0xA, s); }
Bytes close_frame(std::uint16_t code, std::string_view reason) {
  std::string body;
  body.push_back(static_cast<char>(code >> 8));
  body.push_back(static_cast<char>(code & 0xFF));
  body.append(reason);
  return client_frame(kFin | 0x8, body);
}

// A server frame (unmasked) turned into the client frame a peer would send with that payload,
// so encoder output can be run through the decoder.
Bytes mask_server_frame(const std::string& frame, std::array<std::uint8_t, 4> key = kKey) {
  std::size_t ext = (frame[1] & 0x7F) == 126 ? 2 : (frame[1] & 0x7F) == 127 ? 8 : 0;
  Bytes out(frame.begin(), frame.begin() + 2 + ext);
  out[1] |= 0x80;
  out.insert(out.end(), key.begin(), key.end());
  for (std::size_t i = 2 + ext; i < frame.size(); ++i)
    out.push_back(static_cast<std::uint8_t>(frame[i]) ^ key[(i - 2 - ext) & 3]);
  return out;
}

// Records what the decoder reports as readable strings, plus where payloads pointed.
struct RecordingSink : DecoderSink {
  std::vector<std::string> events;
  std::vector<const char*> payload_ptrs;

  void on_message(Opcode op, std::string_view p) override {
    events.push_back((op == Opcode::text ? "text:" : op == Opcode::binary ? "binary:" : "?:") +
                     std::string(p));
    payload_ptrs.push_back(p.data());
  }
  void on_ping(std::string_view p) override {
    events.push_back("ping:" + std::string(p));
    payload_ptrs.push_back(p.data());
  }
  void on_pong(std::string_view p) override {
    events.push_back("pong:" + std::string(p));
    payload_ptrs.push_back(p.data());
  }
  void on_close(std::uint16_t code, std::string_view reason) override {
    events.push_back("close:" + std::to_string(code) + ":" + std::string(reason));
    payload_ptrs.push_back(reason.data());
  }
};

// Never allocates, so the memory tests see only the decoder's own allocations.
struct CountingSink : DecoderSink {
  int messages = 0, controls = 0;
  std::size_t last_size = 0;
  void on_message(Opcode, std::string_view p) override {
    ++messages;
    last_size = p.size();
  }
  void on_ping(std::string_view) override { ++controls; }
  void on_pong(std::string_view) override { ++controls; }
  void on_close(std::uint16_t, std::string_view) override { ++controls; }
};

struct Outcome {
  std::vector<std::string> events;
  DecodeResult result;  // the first failure, or ok
  std::size_t buffered = 0;
};

// Feeds `stream` in pieces of the given sizes (the last size repeats), stopping at the first
// failure, which must then stick.
Outcome run_chunked(Bytes stream, const std::vector<std::size_t>& sizes,
                    std::size_t max = 1 << 20) {
  Decoder d(max);
  RecordingSink sink;
  Outcome o;
  std::size_t pos = 0, i = 0;
  do {
    std::size_t n = std::min(sizes[std::min(i++, sizes.size() - 1)], stream.size() - pos);
    DecodeResult r = d.feed(std::span(stream.data() + pos, n), sink);
    pos += n;
    if (!r.ok) {
      o.result = r;
      break;
    }
  } while (pos < stream.size());
  o.events = sink.events;
  o.buffered = d.buffered_bytes();
  return o;
}

Outcome run(Bytes stream, std::size_t max = 1 << 20) {
  const std::size_t whole = std::max<std::size_t>(stream.size(), 1);
  return run_chunked(std::move(stream), {whole}, max);
}

Outcome run_bytewise(Bytes stream, std::size_t max = 1 << 20) {
  return run_chunked(std::move(stream), {1}, max);
}

using Events = std::vector<std::string>;

// Asserts a stream fails with `code`, the same way whole and byte by byte, having delivered
// `before` first.
void expect_failure(const Bytes& stream, std::uint16_t code, const Events& before = {},
                    std::size_t max = 1 << 20) {
  for (const Outcome& o : {run(stream, max), run_bytewise(stream, max)}) {
    EXPECT_FALSE(o.result.ok);
    EXPECT_EQ(o.result.close_code, code);
    EXPECT_STRNE(o.result.message, "");
    EXPECT_EQ(o.events, before);
    EXPECT_EQ(o.buffered, 0u) << "a failed decoder must free its buffers";
  }
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

// ---- RFC 6455 §5.7 sample frames ----

TEST(FrameDecoder, RfcMaskedHello) {
  Outcome o = run(bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
  EXPECT_TRUE(o.result.ok);
  EXPECT_EQ(o.events, Events{"text:Hello"});
  EXPECT_EQ(o.buffered, 0u);
}

TEST(FrameDecoder, RfcMaskedPong) {
  Outcome o = run(bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
  EXPECT_TRUE(o.result.ok);
  EXPECT_EQ(o.events, Events{"pong:Hello"});
}

TEST(FrameDecoder, RfcUnmaskedFramesAreRejectedFromClients) {
  expect_failure(bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}), close_code::protocol_error);
  expect_failure(bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}), close_code::protocol_error);
}

TEST(FrameDecoder, RfcFragmentedHelloMasked) {
  // §5.7's "Hel" + "lo" fragments, as a client must send them (masked).
  Bytes s = client_frame(0x01, "Hel") + client_frame(0x80, "lo");
  Outcome o = run(s);
  EXPECT_TRUE(o.result.ok);
  EXPECT_EQ(o.events, Events{"text:Hello"});
  EXPECT_EQ(o.buffered, 0u);
}

TEST(FrameEncoder, RfcSampleFrames) {
  EXPECT_EQ(make_frame(Opcode::text, "Hello"), std::string("\x81\x05Hello", 7));
  EXPECT_EQ(make_frame(Opcode::ping, "Hello"), std::string("\x89\x05Hello", 7));
  std::string f256 = make_frame(Opcode::binary, std::string(256, 'x'));
  EXPECT_EQ(f256.substr(0, 4), std::string("\x82\x7E\x01\x00", 4));
  EXPECT_EQ(f256.size(), 4u + 256u);
  std::string f64k = make_frame(Opcode::binary, std::string(65536, 'x'));
  EXPECT_EQ(f64k.substr(0, 10), std::string("\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10));
  EXPECT_EQ(f64k.size(), 10u + 65536u);
}

// ---- encoder ----

TEST(FrameEncoder, HeaderAtLengthBoundaries) {
  struct Case {
    std::size_t len;
    std::string header;
  } cases[] = {
      {0, std::string("\x81\x00", 2)},
      {125, std::string("\x81\x7D", 2)},
      {126, std::string("\x81\x7E\x00\x7E", 4)},
      {65535, std::string("\x81\x7E\xFF\xFF", 4)},
      {65536, std::string("\x81\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10)},
      {std::size_t{1} << 40, std::string("\x81\x7F\x00\x00\x01\x00\x00\x00\x00\x00", 10)},
  };
  for (const Case& c : cases) {
    std::string out = "prefix";
    append_frame_header(out, Opcode::text, c.len);
    EXPECT_EQ(out, "prefix" + c.header) << c.len;
    EXPECT_EQ(frame_header_size(c.len), c.header.size()) << c.len;
  }
}

TEST(FrameEncoder, OpcodesAndFin) {
  EXPECT_EQ(make_frame(Opcode::binary, "")[0], '\x82');
  EXPECT_EQ(make_frame(Opcode::close, "")[0], '\x88');
  EXPECT_EQ(make_frame(Opcode::pong, "")[0], '\x8A');
  EXPECT_EQ(make_frame(Opcode::pong, ""), std::string("\x8A\x00", 2));
}

TEST(FrameEncoder, RoundTripsThroughTheDecoderAtBoundaries) {
  for (std::size_t n : {0, 1, 125, 126, 127, 65535, 65536, 70000}) {
    std::string p = pattern(n);
    Outcome o = run(mask_server_frame(make_frame(Opcode::binary, p)));
    ASSERT_TRUE(o.result.ok) << n;
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0], "binary:" + p) << n;
  }
}

TEST(FrameEncoder, CloseFrameCarriesCodeAndReason) {
  EXPECT_EQ(make_close_frame(1000, "bye"), std::string("\x88\x05\x03\xE8" "bye", 7));
  EXPECT_EQ(make_close_frame(4001, ""), std::string("\x88\x02\x0F\xA1", 4));
  Outcome o = run(mask_server_frame(make_close_frame(close_code::going_away, "shutting down")));
  EXPECT_EQ(o.events, Events{"close:1001:shutting down"});
}

TEST(FrameEncoder, CloseFrameWithoutStatusHasNoBody) {
  // 1005 may never be sent; "no status" is expressed by an empty close body.
  EXPECT_EQ(make_close_frame(close_code::no_status, "ignored"), std::string("\x88\x00", 2));
  EXPECT_EQ(make_close_frame(close_code::abnormal, ""), std::string("\x88\x00", 2));
}

TEST(FrameEncoder, CloseReasonIsCutTo123Bytes) {
  std::string f = make_close_frame(1000, std::string(200, 'r'));
  EXPECT_EQ(f.size(), 2u + 125u);
  EXPECT_EQ(static_cast<std::uint8_t>(f[1]), 125);
  EXPECT_EQ(f.substr(4), std::string(123, 'r'));
  // Exactly 123 stays whole.
  EXPECT_EQ(make_close_frame(1000, std::string(123, 'r')).substr(4), std::string(123, 'r'));
}

TEST(FrameEncoder, CloseReasonIsCutAtACodePointBoundary) {
  const std::string two = "\xC3\xA9";              // é
  const std::string three = "\xE2\x82\xAC";        // €
  const std::string four = "\xF0\x9F\x98\x80";     // 😀
  struct Case {
    std::string reason;
    std::string expected;
  } cases[] = {
      {std::string(122, 'a') + two, std::string(122, 'a')},           // é would straddle 123
      {std::string(121, 'a') + two + "zz", std::string(121, 'a') + two},  // é ends at 123
      {std::string(121, 'a') + three, std::string(121, 'a')},
      {std::string(122, 'a') + three, std::string(122, 'a')},
      {std::string(120, 'a') + three + "z", std::string(120, 'a') + three},
      {std::string(120, 'a') + four, std::string(120, 'a')},
      {std::string(119, 'a') + four + "z", std::string(119, 'a') + four},
      {four + std::string(200, 'b'), four + std::string(119, 'b')},
  };
  for (const Case& c : cases) {
    std::string f = make_close_frame(1000, c.reason);
    EXPECT_EQ(f.substr(4), c.expected);
    EXPECT_TRUE(valid_utf8(f.substr(4)));
    // And a peer like us accepts it.
    Outcome o = run(mask_server_frame(f));
    EXPECT_EQ(o.events, Events{"close:1000:" + c.expected});
  }
}

// ---- lengths ----

TEST(FrameDecoder, LengthBoundaries) {
  for (std::size_t n : {0, 1, 125, 126, 127, 65535, 65536, 100000}) {
    std::string p = pattern(n);
    for (const Outcome& o : {run(binary(p)), run_chunked(binary(p), {3, 1, 4096})}) {
      ASSERT_TRUE(o.result.ok) << n;
      ASSERT_EQ(o.events, Events{"binary:" + p}) << n;
      EXPECT_EQ(o.buffered, 0u);
    }
  }
}

TEST(FrameDecoder, Header16And64BitEncodingsAreUsedWhereRequired) {
  EXPECT_EQ(binary(pattern(126))[1], 0x80 | 126);
  EXPECT_EQ(binary(pattern(65536))[1], 0x80 | 127);
}

TEST(FrameDecoder, NonMinimalLengthsAreRejected) {
  // Header alone is enough: no payload follows.
  expect_failure(client_header(0x82, 0, Len::bits16), close_code::protocol_error);
  expect_failure(client_header(0x82, 125, Len::bits16), close_code::protocol_error);
  expect_failure(client_header(0x82, 0, Len::bits64), close_code::protocol_error);
  expect_failure(client_header(0x82, 125, Len::bits64), close_code::protocol_error);
  expect_failure(client_header(0x82, 126, Len::bits64), close_code::protocol_error);
  expect_failure(client_header(0x82, 65535, Len::bits64), close_code::protocol_error);
  // The smallest legal values of each encoding are accepted.
  EXPECT_TRUE(run(client_frame(0x82, pattern(126), Len::bits16)).result.ok);
  EXPECT_TRUE(run(client_frame(0x82, pattern(65536), Len::bits64)).result.ok);
}

TEST(FrameDecoder, SixtyFourBitLengthWithTopBitSetIsAProtocolError) {
  // With no size limit at all, the top bit is still a protocol error (not "too big").
  const std::size_t unlimited = SIZE_MAX;
  expect_failure(client_header(0x82, std::uint64_t{1} << 63, Len::bits64),
                 close_code::protocol_error, {}, unlimited);
  expect_failure(client_header(0x82, ~std::uint64_t{0}, Len::bits64), close_code::protocol_error,
                 {}, unlimited);
}

// ---- size limit ----

TEST(FrameDecoder, MessageAtTheLimitIsAccepted) {
  Outcome o = run(text(std::string(100, 'x')), 100);
  EXPECT_TRUE(o.result.ok);
  EXPECT_EQ(o.events.size(), 1u);
}

TEST(FrameDecoder, MessageOverTheLimitFailsFromItsHeader) {
  // Only the header is fed: the verdict must not wait for the payload.
  expect_failure(client_header(0x81, 101), close_code::too_big, {}, 100);
  expect_failure(client_header(0x82, 1ull << 40), close_code::too_big, {}, 100);
  expect_failure(client_header(0x82, 1), close_code::too_big, {}, 0);
  EXPECT_TRUE(run(binary(""), 0).result.ok);
}

TEST(FrameDecoder, FragmentsCountTogetherAgainstTheLimit) {
  EXPECT_TRUE(run(text(std::string(60, 'x'), false) + cont(std::string(40, 'y')), 100).result.ok);
  expect_failure(text(std::string(60, 'x'), false) + cont(std::string(20, 'y'), false) +
                     client_header(0x80, 21),
                 close_code::too_big, {}, 100);
}

TEST(FrameDecoder, ControlFramesDoNotCountAgainstTheLimit) {
  Outcome o = run(ping(std::string(125, 'p')) + text("0123456789"), 10);
  EXPECT_TRUE(o.result.ok);
  EXPECT_EQ(o.events, (Events{"ping:" + std::string(125, 'p'), "text:0123456789"}));
}

// ---- fragmentation ----

TEST(FrameDecoder, FragmentsWithInterleavedControlFrames) {
  Bytes s = text("frag", false) + ping("p1") + cont("ment", false) + pong("p2") +
            cont("ed", false) + ping("") + cont("!");
  Outcome o = run(s);
  EXPECT_TRUE(o.result.ok);
  EXPECT_EQ(o.events, (Events{"ping:p1", "pong:p2", "ping:", "text:fragmented!"}));
  EXPECT_EQ(o.buffered, 0u);
}

TEST(FrameDecoder, BinaryFragmentsAndEmptyFragments) {
  Bytes s = binary("", false) + cont(std::string("\x00\xFF", 2), false) + cont("", false) + cont("");
  Outcome o = run(s);
  EXPECT_TRUE(o.result.ok);
  EXPECT_EQ(o.events, Events{"binary:" + std::string("\x00\xFF", 2)});
}

TEST(FrameDecoder, MessagesFollowOneAnother) {
  Bytes s = text("a") + text("b", false) + cont("c") + binary("d") + text("e");
  Outcome o = run(s);
  EXPECT_EQ(o.events, (Events{"text:a", "text:bc", "binary:d", "text:e"}));
}

TEST(FrameDecoder, ContinuationWithoutAMessageIsAProtocolError) {
  expect_failure(cont("x"), close_code::protocol_error);
  expect_failure(cont("x", false), close_code::protocol_error);
  expect_failure(text("a") + cont("x"), close_code::protocol_error, {"text:a"});
  expect_failure(text("a", false) + cont("b") + cont("c"), close_code::protocol_error,
                 {"text:ab"});
}

TEST(FrameDecoder, NewMessageInsideAFragmentedOneIsAProtocolError) {
  expect_failure(text("a", false) + text("b"), close_code::protocol_error);
  expect_failure(text("a", false) + binary("b"), close_code::protocol_error);
  expect_failure(binary("a", false) + text("b", false), close_code::protocol_error);
  expect_failure(binary("a", false) + ping("p") + binary("b"), close_code::protocol_error,
                 {"ping:p"});
}

// ---- header rules ----

TEST(FrameDecoder, ReservedBitsAreAProtocolError) {
  for (std::uint8_t rsv : {0x40, 0x20, 0x10, 0x70}) {
    expect_failure(client_frame(kFin | rsv | 0x1, "x"), close_code::protocol_error);
    expect_failure(client_frame(kFin | rsv | 0x9, ""), close_code::protocol_error);
  }
}

TEST(FrameDecoder, UnknownOpcodesAreAProtocolError) {
  for (std::uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    expect_failure(client_frame(kFin | op, "x"), close_code::protocol_error);
    // Also in the middle of a fragmented message.
    expect_failure(text("a", false) + client_frame(kFin | op, ""), close_code::protocol_error);
  }
}

TEST(FrameDecoder, UnmaskedFramesAreAProtocolError) {
  for (std::uint8_t b0 : {0x81, 0x82, 0x01, 0x88, 0x89, 0x8A}) {
    expect_failure(client_frame(b0, "", Len::minimal, false), close_code::protocol_error);
  }
  expect_failure(text("ok") + client_frame(0x82, "x", Len::minimal, false),
                 close_code::protocol_error, {"text:ok"});
}

TEST(FrameDecoder, ControlFramesMustBeShortAndFinal) {
  for (std::uint8_t op : {0x8, 0x9, 0xA}) {
    expect_failure(client_frame(op, ""), close_code::protocol_error);  // FIN=0
    expect_failure(client_frame(kFin | op, std::string(126, 'x')), close_code::protocol_error);
    expect_failure(client_header(kFin | op, 1000), close_code::protocol_error);
    // Even a short payload in a 16-bit length is not a legal control frame.
    expect_failure(client_frame(kFin | op, "ab", Len::bits16), close_code::protocol_error);
  }
  EXPECT_TRUE(run(ping(std::string(125, 'x'))).result.ok);
}

// ---- close ----

TEST(FrameDecoder, EmptyCloseMeansNoStatus) {
  Outcome o = run(client_frame(kFin | 0x8, ""));
  EXPECT_TRUE(o.result.ok);
  EXPECT_EQ(o.events, Events{"close:1005:"});
}

TEST(FrameDecoder, CloseWithCodeAndReason) {
  Outcome o = run(close_frame(1000, "bye"));
  EXPECT_EQ(o.events, Events{"close:1000:bye"});
  o = run(close_frame(4003, ""));
  EXPECT_EQ(o.events, Events{"close:4003:"});
  o = run(close_frame(1001, "\xC3\xA9t\xC3\xA9"));
  EXPECT_EQ(o.events, Events{"close:1001:\xC3\xA9t\xC3\xA9"});
  o = run(close_frame(1000, std::string(123, 'r')));
  EXPECT_EQ(o.events, Events{"close:1000:" + std::string(123, 'r')});
}

TEST(FrameDecoder, OneByteCloseBodyIsAProtocolError) {
  expect_failure(client_frame(kFin | 0x8, "\x03"), close_code::protocol_error);
}

TEST(FrameDecoder, CloseCodesOnTheWire) {
  for (int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
                   3999, 4000, 4999}) {
    EXPECT_TRUE(valid_close_code_on_wire(static_cast<std::uint16_t>(code))) << code;
    Outcome o = run(close_frame(static_cast<std::uint16_t>(code), "r"));
    EXPECT_TRUE(o.result.ok) << code;
    EXPECT_EQ(o.events, Events{"close:" + std::to_string(code) + ":r"});
  }
  for (int code : {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    EXPECT_FALSE(valid_close_code_on_wire(static_cast<std::uint16_t>(code))) << code;
    expect_failure(close_frame(static_cast<std::uint16_t>(code), ""), close_code::protocol_error);
  }
}

TEST(FrameDecoder, CloseCodeTableIsExactlyTheRfcRanges) {
  for (int c = 0; c <= 0xFFFF; ++c) {
    bool expected = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
                    (c >= 3000 && c <= 4999);
    ASSERT_EQ(valid_close_code_on_wire(static_cast<std::uint16_t>(c)), expected) << c;
  }
}

TEST(FrameDecoder, CloseReasonMustBeUtf8) {
  expect_failure(close_frame(1000, "\xFF"), close_code::invalid_payload);
  expect_failure(close_frame(1000, "ok\xC3"), close_code::invalid_payload);  // cut short
  expect_failure(close_frame(1000, "\xED\xA0\x80"), close_code::invalid_payload);
}

TEST(FrameDecoder, NothingIsDecodedAfterClose) {
  Decoder d(1 << 20);
  RecordingSink sink;
  Bytes s = text("before") + close_frame(1000, "") + text("after") + bytes({0xFF, 0xFF});
  EXPECT_TRUE(d.feed(s, sink).ok);
  EXPECT_EQ(sink.events, (Events{"text:before", "close:1000:"}));
  EXPECT_EQ(d.buffered_bytes(), 0u);
  Bytes more = text("later") + client_frame(0x81, "x", Len::minimal, false);
  EXPECT_TRUE(d.feed(more, sink).ok);
  EXPECT_EQ(sink.events.size(), 2u);
}

TEST(FrameDecoder, CloseInsideAFragmentedMessageDropsTheMessage) {
  Decoder d(1 << 20);
  RecordingSink sink;
  Bytes s = text("part", false) + close_frame(1001, "") + cont("rest");
  EXPECT_TRUE(d.feed(s, sink).ok);
  EXPECT_EQ(sink.events, Events{"close:1001:"});
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(FrameDecoder, CloseArrivingInPiecesAfterAPartialFrame) {
  Outcome o = run_chunked(text("hi") + close_frame(1000, "done") + text("ignored"), {3, 5, 2});
  EXPECT_TRUE(o.result.ok);
  EXPECT_EQ(o.events, (Events{"text:hi", "close:1000:done"}));
  EXPECT_EQ(o.buffered, 0u);
}

// ---- UTF-8 of text messages ----

TEST(FrameDecoder, TextMustBeUtf8) {
  expect_failure(text("\xFF"), close_code::invalid_payload);
  expect_failure(text("\xC0\x80"), close_code::invalid_payload);       // overlong NUL
  expect_failure(text("\xED\xA0\x80"), close_code::invalid_payload);   // surrogate
  expect_failure(text("\xF4\x90\x80\x80"), close_code::invalid_payload);  // > U+10FFFF
  expect_failure(text("abc\xE2\x82"), close_code::invalid_payload);    // cut short
  EXPECT_TRUE(run(text("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5")).result.ok);  // κόσμε
}

TEST(FrameDecoder, BinaryIsNotUtf8Checked) {
  Outcome o = run(binary("\xFF\xC0\x80\xED\xA0\x80"));
  EXPECT_TRUE(o.result.ok);
  EXPECT_EQ(o.events.size(), 1u);
}

TEST(FrameDecoder, EmojiSplitAcrossFragmentsAtEveryPoint) {
  const std::string emoji = "\xF0\x9F\x98\x80";
  for (std::size_t cut = 0; cut <= 4; ++cut) {
    Bytes s = text("<" + emoji.substr(0, cut), false) + ping("p") + cont(emoji.substr(cut) + ">");
    Outcome o = run(s);
    EXPECT_TRUE(o.result.ok) << cut;
    EXPECT_EQ(o.events, (Events{"ping:p", "text:<" + emoji + ">"})) << cut;
  }
  // One byte per fragment.
  Bytes s = text(emoji.substr(0, 1), false) + cont(emoji.substr(1, 1), false) +
            cont(emoji.substr(2, 1), false) + cont(emoji.substr(3, 1));
  EXPECT_EQ(run(s).events, Events{"text:" + emoji});
}

TEST(FrameDecoder, InvalidUtf8FailsAtTheFragmentThatCarriesIt) {
  // The bad byte is in the first fragment: the decoder fails without the rest of the message.
  expect_failure(text("ok\xFF", false), close_code::invalid_payload);
  // A surrogate split over two fragments fails at the second.
  expect_failure(text("\xED", false) + cont("\xA0\x80", false), close_code::invalid_payload);
  // Past U+10FFFF, split.
  expect_failure(text("\xF4", false) + cont("\x90\x80\x80"), close_code::invalid_payload);
  // An overlong split.
  expect_failure(text("\xE0", false) + cont("\x80\x80"), close_code::invalid_payload);
}

TEST(FrameDecoder, TextEndingInsideACodePointFailsAtTheLastFragment) {
  expect_failure(text("ok", false) + cont("\xF0\x9F", false) + cont("\x98"),
                 close_code::invalid_payload);
  // Empty final fragment after a partial code point.
  expect_failure(text("\xE2\x82", false) + cont(""), close_code::invalid_payload);
}

TEST(FrameDecoder, Utf8StateDoesNotLeakBetweenMessages) {
  // A message that ended cleanly leaves nothing pending for the next one, and a binary
  // message in between does not disturb text checking.
  Bytes s = text("\xE2", false) + cont("\x82\xAC") + binary("\xE2", false) + cont("") +
            text("\xC3", false) + cont("\xA9");
  Outcome o = run(s);
  EXPECT_TRUE(o.result.ok);
  EXPECT_EQ(o.events, (Events{"text:\xE2\x82\xAC", "binary:\xE2", "text:\xC3\xA9"}));
}

// ---- failure is final ----

TEST(FrameDecoder, FailureSticks) {
  Decoder d(1 << 20);
  RecordingSink sink;
  Bytes bad = client_frame(0x81, "x", Len::minimal, false);
  DecodeResult first = d.feed(bad, sink);
  ASSERT_FALSE(first.ok);
  Bytes good = text("fine");
  DecodeResult again = d.feed(good, sink);
  EXPECT_FALSE(again.ok);
  EXPECT_EQ(again.close_code, first.close_code);
  EXPECT_EQ(again.message, first.message);
  EXPECT_TRUE(sink.events.empty());
  EXPECT_FALSE(d.feed({}, sink).ok);
}

TEST(FrameDecoder, FramesBeforeAFailureAreDelivered) {
  expect_failure(text("one") + ping("two") + text("\xFF"), close_code::invalid_payload,
                 {"text:one", "ping:two"});
}

// ---- chunking ----

// A stream exercising every path: varied keys, all length encodings, fragments, controls.
Bytes rich_stream() {
  Bytes s;
  s = s + client_frame(0x81, "Hello", Len::minimal, true, {0, 0, 0, 0});
  s = s + client_frame(0x01, "frag-", Len::minimal, true, {1, 2, 3, 4});
  s = s + ping("are you there");
  s = s + client_frame(0x00, pattern(300), Len::minimal, true, {0xFF, 0x00, 0xAA, 0x55});
  s = s + pong("");
  s = s + cont("\xF0\x9F", false) + cont("\x98\x80");
  s = s + binary(pattern(70000));
  s = s + binary(pattern(126));
  s = s + text("");
  s = s + close_frame(1000, "bye \xE2\x82\xAC");
  return s;
}

TEST(FrameDecoder, ChunkingDoesNotChangeTheOutcome) {
  const Bytes s = rich_stream();
  Outcome whole = run(s);
  ASSERT_TRUE(whole.result.ok);
  ASSERT_EQ(whole.events.size(), 8u);
  EXPECT_EQ(whole.events[3], "text:frag-" + pattern(300) + "\xF0\x9F\x98\x80");
  EXPECT_EQ(whole.events.back(), "close:1000:bye \xE2\x82\xAC");

  Outcome bytewise = run_bytewise(s);
  EXPECT_EQ(bytewise.events, whole.events);
  EXPECT_TRUE(bytewise.result.ok);
  for (std::size_t k : {2, 3, 5, 7, 13, 125, 126, 1000, 65536}) {
    Outcome o = run_chunked(s, {k});
    EXPECT_EQ(o.events, whole.events) << k;
    EXPECT_TRUE(o.result.ok) << k;
  }
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<std::size_t> sizes;
    for (int i = 0; i < 4000; ++i) sizes.push_back(1 + rng() % (trial % 2 ? 20 : 3000));
    Outcome o = run_chunked(s, sizes);
    EXPECT_EQ(o.events, whole.events) << trial;
  }
}

TEST(FrameDecoder, ChunkingDoesNotChangeAFailure) {
  Bytes s = text("a") + ping("b") + text("c", false) + cont("d", false) + binary("e");
  Outcome whole = run(s);
  ASSERT_FALSE(whole.result.ok);
  for (std::size_t k : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
    Outcome o = run_chunked(s, {k});
    EXPECT_EQ(o.events, whole.events) << k;
    EXPECT_EQ(o.result.close_code, whole.result.close_code) << k;
    EXPECT_STREQ(o.result.message, whole.result.message) << k;
  }
}

TEST(FrameDecoder, EmptyFeedIsHarmless) {
  Decoder d(100);
  RecordingSink sink;
  EXPECT_TRUE(d.feed({}, sink).ok);
  Bytes half = text("hello");
  half.resize(4);
  EXPECT_TRUE(d.feed(half, sink).ok);
  EXPECT_TRUE(d.feed({}, sink).ok);
  EXPECT_EQ(d.buffered_bytes(), 4u);
  EXPECT_TRUE(sink.events.empty());
}

// ---- buffering and memory ----

TEST(FrameDecoder, BufferedBytesTracksTailAndMessage) {
  Decoder d(1 << 20);
  RecordingSink sink;
  Bytes f = text("abcdef");  // 2 + 4 + 6 bytes
  EXPECT_TRUE(d.feed(std::span(f.data(), 1), sink).ok);
  EXPECT_EQ(d.buffered_bytes(), 1u);
  EXPECT_TRUE(d.feed(std::span(f.data() + 1, 8), sink).ok);
  EXPECT_EQ(d.buffered_bytes(), 9u);
  EXPECT_TRUE(d.feed(std::span(f.data() + 9, 3), sink).ok);
  EXPECT_EQ(d.buffered_bytes(), 0u);
  EXPECT_EQ(sink.events, Events{"text:abcdef"});

  Bytes frag = text("12345", false);
  EXPECT_TRUE(d.feed(frag, sink).ok);
  EXPECT_EQ(d.buffered_bytes(), 5u);
  Bytes fin = cont("678");
  EXPECT_TRUE(d.feed(fin, sink).ok);
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(FrameDecoder, CompleteFramesAreDeliveredFromTheCallersBuffer) {
  Decoder d(1 << 20);
  RecordingSink sink;
  Bytes s = text("one") + ping("two") + binary(pattern(300)) + close_frame(1000, "four");
  const char* lo = reinterpret_cast<const char*>(s.data());
  const char* hi = lo + s.size();
  ASSERT_TRUE(d.feed(s, sink).ok);
  ASSERT_EQ(sink.payload_ptrs.size(), 4u);
  for (const char* p : sink.payload_ptrs) {
    EXPECT_GE(p, lo);
    EXPECT_LT(p, hi);
  }
  // Unmasked in place: the caller's buffer now holds the clear payload.
  EXPECT_EQ(std::string(sink.payload_ptrs[0], 3), "one");
}

TEST(FrameDecoder, FramesAfterACompletedTailComeFromTheCallersBuffer) {
  Decoder d(1 << 20);
  RecordingSink sink;
  Bytes first = text("carried over");
  Bytes second = text("direct") + binary(pattern(1000));
  Bytes a(first.begin(), first.begin() + 5);
  Bytes b(first.begin() + 5, first.end());
  b = b + second;
  ASSERT_TRUE(d.feed(a, sink).ok);
  ASSERT_TRUE(d.feed(b, sink).ok);
  ASSERT_EQ(sink.events.size(), 3u);
  EXPECT_EQ(sink.events[0], "text:carried over");
  const char* lo = reinterpret_cast<const char*>(b.data());
  for (std::size_t i = 1; i < 3; ++i) {
    EXPECT_GE(sink.payload_ptrs[i], lo);
    EXPECT_LT(sink.payload_ptrs[i], lo + b.size());
  }
}

// Live heap blocks now, to compare before and after the decoder's work.
long live() { return g_live_allocations.load(); }

TEST(FrameDecoderMemory, WholeFramesAllocateNothing) {
  Decoder d(1 << 20);
  CountingSink sink;
  Bytes s = text(pattern(1000)) + binary(pattern(70000)) + ping("x");
  const long before = live();
  ASSERT_TRUE(d.feed(s, sink).ok);
  EXPECT_EQ(live(), before);
  EXPECT_EQ(sink.messages, 2);
}

TEST(FrameDecoderMemory, TailIsFreedOnceTheFrameCompletes) {
  Decoder d(1 << 20);
  CountingSink sink;
  Bytes f = binary(pattern(1000));
  Bytes a(f.begin(), f.begin() + 600);
  Bytes b(f.begin() + 600, f.end());
  const long before = live();
  ASSERT_TRUE(d.feed(a, sink).ok);
  EXPECT_GT(live(), before);  // the tail is held
  ASSERT_TRUE(d.feed(b, sink).ok);
  EXPECT_EQ(sink.last_size, 1000u);
  EXPECT_EQ(live(), before) << "tail_ must give its capacity back, not just be cleared";
}

TEST(FrameDecoderMemory, MessageIsFreedOnceReassembled) {
  Decoder d(1 << 20);
  CountingSink sink;
  Bytes s = text(pattern(500), false) + cont(pattern(500), false) + cont(pattern(500));
  const long before = live();
  ASSERT_TRUE(d.feed(s, sink).ok);
  EXPECT_EQ(sink.last_size, 1500u);
  EXPECT_EQ(live(), before) << "message_ must give its capacity back, not just be cleared";
}

TEST(FrameDecoderMemory, FailureAndCloseFreeEverything) {
  {
    Decoder d(1 << 20);
    CountingSink sink;
    // A message in flight and a tail both held, then a bad byte at the end of the tail's frame.
    Bytes s = text(pattern(500), false) + cont(pattern(999) + "\xFF", false);
    const long before = live();
    ASSERT_TRUE(d.feed(std::span(s.data(), 600), sink).ok);
    ASSERT_GT(live(), before + 1);
    EXPECT_EQ(d.feed(std::span(s.data() + 600, s.size() - 600), sink).close_code,
              close_code::invalid_payload);
    EXPECT_EQ(live(), before);
    EXPECT_EQ(d.buffered_bytes(), 0u);
  }
  {
    Decoder d(1 << 20);
    CountingSink sink;
    Bytes s = text(pattern(500), false) + close_frame(1000, "") + binary(pattern(300));
    s.resize(s.size() - 10);
    const long before = live();
    ASSERT_TRUE(d.feed(s, sink).ok);
    EXPECT_EQ(live(), before);
    EXPECT_EQ(d.buffered_bytes(), 0u);
  }
}

TEST(FrameDecoderMemory, StallingPeerHoldsOnlyWhatItSent) {
  // A header announcing a large frame must not make the decoder reserve the whole payload.
  Decoder d(std::size_t{1} << 30);
  CountingSink sink;
  Bytes h = client_header(0x82, std::size_t{1} << 29) + bytes({1, 2, 3});
  g_largest_request = 0;
  ASSERT_TRUE(d.feed(h, sink).ok);
  EXPECT_EQ(d.buffered_bytes(), h.size());
  EXPECT_LT(g_largest_request.load(), std::size_t{4096});
}

}  // namespace
}  // namespace herald::ws
