// The one table of Herald's error codes: each code's word (as clients and services see it), its
// HTTP status on the service API and its WebSocket close code on a client connection. Every error
// Herald reports comes from here, so the two surfaces cannot disagree.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace herald {

enum class Err {
  // shared
  invalid_json,
  bad_request,         // well-formed JSON with wrong or missing fields
  invalid_client_id,
  unauthorized,
  engine_unavailable,
  internal,
  // service API
  forbidden,
  not_found,
  method_not_allowed,
  body_too_large,
  header_too_large,
  rate_limited,  // also on client sockets (hello rate)
  // client socket
  hello_required,
  duplicate_hello,
  unknown_type,
  unknown_ack_id,
  hello_timeout,
  message_too_big,
  invalid_utf8,
  websocket_protocol,
  unsupported_data,
  too_many_connections,
  bad_origin,
  backpressure,
  taken_over,
  server_shutdown,
  disconnected,
  disconnected_final,
  count_
};

struct ErrInfo {
  const char* code;     // stable word: "invalid_json", ...
  int http_status;      // 0 when the error never reaches HTTP
  std::uint16_t close;  // 0 when the error never closes a socket
};

const ErrInfo& err_info(Err e);
inline const char* err_code(Err e) { return err_info(e).code; }

// {"error":{"code":"...","message":"..."}}
std::string error_body(Err e, std::string_view message);
// {"type":"error","code":"...","message":"..."}
std::string error_frame_json(Err e, std::string_view message);

}  // namespace herald
