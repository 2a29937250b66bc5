// One HTTP/1.1 connection: Beast parses requests (header and body limits enforced as they
// arrive), the service API answers them, keep-alive is honoured; a WebSocket upgrade on /v1/ws
// writes the 101 and hands the raw socket to ws::Session, after which this object is gone.
// With TLS, the TLS handshake comes first (bounded by --hello-timeout-ms), the same HTTP runs
// over the TLS stream, and an upgrade hands that stream over instead.
#pragma once

#include "util/loop_socket.hpp"

#include "core/limits.hpp"
namespace boost::asio::ssl {
class context;
}

namespace herald {
class Loop;
}

namespace herald::api {

// api_only: this listener serves the service API and refuses WebSocket upgrades.
// slot: the connection's place in its address's count, kept until the connection ends.
// tls: the listener's TLS context, or null for plain TCP.
void start_http_session(Loop& loop, LoopSocket socket, bool api_only, limits::IpSlot slot = {},
                        boost::asio::ssl::context* tls = nullptr);

}  // namespace herald::api
