#include "ws/session.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "core/gateway.hpp"
#include "core/log_limit.hpp"
#include "core/loop.hpp"
#include "ws/session_tls.hpp"

namespace herald::ws {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr std::size_t kReplayPage = 256;
constexpr std::int64_t kCloseTimeoutMs = 3000;
constexpr std::int64_t kEngineRetryMs = 1000;
constexpr std::size_t kMaxIov = 64;

std::shared_ptr<const std::string> shared_frame(Opcode op, std::string_view payload) {
  return std::make_shared<const std::string>(make_frame(op, payload));
}

const std::shared_ptr<const std::string>& ping_frame() {
  static const auto frame = shared_frame(Opcode::ping, {});
  return frame;
}
}  // namespace

void Session::start(Loop& loop, LoopSocket socket, std::string_view early, bool origin_allowed,
                    limits::IpSlot slot) {
  auto s = std::make_shared<Session>(loop, std::move(socket));
  s->slot_ = std::move(slot);
  s->counter_ = loop.add(s);
  s->begin(early, origin_allowed);
}

Session::Session(Loop& loop, LoopSocket socket)
    : loop_(loop), socket_(std::move(socket)), decoder_(loop.gateway().config().max_message_bytes) {
  error_code ec;
  remote_ = socket_.remote_endpoint(ec);
  socket_.non_blocking(true, ec);
  accepted_ms_ = unix_ms();
  loop_.metrics().connections.add(1);
  loop_.metrics().connections_total.add();
  ++loop_.gateway().connection_count();
}

Session::~Session() = default;

std::string Session::session_id() const { return loop_.gateway().session_id(loop_.index(), counter_); }

std::string Session::remote() const {
  return remote_.address().to_string() + ":" + std::to_string(remote_.port());
}

// Engine callbacks may come from any thread: bring them back to this session's loop.
template <class F>
auto Session::on_loop(F&& f) {
  return [self = shared_from_this(), f = std::forward<F>(f)](auto result) mutable {
    asio::post(self->loop_.io(), [self, f = std::move(f), result = std::move(result)]() mutable {
      f(*self, std::move(result));
    });
  };
}

void Session::begin(std::string_view early, bool origin_allowed) {
  auto& gw = loop_.gateway();
  if (!origin_allowed) {
    fail(Err::bad_origin, "this page's origin may not connect (see --allowed-origins)", CloseReason::protocol_error);
    arm_read();
    return;
  }
  if (gw.connection_count().load() > static_cast<std::int64_t>(gw.config().max_connections)) {
    fail(Err::too_many_connections, "this instance holds its maximum of connections", CloseReason::internal_error);
    arm_read();
    return;
  }
  if (gw.draining()) {  // upgraded just as the drain began: it is not on the drain's list
    shutdown();
    arm_read();
    return;
  }
  if (!early.empty()) {
    std::vector<std::uint8_t> copy(early.begin(), early.end());
    consume(copy);
    if (state_ == State::closed) return;
  }
  arm_read();
}

// ---- reading -------------------------------------------------------------------------------

void Session::arm_read() {
  if (state_ == State::closed) return;
  if (tls_) return tls_read();
  socket_.async_wait(asio::ip::tcp::socket::wait_read, [self = shared_from_this()](error_code ec) {
    if (ec) return;  // closed under us
    self->on_readable();
  });
}

