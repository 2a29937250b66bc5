#include "core/errors.hpp"

#include <array>
#include <boost/json.hpp>

namespace herald {

namespace {
constexpr std::array<ErrInfo, static_cast<size_t>(Err::count_)> kTable{{
    {"invalid_json", 400, 1008},
    {"bad_request", 400, 1008},
    {"invalid_client_id", 400, 1008},
    {"unauthorized", 401, 1008},
    {"engine_unavailable", 503, 1011},
    {"internal", 500, 1011},
    {"forbidden", 403, 0},
    {"not_found", 404, 0},
    {"method_not_allowed", 405, 0},
    {"body_too_large", 413, 0},
    {"header_too_large", 431, 0},
    {"rate_limited", 429, 1013},
    {"hello_required", 0, 1008},
    {"duplicate_hello", 0, 1008},
    {"unknown_type", 0, 1008},
    {"unknown_ack_id", 0, 1008},
    {"hello_timeout", 0, 1008},
    {"message_too_big", 0, 1009},
    {"invalid_utf8", 0, 1007},
    {"websocket_protocol", 0, 1002},
    {"unsupported_data", 0, 1003},
    {"too_many_connections", 0, 1013},
    {"bad_origin", 403, 1008},
    {"backpressure", 0, 1013},
    {"taken_over", 0, 4001},
    {"server_shutdown", 0, 1012},
    {"disconnected", 0, 4000},
    {"disconnected_final", 0, 4003},
}};
}  // namespace

const ErrInfo& err_info(Err e) { return kTable[static_cast<size_t>(e)]; }

std::string error_body(Err e, std::string_view message) {
  boost::json::object inner{{"code", err_code(e)}, {"message", message}};
  return boost::json::serialize(boost::json::object{{"error", std::move(inner)}});
}

std::string error_frame_json(Err e, std::string_view message) {
  return boost::json::serialize(
      boost::json::object{{"type", "error"}, {"code", err_code(e)}, {"message", message}});
}

}  // namespace herald
