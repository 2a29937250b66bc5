// The server side of the RFC 6455 opening handshake: the Sec-WebSocket-Accept value and the
// 101 response. The HTTP request itself is parsed by Beast in api/http_session.
#pragma once

#include <string>
#include <string_view>

namespace herald::ws {

// base64(SHA-1(key + the RFC 6455 GUID)).
std::string accept_key(std::string_view client_key);

// True when the Sec-WebSocket-Key header value is the base64 of 16 bytes.
bool valid_client_key(std::string_view client_key);

// The complete "HTTP/1.1 101 Switching Protocols" response for this key.
std::string switching_protocols_response(std::string_view client_key);

}  // namespace herald::ws
