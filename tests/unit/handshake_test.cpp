// Tests of the opening handshake helpers: the RFC 6455 sample key, the exact 101 response,
// and which Sec-WebSocket-Key values count as "base64 of 16 bytes".
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <string>
#include <vector>

#include "ws/handshake.hpp"

namespace herald::ws {
namespace {

// Encodes bytes with OpenSSL, to build keys of arbitrary decoded length.
std::string base64(const std::vector<unsigned char>& raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), raw.data(),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

TEST(Handshake, RfcSampleAcceptKey) {
  // RFC 6455 §1.3.
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(Handshake, OtherAcceptKeys) {
  // Computed independently (Python hashlib + base64).
  EXPECT_EQ(accept_key("x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
  EXPECT_EQ(accept_key("AQIDBAUGBwgJCgsMDQ4PEA=="), "C/0nmHhBztSRGR1CwL6Tf4ZjwpY=");
}

TEST(Handshake, AcceptKeyUsesTheKeyExactlyAsSent) {
  EXPECT_NE(accept_key(" dGhlIHNhbXBsZSBub25jZQ=="), accept_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_EQ(accept_key("").size(), 28u);
}

TEST(Handshake, SwitchingProtocolsResponse) {
  EXPECT_EQ(switching_protocols_response("dGhlIHNhbXBsZSBub25jZQ=="),
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "\r\n");
}

TEST(Handshake, ValidKeys) {
  EXPECT_TRUE(valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_TRUE(valid_client_key("x3JJHMbDL1EzLkh9GBhXDw=="));
  EXPECT_TRUE(valid_client_key("AAAAAAAAAAAAAAAAAAAAAA=="));
  EXPECT_TRUE(valid_client_key("/////////////////////w=="));
  EXPECT_TRUE(valid_client_key("+++++++++++++++++++++w=="));
  // Spare low bits set in the last character: still 16 bytes to any RFC 4648 decoder.
  EXPECT_TRUE(valid_client_key("dGhlIHNhbXBsZSBub25jZR=="));
}

TEST(Handshake, KeysOfEveryOtherDecodedLengthAreRejected) {
  for (std::size_t n = 0; n <= 40; ++n) {
    std::vector<unsigned char> raw(n);
    for (std::size_t i = 0; i < n; ++i) raw[i] = static_cast<unsigned char>(i * 37 + 11);
    EXPECT_EQ(valid_client_key(base64(raw)), n == 16) << n << " " << base64(raw);
  }
}

TEST(Handshake, MalformedKeysAreRejected) {
  const char* bad[] = {
      "",
      "dGhlIHNhbXBsZSBub25jZQ",      // padding missing
      "dGhlIHNhbXBsZSBub25jZQ=",     // half the padding
      "dGhlIHNhbXBsZSBub25jZQ===",   // too much padding
      "dGhlIHNhbXBsZSBub25jZQ== ",   // trailing space
      " dGhlIHNhbXBsZSBub25jZQ==",   // leading space
      "dGhlIHNhbXBsZSBub25j ZQ=",    // space inside
      "dGhlIHNhbXBsZSBub25jZQ\r\n",  // line end instead of padding
      "dGhlIHNhbXBsZSBub25jZ===",    // padding too early
      "dGhl=HNhbXBsZSBub25jZQ==",    // padding in the middle
      "dGhlIHNhbXBsZSBub25jZQ=A",    // data after padding
      "dGhlIHNhbXBsZSBub25jZQA=",    // 17 bytes
      "dGhlIHNhbXBsZSBub25jZQAA",    // 18 bytes, no padding
      "dGhlIHNhbXBsZSBub25j*Q==",    // outside the alphabet
      "dGhlIHNhbXBsZSBub25j-Q==",    // base64url is not base64
      "dGhlIHNhbXBsZSBub25j_Q==",
      "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",
  };
  for (const char* k : bad) EXPECT_FALSE(valid_client_key(k)) << '"' << k << '"';
  EXPECT_FALSE(valid_client_key(std::string_view("dGhlIHNhbXBsZSBub25j\0Q==", 24)));
}

}  // namespace
}  // namespace herald::ws
