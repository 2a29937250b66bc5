// One client's WebSocket session: Herald's framing on a raw Asio socket, and the client protocol
// of DESIGN §2 on top (hello, welcome, notifications, acks, errors and close codes).
//
// Memory: an idle session holds no buffer. It waits for readability, reads into its loop's
// shared buffer, and keeps bytes only for a frame that has not fully arrived. Outgoing frames are
// queued (shared, never copied) and written together with one writev when the loop turn ends.
// A TLS session (session_tls.cpp) holds its ssl::stream and a small read buffer in `tls_`, and
// writes the queue through the stream instead; everything above the byte transport is shared.
//
// Delivery invariant: the session sends notification ids in strictly increasing order with no
// gap. `cursor_` is the newest id sent; a live notification goes out at once only when its `prev`
// equals the cursor; otherwise, and during the replay that follows hello, the session reads the
// inbox after the cursor instead, so the inbox is the single source of order.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <vector>

#include "core/errors.hpp"
#include "core/limits.hpp"
#include "core/metrics.hpp"
#include "core/peer.hpp"
#include "core/protocol.hpp"
#include "engine/engine.hpp"
#include "util/loop_socket.hpp"
#include "ws/frame.hpp"

namespace boost::asio::ssl {
template <typename Stream>
class stream;
}

namespace herald {
class Loop;
}

namespace herald::ws {

class Session final : public Peer, public DecoderSink, public std::enable_shared_from_this<Session> {
 public:
  // Creates and registers a session on `loop` for a socket whose 101 response has been written.
  // `early` holds bytes the client sent right after its upgrade request.
  // origin_allowed false: the browser page's Origin is not in --allowed-origins; the session
  // only says so (bad_origin, 1008) and closes, so a client library knows not to retry.
  // slot: the connection's place in its address's count (--max-connections-per-ip).
  static void start(Loop& loop, LoopSocket socket, std::string_view early,
                    bool origin_allowed = true, limits::IpSlot slot = {});
  // The same for a TLS connection (handshake done, 101 written through it).
  static void start(Loop& loop, boost::asio::ssl::stream<LoopSocket>&& tls,
                    std::string_view early, bool origin_allowed = true, limits::IpSlot slot = {});

  Session(Loop& loop, LoopSocket socket);
  ~Session() override;

  // Peer
  void deliver(const Live& n) override;
  void kick() override;
  void disconnect(bool reconnect) override;
  void sweep(std::int64_t now_ms, bool ping_round) override;
  void shutdown() override;
  void reassert() override;
  void end_now() override;

  // DecoderSink
  void on_message(Opcode op, std::string_view payload) override;
  void on_ping(std::string_view payload) override;
  void on_pong(std::string_view payload) override;
  void on_close(std::uint16_t code, std::string_view reason) override;

 private:
  enum class State : std::uint8_t { awaiting_hello, opening, open, closing, closed };
  struct OutFrame {
    std::shared_ptr<const std::string> bytes;
    Id id;  // the notification it carries, none for other frames
  };

  void begin(std::string_view early, bool origin_allowed);
  void arm_read();
  void on_readable();
  void consume(std::span<std::uint8_t> bytes);

  void handle_hello(ClientMessage&& m);
  // A hello whose token was refused: counted, logged (rate-limited), closed with unauthorized.
  void refuse_client(jwt::Failure why, std::string_view client_id, std::string_view reason);
  void on_opened(engine::Result<engine::SessionOpened> r);
  void handle_ack(Id id);
  void trim_to(Id id);  // everything up to id is done: it leaves the inbox
  void catch_up();
  void on_inbox(engine::Result<std::vector<engine::StoredNotification>> r);
  void send_notification(Id id, std::int64_t ts_ms, const std::string& data);

  // Queues a frame, closing with backpressure when the queue is over its bound.
  void send(std::shared_ptr<const std::string> frame, Id id = {});
  // Queues a frame whatever the bound (error and close frames).
  void push(std::shared_ptr<const std::string> frame, Id id = {});
  void schedule_flush();
  void flush();
  void on_written(const OutFrame& f);

  // TLS transport (session_tls.cpp).
  struct TlsLink;
  void tls_read();
  bool tls_flush();  // true once nothing is left to write; else a write is under way
  void written(std::size_t n);  // n bytes of the queue went out (plain and TLS alike)

  void fail(Err e, std::string_view message, CloseReason reason);
  void close_with(std::uint16_t code, std::string_view reason_text, CloseReason reason);
  void terminate(CloseReason reason);
  void finish();

  std::string session_id() const;
  std::string remote() const;
  template <class F>
  auto on_loop(F&& f);

  Loop& loop_;
  LoopSocket socket_;
  std::unique_ptr<TlsLink> tls_;  // TLS sessions only (their socket lives in it, not in socket_)
  Decoder decoder_;
  std::string client_id_;
  std::uint64_t counter_ = 0;
  Id cursor_;       // newest notification id sent on this session
  Id first_sent_;   // oldest notification id sent on this session
  Id acked_;        // newest id acknowledged (or the hello's last_id)
  Id written_;      // legacy: newest id fully written to the socket
  std::int64_t accepted_ms_ = 0;
  std::int64_t connected_ms_ = 0;
  std::int64_t closing_since_ms_ = 0;
  std::int64_t retry_at_ms_ = 0;
  std::vector<OutFrame> out_;
  std::size_t out_head_ = 0;    // first frame not fully written
  std::size_t out_offset_ = 0;  // bytes of out_[out_head_] already written
  std::size_t out_bytes_ = 0;   // bytes queued and not yet written
  boost::asio::ip::tcp::endpoint remote_;
  limits::IpSlot slot_;  // given back when the session ends
  State state_ = State::awaiting_hello;
  CloseReason reason_ = CloseReason::client_closed;
  bool legacy_ = false;
  bool helloed_ = false;         // the route was taken: closing must give it back
  bool alive_ = true;            // a frame arrived since the last ping
  bool flush_posted_ = false;
  bool write_waiting_ = false;
  bool reading_inbox_ = false;
  bool catchup_needed_ = false;  // a live notification arrived while the inbox was being read
  bool drain_wait_ = false;      // catch-up paused until the outgoing queue drains
  bool peer_closed_ = false;     // the client's close frame arrived
  bool stream_failed_ = false;   // the decoder failed: nothing more can be read
  bool reassert_needed_ = false; // the route could not be reasserted yet
};

}  // namespace herald::ws
