// libFuzzer target for the client token verifier (core/jwt): the input is the token, checked by
// three verifiers at once: HS256 with a secret, RS256 and ES256 with the test-only public keys
// of tests/data/ (ES256 also with an audience and an issuer to check). The seeds in
// fuzz/corpus/jwt/ are valid and invalid tokens for these keys, claims made for client "u1" at
// kNow, so mutations start from tokens that reach every check.
//
// Invariants checked on every input: no crash, leak or undefined behaviour; a result is valid
// exactly when it has no failure, and a refusal always says why; verifying twice gives the same
// answer; what is accepted is a three-part token no longer than the bound, whose header's alg is
// the verifier's own; and the strict base64url decoder round-trips whatever it accepts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/jwt.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace herald::jwt;

constexpr std::int64_t kNow = 1'700'000'000;
constexpr const char* kSecret = "fuzz-secret-0123456789abcdef0123";

struct Verifiers {
  Verifier hs = Verifier::hs256(kSecret, {});
  Verifier rs = Verifier::from_public_key_file(HERALD_SOURCE_DIR "/tests/data/rs256_public.pem", {});
  Verifier es = Verifier::from_public_key_file(HERALD_SOURCE_DIR "/tests/data/es256_public.pem", [] {
    Options o;
    o.audience = "herald";
    o.issuer = "https://auth.example.com";
    return o;
  }());
};

const Verifiers& verifiers() {
  static const Verifiers v;
  return v;
}

std::string encode(std::string_view in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += a[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += a[(acc << (6 - bits)) & 63];
  return out;
}

void check(const Verifier& v, std::string_view token) {
  auto r = v.verify(token, "u1", kNow);
  FUZZ_CHECK(r.ok() == !r.failure.has_value());
  FUZZ_CHECK(r.ok() == r.reason.empty());
  if (r.failure) FUZZ_CHECK(static_cast<int>(*r.failure) >= 0 && *r.failure < Failure::count_);
  auto again = v.verify(token, "u1", kNow);
  FUZZ_CHECK(again.failure == r.failure && again.reason == r.reason);
  if (token.size() > v.options().max_token_bytes) FUZZ_CHECK(r.failure == Failure::malformed);
  if (token.empty()) FUZZ_CHECK(r.failure == Failure::missing);
  if (!r.ok()) return;
  auto d1 = token.find('.');
  auto d2 = token.rfind('.');
  FUZZ_CHECK(d1 != std::string_view::npos && d1 != d2 && token.find('.', d1 + 1) == d2);
  auto header = base64url_decode(token.substr(0, d1));
  FUZZ_CHECK(header && header->find(std::string("\"") + alg_name(v.alg()) + "\"") != std::string::npos);
  // Valid for u1 means the sub is u1: never valid for another client.
  FUZZ_CHECK(v.verify(token, "u2", kNow).failure == Failure::wrong_subject);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view token(reinterpret_cast<const char*>(data), size);
  auto& v = verifiers();
  check(v.hs, token);
  check(v.rs, token);
  check(v.es, token);
  if (auto decoded = base64url_decode(token)) FUZZ_CHECK(encode(*decoded) == token);
  return 0;
}
