// Client tokens (core/jwt): HS256, RS256 and ES256 tokens, each claim check, and the attacks a
// verifier must not fall for (alg none, algorithm confusion, malleable encodings). Tokens are
// signed here with OpenSSL directly, independent of the code under test, with the test-only keys
// in tests/data/.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/jwt.hpp"

namespace herald::jwt {
namespace {

namespace json = boost::json;

std::string data_path(const char* name) { return std::string(HERALD_SOURCE_DIR) + "/tests/data/" + name; }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string b64url(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (auto& c : out) {
    if (c == '+') c = '-';
    else if (c == '/') c = '_';
  }
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view msg) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

EVP_PKEY* private_key(const char* file) {
  auto pem = read_file(data_path(file));
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!k) throw std::runtime_error(std::string("cannot load ") + file);
  return k;
}

EVP_PKEY* rsa_key() {
  static EVP_PKEY* k = private_key("rs256_private.pem");
  return k;
}
EVP_PKEY* ec_key() {
  static EVP_PKEY* k = private_key("es256_private.pem");
  return k;
}

// The DER signature OpenSSL makes; for ES256 turned into JWS's R||S below.
std::string evp_sign(EVP_PKEY* key, std::string_view msg) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
  EVP_MD_CTX_free(ctx);
  sig.resize(len);
  return sig;
}

std::string der_to_raw(const std::string& der) {
  auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* s = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(s), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(s), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(s);
  return raw;
}

