#include "core/jwt.hpp"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace herald::jwt {

namespace json = boost::json;

const char* failure_name(Failure f) {
  static const char* names[] = {"missing",        "malformed",    "bad_signature",
                                "expired",        "not_yet_valid", "wrong_audience",
                                "wrong_issuer",   "wrong_subject", "alg_mismatch"};
  static_assert(std::size(names) == static_cast<std::size_t>(Failure::count_));
  return names[static_cast<std::size_t>(f)];
}

const char* alg_name(Alg a) {
  switch (a) {
    case Alg::HS256: return "HS256";
    case Alg::RS256: return "RS256";
    case Alg::ES256: return "ES256";
  }
  return "?";
}

std::optional<std::string> base64url_decode(std::string_view in) {
  static const auto table = [] {
    std::array<std::int8_t, 256> t{};
    t.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    return t;
  }();
  if (in.size() % 4 == 1) return std::nullopt;  // no whole byte in 6 bits
  std::string out;
  out.reserve(in.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    auto v = table[c];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // The bits left over must be zero: one byte string has exactly one encoding.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

// ---- keys ----------------------------------------------------------------------------------

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

[[noreturn]] void refuse(const std::string& why) {
  ERR_clear_error();
  throw std::invalid_argument(why);
}

Result fail(Failure f, std::string reason) { return Result{f, std::move(reason)}; }

std::optional<std::int64_t> claim_time(const json::object& o, const char* name, bool& bad_type) {
  auto* v = o.if_contains(name);
  if (!v) return std::nullopt;
  // Clamped into int64 range: a huge exp means "far future", never a wrapped past.
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max() / 2;
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min() / 2;
  if (v->is_int64()) return std::clamp(v->get_int64(), kMin, kMax);
  if (v->is_uint64())
    return v->get_uint64() > static_cast<std::uint64_t>(kMax) ? kMax : static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) {
    auto d = v->get_double();
    if (std::isnan(d)) {
      bad_type = true;
      return std::nullopt;
    }
    if (d >= 4.6e18) return kMax;
    if (d <= -4.6e18) return kMin;
    return static_cast<std::int64_t>(d);
  }
  bad_type = true;
  return std::nullopt;
}

std::optional<json::object> parse_object(std::string_view text) {
  json::error_code ec;
  json::parse_options po;
  po.max_depth = 16;
  auto v = json::parse(text, ec, {}, po);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
}

}  // namespace

struct Verifier::Key {
  std::string secret;  // HS256
  PkeyPtr pkey;        // RS256, ES256
};

Verifier::Verifier(Alg alg, std::unique_ptr<Key> key, Options opts)
    : alg_(alg), key_(std::move(key)), opts_(std::move(opts)) {}
Verifier::Verifier(Verifier&&) noexcept = default;
Verifier& Verifier::operator=(Verifier&&) noexcept = default;
Verifier::~Verifier() = default;

Verifier Verifier::hs256(std::string secret, Options opts) {
  if (secret.empty()) refuse("the HS256 secret is empty");
  auto k = std::make_unique<Key>();
  k->secret = std::move(secret);
  return Verifier(Alg::HS256, std::move(k), std::move(opts));
}

Verifier Verifier::from_public_key_pem(std::string_view pem, Options opts) {
  if (pem.find("PRIVATE KEY") != std::string_view::npos)
    refuse("it holds a private key; give Herald only the public key (openssl pkey -in key.pem -pubout)");
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) refuse("out of memory");
  PkeyPtr pkey;
  if (pem.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos) {
    std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
    if (!cert) refuse("its CERTIFICATE block is not a valid X.509 certificate");
    pkey.reset(X509_get_pubkey(cert.get()));
  } else if (pem.find("-----BEGIN PUBLIC KEY-----") != std::string_view::npos) {
    pkey.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!pkey) refuse("its PUBLIC KEY block cannot be parsed");
  } else {
    refuse("it is not PEM with a '-----BEGIN PUBLIC KEY-----' (or CERTIFICATE) block");
  }
  if (!pkey) refuse("no public key found in it");
  Alg alg;
  switch (EVP_PKEY_get_base_id(pkey.get())) {
    case EVP_PKEY_RSA: {
      int bits = EVP_PKEY_get_bits(pkey.get());
      if (bits < 2048) refuse("its RSA key has " + std::to_string(bits) + " bits; RS256 needs at least 2048");
      alg = Alg::RS256;
      break;
    }
    case EVP_PKEY_EC: {
      char group[64] = {};
      std::size_t len = 0;
      if (EVP_PKEY_get_group_name(pkey.get(), group, sizeof group, &len) != 1 ||
          (std::strcmp(group, "prime256v1") != 0 && std::strcmp(group, "P-256") != 0))
        refuse(std::string("its EC key is on curve ") + (group[0] ? group : "?") + "; ES256 needs P-256 (prime256v1)");
      alg = Alg::ES256;
      break;
    }
    default:
      refuse("its key type is not supported; use RSA (RS256) or EC P-256 (ES256)");
  }
  auto k = std::make_unique<Key>();
  k->pkey = std::move(pkey);
  ERR_clear_error();
  return Verifier(alg, std::move(k), std::move(opts));
}

Verifier Verifier::from_public_key_file(const std::string& path, Options opts) {
  constexpr std::size_t kMaxPem = 64 * 1024;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("--jwt-public-key " + path + ": cannot read it: " + std::strerror(errno));
  std::string text(kMaxPem + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) throw std::invalid_argument("--jwt-public-key " + path + ": cannot read it");
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxPem) throw std::invalid_argument("--jwt-public-key " + path + ": larger than 64 KiB");
  try {
    return from_public_key_pem(text, std::move(opts));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("--jwt-public-key " + path + ": " + e.what());
  }
}

