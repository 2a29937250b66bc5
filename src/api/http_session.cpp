#include "api/http_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <memory>
#include <optional>
#include <spdlog/spdlog.h>

#include "api/service_api.hpp"
#include "core/gateway.hpp"
#include "core/loop.hpp"
#include "tls/tls.hpp"
#include "ws/handshake.hpp"
#include "ws/session.hpp"

namespace herald::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kLinger = std::chrono::seconds(1);

bool header_has_token(std::string_view value, std::string_view token) {
  // Comma-separated, case-insensitive tokens ("keep-alive, Upgrade").
  while (!value.empty()) {
    auto comma = value.find(',');
    auto part = value.substr(0, comma);
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
    while (!part.empty() && (part.back() == ' ' || part.back() == '\t')) part.remove_suffix(1);
    if (part.size() == token.size() &&
        std::equal(part.begin(), part.end(), token.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
      return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Loop& loop, LoopSocket socket, bool api_only, limits::IpSlot slot, asio::ssl::context* tls)
      : loop_(loop), socket_(std::move(socket)), timer_(loop.io()), slot_(std::move(slot)), api_only_(api_only) {
    error_code ec;
    auto peer = socket_.remote_endpoint(ec);
    loopback_ = !ec && peer.address().is_loopback();
    if (!ec) peer_ = limits::IpKey::of(peer.address());
    if (tls) tls_ = std::make_unique<tls::Stream>(std::move(socket_), *tls);
  }

  // TLS: the handshake first, bounded like a WebSocket hello; a failure is counted and closes.
  void start() {
    if (!tls_) return read();
    handshaking_ = true;
    arm_timer(std::chrono::milliseconds(loop_.gateway().config().hello_timeout_ms));
    tls_->async_handshake(asio::ssl::stream_base::server, [self = shared_from_this()](error_code ec) {
      self->timer_.cancel();
      self->handshaking_ = false;
      if (ec) {
        self->loop_.metrics().tls_handshake_failures.add();
        spdlog::debug("TLS handshake failed: {}", ec.message());
        return self->close();
      }
      self->read();
    });
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(loop_.gateway().config().max_body_bytes);
    parser_->header_limit(loop_.gateway().config().max_header_bytes);
    arm_timer(std::chrono::milliseconds(loop_.gateway().config().http_timeout_ms));
    with_stream([&](auto& stream) {
      http::async_read(stream, buffer_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) {
        self->on_read(ec);
      });
    });
  }

 private:
  // The TCP socket, under TLS or not.
  LoopSocket& lowest() { return tls_ ? tls_->next_layer() : socket_; }
  // Runs f on the stream HTTP is spoken over.
  template <class F>
  void with_stream(F&& f) {
    if (tls_) f(*tls_);
    else f(socket_);
  }

  // One bound for the whole request (or the TLS handshake), not for the gap between bytes: a
  // client that trickles its header (slowloris) is closed as surely as one that sends nothing.
  void arm_timer(std::chrono::steady_clock::duration after) {
    timer_.expires_after(after);
    timer_.async_wait([self = weak_from_this()](error_code ec) {
      if (ec) return;
      auto s = self.lock();
      if (!s) return;
      // An idle keep-alive connection closing after a complete request is no time-out; a TLS
      // handshake that did not finish is counted as a handshake failure instead.
      if (!s->handshaking_ &&
          (!s->served_ || s->buffer_.size() > 0 || (s->parser_ && s->parser_->got_some())))
        s->loop_.metrics().http_timeouts.add();
      s->lowest().close(ec);
    });
  }

  void on_read(error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset)
      return close();
    if (ec == http::error::body_limit) {
      auto route = parser_->is_header_done() ? classify(std::string(parser_->get().method_string()),
                                                        std::string(parser_->get().target()))
                                             : ApiRoute::other;
      return reply(route, error_response(Err::body_too_large, "request body is over the limit"), true);
    }
    if (ec == http::error::header_limit)
      return reply(ApiRoute::other, error_response(Err::header_too_large, "request header is over --max-header-bytes"), true);
    if (ec) return reply(ApiRoute::other, error_response(Err::bad_request, "malformed HTTP request"), true);

    served_ = true;
    auto& req = parser_->get();
    auto target = std::string(req.target());
    auto path = std::string_view(target).substr(0, target.find('?'));
    bool upgrade = header_has_token(req[http::field::upgrade], "websocket");
    if (upgrade && !api_only_ && (path == "/v1/ws" || path == "/")) return accept_websocket();
    if (upgrade) return reply(ApiRoute::websocket, error_response(Err::not_found, "WebSocket endpoint is /v1/ws"), true);

    ApiRequest r;
    r.method = std::string(req.method_string());
    r.target = std::move(target);
    r.body = std::move(req.body());
    r.authorization = std::string(req[http::field::authorization]);
    r.peer_is_loopback = loopback_;
    r.peer = peer_;
    keep_alive_ = req.keep_alive();
    auto route = classify(r.method, r.target);
    timer_.cancel();
    handle(loop_.gateway(), loop_, std::move(r), [self = shared_from_this(), route](ApiResponse resp) {
      // Engine callbacks may run elsewhere; the socket belongs to this loop.
      asio::dispatch(self->loop_.io(), [self, route, resp = std::move(resp)]() mutable {
        self->reply(route, std::move(resp), !self->keep_alive_);
      });
    });
  }

  void accept_websocket() {
    auto& req = parser_->get();
    auto key = std::string(req[http::field::sec_websocket_key]);
    if (req.method() != http::verb::get || !header_has_token(req[http::field::connection], "upgrade"))
      return reply(ApiRoute::websocket, error_response(Err::bad_request, "not a WebSocket upgrade"), true);
    if (req[http::field::sec_websocket_version] != "13") {
      auto r = error_response(Err::bad_request, "WebSocket version 13 required");
      r.status = 426;
      r.headers.emplace_back("Sec-WebSocket-Version", "13");
      return reply(ApiRoute::websocket, std::move(r), true);
    }
    if (!ws::valid_client_key(key))
      return reply(ApiRoute::websocket, error_response(Err::bad_request, "bad Sec-WebSocket-Key"), true);
    if (loop_.gateway().draining()) {
      auto r = error_response(Err::server_shutdown, "this instance is shutting down");
      r.status = 503;
      r.headers.emplace_back("Retry-After", "1");
      return reply(ApiRoute::websocket, std::move(r), true);
    }
    loop_.metrics().count_http(ApiRoute::websocket, 101);
    timer_.cancel();
    // Browsers always send Origin; other clients may not, and are not pages a site can abuse.
    bool origin_ok = true;
    if (auto& allowed = loop_.gateway().config().allowed_origins; !allowed.empty()) {
      auto origin = req[http::field::origin];
      origin_ok = origin.empty() || std::find(allowed.begin(), allowed.end(), origin) != allowed.end();
    }
    loop_.upgrade_begun();
    auto response = std::make_shared<std::string>(ws::switching_protocols_response(key));
    with_stream([&](auto& stream) {
      asio::async_write(stream, asio::buffer(*response),
                        [self = shared_from_this(), response, origin_ok](error_code ec, std::size_t) {
                          self->timer_.cancel();
                          self->loop_.upgrade_done();
                          if (ec) return;
                          // Bytes the client sent after its request belong to the WebSocket.
                          auto early = self->buffer_.data();
                          std::string_view bytes(static_cast<const char*>(early.data()), early.size());
                          if (self->tls_)
                            ws::Session::start(self->loop_, std::move(*self->tls_), bytes, origin_ok,
                                               std::move(self->slot_));
                          else
                            ws::Session::start(self->loop_, std::move(self->socket_), bytes, origin_ok,
                                               std::move(self->slot_));
                        });
    });
  }

  void reply(ApiRoute route, ApiResponse r, bool close_after) {
    loop_.metrics().count_http(route, r.status);
    if (r.error) loop_.metrics().errors[static_cast<size_t>(*r.error)].add();
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), 11);
    res->set(http::field::server, "herald");
    res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res->set(k, v);
    res->body() = std::move(r.body);
    res->keep_alive(!close_after);
    res->prepare_payload();
    with_stream([&](auto& stream) {
      http::async_write(stream, *res, [self = shared_from_this(), res, close_after](error_code ec, std::size_t) {
        if (ec) return self->close();
        if (close_after) return self->linger();
        self->read();
      });
    });
  }

  // After an error answer the client may still be sending: stop writing, read and discard for
  // a moment, then close, so it sees our answer instead of a reset.
  // TLS: close_notify goes out first, then the same happens on the TCP socket underneath.
  void linger() {
    timer_.expires_after(kLinger);
    timer_.async_wait([self = shared_from_this()](error_code) { self->close(); });
    if (tls_) {
      auto* ssl = tls_->native_handle();
      SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);  // send ours, wait for none
      tls_->async_shutdown([self = shared_from_this()](error_code ec) {
        if (ec) return self->close();
        self->half_close_and_discard();
      });
      return;
    }
    half_close_and_discard();
  }

  void half_close_and_discard() {
    error_code ec;
    lowest().shutdown(tcp::socket::shutdown_send, ec);
    discard();
  }

  void discard() {
    auto scratch = loop_.read_buffer();  // nothing read here is kept
    lowest().async_read_some(asio::buffer(scratch.data(), scratch.size()), [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->close();
      self->discard();
    });
  }

  void close() {
    error_code ec;
    timer_.cancel();
    lowest().close(ec);
  }

  Loop& loop_;
  LoopSocket socket_;
  std::unique_ptr<tls::Stream> tls_;  // TLS connections only; it then owns the socket
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  asio::steady_timer timer_;
  limits::IpSlot slot_;
  limits::IpKey peer_;
  bool api_only_;
  bool served_ = false;  // a complete request arrived on this connection
  bool handshaking_ = false;  // the TLS handshake is under way
  bool loopback_ = false;
  bool keep_alive_ = true;
};

}  // namespace

void start_http_session(Loop& loop, LoopSocket socket, bool api_only, limits::IpSlot slot,
                        asio::ssl::context* tls) {
  error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  std::make_shared<HttpSession>(loop, std::move(socket), api_only, std::move(slot), tls)->start();
}

}  // namespace herald::api
