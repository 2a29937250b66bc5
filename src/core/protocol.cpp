#include "core/protocol.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <limits>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

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

namespace {
std::optional<std::string> base64url_decode(std::string_view in) {
  std::string b64(in);
  for (auto& c : b64) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (c == '+' || c == '/' || c == '=') return std::nullopt;
  }
  while (b64.size() % 4) b64 += '=';
  std::string out(b64.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0) return std::nullopt;
  auto pad = b64.size() - b64.find_last_not_of('=') - 1;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::optional<std::int64_t> claim_time(const json::object& o, const char* name, bool& bad_type) {
  auto* v = o.if_contains(name);
  if (!v) return std::nullopt;
  // Clamped into int64 range: a huge exp means "far future", never a wrapped past.
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return v->get_uint64() > static_cast<std::uint64_t>(kMax) ? kMax : static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) {
    auto d = v->get_double();
    if (std::isnan(d)) {
      bad_type = true;
      return std::nullopt;
    }
    if (d >= 9.2e18) return kMax;
    if (d <= -9.2e18) return kMin;
    return static_cast<std::int64_t>(d);
  }
  bad_type = true;
  return std::nullopt;
}
}  // namespace

std::string verify_jwt_hs256(std::string_view token, std::string_view secret, std::string_view client_id,
                             std::int64_t now_s) {
  constexpr std::int64_t kLeewayS = 30;
  if (token.empty()) return "token missing";
  if (token.size() > 8192) return "token too long";
  auto d1 = token.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return "token is not a JWT";
  auto header = base64url_decode(token.substr(0, d1));
  auto payload = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
  auto sig = base64url_decode(token.substr(d2 + 1));
  if (!header || !payload || !sig) return "token is not base64url";
  json::error_code ec;
  auto h = json::parse(*header, ec);
  if (ec || !h.is_object()) return "token header is not JSON";
  auto* alg = h.get_object().if_contains("alg");
  if (!alg || !alg->is_string() || alg->get_string() != "HS256") return "token alg must be HS256";
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  auto signed_part = token.substr(0, d2);
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac, &mac_len);
  if (sig->size() != mac_len || CRYPTO_memcmp(sig->data(), mac, mac_len) != 0) return "token signature invalid";
  auto p = json::parse(*payload, ec);
  if (ec || !p.is_object()) return "token payload is not JSON";
  auto& claims = p.get_object();
  auto* sub = claims.if_contains("sub");
  if (!sub || !sub->is_string() || sub->get_string() != client_id) return "token sub is not this client id";
  bool bad_type = false;
  auto exp = claim_time(claims, "exp", bad_type);
  auto nbf = claim_time(claims, "nbf", bad_type);
  if (bad_type) return "token exp/nbf must be numbers";
  if (exp && now_s - kLeewayS > *exp) return "token expired";
  if (nbf && now_s + kLeewayS < *nbf) return "token not yet valid";
  return {};
}

}  // namespace herald