std::string header_for(Alg a) { return std::string(R"({"alg":")") + alg_name(a) + R"(","typ":"JWT"})"; }

constexpr const char* kSecret = "correct horse battery staple";

// Signs header.payload with `a`'s test key (the HS256 secret, or the RSA / EC private key).
std::string sign(Alg a, std::string_view header_json, std::string_view payload_json) {
  auto input = b64url(header_json) + "." + b64url(payload_json);
  std::string sig;
  switch (a) {
    case Alg::HS256: sig = hmac_sha256(kSecret, input); break;
    case Alg::RS256: sig = evp_sign(rsa_key(), input); break;
    case Alg::ES256: sig = der_to_raw(evp_sign(ec_key(), input)); break;
  }
  return input + "." + b64url(sig);
}

std::string token(Alg a, std::string_view payload_json) { return sign(a, header_for(a), payload_json); }

Verifier verifier(Alg a, Options o = {}) {
  switch (a) {
    case Alg::HS256: return Verifier::hs256(kSecret, std::move(o));
    case Alg::RS256: return Verifier::from_public_key_file(data_path("rs256_public.pem"), std::move(o));
    case Alg::ES256: return Verifier::from_public_key_file(data_path("es256_public.pem"), std::move(o));
  }
  throw std::logic_error("alg");
}

constexpr std::int64_t kNow = 1'700'000'000;

std::string claims(std::string_view sub, std::optional<std::int64_t> exp = {}, std::optional<std::int64_t> nbf = {}) {
  json::object o{{"sub", sub}};
  if (exp) o["exp"] = *exp;
  if (nbf) o["nbf"] = *nbf;
  return json::serialize(o);
}

// "" when valid, else the failure's label (what /metrics counts).
std::string outcome(const Verifier& v, std::string_view t, std::string_view cid = "u1", std::int64_t now = kNow) {
  auto r = v.verify(t, cid, now);
  return r.ok() ? "" : failure_name(*r.failure);
}

class EachAlg : public ::testing::TestWithParam<Alg> {};
INSTANTIATE_TEST_SUITE_P(Jwt, EachAlg, ::testing::Values(Alg::HS256, Alg::RS256, Alg::ES256),
                         [](const auto& info) { return std::string(alg_name(info.param)); });

TEST_P(EachAlg, ValidToken) {
  auto v = verifier(GetParam());
  EXPECT_EQ(v.alg(), GetParam());
  EXPECT_EQ(outcome(v, token(GetParam(), claims("u1", kNow + 3600, kNow - 10))), "");
  EXPECT_EQ(outcome(v, token(GetParam(), claims("u1"))), "") << "exp and nbf are optional";
  EXPECT_EQ(outcome(v, token(GetParam(), R"({"sub":"u1","name":"John Doe","iat":1516239022})")), "");
}

TEST_P(EachAlg, ValidForEverySegmentLength) {
  // base64url without padding: every length mod 4 must decode.
  auto v = verifier(GetParam());
  for (int n = 1; n <= 12; ++n) {
    std::string sub(static_cast<std::size_t>(n), 'a');
    auto t = token(GetParam(), claims(sub, kNow + 60));
    EXPECT_EQ(outcome(v, t, sub), "") << t;
  }
}

TEST_P(EachAlg, Expiry) {
  auto v = verifier(GetParam());
  EXPECT_EQ(outcome(v, token(GetParam(), claims("u1", kNow - 31))), "expired");
  EXPECT_EQ(outcome(v, token(GetParam(), claims("u1", kNow - 86400))), "expired");
  EXPECT_EQ(outcome(v, token(GetParam(), claims("u1", kNow - 30))), "") << "within the default 30 s leeway";
  EXPECT_EQ(outcome(v, token(GetParam(), claims("u1", kNow))), "");
}

TEST_P(EachAlg, NotBefore) {
  auto v = verifier(GetParam());
  EXPECT_EQ(outcome(v, token(GetParam(), claims("u1", {}, kNow + 31))), "not_yet_valid");
  EXPECT_EQ(outcome(v, token(GetParam(), claims("u1", {}, kNow + 3600))), "not_yet_valid");
  EXPECT_EQ(outcome(v, token(GetParam(), claims("u1", {}, kNow + 30))), "");
}

TEST_P(EachAlg, WrongSubject) {
  auto v = verifier(GetParam());
  EXPECT_EQ(outcome(v, token(GetParam(), claims("u2", kNow + 60))), "wrong_subject");
  EXPECT_EQ(outcome(v, token(GetParam(), R"({"exp":1700000060})")), "wrong_subject");
  EXPECT_EQ(outcome(v, token(GetParam(), R"({"sub":1})"), "1"), "wrong_subject");
}

TEST_P(EachAlg, TamperedPayload) {
  auto v = verifier(GetParam());
  auto t = token(GetParam(), claims("u1", kNow + 60));
  auto d1 = t.find('.'), d2 = t.rfind('.');
  auto forged = t.substr(0, d1 + 1) + b64url(claims("admin", kNow + 60)) + t.substr(d2);
  EXPECT_EQ(outcome(v, forged, "admin"), "bad_signature");
  auto later = t.substr(0, d1 + 1) + b64url(claims("u1", kNow + 999999)) + t.substr(d2);
  EXPECT_EQ(outcome(v, later), "bad_signature");
}

TEST_P(EachAlg, TamperedSignature) {
  auto v = verifier(GetParam());
  auto t = token(GetParam(), claims("u1", kNow + 60));
  auto d2 = t.rfind('.');
  auto sig = *base64url_decode(t.substr(d2 + 1));
  for (std::size_t i : {std::size_t{0}, sig.size() / 2, sig.size() - 1}) {
    auto bad = sig;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_EQ(outcome(v, t.substr(0, d2 + 1) + b64url(bad)), "bad_signature") << "byte " << i;
  }
  EXPECT_EQ(outcome(v, t.substr(0, d2 + 1) + b64url(sig + "A")), "bad_signature");               // longer
  EXPECT_EQ(outcome(v, t.substr(0, d2 + 1) + b64url(sig.substr(0, sig.size() - 1))), "bad_signature");  // shorter
  EXPECT_EQ(outcome(v, t.substr(0, d2 + 1)), "bad_signature");                                    // none at all
}

TEST_P(EachAlg, AlgNoneIsRefused) {
  auto v = verifier(GetParam());
  auto payload = b64url(claims("u1", kNow + 60));
  EXPECT_EQ(outcome(v, b64url(R"({"alg":"none","typ":"JWT"})") + "." + payload + "."), "alg_mismatch");
  EXPECT_EQ(outcome(v, b64url(R"({"alg":"none"})") + "." + payload + ".c2ln"), "alg_mismatch");
  // Even with a correct signature by this verifier's key, "none" is not the key's alg.
  EXPECT_EQ(outcome(v, sign(GetParam(), R"({"alg":"none"})", claims("u1"))), "alg_mismatch");
  for (const char* header : {R"({"typ":"JWT"})", R"({"alg":null})", R"({"alg":["HS256"]})", R"({"alg":"hs256"})",
                             R"({"alg":"HS512"})", R"({"alg":"RS512"})", R"({"alg":"ES384"})", R"({"alg":"PS256"})"})
    EXPECT_EQ(outcome(v, sign(GetParam(), header, claims("u1"))), "alg_mismatch") << header;
}

TEST_P(EachAlg, OtherAlgsOfOurKeysAreRefused) {
  auto v = verifier(GetParam());
  for (Alg other : {Alg::HS256, Alg::RS256, Alg::ES256}) {
    if (other == GetParam()) continue;
    EXPECT_EQ(outcome(v, token(other, claims("u1", kNow + 60))), "alg_mismatch") << alg_name(other);
  }
}

TEST_P(EachAlg, CritHeaderIsRefused) {
  auto v = verifier(GetParam());
  auto header = std::string(R"({"alg":")") + alg_name(GetParam()) + R"(","crit":["exp"]})";
  EXPECT_EQ(outcome(v, sign(GetParam(), header, claims("u1"))), "malformed");
}

// The classic algorithm confusion: the attacker knows the public key (it is public), signs an
// HS256 token with the PEM text as the HMAC secret and hopes the verifier uses the key it has.
TEST(Jwt, AlgorithmConfusionIsRefused) {
  for (auto [file, alg] : {std::pair{"rs256_public.pem", Alg::RS256}, std::pair{"es256_public.pem", Alg::ES256}}) {
    auto pem = read_file(data_path(file));
    auto v = Verifier::from_public_key_pem(pem, {});
    ASSERT_EQ(v.alg(), alg);
    auto input = b64url(R"({"alg":"HS256","typ":"JWT"})") + "." + b64url(claims("u1", kNow + 60));
    for (const auto& secret : {pem, pem.substr(0, pem.size() - 1)}) {
      auto forged = input + "." + b64url(hmac_sha256(secret, input));
      auto r = v.verify(forged, "u1", kNow);
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(*r.failure, Failure::alg_mismatch);
      EXPECT_EQ(r.reason, std::string("token alg must be ") + alg_name(alg));
    }
    // Claiming the key's own alg with an HMAC "signature" does not help either.
    auto input2 = b64url(header_for(alg)) + "." + b64url(claims("u1", kNow + 60));
    EXPECT_EQ(outcome(v, input2 + "." + b64url(hmac_sha256(pem, input2))), "bad_signature");
  }
}

TEST(Jwt, Es256SignatureMustBeRawRAndS) {
  auto v = verifier(Alg::ES256);
  auto input = b64url(header_for(Alg::ES256)) + "." + b64url(claims("u1", kNow + 60));
  auto der = evp_sign(ec_key(), input);
  auto raw = der_to_raw(der);
  EXPECT_EQ(outcome(v, input + "." + b64url(raw)), "");
  // The DER form OpenSSL itself makes is not JWS: refused, not converted.
  auto r = v.verify(input + "." + b64url(der), "u1", kNow);
  EXPECT_EQ(failure_name(*r.failure), std::string("bad_signature"));
  EXPECT_NE(r.reason.find("64 bytes"), std::string::npos) << r.reason;
  for (std::size_t n : {0, 1, 32, 63, 65, 66, 96, 128}) {
    auto sig = (raw + raw + raw).substr(0, n);
    EXPECT_EQ(outcome(v, input + "." + b64url(sig)), "bad_signature") << n << " bytes";
  }
  // R or S zero, or S and R swapped.
  EXPECT_EQ(outcome(v, input + "." + b64url(std::string(32, '\0') + raw.substr(32))), "bad_signature");
  EXPECT_EQ(outcome(v, input + "." + b64url(raw.substr(0, 32) + std::string(32, '\0'))), "bad_signature");
  EXPECT_EQ(outcome(v, input + "." + b64url(raw.substr(32) + raw.substr(0, 32))), "bad_signature");
  EXPECT_EQ(outcome(v, input + "." + b64url(std::string(64, '\xff'))), "bad_signature");
}

TEST(Jwt, Rs256SignatureLengthMustBeTheModulus) {
  auto v = verifier(Alg::RS256);
  auto input = b64url(header_for(Alg::RS256)) + "." + b64url(claims("u1"));
  auto sig = evp_sign(rsa_key(), input);
  ASSERT_EQ(sig.size(), 256u);
  EXPECT_EQ(outcome(v, input + "." + b64url(sig)), "");
  EXPECT_EQ(outcome(v, input + "." + b64url(std::string(1, '\0') + sig)), "bad_signature");
  EXPECT_EQ(outcome(v, input + "." + b64url(sig.substr(1))), "bad_signature");
  EXPECT_EQ(outcome(v, input + "." + b64url(std::string(256, '\0'))), "bad_signature");
}

TEST(Jwt, Leeway) {
  Options strict;
  strict.leeway_s = 0;
  auto v = verifier(Alg::HS256, strict);
  EXPECT_EQ(outcome(v, token(Alg::HS256, claims("u1", kNow - 1))), "expired");
  EXPECT_EQ(outcome(v, token(Alg::HS256, claims("u1", kNow))), "");
  EXPECT_EQ(outcome(v, token(Alg::HS256, claims("u1", {}, kNow + 1))), "not_yet_valid");
  Options lax;
  lax.leeway_s = 300;
  auto w = verifier(Alg::ES256, lax);
  EXPECT_EQ(outcome(w, token(Alg::ES256, claims("u1", kNow - 299))), "");
  EXPECT_EQ(outcome(w, token(Alg::ES256, claims("u1", kNow - 301))), "expired");
  EXPECT_EQ(outcome(w, token(Alg::ES256, claims("u1", {}, kNow + 299))), "");
  EXPECT_EQ(outcome(w, token(Alg::ES256, claims("u1", {}, kNow + 301))), "not_yet_valid");
}

TEST(Jwt, Audience) {
  Options o;
  o.audience = "herald";
  auto v = verifier(Alg::RS256, o);
  auto with_aud = [](const char* aud) { return std::string(R"({"sub":"u1","aud":)") + aud + "}"; };
  EXPECT_EQ(outcome(v, token(Alg::RS256, with_aud(R"("herald")"))), "");
  EXPECT_EQ(outcome(v, token(Alg::RS256, with_aud(R"(["other","herald"])"))), "");
  EXPECT_EQ(outcome(v, token(Alg::RS256, with_aud(R"(["herald"])"))), "");
  EXPECT_EQ(outcome(v, token(Alg::RS256, with_aud(R"("other")"))), "wrong_audience");
  EXPECT_EQ(outcome(v, token(Alg::RS256, with_aud(R"("Herald")"))), "wrong_audience");
  EXPECT_EQ(outcome(v, token(Alg::RS256, with_aud(R"(["other",1,null,["herald"]])"))), "wrong_audience");
  EXPECT_EQ(outcome(v, token(Alg::RS256, with_aud("[]"))), "wrong_audience");
  EXPECT_EQ(outcome(v, token(Alg::RS256, with_aud("null"))), "wrong_audience");
  EXPECT_EQ(outcome(v, token(Alg::RS256, claims("u1"))), "wrong_audience") << "aud missing";
  // Without --jwt-audience an aud claim is not looked at.
  EXPECT_EQ(outcome(verifier(Alg::RS256), token(Alg::RS256, with_aud(R"("other")"))), "");
}

TEST(Jwt, Issuer) {
  Options o;
  o.issuer = "https://auth.example.com";
  auto v = verifier(Alg::ES256, o);
  EXPECT_EQ(outcome(v, token(Alg::ES256, R"({"sub":"u1","iss":"https://auth.example.com"})")), "");
  EXPECT_EQ(outcome(v, token(Alg::ES256, R"({"sub":"u1","iss":"https://evil.example.com"})")), "wrong_issuer");
  EXPECT_EQ(outcome(v, token(Alg::ES256, R"({"sub":"u1","iss":["https://auth.example.com"]})")), "wrong_issuer");
  EXPECT_EQ(outcome(v, token(Alg::ES256, claims("u1"))), "wrong_issuer") << "iss missing";
}

TEST(Jwt, TimeClaimsMustBeNumbers) {
  auto v = verifier(Alg::HS256);
  EXPECT_EQ(outcome(v, token(Alg::HS256, R"({"sub":"u1","exp":"1700000060"})")), "malformed");
  EXPECT_EQ(outcome(v, token(Alg::HS256, R"({"sub":"u1","nbf":null})")), "malformed");
  // A fractional NumericDate is a number (RFC 7519 §2).
  EXPECT_EQ(outcome(v, token(Alg::HS256, R"({"sub":"u1","exp":1700000060.5})")), "");
}

// Regression (kept from the HS256-only verifier): NumericDates beyond int64 must not wrap.
TEST(Jwt, HugeTimesDoNotWrap) {
  auto v = verifier(Alg::HS256);
  for (const char* exp : {"9223372036854775807", "18446744073709551615", "1e300", "4102444800"})
    EXPECT_EQ(outcome(v, token(Alg::HS256, std::string(R"({"sub":"u1","exp":)") + exp + "}")), "") << exp;
  for (const char* nbf : {"9223372036854775807", "18446744073709551615", "1e300"})
    EXPECT_EQ(outcome(v, token(Alg::HS256, std::string(R"({"sub":"u1","nbf":)") + nbf + "}")), "not_yet_valid")
        << nbf;
  for (const char* exp : {"-9223372036854775808", "-1e300"})
    EXPECT_EQ(outcome(v, token(Alg::HS256, std::string(R"({"sub":"u1","exp":)") + exp + "}")), "expired") << exp;
}

TEST(Jwt, MissingAndMalformed) {
  auto v = verifier(Alg::HS256);
  auto r = v.verify("", "u1", kNow);
  EXPECT_EQ(*r.failure, Failure::missing);
  EXPECT_EQ(r.reason, "token missing");
  auto good = token(Alg::HS256, claims("u1", kNow + 60));
  const auto dot = good.find('.');
  for (std::string t : {std::string("abc"), std::string("a.b"), std::string("a.b.c.d"), std::string(".."),
                        std::string("!!!.@@@.###"), std::string("a+b.c/d.e"), good + ".", "." + good,
                        good.substr(0, dot) + "=" + good.substr(dot),                // padding
                        good.substr(0, dot) + " " + good.substr(dot),                // space
                        good.substr(0, dot) + "\n" + good.substr(dot),               // newline
                        b64url("not json") + "." + b64url(claims("u1")) + ".",       // header not JSON
                        b64url("[1]") + "." + b64url(claims("u1")) + ".",            // header not an object
                        std::string("e30") + good.substr(dot)}) {                    // header {} is fine JSON, no alg
    auto res = v.verify(t, "u1", kNow);
    EXPECT_FALSE(res.ok()) << "accepted '" << t << "'";
    if (!res.ok()) {
      EXPECT_TRUE(*res.failure == Failure::malformed || *res.failure == Failure::alg_mismatch)
          << t << ": " << failure_name(*res.failure);
    }
  }
  // A correctly signed payload that is not a JSON object.
  EXPECT_EQ(outcome(v, token(Alg::HS256, "not json")), "malformed");
  EXPECT_EQ(outcome(v, token(Alg::HS256, R"(["u1"])")), "malformed");
}

TEST(Jwt, NonCanonicalBase64IsRefused) {
  auto v = verifier(Alg::HS256);
  auto good = token(Alg::HS256, claims("u1", kNow + 60));
  auto d2 = good.rfind('.');
  // The HMAC is 32 bytes: 43 characters, the last carrying 2 unused bits. Setting them gives
  // another spelling of the same bytes, which a strict decoder refuses.
  auto sig = good.substr(d2 + 1);
  ASSERT_EQ(sig.size(), 43u);
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  auto last = alphabet.find(sig.back());
  ASSERT_EQ(last % 4, 0u);
  auto variant = good.substr(0, good.size() - 1) + alphabet[last + 1];
  EXPECT_EQ(outcome(v, variant), "malformed");
  EXPECT_EQ(outcome(v, good.substr(0, d2 + 1) + sig + "AA"), "malformed") << "length 1 mod 4";
}

TEST(Jwt, Base64UrlDecode) {
  EXPECT_EQ(*base64url_decode(""), "");
  EXPECT_EQ(*base64url_decode("Zg"), "f");
  EXPECT_EQ(*base64url_decode("Zm8"), "fo");
  EXPECT_EQ(*base64url_decode("Zm9v"), "foo");
  EXPECT_EQ(*base64url_decode("-_-_"), "\xfb\xff\xbf");
  for (const char* bad : {"Z", "Zg==", "Zh", "Zm9", "Zm+v", "Zm/v", "Zm9v=", " Zm9v", "Zm\x80v"})
    EXPECT_FALSE(base64url_decode(bad)) << bad;
}

TEST(Jwt, OversizeIsRefused) {
  auto v = verifier(Alg::HS256);
  auto r = v.verify(std::string(8193, 'a'), "u1", kNow);
  EXPECT_EQ(*r.failure, Failure::malformed);
  EXPECT_NE(r.reason.find("longer than 8192"), std::string::npos) << r.reason;
  // A valid token just over a lower bound is refused before anything is decoded.
  auto t = token(Alg::HS256, claims("u1", kNow + 60));
  Options small;
  small.max_token_bytes = t.size() - 1;
  EXPECT_EQ(outcome(verifier(Alg::HS256, small), t), "malformed");
  small.max_token_bytes = t.size();
  EXPECT_EQ(outcome(verifier(Alg::HS256, small), t), "");
}

TEST(Jwt, FailureNamesAreTheMetricLabels) {
  std::set<std::string> names;
  for (int f = 0; f < static_cast<int>(Failure::count_); ++f) names.insert(failure_name(static_cast<Failure>(f)));
  EXPECT_EQ(names, (std::set<std::string>{"missing", "malformed", "bad_signature", "expired", "not_yet_valid",
                                          "wrong_audience", "wrong_issuer", "wrong_subject", "alg_mismatch"}));
}

// ---- keys ------------------------------------------------------------------------------------

std::string load_error(const std::string& pem) {
  try {
    Verifier::from_public_key_pem(pem, {});
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(JwtKeys, PublicKeysAndCertificates) {
  EXPECT_EQ(verifier(Alg::RS256).alg(), Alg::RS256);
  EXPECT_EQ(verifier(Alg::ES256).alg(), Alg::ES256);
  auto cert = Verifier::from_public_key_file(data_path("es256_cert.pem"), {});
  EXPECT_EQ(cert.alg(), Alg::ES256);
  EXPECT_EQ(outcome(cert, token(Alg::ES256, claims("u1"))), "");
}

TEST(JwtKeys, UnusableKeysAreRefusedClearly) {
  EXPECT_NE(load_error(read_file(data_path("es256_private.pem"))).find("private key"), std::string::npos);
  EXPECT_NE(load_error(read_file(data_path("rs256_private.pem"))).find("private key"), std::string::npos);
  EXPECT_NE(load_error(read_file(data_path("rsa1024_public.pem"))).find("2048"), std::string::npos);
  EXPECT_NE(load_error(read_file(data_path("ec_p384_public.pem"))).find("P-256"), std::string::npos);
  EXPECT_NE(load_error("hello").find("PEM"), std::string::npos);
  EXPECT_NE(load_error(""), "");
  EXPECT_NE(load_error("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), "");
  auto pem = read_file(data_path("es256_public.pem"));
  auto truncated = pem.substr(0, pem.size() / 2);
  EXPECT_NE(load_error(truncated), "");
  try {
    Verifier::from_public_key_file("/nonexistent/key.pem", {});
    ADD_FAILURE() << "a missing file was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/key.pem"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Verifier::hs256("", {}), std::invalid_argument);
}

}  // namespace
}  // namespace herald::jwt