void Session::on_readable() {
  auto buf = loop_.read_buffer();
  // Bounded work per wake-up, so one busy client cannot starve the rest of the loop.
  for (int round = 0; round < 4; ++round) {
    if (state_ == State::closed) return;
    error_code ec;
    auto n = socket_.read_some(asio::buffer(buf.data(), buf.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) {  // EOF or reset: the client went away without a close handshake
      terminate(state_ == State::closing ? reason_ : CloseReason::client_closed);
      return;
    }
    consume(buf.first(n));
    if (n < buf.size()) break;
  }
  arm_read();
}

void Session::consume(std::span<std::uint8_t> bytes) {
  if (peer_closed_ || stream_failed_) return;
  auto r = decoder_.feed(bytes, *this);
  if (!r.ok) {
    // The byte stream itself is broken, so nothing more can be read from it (RFC 6455 §7.1.7:
    // fail the connection): say why, close, and drop the TCP connection once that is written.
    stream_failed_ = true;
    Err e = r.close_code == close_code::too_big         ? Err::message_too_big
            : r.close_code == close_code::invalid_payload ? Err::invalid_utf8
                                                          : Err::websocket_protocol;
    fail(e, r.message, CloseReason::protocol_error);
  }
}

void Session::on_message(Opcode op, std::string_view payload) {
  alive_ = true;
  if (state_ == State::closing || state_ == State::closed) return;
  if (op != Opcode::text) {
    fail(Err::unsupported_data, "Herald speaks JSON text frames", CloseReason::protocol_error);
    return;
  }
  auto parsed = parse_client_message(payload);
  if (auto* err = std::get_if<ProtocolError>(&parsed)) {
    fail(err->err, err->message, CloseReason::protocol_error);
    return;
  }
  auto& m = std::get<ClientMessage>(parsed);
  switch (m.kind) {
    case ClientMessage::Kind::hello:
    case ClientMessage::Kind::legacy_hello:
      handle_hello(std::move(m));
      break;
    case ClientMessage::Kind::ack:
      handle_ack(m.ack_id);
      break;
  }
}

void Session::on_ping(std::string_view payload) {
  alive_ = true;
  send(shared_frame(Opcode::pong, payload));
}

void Session::on_pong(std::string_view) { alive_ = true; }

void Session::on_close(std::uint16_t code, std::string_view) {
  peer_closed_ = true;
  if (state_ == State::closing) {  // the answer to our close: done
    terminate(reason_);
    return;
  }
  // The client closes: echo its code (RFC 6455 §5.5.1), then end once the echo is written.
  auto echo = code == close_code::no_status ? close_code::normal : code;
  close_with(echo, "", CloseReason::client_closed);
}

// ---- protocol ------------------------------------------------------------------------------

void Session::handle_hello(ClientMessage&& m) {
  if (state_ != State::awaiting_hello) {
    fail(Err::duplicate_hello, "hello was already said on this connection", CloseReason::protocol_error);
    return;
  }
  auto& gw = loop_.gateway();
  if (gw.draining()) {
    fail(Err::server_shutdown, "this instance is shutting down", CloseReason::server_shutdown);
    return;
  }
  if (auto* verifier = gw.client_jwt()) {
    auto result = m.kind == ClientMessage::Kind::legacy_hello
                      ? jwt::Result{jwt::Failure::missing, "legacy hello is not allowed when client auth is on"}
                      : verifier->verify(m.token, m.client_id, unix_ms() / 1000);
    if (!result.ok()) {
      refuse_client(*result.failure, m.client_id, result.reason);
      return;
    }
  }
  // --hello-rate: a client id in a reconnect loop must not hammer the engine.
  if (gw.limits().hello.take(m.client_id, limits::now_ns()) > 0) {
    loop_.metrics().rate_limited[static_cast<size_t>(Limited::hello)].add();
    fail(Err::rate_limited, "too many hellos for this client id: reconnect with backoff", CloseReason::protocol_error);
    return;
  }
  client_id_ = std::move(m.client_id);
  legacy_ = m.kind == ClientMessage::Kind::legacy_hello;
  if (m.last_id) cursor_ = acked_ = *m.last_id;
  state_ = State::opening;
  connected_ms_ = unix_ms();
  gw.engine().open_session(client_id_, engine::Route{gw.instance_id(), session_id(), connected_ms_},
                           on_loop([](Session& s, engine::Result<engine::SessionOpened> r) {
                             s.on_opened(std::move(r));
                           }));
}

void Session::refuse_client(jwt::Failure why, std::string_view client_id, std::string_view reason) {
  loop_.metrics().client_auth_failures[static_cast<size_t>(why)].add();
  // At most a few lines per second per loop: a client that keeps failing cannot flood the log.
  thread_local LogLimit limit(5, 1000);
  std::uint64_t held_back = 0;
  if (limit.allow(unix_ms(), held_back))
    spdlog::warn("client {} from {} unauthorized ({}): {}{}", client_id, remote(), jwt::failure_name(why), reason,
                 held_back ? fmt::format(" ({} more such lines suppressed)", held_back) : std::string());
  fail(Err::unauthorized, reason, CloseReason::protocol_error);
}

void Session::on_opened(engine::Result<engine::SessionOpened> r) {
  auto& gw = loop_.gateway();
  if (state_ != State::opening) {
    // Closed while the route was being taken: give it back if it is still ours.
    if (r.ok()) gw.engine().close_session(client_id_, session_id(), nullptr);
    return;
  }
  if (!r.ok()) {
    fail(Err::engine_unavailable, "storage is unavailable, try again later", CloseReason::internal_error);
    return;
  }
  state_ = State::open;
  helloed_ = true;

  engine::StatusEvent ev;
  ev.client_id = client_id_;
  ev.instance = gw.instance_id();
  ev.session = session_id();
  ev.remote = remote();
  ev.ts_ms = connected_ms_;
  if (r.value.previous) {
    // Takeover: the older session is still open somewhere; it must close, and only it.
    ev.type = engine::EventType::reconnected;
    ev.previous_instance = r.value.previous->instance;
    ev.offline_ms = 0;
    engine::InstanceMessage kick;
    kick.kind = engine::InstanceMessage::Kind::kick;
    kick.client_id = client_id_;
    kick.session = r.value.previous->session;
    gw.send_to(*r.value.previous, std::move(kick));
  } else if (r.value.last_event) {
    ev.type = engine::EventType::reconnected;
    ev.previous_instance = r.value.last_event->instance;
    ev.offline_ms = std::max<std::int64_t>(0, connected_ms_ - r.value.last_event->ts_ms);
  } else {
    ev.type = engine::EventType::connected;
  }
  gw.record_event(std::move(ev), loop_.metrics());

  if (!legacy_)
    send(std::make_shared<const std::string>(
        make_frame(Opcode::text, welcome_json(session_id(), gw.instance_id(), gw.config().heartbeat_ms))));
  // last_id says the client has processed everything up to it: that is an ack.
  if (!acked_.none()) gw.engine().trim_inbox(client_id_, acked_, nullptr);
  catch_up();
}

void Session::handle_ack(Id id) {
  if (state_ == State::awaiting_hello) {
    fail(Err::hello_required, "say hello first", CloseReason::protocol_error);
    return;
  }
  if (state_ == State::closing || state_ == State::closed) return;
  if (id <= acked_) return;  // an older ack, already covered
  if (first_sent_.none() || id < first_sent_ || id > cursor_) {
    fail(Err::unknown_ack_id, "ack of an id never sent on this session", CloseReason::protocol_error);
    return;
  }
  acked_ = id;
  trim_to(id);
}

void Session::trim_to(Id id) {
  // The counters are atomic: the engine's answer needs no trip back to this loop.
  loop_.gateway().engine().trim_inbox(client_id_, id, [m = &loop_.metrics()](engine::Result<std::uint64_t> r) {
    if (r.ok()) m->notifications_acked.add(r.value);
  });
}

void Session::deliver(const Live& n) {
  if (state_ != State::open && state_ != State::opening) return;  // it waits in the inbox
  if (n.id.none()) {  // non-durable: outside the id chain, sent as it comes
    if (state_ == State::open)
      send(std::make_shared<const std::string>(legacy_ ? make_frame(Opcode::text, *n.data)
                                                       : notification_frame_no_id(n.ts_ms, *n.data)));
    return;
  }
  if (state_ == State::opening || reading_inbox_ || drain_wait_ || catchup_needed_) {
    catchup_needed_ = true;  // the running replay will read it from the inbox
    return;
  }
  if (n.id <= cursor_) return;  // already sent
  if (n.prev == cursor_) {
    send_notification(n.id, n.ts_ms, *n.data);
    return;
  }
  catch_up();  // a gap: something older is still on its way; the inbox has it
}

void Session::send_notification(Id id, std::int64_t ts_ms, const std::string& data) {
  send(std::make_shared<const std::string>(legacy_ ? make_frame(Opcode::text, data)
                                                   : notification_frame(id, ts_ms, data)),
       id);
  if (first_sent_.none()) first_sent_ = id;
  cursor_ = id;
}

void Session::catch_up() {
  if (state_ != State::open) return;
  if (reading_inbox_) {
    catchup_needed_ = true;
    return;
  }
  if (out_bytes_ > loop_.gateway().config().max_queue_bytes / 2) {
    drain_wait_ = true;  // resumed by flush() once the client has read what is queued
    return;
  }
  reading_inbox_ = true;
  catchup_needed_ = false;
  loop_.gateway().engine().read_inbox(
      client_id_, cursor_, kReplayPage,
      on_loop([](Session& s, engine::Result<std::vector<engine::StoredNotification>> r) { s.on_inbox(std::move(r)); }));
}

void Session::on_inbox(engine::Result<std::vector<engine::StoredNotification>> r) {
  reading_inbox_ = false;
  if (state_ != State::open) return;
  if (!r.ok()) {
    catchup_needed_ = true;  // the sweep retries
    retry_at_ms_ = unix_ms() + kEngineRetryMs;
    return;
  }
  auto half = loop_.gateway().config().max_queue_bytes / 2;
  bool more = r.value.size() == kReplayPage;
  for (auto& n : r.value) {
    if (n.id <= cursor_) continue;
    if (out_bytes_ > half) {  // the client reads slower than the inbox: wait for it
      more = true;
      break;
    }
    send_notification(n.id, n.ts_ms, *n.data);
  }
  if (more || catchup_needed_) catch_up();
}

// ---- writing -------------------------------------------------------------------------------

void Session::push(std::shared_ptr<const std::string> frame, Id id) {
  out_bytes_ += frame->size();
  out_.push_back(OutFrame{std::move(frame), id});
  schedule_flush();
}

void Session::send(std::shared_ptr<const std::string> frame, Id id) {
  if (state_ == State::closing || state_ == State::closed) return;
  push(std::move(frame), id);
  if (out_bytes_ > loop_.gateway().config().max_queue_bytes) {
    // The client reads slower than we send. What it has not acked stays in the inbox.
    fail(Err::backpressure, "client is not reading fast enough", CloseReason::backpressure);
  }
}

// Frames queued during one loop turn leave together in one writev.
void Session::schedule_flush() {
  if (flush_posted_ || write_waiting_) return;
  flush_posted_ = true;
  asio::post(loop_.io(), [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->flush();
  });
}

void Session::flush() {
  if (state_ == State::closed || write_waiting_) return;
  if (tls_ && !tls_flush()) return;
  while (out_head_ < out_.size()) {
    std::array<asio::const_buffer, kMaxIov> iov;
    std::size_t k = 0;
    for (auto i = out_head_; i < out_.size() && k < kMaxIov; ++i, ++k) {
      auto& b = *out_[i].bytes;
      auto skip = i == out_head_ ? out_offset_ : 0;
      iov[k] = asio::buffer(b.data() + skip, b.size() - skip);
    }
    error_code ec;
    auto n = socket_.write_some(std::span(iov.data(), k), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      write_waiting_ = true;
      socket_.async_wait(asio::ip::tcp::socket::wait_write, [self = shared_from_this()](error_code ec) {
        self->write_waiting_ = false;
        if (!ec) self->flush();
      });
      return;
    }
    if (ec) {
      terminate(state_ == State::closing ? reason_ : CloseReason::client_closed);
      return;
    }
    written(n);
  }
  // All written: hold no memory while idle.
  std::vector<OutFrame>().swap(out_);
  out_head_ = out_offset_ = out_bytes_ = 0;
  if (legacy_ && written_ > acked_) {
    // Legacy clients never ack: a notification fully written counts as delivered.
    acked_ = written_;
    trim_to(written_);
  }
  if (state_ == State::closing && peer_closed_) {
    terminate(reason_);  // our echo of the client's close is out
    return;
  }
  if (state_ == State::closing && stream_failed_) {
    // Our close is out; nothing more can be read. Half-close so the client sees the end right
    // after our close frame; its EOF (or the close time-out) ends the session.
    error_code ec;
    (tls_ ? tls_->stream.next_layer() : socket_).shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  if (drain_wait_) {
    drain_wait_ = false;
    catch_up();
  }
}

// n more bytes of the queue reached the socket (or the TLS stream): advance past them.
void Session::written(std::size_t n) {
  out_bytes_ -= n;
  while (n > 0) {
    auto& f = out_[out_head_];
    auto left = f.bytes->size() - out_offset_;
    if (n < left) {
      out_offset_ += n;
      break;
    }
    n -= left;
    on_written(f);
    f.bytes.reset();
    ++out_head_;
    out_offset_ = 0;
  }
}

void Session::on_written(const OutFrame& f) {
  if (f.id.none()) return;
  loop_.metrics().notifications_delivered.add();
  if (legacy_ && f.id > written_) written_ = f.id;
}

// ---- closing -------------------------------------------------------------------------------

void Session::fail(Err e, std::string_view message, CloseReason reason) {
  if (state_ == State::closing || state_ == State::closed) return;
  loop_.metrics().errors[static_cast<size_t>(e)].add();
  spdlog::debug("session {} ({}) closing: {}: {}", session_id(), client_id_, err_code(e), message);
  push(shared_frame(Opcode::text, error_frame_json(e, message)));
  close_with(err_info(e).close, err_code(e), reason);
}

void Session::close_with(std::uint16_t code, std::string_view reason_text, CloseReason reason) {
  if (state_ == State::closing || state_ == State::closed) return;
  reason_ = reason;
  push(std::make_shared<const std::string>(make_close_frame(code, reason_text)));
  state_ = State::closing;
  closing_since_ms_ = unix_ms();
}

void Session::kick() {
  fail(Err::taken_over, "a newer session of this client id connected", CloseReason::taken_over);
}

void Session::disconnect(bool reconnect) {
  fail(reconnect ? Err::disconnected : Err::disconnected_final, "disconnected by a service",
       CloseReason::disconnected_by_service);
}

void Session::shutdown() {
  fail(Err::server_shutdown, "server is restarting, reconnect elsewhere", CloseReason::server_shutdown);
}

void Session::end_now() { terminate(CloseReason::server_shutdown); }

void Session::reassert() {
  reassert_needed_ = false;
  if (state_ != State::open) return;
  auto& gw = loop_.gateway();
  gw.engine().reassert_route(client_id_, engine::Route{gw.instance_id(), session_id(), connected_ms_},
                             on_loop([](Session& s, engine::Result<bool> r) {
                               if (!r.ok()) s.reassert_needed_ = true;  // the sweep tries again
                               else if (!r.value) s.kick();  // a newer session took over meanwhile
                               else s.catch_up();  // what was published while nobody listened
                             }));
}

void Session::sweep(std::int64_t now, bool ping_round) {
  auto& cfg = loop_.gateway().config();
  switch (state_) {
    case State::awaiting_hello:
      if (now - accepted_ms_ > cfg.hello_timeout_ms)
        fail(Err::hello_timeout, "no hello in time", CloseReason::protocol_error);
      return;
    case State::closing:
      if (now - closing_since_ms_ > kCloseTimeoutMs) terminate(reason_);
      return;
    case State::opening:
    case State::open:
      if (ping_round) {
        if (!alive_) {
          spdlog::info("session {} ({}) missed its pong: terminated", session_id(), client_id_);
          terminate(CloseReason::heartbeat_timeout);
          return;
        }
        alive_ = false;
        send(ping_frame());
      }
      if (catchup_needed_ && !reading_inbox_ && !drain_wait_ && now >= retry_at_ms_) catch_up();
      if (reassert_needed_) reassert();
      return;
    case State::closed:
      return;
  }
}

void Session::terminate(CloseReason reason) {
  if (state_ == State::closed) return;
  if (state_ != State::closing) reason_ = reason;
  error_code ec;
  if (tls_) tls::close_politely(tls_->stream, shared_from_this());
  else socket_.close(ec);
  finish();
}

void Session::finish() {
  auto self = shared_from_this();  // the loop's reference goes below
  state_ = State::closed;
  std::vector<OutFrame>().swap(out_);
  out_head_ = out_offset_ = out_bytes_ = 0;
  loop_.remove(counter_);
  slot_.reset();
  loop_.metrics().connections.add(-1);
  --loop_.gateway().connection_count();
  if (!helloed_) return;
  auto& gw = loop_.gateway();
  loop_.metrics().disconnects[static_cast<size_t>(reason_)].add();
  auto sid = session_id();
  // Compare-and-delete: a newer session of this client may already own the route.
  gw.engine().close_session(client_id_, sid, nullptr);
  engine::StatusEvent ev;
  ev.type = engine::EventType::disconnected;
  ev.client_id = client_id_;
  ev.instance = gw.instance_id();
  ev.session = std::move(sid);
  ev.remote = remote();
  ev.ts_ms = unix_ms();
  ev.reason = close_reason_name(reason_);
  gw.record_event(std::move(ev), loop_.metrics());
}

}  // namespace herald::ws
