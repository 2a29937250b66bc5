// Client tokens (DESIGN §2, hello): a JWS-signed JWT whose `sub` is the client id. One Verifier
// holds one key, made once at start-up: an HS256 secret, or an RS256/ES256 public key from PEM.
// The key decides the algorithm; a token whose header names another `alg` is refused before any
// signature check, so an HS256 token can never be checked with the public key as an HMAC secret.
// Pure (no I/O but reading the key file once), so it is unit-tested and fuzzed directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace herald::jwt {

// Why a token was refused; the fixed label set of herald_auth_failures_total{kind="client"}.
enum class Failure {
  missing,
  malformed,
  bad_signature,
  expired,
  not_yet_valid,
  wrong_audience,
  wrong_issuer,
  wrong_subject,
  alg_mismatch,
  count_
};
const char* failure_name(Failure f);

struct Result {
  std::optional<Failure> failure;  // none = valid
  std::string reason;              // why not, for the client's error frame and the log
  bool ok() const { return !failure; }
};

enum class Alg { HS256, RS256, ES256 };
const char* alg_name(Alg a);

struct Options {
  std::int64_t leeway_s = 30;   // clock skew allowed on exp and nbf
  std::string audience;         // when set, `aud` (a string or an array) must contain it
  std::string issuer;           // when set, `iss` must equal it
  std::size_t max_token_bytes = 8192;
};

// Strict base64url (RFC 4648 §5) without padding: no '=', no '+' or '/', no stray bits.
std::optional<std::string> base64url_decode(std::string_view in);

class Verifier {
 public:
  // Throws std::invalid_argument with a reason fit for a start-up error.
  static Verifier hs256(std::string secret, Options opts);
  // An RSA (2048 bits or more: RS256) or EC P-256 (ES256) public key, as PEM text holding
  // a PUBLIC KEY or a CERTIFICATE.
  static Verifier from_public_key_pem(std::string_view pem, Options opts);
  static Verifier from_public_key_file(const std::string& path, Options opts);

  Verifier(Verifier&&) noexcept;
  Verifier& operator=(Verifier&&) noexcept;
  ~Verifier();

  Alg alg() const { return alg_; }
  const Options& options() const { return opts_; }

  // Checks the token for this client id at now_s (Unix seconds). Safe to call from any thread.
  Result verify(std::string_view token, std::string_view client_id, std::int64_t now_s) const;

 private:
  struct Key;
  Verifier(Alg alg, std::unique_ptr<Key> key, Options opts);
  bool signature_ok(std::string_view signing_input, std::string_view sig, std::string& reason) const;

  Alg alg_;
  std::unique_ptr<Key> key_;
  Options opts_;
};

}  // namespace herald::jwt
