// The client protocol's messages (DESIGN §2): parsing what a client sends, and building what
// Herald sends, as JSON text. Pure functions, no I/O, so they are tested and fuzzed directly.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/errors.hpp"
#include "core/ids.hpp"

namespace herald {

struct ClientMessage {
  enum class Kind { hello, legacy_hello, ack } kind = Kind::hello;
  std::string client_id;       // hello, legacy_hello
  std::string token;           // hello (empty = none)
  std::optional<Id> last_id;   // hello
  Id ack_id;                   // ack
};

struct ProtocolError {
  Err err;
  std::string message;
};

std::variant<ClientMessage, ProtocolError> parse_client_message(std::string_view text);

std::string welcome_json(std::string_view session, std::string_view instance, std::uint32_t heartbeat_ms);

// A complete WebSocket text frame carrying {"type":"notification","id":…,"data":…,"ts":…}.
std::string notification_frame(Id id, std::int64_t ts_ms, std::string_view data_json);
// A frame for a notification without an id (non-durable).
std::string notification_frame_no_id(std::int64_t ts_ms, std::string_view data_json);

}  // namespace herald
