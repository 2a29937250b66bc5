// beast_interop_client: a Herald client written with Boost.Beast's WebSocket stream, so Herald's
// own framing and handshake are checked against an independent implementation.
//
//   beast_interop_client <port> <client_id> <count>
//
// Connects to ws://127.0.0.1:<port>/v1/ws, sends the hello split into many small continuation
// frames (auto_fragment with a tiny write buffer), sends a ping, reads the welcome, then reads
// <count> notifications checking that their ids strictly increase, acks the last one and closes
// with 1000, checking that the server answers the close with 1000 too.
// Prints one JSON line: {"ok":true,"received":N,...} and exits 0; on any failure prints
// {"ok":false,"error":"..."} (and the reason on stderr) and exits 1. A watchdog ends a run that
// hangs after 30 s, so a broken server cannot stall a test suite.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kWatchdog = std::chrono::seconds(30);
constexpr std::string_view kPingPayload = "herald-interop";

void fail_and_exit(const std::string& why) {
  std::cerr << "beast_interop_client: " << why << "\n";
  std::cout << json::serialize(json::object{{"ok", false}, {"error", why}}) << std::endl;
  std::_Exit(1);  // also called from the watchdog thread: no destructors racing the main thread
}

// "<ms>-<seq>" as a comparable pair; throws on anything else.
std::pair<std::uint64_t, std::uint64_t> parse_id(std::string_view s) {
  auto dash = s.find('-');
  if (dash == std::string_view::npos) throw std::runtime_error("id without '-': " + std::string(s));
  std::uint64_t ms = 0, seq = 0;
  auto a = std::from_chars(s.data(), s.data() + dash, ms);
  auto b = std::from_chars(s.data() + dash + 1, s.data() + s.size(), seq);
  if (a.ec != std::errc{} || a.ptr != s.data() + dash || b.ec != std::errc{} || b.ptr != s.data() + s.size() ||
      dash == 0 || dash + 1 == s.size())
    throw std::runtime_error("malformed id: " + std::string(s));
  return {ms, seq};
}

json::object read_object(websocket::stream<tcp::socket>& ws, beast::flat_buffer& buf, const char* what) {
  buf.clear();
  ws.read(buf);
  if (!ws.got_text()) throw std::runtime_error(std::string(what) + ": expected a text frame");
  auto text = beast::buffers_to_string(buf.data());
  json::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) throw std::runtime_error(std::string(what) + ": not a JSON object: " + text);
  return std::move(v.as_object());
}

std::string string_field(const json::object& o, const char* name, const char* what) {
  auto* v = o.if_contains(name);
  if (!v || !v->is_string()) throw std::runtime_error(std::string(what) + ": no string \"" + name + "\"");
  return std::string(v->get_string());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: beast_interop_client <port> <client_id> <count>\n";
    return 2;
  }
  const std::string port = argv[1];
  const std::string client_id = argv[2];
  long count = std::strtol(argv[3], nullptr, 10);
  if (count < 0) fail_and_exit("count must be >= 0");

  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, kWatchdog, [&] { return finished; }))
      fail_and_exit("timed out after 30 s");
  });

  json::object result;
  try {
    asio::io_context io;
    tcp::resolver resolver(io);
    websocket::stream<tcp::socket> ws(io);
    asio::connect(ws.next_layer(), resolver.resolve("127.0.0.1", port));
    ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
      req.set(beast::http::field::user_agent, "beast_interop_client");
    }));
    ws.handshake("127.0.0.1:" + port, "/v1/ws");  // Beast checks Sec-WebSocket-Accept

    int pongs = 0;
    bool pong_payload_ok = true;
    ws.control_callback([&](websocket::frame_type kind, beast::string_view payload) {
      if (kind != websocket::frame_type::pong) return;
      ++pongs;
      if (payload != kPingPayload) pong_payload_ok = false;
    });

    // The hello in many frames: 8 bytes is the smallest write buffer Beast allows, and with
    // auto_fragment every buffer-full becomes its own frame (text, then continuations).
    ws.auto_fragment(true);
    ws.write_buffer_bytes(8);
    ws.text(true);
    auto hello = json::serialize(json::object{{"type", "hello"}, {"client_id", client_id}});
    ws.write(asio::buffer(hello));
    ws.ping(websocket::ping_data(kPingPayload.data(), kPingPayload.size()));

    beast::flat_buffer buf;
    auto welcome = read_object(ws, buf, "welcome");
    if (string_field(welcome, "type", "welcome") != "welcome")
      throw std::runtime_error("first message is not a welcome: " + json::serialize(welcome));
    string_field(welcome, "session", "welcome");
    string_field(welcome, "instance", "welcome");

    std::pair<std::uint64_t, std::uint64_t> last{0, 0};
    std::string last_text;
    long received = 0;
    while (received < count) {
      auto n = read_object(ws, buf, "notification");
      if (string_field(n, "type", "notification") != "notification")
        throw std::runtime_error("expected a notification, got " + json::serialize(n));
      auto id_text = string_field(n, "id", "notification");
      auto id = parse_id(id_text);
      if (!(id > last))
        throw std::runtime_error("ids not strictly increasing: " + id_text + " after " + last_text);
      if (!n.contains("data") || !n.contains("ts"))
        throw std::runtime_error("notification without data or ts: " + json::serialize(n));
      last = id;
      last_text = std::move(id_text);
      ++received;
    }

    if (received > 0) {
      auto ack = json::serialize(json::object{{"type", "ack"}, {"id", last_text}});
      ws.write(asio::buffer(ack));
    }

    // Close with 1000: Beast sends the close frame, reads until the server's close arrives
    // (answering any ping on the way) and then shuts the TCP connection.
    ws.close(websocket::close_reason(websocket::close_code::normal, "done"));
    auto code = static_cast<int>(ws.reason().code);
    if (code != 1000) throw std::runtime_error("server answered the close with " + std::to_string(code));
    if (pongs < 1) throw std::runtime_error("no pong for the ping");
    if (!pong_payload_ok) throw std::runtime_error("pong payload differs from the ping's");

    result = json::object{{"ok", true},       {"received", received}, {"last_id", last_text},
                          {"pongs", pongs},   {"close_code", code},
                          {"session", welcome.at("session")}};
  } catch (const beast::system_error& e) {
    fail_and_exit(std::string("websocket error: ") + e.code().message() + " (" + e.what() + ")");
  } catch (const std::exception& e) {
    fail_and_exit(e.what());
  }

  {
    std::lock_guard lock(mu);
    finished = true;
  }
  cv.notify_all();
  watchdog.join();
  std::cout << json::serialize(result) << std::endl;
  return 0;
}
