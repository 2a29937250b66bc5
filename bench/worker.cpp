// The worker: event loops full of WebSocket clients. See worker.hpp for the conversation with the
// controller.
//
// Each client is a coroutine on its loop: connect (bound to its source address), upgrade, hello,
// then read until the connection ends. Reads go into one buffer per loop (an idle client holds no
// buffer); only the tail of a frame that has not fully arrived is kept per client. Acks are
// cumulative and batched: at once after `ack_every` notifications, otherwise by the loop's ack
// sweep every `ack_ms`, which visits only the clients that received something since the last one.
#include "worker.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <cstring>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "checks.hpp"
#include "clock.hpp"
#include "histogram.hpp"
#include "ws_wire.hpp"

namespace bench {

namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using asio::awaitable;
using boost::system::error_code;

namespace {

constexpr std::size_t kBufCap = 1 << 20;        // per loop
constexpr std::size_t kReadMax = 256 * 1024;    // one read_some
constexpr std::size_t kMaxPayload = 512 * 1024; // larger server frames are a protocol error here
constexpr std::uint64_t kMaxSeq = 1ull << 26;   // bitmap bound per client (64 Mi seqs)

std::mutex g_out_mu;

void emit(const json::object& o) {
  auto s = json::serialize(o);
  s += '\n';
  std::lock_guard lock(g_out_mu);
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

// Single-writer counters the reporter thread may read at any time.
using Counter = std::atomic<std::uint64_t>;
inline void bump(Counter& c, std::uint64_t n = 1) { c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }

struct Spec {
  tcp::endpoint target;
  std::string host_port;
  std::uint64_t first = 0, count = 0;
  std::string prefix;
  std::vector<asio::ip::address_v4> sources;
  unsigned threads = 1;
  unsigned connect_inflight = 256;
  unsigned ack_every = 32;
  unsigned ack_ms = 5;
  unsigned deadline_s = 600;
  bool legacy = false;
  std::vector<tcp::endpoint> spread;  // more servers: client i connects to [target, spread...][i mod n]
};

Spec parse_spec(const json::object& o) {
  Spec s;
  auto host = json::value_to<std::string>(o.at("host"));
  auto port = o.at("port").to_number<unsigned short>();
  s.target = tcp::endpoint(asio::ip::make_address_v4(host), port);
  s.host_port = host + ":" + std::to_string(port);
  s.first = o.at("first").to_number<std::uint64_t>();
  s.count = o.at("count").to_number<std::uint64_t>();
  s.prefix = json::value_to<std::string>(o.at("prefix"));
  for (auto& a : o.at("sources").get_array()) s.sources.push_back(asio::ip::make_address_v4(a.get_string()));
  if (s.sources.empty()) s.sources.push_back(asio::ip::make_address_v4("127.0.0.1"));
  s.threads = std::max(1u, o.at("threads").to_number<unsigned>());
  s.connect_inflight = std::max(1u, o.at("connect_inflight").to_number<unsigned>());
  s.ack_every = std::max(1u, o.at("ack_every").to_number<unsigned>());
  s.ack_ms = std::max(1u, o.at("ack_ms").to_number<unsigned>());
  s.deadline_s = std::max(1u, o.at("deadline_s").to_number<unsigned>());
  if (auto* l = o.if_contains("legacy")) s.legacy = l->as_bool();
  if (auto* sp = o.if_contains("spread"))
    for (auto& t : sp->get_array()) {
      auto& a = t.get_array();
      s.spread.emplace_back(asio::ip::make_address_v4(a[0].get_string()), a[1].to_number<unsigned short>());
    }
  return s;
}

struct Loop;

// One WebSocket client: its socket, its outgoing bytes, and everything it checks.
struct Conn {
  enum class State : std::uint8_t { idle, opening, ready, closing, closed };

  Conn(Loop& l, std::uint64_t i, std::string id, asio::io_context& io)
      : loop(l), index(i), client_id(std::move(id)), sock(io) {}

  Loop& loop;
  std::uint64_t index;
  std::string client_id;
  tcp::socket sock;
  std::uint32_t gen = 0;  // bumped per socket; stale write completions compare it
  State state = State::idle;
  bool counted = false;   // reported to the connect phase (ready or failed)
  bool close_sent = false;
  bool churning = false;    // say hello, then close at once
  std::uint64_t open_start_us = 0;
  std::uint32_t attempts = 0;
  std::uint16_t target = 0;  // 0: the spec's target; i > 0: the loop's rehome_targets[i - 1]
  bool moving = false;       // lost its server in rehome mode and is connecting to another
  bool rehomed_once = false;
  std::uint64_t lost_at = 0;  // when the server it is moving away from was lost

  std::string tail;  // an incomplete frame (or HTTP head) between reads
  std::string frag;  // a fragmented message in flight (Herald does not fragment; handled anyway)
  std::string out, inflight;
  bool writing = false;

  bool has_last = false;
  bool dirty = false;
  std::uint32_t unacked = 0;
  std::uint64_t last_ms = 0, last_seq = 0;

  std::vector<std::uint64_t> seen;  // bitmap of received seqs
  std::uint64_t unique = 0, dups = 0, ooo = 0, misrouted = 0, hsum = 0;
};

struct Loop {
  Loop(const Spec& s, unsigned id) : spec(s), index(id), buf(kBufCap), ack_timer(io) {}

  const Spec& spec;
  unsigned index;
  asio::io_context io{1};
  std::vector<char> buf;
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<Conn*> dirty;
  asio::steady_timer ack_timer;
  std::thread thread;
  std::uint32_t mask_state = 0x9E3779B9u;

  Histogram latency;      // notification: receive - send stamp
  Histogram latency_write;  // receive - when the request was actually written (differs at a rate)
  Histogram connect_lat;  // connect start -> welcome
  std::map<int, std::uint64_t> close_codes;  // close codes the server sent
  std::map<std::string, std::uint64_t> error_codes;

  Counter opened{0}, ready{0}, failed{0}, received{0}, unique{0}, errors{0}, closed{0}, connects{0};
  Counter first_rx{0}, last_rx{0}, first_start{0}, last_ready{0}, churners_done{0};
  // dropped: moves started (a connection lost in rehome mode; a client may lose its new server
  // too); moved: moves finished (welcomed elsewhere); rehomed: clients welcomed elsewhere at
  // least once. dropped - moved clients are between servers now.
  Counter dropped{0}, moved{0}, rehomed{0}, last_rehome{0};
  std::size_t next_open = 0;
  unsigned inflight = 0;
  bool stopping = false;

  // Rehome mode (the storm scenario): a held client whose connection ends reconnects, as a client
  // library would, to one of these, after a random delay up to rehome_jitter_ms (then backing off
  // exponentially up to 2 s while connecting fails), and resumes with last_id.
  std::vector<tcp::endpoint> rehome_targets;
  unsigned rehome_jitter_ms = 0;
  bool rehome = false;
  Histogram rehome_lat;  // connection lost -> welcome from the new server

  std::uint32_t next_mask() {
    mask_state ^= mask_state << 13;
    mask_state ^= mask_state >> 17;
    mask_state ^= mask_state << 5;
    return mask_state;
  }

  void run() {
    thread = std::thread([this] {
      auto guard = asio::make_work_guard(io);
      arm_ack_sweep();
      io.run();
    });
  }

  // ---- writing ---------------------------------------------------------------------------------
  void send_frame(Conn& c, ws::Opcode op, std::string_view payload) {
    ws::append_frame(c.out, op, payload, next_mask());
    flush(c);
  }

  void flush(Conn& c) {
    if (c.writing || c.out.empty()) return;
    c.writing = true;
    c.inflight.swap(c.out);
    c.out.clear();
    asio::async_write(c.sock, asio::buffer(c.inflight), [this, &c, g = c.gen](error_code ec, std::size_t) {
      if (g != c.gen) return;
      c.writing = false;
      c.inflight.clear();
      if (ec) return;  // the read side sees the failure and ends the connection
      flush(c);
    });
  }

  void send_ack(Conn& c) {
    if (!c.has_last || c.state != Conn::State::ready) return;
    char text[96];
    int n = std::snprintf(text, sizeof text, "{\"type\":\"ack\",\"id\":\"%llu-%llu\"}",
                          static_cast<unsigned long long>(c.last_ms), static_cast<unsigned long long>(c.last_seq));
    c.unacked = 0;
    send_frame(c, ws::text, std::string_view(text, static_cast<std::size_t>(n)));
  }

  void arm_ack_sweep() {
    ack_timer.expires_after(std::chrono::milliseconds(spec.ack_ms));
    ack_timer.async_wait([this](error_code ec) {
      if (ec) return;
      for (Conn* c : dirty) {
        c->dirty = false;
        if (c->unacked) send_ack(*c);
      }
      dirty.clear();
      arm_ack_sweep();
    });
  }

  // ---- the connect phase -------------------------------------------------------------------------
  // Starts clients until `connect_inflight` are opening at once; each one that finishes opening
  // (welcomed or given up) lets the next one start.
  void start_connect_phase() {
    unsigned per_loop = std::max(1u, spec.connect_inflight / spec.threads);
    if (!first_start.load()) first_start.store(now_us());
    while (inflight < per_loop && next_open < conns.size()) {
      ++inflight;
      asio::co_spawn(io, hold(*conns[next_open++]), asio::detached);
    }
  }

  void finish_opening(Conn& c, bool ok) {
    if (c.counted) return;
    c.counted = true;
    if (c.churning) return;  // churn loops count their own rounds
    if (ok) {
      bump(ready);
      last_ready.store(now_us(), std::memory_order_relaxed);
    } else {
      bump(failed);
    }
    bump(opened);
    --inflight;
    start_connect_phase();
  }

  // A client held open: connect (a few tries), then read until the connection ends.
  awaitable<void> hold(Conn& c) {
    bool ok = false;
    for (c.attempts = 0; c.attempts < 3 && !ok && !stopping; ++c.attempts) {
      if (c.attempts) co_await sleep_ms(200);
      ok = co_await open(c);
    }
    if (!ok) {
      finish_opening(c, false);
      co_return;
    }
    co_await read_until_end(c);
    if (!c.counted) finish_opening(c, false);  // ended before its welcome
    while (rehome && !stopping) {
      // Lost the server: move to another one as a client library would. A connection that ends
      // before its welcome (the hello refused, say) is the same move, tried again.
      if (!c.moving) {
        bump(dropped);
        c.moving = true;
        c.lost_at = now_us();
      }
      auto lost_at = c.lost_at;
      unsigned backoff = rehome_jitter_ms;
      bool moved = false;
      for (unsigned tries = 0; !moved && !stopping && tries < 50; ++tries) {
        co_await sleep_ms(backoff ? static_cast<int>(next_mask() % (backoff + 1)) : 0);
        c.target = static_cast<std::uint16_t>(1 + (c.index + tries) % rehome_targets.size());
        moved = co_await open(c, lost_at);
        backoff = std::min(2000u, std::max(100u, backoff * 2));
      }
      if (!moved) {
        ++error_codes["rehome: could not reconnect"];
        co_return;
      }
      co_await read_until_end(c);
    }
  }

  // Starts one churn loop per client of this loop.
  void start_churn(std::uint64_t until_us) {
    for (auto& c : conns) asio::co_spawn(io, churn_rounds(*c, until_us), asio::detached);
  }

  // One churn loop: connect, hello, welcome, close, again, until `until_us`.
  awaitable<void> churn_rounds(Conn& c, std::uint64_t until_us) {
    c.churning = true;
    while (now_us() < until_us && !stopping) {
      bool ok = co_await open(c);  // not `if (!co_await …)`: GCC 12 miscompiles that
      if (!ok) {
        bump(errors);
        co_await sleep_ms(10);
        continue;
      }
      c.counted = false;
      co_await read_until_end(c);
      if (c.counted) bump(connects);
      else bump(errors);
      reset_socket(c);
      ++c.attempts;
    }
    bump(churners_done);
  }

  awaitable<void> sleep_ms(int ms) {
    asio::steady_timer t(io, std::chrono::milliseconds(ms));
    error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  void reset_socket(Conn& c) {
    error_code ec;
    c.sock.close(ec);
    ++c.gen;
    c.writing = false;
    c.out.clear();
    c.inflight.clear();
    c.tail.clear();
    c.frag.clear();
    c.close_sent = false;
    c.unacked = 0;
  }

  // Connects, upgrades and says hello. True when the hello is on its way.
  awaitable<bool> open(Conn& c, std::uint64_t started_us = 0) {
    reset_socket(c);
    c.state = Conn::State::opening;
    c.open_start_us = started_us ? started_us : now_us();
    const auto& target = c.target ? rehome_targets[c.target - 1] : spec.target;
    error_code ec;
    c.sock.open(tcp::v4(), ec);
    if (ec) co_return fail(c, "socket");
    // Let connect() pick the port for the whole 4-tuple, so each source address has its own
    // range of ~28k ephemeral ports towards one destination.
    int one = 1;
    ::setsockopt(c.sock.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    auto& src = spec.sources[(c.index + c.attempts) % spec.sources.size()];
    c.sock.bind(tcp::endpoint(src, 0), ec);
    if (ec) co_return fail(c, "bind");
    co_await c.sock.async_connect(target, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return fail(c, "connect");
    c.sock.set_option(tcp::no_delay(true), ec);
    c.sock.non_blocking(true, ec);
    c.out = ws::upgrade_request(spec.host_port);
    flush(c);
    // The response head; anything after it is already WebSocket frames (kept in c.tail).
    std::size_t end = std::string::npos;
    while (end == std::string::npos) {
      co_await c.sock.async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return fail(c, "upgrade");
      char tmp[4096];
      std::size_t n = c.sock.read_some(asio::buffer(tmp), ec);
      if (ec == asio::error::would_block) continue;
      if (ec) co_return fail(c, "upgrade");
      c.tail.append(tmp, n);
      end = c.tail.find("\r\n\r\n");
      if (end == std::string::npos && c.tail.size() > 16384) co_return fail(c, "upgrade");
    }
    std::string why;
    if (!ws::upgrade_accepted(std::string_view(c.tail).substr(0, end + 4), why)) {
      ++error_codes["upgrade: " + why.substr(0, 60)];
      co_return fail(c, nullptr);
    }
    c.tail.erase(0, end + 4);
    if (spec.legacy) {
      // The replaced system's hello; it answers nothing, so the client counts as ready now.
      std::string hello = "{\"clientId\":\"" + c.client_id + "\"}";
      send_frame(c, ws::text, hello);
      became_ready(c);
      co_return true;
    }
    // Resumes after the newest notification it holds, as a client library does on a reconnect.
    std::string hello = "{\"type\":\"hello\",\"client_id\":\"" + c.client_id + "\"";
    if (c.has_last)
      hello += ",\"last_id\":\"" + std::to_string(c.last_ms) + "-" + std::to_string(c.last_seq) + "\"";
    hello += "}";
    send_frame(c, ws::text, hello);
    co_return true;
  }

  bool fail(Conn& c, const char* what) {
    if (what) ++error_codes[what];
    reset_socket(c);
    c.state = Conn::State::closed;
    return false;
  }

  // ---- reading -----------------------------------------------------------------------------------
  awaitable<void> read_until_end(Conn& c) {
    error_code ec;
    if (!c.tail.empty()) {
      std::string first;
      first.swap(c.tail);
      if (!consume(c, first.data(), first.size())) co_return end(c);
    }
    for (;;) {
      co_await c.sock.async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return end(c);
      // A few reads per wake-up, then yield to the other clients of this loop.
      for (int i = 0; i < 4; ++i) {
        std::size_t t = c.tail.size();
        if (t) std::memcpy(buf.data(), c.tail.data(), t);
        std::size_t n = c.sock.read_some(asio::buffer(buf.data() + t, std::min(kReadMax, kBufCap - t)), ec);
        if (ec == asio::error::would_block) break;
        if (ec) co_return end(c);
        c.tail.clear();
        if (!consume(c, buf.data(), t + n)) co_return end(c);
        if (n < kReadMax) break;
      }
      if (c.unacked >= spec.ack_every) send_ack(c);
    }
  }

  void end(Conn& c) {
    if (c.state != Conn::State::closed) bump(closed);
    c.state = Conn::State::closed;
    error_code ec;
    c.sock.close(ec);
  }

  // Frames out of `data` (the loop buffer, or a copy); keeps an incomplete tail. False = end now.
  bool consume(Conn& c, char* data, std::size_t size) {
    std::string_view in(data, size);
    while (!in.empty()) {
      ws::Frame f;
      std::size_t used = 0;
      auto r = ws::parse_frame(in, f, used, kMaxPayload);
      if (r == ws::Parse::need_more) break;
      if (r == ws::Parse::error) {
        ++error_codes["bad frame"];
        bump(errors);
        return false;
      }
      in.remove_prefix(used);
      switch (f.op) {
        case ws::text:
        case ws::binary:
          if (f.fin) {
            on_message(c, f.payload);
          } else {
            c.frag.assign(f.payload);
          }
          break;
        case ws::continuation:
          c.frag.append(f.payload);
          if (f.fin) {
            std::string msg;
            msg.swap(c.frag);
            on_message(c, msg);
          }
          break;
        case ws::ping:
          send_frame(c, ws::pong, f.payload);
          break;
        case ws::pong:
          break;
        case ws::close: {
          int code = f.payload.size() >= 2 ? (static_cast<std::uint8_t>(f.payload[0]) << 8) |
                                                 static_cast<std::uint8_t>(f.payload[1])
                                           : 1005;
          if (!(c.churning && c.close_sent)) ++close_codes[code];
          if (!c.close_sent) {
            std::string body{f.payload.substr(0, 2)};
            send_frame(c, ws::close, body);
            c.close_sent = true;
          }
          c.state = Conn::State::closing;
          break;  // keep reading until the server closes TCP
        }
        default:
          ++error_codes["bad opcode"];
          return false;
      }
    }
    if (!in.empty()) c.tail.assign(in);
    return true;
  }

  void became_ready(Conn& c) {
    if (c.state != Conn::State::opening) return;
    c.state = Conn::State::ready;
    if (c.moving) {
      c.moving = false;
      auto now = now_us();
      rehome_lat.record(now - c.open_start_us);
      bump(moved);
      if (!c.rehomed_once) {
        c.rehomed_once = true;
        bump(rehomed);
      }
      last_rehome.store(std::max(last_rehome.load(std::memory_order_relaxed), now), std::memory_order_relaxed);
      return;
    }
    connect_lat.record(now_us() - c.open_start_us);
    finish_opening(c, true);
    if (c.churning) {
      // Close as a browser tab would: a close frame, then wait for the server to end TCP.
      static const char normal[2] = {0x03, static_cast<char>(0xE8)};
      send_frame(c, ws::close, std::string_view(normal, 2));
      c.close_sent = true;
      c.state = Conn::State::closing;
    }
  }

  void on_message(Conn& c, std::string_view msg) {
    if (spec.legacy) return on_notification(c, msg);  // every frame is bare data
    switch (ws::kind_of(msg)) {
      case ws::Kind::notification:
        return on_notification(c, msg);
      case ws::Kind::welcome:
        became_ready(c);
        return;
      case ws::Kind::error: {
        bump(errors);
        std::string code = "server error";
        try {
          auto v = json::parse(msg);
          code += ": " + json::value_to<std::string>(v.at("code"));
        } catch (...) {
        }
        ++error_codes[code];
        return;
      }
      default:
        ++error_codes["unexpected message"];
        return;
    }
  }

  void on_notification(Conn& c, std::string_view msg) {
    ws::Notification n;
    bool parsed = spec.legacy ? ws::scan_legacy(msg, n) : ws::scan_notification(msg, n);
    if (!parsed) {
      ++error_codes["notification without the bench's data"];
      bump(errors);
      return;
    }
    auto now = now_us();
    latency.record(now > n.t ? now - n.t : 0);
    latency_write.record(now > n.w ? now - n.w : 0);
    bump(received);
    if (!first_rx.load(std::memory_order_relaxed)) first_rx.store(now, std::memory_order_relaxed);
    last_rx.store(now, std::memory_order_relaxed);
    if (n.c != c.index) ++c.misrouted;
    bool newer = !c.has_last || n.id_ms > c.last_ms || (n.id_ms == c.last_ms && n.id_seq > c.last_seq);
    bool was_seen = false;
    if (n.s < kMaxSeq) {
      std::size_t word = n.s / 64;
      if (word >= c.seen.size()) c.seen.resize(std::max<std::size_t>(word + 1, c.seen.size() * 2));
      std::uint64_t bit = 1ull << (n.s % 64);
      was_seen = c.seen[word] & bit;
      c.seen[word] |= bit;
    }
    if (was_seen) {
      ++c.dups;
    } else {
      ++c.unique;
      bump(unique);
      c.hsum += delivery_hash(n.s, n.id_ms, n.id_seq);
      if (!newer) ++c.ooo;
    }
    if (newer) {
      c.has_last = true;
      c.last_ms = n.id_ms;
      c.last_seq = n.id_seq;
    }
    if (spec.legacy) return;  // no acks in the legacy protocol
    ++c.unacked;
    if (!c.dirty) {
      c.dirty = true;
      dirty.push_back(&c);
    }
  }

  bool seen(const Conn& c, std::uint64_t s) const {
    std::size_t word = s / 64;
    return word < c.seen.size() && (c.seen[word] >> (s % 64)) & 1;
  }
};

// Runs f on every loop's thread and waits for all of them.
template <class F>
void on_each_loop(std::vector<std::unique_ptr<Loop>>& loops, F f) {
  std::vector<std::future<void>> done;
  for (auto& l : loops) {
    auto p = std::make_shared<std::promise<void>>();
    done.push_back(p->get_future());
    asio::post(l->io, [p, &l, &f] {
      f(*l);
      p->set_value();
    });
  }
  for (auto& d : done) d.wait();
}

struct Totals {
  std::uint64_t opened = 0, ready = 0, failed = 0, received = 0, unique = 0, errors = 0, closed = 0, connects = 0;
  std::uint64_t first_rx = 0, last_rx = 0, first_start = 0, last_ready = 0, churners_done = 0;
  std::uint64_t dropped = 0, moved = 0, rehomed = 0, last_rehome = 0;
};

Totals totals(std::vector<std::unique_ptr<Loop>>& loops) {
  Totals t;
  for (auto& l : loops) {
    t.opened += l->opened.load();
    t.ready += l->ready.load();
    t.failed += l->failed.load();
    t.received += l->received.load();
    t.unique += l->unique.load();
    t.errors += l->errors.load();
    t.closed += l->closed.load();
    t.connects += l->connects.load();
    t.churners_done += l->churners_done.load();
    t.dropped += l->dropped.load();
    t.moved += l->moved.load();
    t.rehomed += l->rehomed.load();
    t.last_rehome = std::max(t.last_rehome, l->last_rehome.load());
    auto fr = l->first_rx.load();
    if (fr && (!t.first_rx || fr < t.first_rx)) t.first_rx = fr;
    t.last_rx = std::max(t.last_rx, l->last_rx.load());
    auto fs = l->first_start.load();
    if (fs && (!t.first_start || fs < t.first_start)) t.first_start = fs;
    t.last_ready = std::max(t.last_ready, l->last_ready.load());
  }
  return t;
}

// Close codes and error texts of every loop, merged (read on the loops' threads).
json::object diagnostics(std::vector<std::unique_ptr<Loop>>& loops) {
  std::map<int, std::uint64_t> closes;
  std::map<std::string, std::uint64_t> errs;
  std::mutex mu;
  on_each_loop(loops, [&](Loop& l) {
    std::lock_guard lock(mu);
    for (auto& [k, v] : l.close_codes) closes[k] += v;
    for (auto& [k, v] : l.error_codes) errs[k] += v;
  });
  json::object c, e;
  for (auto& [k, v] : closes) c[std::to_string(k)] = v;
  for (auto& [k, v] : errs) e[k] = v;
  return {{"server_closes", std::move(c)}, {"errors", std::move(e)}};
}

json::object progress(std::vector<std::unique_ptr<Loop>>& loops) {
  auto t = totals(loops);
  return {{"ev", "progress"}, {"opened", t.opened},     {"ready", t.ready},     {"failed", t.failed},
          {"received", t.received}, {"unique", t.unique}, {"errors", t.errors}, {"closed", t.closed},
          {"connects", t.connects}, {"first_rx", t.first_rx}, {"last_rx", t.last_rx},
          {"dropped", t.dropped}, {"moved", t.moved}, {"rehomed", t.rehomed}, {"last_rehome", t.last_rehome}};
}

// The per-client verdict (see checks.hpp). `clients` holds [index, n_sent, n202, sum202, [failed
// seqs]] for every client the controller sent something to.
json::object verify(std::vector<std::unique_ptr<Loop>>& loops, const Spec& spec, const json::array& clients) {
  struct Expect {
    std::uint64_t sent = 0, n202 = 0, sum = 0;
    std::vector<std::uint64_t> failed;
  };
  std::vector<Expect> expect(spec.count);
  for (auto& v : clients) {
    auto& a = v.get_array();
    auto idx = a[0].to_number<std::uint64_t>();
    if (idx < spec.first || idx >= spec.first + spec.count) continue;
    auto& e = expect[idx - spec.first];
    e.sent = a[1].to_number<std::uint64_t>();
    e.n202 = a[2].to_number<std::uint64_t>();
    e.sum = a[3].to_number<std::uint64_t>();
    for (auto& f : a[4].get_array()) e.failed.push_back(f.to_number<std::uint64_t>());
    std::sort(e.failed.begin(), e.failed.end());
  }
  std::mutex mu;
  std::uint64_t lost = 0, dups = 0, ooo = 0, misrouted = 0, mismatch = 0, unconfirmed = 0, unexpected = 0;
  std::uint64_t lost_clients = 0;
  Histogram lat, lat_w, conn_lat, rehome_lat;
  on_each_loop(loops, [&](Loop& l) {
    std::uint64_t lo = 0, du = 0, oo = 0, mi = 0, mm = 0, un = 0, ux = 0, lc = 0;
    for (auto& cp : l.conns) {
      Conn& c = *cp;
      auto& e = expect[c.index - spec.first];
      du += c.dups;
      oo += c.ooo;
      mi += c.misrouted;
      std::uint64_t got = 0, client_lost = 0;
      for (std::uint64_t s = 0; s < e.sent; ++s) {
        bool ok202 = !std::binary_search(e.failed.begin(), e.failed.end(), s);
        bool have = l.seen(c, s);
        if (have) ++got;
        if (ok202 && !have) ++client_lost;
        if (!ok202 && have) ++un;
      }
      ux += c.unique - got;  // seqs never sent to this client
      lo += client_lost;
      if (client_lost) ++lc;
      if (!client_lost && e.failed.empty() && c.hsum != e.sum) ++mm;
    }
    std::lock_guard lock(mu);
    lost += lo, dups += du, ooo += oo, misrouted += mi, mismatch += mm, unconfirmed += un, unexpected += ux;
    lost_clients += lc;
    lat.merge(l.latency);
    lat_w.merge(l.latency_write);
    conn_lat.merge(l.connect_lat);
    rehome_lat.merge(l.rehome_lat);
  });
  auto t = totals(loops);
  json::object r{{"ev", "verify"},
                 {"lost", lost},
                 {"lost_clients", lost_clients},
                 {"duplicates", dups},
                 {"out_of_order", ooo},
                 {"misrouted", misrouted},
                 {"id_mismatch", mismatch},
                 {"unconfirmed_delivered", unconfirmed},
                 {"unexpected", unexpected},
                 {"received", t.received},
                 {"unique", t.unique},
                 {"first_rx", t.first_rx},
                 {"last_rx", t.last_rx},
                 {"latency", lat.to_json()},
                 {"latency_from_write", lat_w.to_json()},
                 {"connect_latency", conn_lat.to_json()},
                 {"rehome_latency", rehome_lat.to_json()},
                 {"dropped", t.dropped},
                 {"rehomed", t.rehomed},
                 {"last_rehome", t.last_rehome}};
  auto d = diagnostics(loops);
  for (auto& kv : d) r[kv.key()] = kv.value();
  return r;
}

}  // namespace

int run_worker(const json::object& spec_json) {
  Spec spec = parse_spec(spec_json);
  // Bounded in time whatever happens: SIGALRM's default action ends the process.
  alarm(spec.deadline_s);
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<std::unique_ptr<Loop>> loops;
  for (unsigned i = 0; i < spec.threads; ++i) loops.push_back(std::make_unique<Loop>(spec, i));
  for (std::uint64_t i = 0; i < spec.count; ++i) {
    auto& l = *loops[i % spec.threads];
    auto idx = spec.first + i;
    l.conns.push_back(std::make_unique<Conn>(l, idx, spec.prefix + std::to_string(idx), l.io));
    // Spread over several servers: the extra ones sit in rehome_targets until a rehome replaces them.
    if (!spec.spread.empty()) l.conns.back()->target = static_cast<std::uint16_t>(idx % (1 + spec.spread.size()));
  }
  if (!spec.spread.empty())
    for (auto& l : loops) l->rehome_targets = spec.spread;
  for (auto& l : loops) l->run();

  std::atomic<bool> quit{false};
  std::atomic<bool> connect_reported{true};
  std::thread reporter([&] {
    int tick = 0;
    while (!quit.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      auto t = totals(loops);
      if (!connect_reported.load() && t.opened >= spec.count) {
        connect_reported.store(true);
        auto r = json::object{{"ev", "connected"}, {"ready", t.ready}, {"failed", t.failed},
                              {"t0", t.first_start}, {"t1", t.last_ready}};
        auto d = diagnostics(loops);
        for (auto& kv : d) r[kv.key()] = kv.value();
        Histogram conn_lat;
        std::mutex mu;
        on_each_loop(loops, [&](Loop& l) {
          std::lock_guard lock(mu);
          conn_lat.merge(l.connect_lat);
        });
        r["connect_latency"] = conn_lat.to_json();
        emit(r);
      }
      if (++tick % 4 == 0) emit(progress(loops));
    }
  });

  std::string line;
  while (std::getline(std::cin, line)) {
    json::value cmd;
    try {
      cmd = json::parse(line);
    } catch (...) {
      continue;
    }
    auto name = json::value_to<std::string>(cmd.at("cmd"));
    if (name == "connect") {
      connect_reported.store(false);
      for (auto& l : loops) asio::post(l->io, [&l] { l->start_connect_phase(); });
    } else if (name == "churn") {
      auto seconds = cmd.at("seconds").to_number<double>();
      auto start = now_us();
      auto until = start + static_cast<std::uint64_t>(seconds * 1e6);
      for (auto& l : loops)
        asio::post(l->io, [&l, until] { l->start_churn(until); });
      // Wait for the loops to finish their last round; a loop stuck past a grace period is cut.
      while (totals(loops).churners_done < spec.count && now_us() < until + 5'000'000)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      auto t = totals(loops);
      auto stuck = spec.count - t.churners_done;
      on_each_loop(loops, [](Loop& l) {
        l.stopping = true;
        for (auto& c : l.conns) {
          error_code ec;
          c->sock.close(ec);
        }
      });
      Histogram conn_lat;
      std::mutex mu;
      on_each_loop(loops, [&](Loop& l) {
        std::lock_guard lock(mu);
        conn_lat.merge(l.connect_lat);
      });
      json::object r{{"ev", "churn"},
                     {"connects", t.connects},
                     {"round_errors", t.errors},
                     {"stuck_loops", stuck},
                     {"elapsed_us", now_us() - start},
                     {"connect_latency", conn_lat.to_json()}};
      auto d = diagnostics(loops);
      for (auto& kv : d) r[kv.key()] = kv.value();
      emit(r);
    } else if (name == "rehome") {
      // {"cmd":"rehome","targets":[[host,port],...],"jitter_ms":J}: answered {"ev":"rehome"} once
      // every loop is in rehome mode.
      std::vector<tcp::endpoint> targets;
      for (auto& t : cmd.at("targets").get_array()) {
        auto& a = t.get_array();
        targets.emplace_back(asio::ip::make_address_v4(a[0].get_string()), a[1].to_number<unsigned short>());
      }
      auto jitter = cmd.at("jitter_ms").to_number<unsigned>();
      if (!targets.empty())
        on_each_loop(loops, [&](Loop& l) {
          l.rehome_targets = targets;
          l.rehome_jitter_ms = jitter;
          l.rehome = true;
        });
      emit({{"ev", "rehome"}, {"targets", targets.size()}});
    } else if (name == "verify") {
      emit(verify(loops, spec, cmd.at("clients").get_array()));
    } else if (name == "quit") {
      break;
    }
  }
  quit.store(true);
  reporter.join();
  std::fflush(stdout);
  // The kernel closes every socket; tearing 19k coroutines down one by one would only cost time.
  std::_Exit(0);
}

}  // namespace bench