// ---- verifying -----------------------------------------------------------------------------

bool Verifier::signature_ok(std::string_view signing_input, std::string_view sig, std::string& reason) const {
  auto* msg = reinterpret_cast<const unsigned char*>(signing_input.data());
  if (alg_ == Alg::HS256) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    HMAC(EVP_sha256(), key_->secret.data(), static_cast<int>(key_->secret.size()), msg, signing_input.size(), mac,
         &mac_len);
    if (sig.size() != mac_len || CRYPTO_memcmp(sig.data(), mac, mac_len) != 0) {
      reason = "token signature invalid";
      return false;
    }
    return true;
  }
  std::vector<unsigned char> der;
  auto* sig_bytes = reinterpret_cast<const unsigned char*>(sig.data());
  std::size_t sig_len = sig.size();
  if (alg_ == Alg::RS256) {
    if (sig.size() != static_cast<std::size_t>(EVP_PKEY_get_size(key_->pkey.get()))) {
      reason = "token signature invalid (RS256 signature has the wrong length)";
      return false;
    }
  } else {
    // JWS carries ECDSA as R||S, 32 bytes each (RFC 7518 §3.4); OpenSSL wants DER.
    if (sig.size() != 64) {
      reason = "token signature invalid (ES256 signature must be 64 bytes, R||S)";
      return false;
    }
    ECDSA_SIG* es = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(sig_bytes, 32, nullptr);
    BIGNUM* s = BN_bin2bn(sig_bytes + 32, 32, nullptr);
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
      BN_free(r);
      BN_free(s);
      ECDSA_SIG_free(es);
      ERR_clear_error();
      reason = "token signature invalid";
      return false;
    }
    int n = i2d_ECDSA_SIG(es, nullptr);
    if (n > 0) {
      der.resize(static_cast<std::size_t>(n));
      unsigned char* p = der.data();
      n = i2d_ECDSA_SIG(es, &p);
    }
    ECDSA_SIG_free(es);
    if (n <= 0) {
      ERR_clear_error();
      reason = "token signature invalid";
      return false;
    }
    sig_bytes = der.data();
    sig_len = der.size();
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_->pkey.get()) == 1 &&
            EVP_DigestVerify(ctx.get(), sig_bytes, sig_len, msg, signing_input.size()) == 1;
  ERR_clear_error();  // a refused signature leaves errors on this thread's queue
  if (!ok) reason = "token signature invalid";
  return ok;
}

Result Verifier::verify(std::string_view token, std::string_view client_id, std::int64_t now_s) const {
  if (token.empty()) return fail(Failure::missing, "token missing");
  if (token.size() > opts_.max_token_bytes)
    return fail(Failure::malformed, "token is longer than " + std::to_string(opts_.max_token_bytes) + " bytes");
  auto d1 = token.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return fail(Failure::malformed, "token is not a JWT (header.payload.signature)");
  auto header_text = base64url_decode(token.substr(0, d1));
  if (!header_text) return fail(Failure::malformed, "token header is not base64url");
  auto header = parse_object(*header_text);
  if (!header) return fail(Failure::malformed, "token header is not a JSON object");
  auto* alg = header->if_contains("alg");
  if (!alg || !alg->is_string() || alg->get_string() != alg_name(alg_))
    return fail(Failure::alg_mismatch, std::string("token alg must be ") + alg_name(alg_));
  if (header->contains("crit"))  // RFC 7515 §4.1.11: extensions we do not know must be refused
    return fail(Failure::malformed, "token header has crit extensions, which are not supported");
  auto sig = base64url_decode(token.substr(d2 + 1));
  if (!sig) return fail(Failure::malformed, "token signature is not base64url");
  std::string why;
  if (!signature_ok(token.substr(0, d2), *sig, why)) return fail(Failure::bad_signature, std::move(why));

  auto payload_text = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
  if (!payload_text) return fail(Failure::malformed, "token payload is not base64url");
  auto claims = parse_object(*payload_text);
  if (!claims) return fail(Failure::malformed, "token payload is not a JSON object");
  bool bad_type = false;
  auto exp = claim_time(*claims, "exp", bad_type);
  auto nbf = claim_time(*claims, "nbf", bad_type);
  if (bad_type) return fail(Failure::malformed, "token exp/nbf must be numbers");
  auto* sub = claims->if_contains("sub");
  if (!sub || !sub->is_string() || sub->get_string() != client_id)
    return fail(Failure::wrong_subject, "token sub is not this client id");
  if (exp && now_s - opts_.leeway_s > *exp) return fail(Failure::expired, "token expired");
  if (nbf && now_s + opts_.leeway_s < *nbf) return fail(Failure::not_yet_valid, "token not yet valid");
  if (!opts_.issuer.empty()) {
    auto* iss = claims->if_contains("iss");
    if (!iss || !iss->is_string() || iss->get_string() != opts_.issuer)
      return fail(Failure::wrong_issuer, "token iss is not the expected issuer");
  }
  if (!opts_.audience.empty()) {
    auto* aud = claims->if_contains("aud");
    bool found = false;
    if (aud && aud->is_string()) {
      found = aud->get_string() == opts_.audience;
    } else if (aud && aud->is_array()) {
      for (auto& a : aud->get_array())
        if (a.is_string() && a.get_string() == opts_.audience) found = true;
    }
    if (!found) return fail(Failure::wrong_audience, "token aud does not name this service");
  }
  return {};
}

}  // namespace herald::jwt
