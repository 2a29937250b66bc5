// TLS for both listeners: the one server context built from --tls-cert/--tls-key at start-up, and
// the close that ends a TLS connection politely without ever waiting on the peer.
//
// Herald keeps its own WebSocket framing; TLS only replaces the byte transport underneath it
// (Asio's ssl::stream over the accepted socket). A plain connection carries none of this.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <memory>
#include <string>

#include "util/loop_socket.hpp"

namespace herald::tls {

using Stream = boost::asio::ssl::stream<LoopSocket>;

// The server context: TLS 1.2 minimum, forward-secret AEAD ciphers in the server's order, no
// compression, no renegotiation. Throws
// std::invalid_argument naming the file and the reason when a file cannot be read, is not PEM,
// is an encrypted key, or when the key does not match the certificate.
std::shared_ptr<boost::asio::ssl::context> make_server_context(const std::string& cert_file,
                                                               const std::string& key_file);

// Sends close_notify (without waiting for the peer's), then closes the socket; gives up and
// closes after a short bound if the peer does not take the bytes. `owner` keeps `stream` alive.
void close_politely(Stream& stream, std::shared_ptr<void> owner);

}  // namespace herald::tls
