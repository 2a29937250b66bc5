#include "core/protocol.hpp"

#include <boost/json.hpp>
#include <charconv>

#include "core/gateway.hpp"
#include "ws/frame.hpp"

namespace herald {

namespace json = boost::json;

namespace {

ProtocolError bad(Err e, std::string m) { return ProtocolError{e, std::move(m)}; }

std::variant<ClientMessage, ProtocolError> client_id_of(const json::value* v, ClientMessage& m) {
  if (!v || !v->is_string()) return bad(Err::bad_request, "client_id must be a string");
  auto s = v->get_string();
  if (!valid_client_id(s))
    return bad(Err::invalid_client_id, "client ids are 1-128 characters of A-Z a-z 0-9 . _ - @ :");
  m.client_id.assign(s.data(), s.size());
  return m;
}

}  // namespace

std::variant<ClientMessage, ProtocolError> parse_client_message(std::string_view text) {
  json::error_code ec;
  json::parse_options opts;
  opts.max_depth = 16;
  auto v = json::parse(text, ec, {}, opts);
  if (ec) return bad(Err::invalid_json, "message is not valid JSON");
  if (!v.is_object()) return bad(Err::bad_request, "message must be a JSON object");
  auto& o = v.get_object();
  ClientMessage m;
  auto* type = o.if_contains("type");
  if (!type) {
    // The replaced system's hello: {"clientId":"u1"}.
    if (auto* legacy = o.if_contains("clientId")) {
      m.kind = ClientMessage::Kind::legacy_hello;
      return client_id_of(legacy, m);
    }
    return bad(Err::bad_request, "message has no type");
  }
  if (!type->is_string()) return bad(Err::bad_request, "type must be a string");
  auto t = type->get_string();
  if (t == "hello") {
    m.kind = ClientMessage::Kind::hello;
    auto r = client_id_of(o.if_contains("client_id"), m);
    if (std::holds_alternative<ProtocolError>(r)) return r;
    if (auto* tok = o.if_contains("token"); tok && !tok->is_null()) {
      if (!tok->is_string()) return bad(Err::bad_request, "token must be a string");
      m.token.assign(tok->get_string().data(), tok->get_string().size());
    }
    if (auto* last = o.if_contains("last_id"); last && !last->is_null()) {
      if (!last->is_string()) return bad(Err::bad_request, "last_id must be a string");
      auto id = Id::parse(last->get_string());
      if (!id) return bad(Err::bad_request, "last_id must look like <ms>-<seq>");
      m.last_id = *id;
    }
    return m;
  }
  if (t == "ack") {
    m.kind = ClientMessage::Kind::ack;
    auto* id = o.if_contains("id");
    if (!id || !id->is_string()) return bad(Err::bad_request, "ack needs an id string");
    auto parsed = Id::parse(id->get_string());
    if (!parsed) return bad(Err::bad_request, "ack id must look like <ms>-<seq>");
    m.ack_id = *parsed;
    return m;
  }
  return bad(Err::unknown_type, "unknown message type");
}

std::string welcome_json(std::string_view session, std::string_view instance, std::uint32_t heartbeat_ms) {
  return json::serialize(json::object{
      {"type", "welcome"}, {"session", session}, {"instance", instance}, {"heartbeat_ms", heartbeat_ms}});
}

namespace {
std::string frame_of_parts(std::initializer_list<std::string_view> parts) {
  std::size_t n = 0;
  for (auto p : parts) n += p.size();
  std::string out;
  out.reserve(n + ws::frame_header_size(n));
  ws::append_frame_header(out, ws::Opcode::text, n);
  for (auto p : parts) out.append(p);
  return out;
}
}  // namespace

std::string notification_frame(Id id, std::int64_t ts_ms, std::string_view data_json) {
  char ts[24];
  auto r = std::to_chars(ts, ts + sizeof ts, ts_ms);
  auto ids = id.str();
  return frame_of_parts({R"({"type":"notification","id":")", ids, R"(","data":)", data_json, R"(,"ts":)",
                         std::string_view(ts, r.ptr - ts), "}"});
}

std::string notification_frame_no_id(std::int64_t ts_ms, std::string_view data_json) {
  char ts[24];
  auto r = std::to_chars(ts, ts + sizeof ts, ts_ms);
  return frame_of_parts({R"({"type":"notification","data":)", data_json, R"(,"ts":)",
                         std::string_view(ts, r.ptr - ts), "}"});
}

}  // namespace herald
