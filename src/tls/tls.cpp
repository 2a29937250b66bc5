#include "tls/tls.hpp"

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <stdexcept>

namespace herald::tls {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using boost::system::error_code;

namespace {

// Mozilla's "intermediate" TLS 1.2 list (ECDHE + AEAD only). TLS 1.3 suites are OpenSSL's default.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// A peer that does not read our close_notify within this long gets its socket closed anyway.
constexpr auto kCloseBound = std::chrono::milliseconds(500);

std::string read_file(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(flag + " " + path + ": cannot read it (" + std::strerror(errno) + ")");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::invalid_argument(flag + " " + path + ": cannot read it");
  return bytes;
}

// Certificates are not reloaded: say at start-up which one is served and until when.
void log_certificate(SSL_CTX* ctx, const std::string& cert_file) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (!cert) return;
  char subject[256];
  X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
  std::string until = "?";
  if (BIO* b = BIO_new(BIO_s_mem())) {
    if (ASN1_TIME_print(b, X509_get0_notAfter(cert)) == 1) {
      char* text = nullptr;
      auto n = BIO_get_mem_data(b, &text);
      if (n > 0) until.assign(text, static_cast<std::size_t>(n));
    }
    BIO_free(b);
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
    spdlog::warn("TLS certificate {} ({}) has EXPIRED ({}): clients will refuse it", subject, cert_file, until);
  else
    spdlog::info("TLS certificate {} ({}), valid until {}", subject, cert_file, until);
}

std::string ssl_reason(const error_code& ec) {
  auto text = ec.message();
  return text.empty() ? "OpenSSL error" : text;
}

}  // namespace

std::shared_ptr<ssl::context> make_server_context(const std::string& cert_file, const std::string& key_file) {
  auto cert = read_file("--tls-cert", cert_file);
  auto key = read_file("--tls-key", key_file);
  ERR_clear_error();
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  auto* native = ctx->native_handle();
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                   ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1)
    throw std::invalid_argument("TLS: OpenSSL rejected the cipher list");
  // An encrypted key would make OpenSSL prompt on the terminal: answer with no password instead,
  // so start-up fails with a message rather than hanging.
  ctx->set_password_callback([](std::size_t, ssl::context::password_purpose) { return std::string(); });

  error_code ec;
  ctx->use_certificate_chain(asio::buffer(cert), ec);
  if (ec)
    throw std::invalid_argument("--tls-cert " + cert_file + ": not a PEM certificate chain (" + ssl_reason(ec) + ")");
  ctx->use_private_key(asio::buffer(key), ssl::context::pem, ec);
  if (ec && ec.category() == asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH)
    throw std::invalid_argument("--tls-key " + key_file + " does not match the certificate in --tls-cert " +
                                cert_file);
  if (ec)
    throw std::invalid_argument("--tls-key " + key_file +
                                ": not an unencrypted PEM private key (" +
                                ssl_reason(ec) + ")");
  if (SSL_CTX_check_private_key(native) != 1)
    throw std::invalid_argument("--tls-key " + key_file + " does not match the certificate in --tls-cert " +
                                cert_file);
  ERR_clear_error();
  log_certificate(native, cert_file);
  return ctx;
}

void close_politely(Stream& stream, std::shared_ptr<void> owner) {
  // Mark the peer's close_notify as received: SSL_shutdown then sends ours and completes,
  // instead of waiting to read theirs.
  auto* ssl = stream.native_handle();
  SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
  auto timer = std::make_shared<asio::steady_timer>(stream.get_executor(), kCloseBound);
  timer->async_wait([&stream, owner](error_code ec) {
    if (ec) return;
    stream.lowest_layer().close(ec);
  });
  stream.async_shutdown([&stream, owner, timer](error_code ec) {
    timer->cancel();
    stream.lowest_layer().close(ec);
  });
}

}  // namespace herald::tls
