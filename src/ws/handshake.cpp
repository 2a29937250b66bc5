// The server's half of the RFC 6455 opening handshake (§4.2.2): checking the client's nonce
// and answering with the accept value derived from it.
//
// Invariant: accept_key is a pure function of the key bytes as received (no trimming, no
// decoding), because the client computes the same value over exactly what it sent.
#include "ws/handshake.hpp"

#include <openssl/evp.h>

#include <array>
#include <string>

namespace herald::ws {
namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '/';
}

}  // namespace

std::string accept_key(std::string_view client_key) {
  std::string input;
  input.reserve(client_key.size() + kGuid.size());
  input.append(client_key);
  input.append(kGuid);

  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_len, EVP_sha1(), nullptr) !=
      1) {
    return {};  // only when OpenSSL itself is broken; an empty accept fails the handshake
  }
  // base64 of 20 bytes is 28 characters; EVP_EncodeBlock also writes a terminating NUL.
  std::array<unsigned char, 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1> b64{};
  int n = EVP_EncodeBlock(b64.data(), digest.data(), static_cast<int>(digest_len));
  return std::string(reinterpret_cast<const char*>(b64.data()), static_cast<std::size_t>(n));
}

bool valid_client_key(std::string_view client_key) {
  // 16 bytes encode to 22 significant characters and "==". Anything else (other lengths,
  // whitespace, a different alphabet, padding in the middle) is not "the base64 of 16 bytes".
  // The two spare bits in the 22nd character are not required to be zero: RFC 4648 lets a
  // decoder accept them and nothing in the handshake depends on them.
  if (client_key.size() != 24 || client_key[22] != '=' || client_key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i) {
    if (!is_base64_char(client_key[i])) return false;
  }
  // EVP_DecodeBlock does not understand padding: 24 characters always yield 18 bytes, the last
  // two being the zeros the "==" stands for. It is the final word on the encoding.
  std::array<unsigned char, 18> out{};
  return EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(client_key.data()),
                         24) == 18;
}

std::string switching_protocols_response(std::string_view client_key) {
  std::string r;
  r.reserve(160);
  r.append(
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ");
  r.append(accept_key(client_key));
  r.append("\r\n\r\n");
  return r;
}

}  // namespace herald::ws
