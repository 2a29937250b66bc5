// Herald's Redis client driver: RESP over one Asio socket per role (see redis_client.hpp for the
// contract).
//
// One `Link` holds everything a RESP connection needs, and both roles — the command Connection and
// the Subscriber — are a Link plus a little: the socket, hiredis's reader, the batch of formatted
// commands waiting to leave, the FIFO of callbacks waiting for replies, and ONE timer. All of it
// lives on a strand of the io_context, so command() from another thread is a message to the
// strand, never a lock.
//
// - Pipelining: a command is formatted straight into `out_`; unless a write is in flight, the
//   first command of a turn posts one flush, so everything queued before the flush runs leaves in
//   one write. While a write is in flight, commands pile up in `out_` and leave when it completes.
// - Each TCP connection is a `Wire` (socket, reader, read buffer, buffer being written). Handlers
//   hold the wire they were started on; one that finds it is no longer `wire_` does nothing. So a
//   reconnect never races the completions of the connection it replaced, and every buffer stays
//   valid until its operation has completed.
// - The one timer means whatever the state needs next: the connect deadline, the end of a backoff,
//   or the deadline of the oldest outstanding command (for the subscriber also the next PING).
//   Replies never touch it: when it fires it looks at the oldest command again and re-arms.
//
// Invariant: every callback put in `pending_` runs exactly once, on the strand — with its reply,
// or with an error from fail() or halt(), which empty `pending_` whenever a connection ends.
#include "engine/redis/redis_client.hpp"
#include "engine/redis/reply_reader.hpp"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <chrono>
#include <deque>
#include <mutex>
#include <random>
#include <span>
#include <string_view>
#include <unordered_map>

namespace herald::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
// A write buffer that grew past this for one huge batch is given back instead of kept.
constexpr std::size_t kKeepWriteBuffer = 1 << 20;

std::chrono::milliseconds ms(std::uint32_t n) { return std::chrono::milliseconds(n); }

std::string sha1_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(2 * len, '0');
  for (unsigned int i = 0; i < len; ++i) {
    hex[2 * i] = kHex[md[i] >> 4];
    hex[2 * i + 1] = kHex[md[i] & 0xf];
  }
  return hex;
}

// Pointers and lengths of one command's arguments, as redisFormatCommandArgv takes them: inline
// for the usual short commands, on the heap only beyond kInline arguments.
class ArgvView {
 public:
  explicit ArgvView(std::size_t n) : n_(n) {
    if (n > kInline) {
      heap_ptrs_.resize(n);
      heap_lens_.resize(n);
    }
  }
  ArgvView(const ArgvView&) = delete;
  ArgvView& operator=(const ArgvView&) = delete;

  void set(std::size_t i, std::string_view s) {
    ptrs()[i] = s.data();
    lens()[i] = s.size();
  }
  int size() const { return static_cast<int>(n_); }
  const char** ptrs() { return n_ > kInline ? heap_ptrs_.data() : inline_ptrs_.data(); }
  std::size_t* lens() { return n_ > kInline ? heap_lens_.data() : inline_lens_.data(); }

 private:
  static constexpr std::size_t kInline = 16;
  std::size_t n_;
  std::array<const char*, kInline> inline_ptrs_{};
  std::array<std::size_t, kInline> inline_lens_{};
  std::vector<const char*> heap_ptrs_;
  std::vector<std::size_t> heap_lens_;
};

template <class Range>
void fill(ArgvView& v, std::size_t& i, const Range& strings) {
  for (const auto& s : strings) v.set(i++, s);
}

void post_failure(const asio::strand<asio::io_context::executor_type>& strand, ReplyCallback cb, Errc e) {
  asio::post(strand, [cb = std::move(cb), e]() mutable { cb(e, Reply{}); });
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Link: one RESP connection that keeps itself connected.

class Link {
 protected:
  using Strand = asio::strand<asio::io_context::executor_type>;

  Link(asio::io_context& io, Options options)
      : strand_(asio::make_strand(io)),
        options_(std::move(options)),
        timer_(strand_),
        resolver_(strand_),
        rng_(std::random_device{}()) {}
  virtual ~Link() = default;

  // The owning object as a Link, for handlers to keep it alive.
  virtual std::shared_ptr<Link> self() = 0;

  // Hooks, all on the strand.
  virtual void queue_setup() {}  // after AUTH/SELECT are queued, in the same write
  virtual void became_ready() {}  // AUTH/SELECT answered
  virtual void lost() {}          // the connection ended (dropped or halted)
  virtual bool intercept(const Reply&) { return false; }  // true = a push, not a reply
  // Called when the timer fires while ready; returns when it wants to be called again.
  virtual Clock::time_point tick(Clock::time_point) { return Clock::time_point::max(); }

  // On the strand. begin() connects once; after halt() the link stays down for good.
  void begin() {
    if (state_ == State::idle) connect();
  }

  void halt() {
    if (state_ == State::stopped) return;
    state_ = State::stopped;
    connected_ = false;
    drop_wire();
    disarm();
    lost();
    fail_pending(Errc::disconnected);
  }

  bool ready() const { return state_ == State::ready; }
  // TCP is up: internal commands (AUTH, SUBSCRIBE, PING) may be queued.
  bool wire_up() const { return state_ == State::handshaking || state_ == State::ready; }

  // Queues one formatted command; its reply goes to cb. Only while wire_up().
  void enqueue(ArgvView& argv, ReplyCallback cb) {
    char* cmd = nullptr;
    int len = redisFormatCommandArgv(&cmd, argv.size(), argv.ptrs(), argv.lens());
    if (len < 0) throw std::bad_alloc();
    out_.append(cmd, static_cast<std::size_t>(len));
    redisFreeCommand(cmd);
    auto now = Clock::now();
    pending_.push_back(Pending{std::move(cb), now});
    commands_.fetch_add(1, std::memory_order_relaxed);
    arm_before(now + ms(options_.command_timeout_ms));
    schedule_flush();
  }

  void enqueue(std::initializer_list<std::string_view> args, ReplyCallback cb) {
    ArgvView argv(args.size());
    std::size_t i = 0;
    fill(argv, i, args);
    enqueue(argv, std::move(cb));
  }

  // Ends the current connection (if any) and schedules the next attempt.
  void fail(Errc e, std::string why) {
    if (state_ != State::connecting && state_ != State::handshaking && state_ != State::ready) return;
    bool was_ready = state_ == State::ready;
    drop_wire();
    set_last_error(std::move(why));
    state_ = State::backoff;
    connected_ = false;
    arm(Clock::now() + next_backoff());
    lost();
    fail_pending(e);
    if (was_ready && !stopped_)
      for (auto& fn : on_disconnected_) fn();
  }

  // The next reconnect waits only backoff_min (used when the drop is deliberate).
  void reset_backoff() { attempt_ = 0; }

  // Makes the timer fire no later than at.
  void arm_before(Clock::time_point at) {
    if (at < deadline_) arm(at);
  }

  Stats link_stats() const {
    return Stats{commands_.load(std::memory_order_relaxed), writes_.load(std::memory_order_relaxed),
                 connects_.load(std::memory_order_relaxed)};
  }

  std::string link_last_error() const {
    std::lock_guard lock(error_mutex_);
    return last_error_;
  }

  Strand strand_;
  Options options_;
  std::atomic<bool> stopped_{false};    // set by stop() at once, from any thread
  std::atomic<bool> connected_{false};  // ready, readable from any thread
  std::vector<std::function<void()>> on_connected_;
  std::vector<std::function<void()>> on_disconnected_;

 private:
  enum class State { idle, connecting, handshaking, ready, backoff, stopped };

  struct Pending {
    ReplyCallback cb;
    Clock::time_point since;
  };

  struct Wire {
    explicit Wire(const Strand& strand) : socket(strand), rbuf(kReadChunk) {}
    Wire(const Wire&) = delete;
    Wire& operator=(const Wire&) = delete;

    asio::basic_stream_socket<tcp, Strand> socket;
    ReplyReader reader;
    std::vector<char> rbuf;
    std::string wbuf;  // the batch being written; out_ fills meanwhile
    bool writing = false;
  };

  void connect() {
    state_ = State::connecting;
    auto w = std::make_shared<Wire>(strand_);
    wire_ = w;
    arm(Clock::now() + ms(options_.connect_timeout_ms));
    resolver_.async_resolve(
        options_.host, std::to_string(options_.port), tcp::resolver::numeric_service,
        [self = self(), w](error_code ec, tcp::resolver::results_type results) {
          self->on_resolved(std::move(w), ec, std::move(results));
        });
  }

  std::string where() const { return options_.host + ":" + std::to_string(options_.port); }

  void on_resolved(std::shared_ptr<Wire> w, error_code ec, tcp::resolver::results_type results) {
    if (w != wire_) return;
    if (ec) return fail(Errc::disconnected, "resolve " + options_.host + ": " + ec.message());
    auto& socket = w->socket;
    asio::async_connect(socket, results, [self = self(), w = std::move(w)](error_code ec, const tcp::endpoint&) {
      self->on_tcp_connected(w, ec);
    });
  }

  void on_tcp_connected(const std::shared_ptr<Wire>& w, error_code ec) {
    if (w != wire_) return;
    if (ec) return fail(Errc::disconnected, "connect " + where() + ": " + ec.message());
    error_code ignored;
    w->socket.set_option(tcp::no_delay(true), ignored);
    w->socket.set_option(asio::socket_base::keep_alive(true), ignored);
    connects_.fetch_add(1, std::memory_order_relaxed);
    state_ = State::handshaking;
    disarm();  // the connect deadline; from now on outstanding commands arm the timer
    read(w);

    handshake_left_ = 0;
    if (!options_.password.empty()) {
      ++handshake_left_;
      auto step = [this](Errc e, Reply r) { handshake_step("AUTH", e, r); };
      if (options_.username.empty())
        enqueue({"AUTH", options_.password}, step);
      else
        enqueue({"AUTH", options_.username, options_.password}, step);
    }
    if (options_.db != 0) {
      ++handshake_left_;
      enqueue({"SELECT", std::to_string(options_.db)}, [this](Errc e, Reply r) { handshake_step("SELECT", e, r); });
    }
    queue_setup();
    if (handshake_left_ == 0) become_ready();
  }

  // Callbacks in pending_ run only from this object's own methods, so capturing `this` is safe.
  void handshake_step(const char* what, Errc e, const Reply& r) {
    if (e != Errc::ok) return;  // the connection already failed
    if (r.is_error()) return fail(Errc::disconnected, std::string(what) + ": " + r.str);
    if (--handshake_left_ == 0) become_ready();
  }

  void become_ready() {
    state_ = State::ready;
    attempt_ = 0;
    connected_ = true;
    became_ready();
  }

  void drop_wire() {
    if (wire_) {
      error_code ignored;
      wire_->socket.close(ignored);  // its handlers complete with an error and see a stale wire
      wire_.reset();
    }
    resolver_.cancel();
    out_.clear();
    handshake_left_ = 0;
  }

  void fail_pending(Errc e) {
    auto failed = std::move(pending_);
    pending_.clear();
    auto now = Clock::now();
    auto limit = ms(options_.command_timeout_ms);
    for (auto& p : failed) {
      // On a timeout, only the commands that waited that long timed out; the rest were cut off.
      Errc code = (e == Errc::timeout && now - p.since < limit) ? Errc::disconnected : e;
      p.cb(code, Reply{});
    }
  }

  Clock::duration next_backoff() {
    // Capped exponential backoff with full jitter: uniform in [min, min * 2^attempt], capped at max.
    std::uint64_t lo = options_.backoff_min_ms;
    std::uint64_t hi = std::max<std::uint64_t>(options_.backoff_max_ms, lo);
    std::uint64_t cap = std::max<std::uint64_t>(lo, 1);
    for (unsigned i = 0; i < attempt_ && cap < hi; ++i) cap *= 2;
    cap = std::min(cap, hi);
    if (attempt_ < 64) ++attempt_;
    return std::chrono::milliseconds(std::uniform_int_distribution<std::uint64_t>(lo, std::max(lo, cap))(rng_));
  }

  // --- timer -------------------------------------------------------------------------------------

  void arm(Clock::time_point at) {
    deadline_ = at;
    ++timer_seq_;
    timer_.expires_at(at);
    timer_.async_wait([self = self(), seq = timer_seq_](error_code) { self->on_timer(seq); });
  }

  void disarm() {
    deadline_ = Clock::time_point::max();
    ++timer_seq_;
    timer_.cancel();
  }

  void on_timer(std::uint64_t seq) {
    if (seq != timer_seq_) return;  // re-armed or cancelled since
    deadline_ = Clock::time_point::max();
    auto now = Clock::now();
    switch (state_) {
      case State::connecting:
        fail(Errc::disconnected, "connect " + where() + ": timed out after " +
                                     std::to_string(options_.connect_timeout_ms) + " ms");
        break;
      case State::backoff:
        connect();
        break;
      case State::handshaking:
      case State::ready:
        if (!pending_.empty()) {
          auto due = pending_.front().since + ms(options_.command_timeout_ms);
          if (now >= due)
            return fail(Errc::timeout, "no reply from " + where() + " within " +
                                           std::to_string(options_.command_timeout_ms) + " ms");
          arm_before(due);
        }
        if (state_ == State::ready) arm_before(tick(now));
        break;
      default:
        break;
    }
  }

  // --- writing -----------------------------------------------------------------------------------

  void schedule_flush() {
    if (flush_posted_ || (wire_ && wire_->writing)) return;  // a completing write flushes too
    flush_posted_ = true;
    // To the back of the io_context's queue, not the strand's: a command dispatched from the
    // io_context's thread runs inline, so a flush queued on the strand could overtake the rest of
    // the turn's commands, which reach the strand one by one after it.
    asio::post(strand_.get_inner_executor(), [self = self()] {
      auto& strand = self->strand_;
      asio::dispatch(strand, [self = std::move(self)] {
        self->flush_posted_ = false;
        self->flush();
      });
    });
  }

  void flush() {
    if (!wire_ || wire_->writing || out_.empty()) return;
    auto w = wire_;
    std::swap(out_, w->wbuf);
    w->writing = true;
    writes_.fetch_add(1, std::memory_order_relaxed);
    auto& socket = w->socket;
    auto buffer = asio::buffer(w->wbuf);
    asio::async_write(socket, buffer, [self = self(), w = std::move(w)](error_code ec, std::size_t) {
      self->on_written(w, ec);
    });
  }

  void on_written(const std::shared_ptr<Wire>& w, error_code ec) {
    w->writing = false;
    if (w->wbuf.capacity() > kKeepWriteBuffer)
      std::string().swap(w->wbuf);
    else
      w->wbuf.clear();
    if (w != wire_) return;
    if (ec) return fail(Errc::disconnected, "write to " + where() + ": " + ec.message());
    flush();
  }

  // --- reading -----------------------------------------------------------------------------------

  void read(std::shared_ptr<Wire> w) {
    auto& socket = w->socket;
    auto buffer = asio::buffer(w->rbuf);
    socket.async_read_some(buffer, [self = self(), w = std::move(w)](error_code ec, std::size_t n) mutable {
      self->on_read(std::move(w), ec, n);
    });
  }

  void on_read(std::shared_ptr<Wire> w, error_code ec, std::size_t n) {
    if (w != wire_ || stopped_) return;  // stale, or stop() is on its way: deliver nothing more
    if (ec) {
      return fail(Errc::disconnected, ec == asio::error::eof ? "connection closed by " + where()
                                                             : "read from " + where() + ": " + ec.message());
    }
    if (!w->reader.feed(w->rbuf.data(), n)) return fail(Errc::protocol, "protocol error: " + w->reader.error());
    for (;;) {
      Reply reply;
      auto next = w->reader.next(reply);
      if (next == ReplyReader::Next::error) return fail(Errc::protocol, "protocol error: " + w->reader.error());
      if (next == ReplyReader::Next::need_more) break;
      deliver(std::move(reply));
      if (w != wire_ || stopped_) return;  // a callback ended this connection, or stop() came
    }
    read(std::move(w));
  }

  void deliver(Reply r) {
    if (intercept(r)) return;
    if (pending_.empty()) return fail(Errc::protocol, "reply from " + where() + " to no command");
    auto cb = std::move(pending_.front().cb);
    pending_.pop_front();
    cb(Errc::ok, std::move(r));
  }

  void set_last_error(std::string why) {
    std::lock_guard lock(error_mutex_);
    last_error_ = std::move(why);
  }

  State state_ = State::idle;
  std::shared_ptr<Wire> wire_;
  std::string out_;  // formatted commands not yet handed to a write
  std::deque<Pending> pending_;
  bool flush_posted_ = false;
  int handshake_left_ = 0;

  asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Strand> timer_;
  Clock::time_point deadline_ = Clock::time_point::max();  // max = not armed
  std::uint64_t timer_seq_ = 0;

  asio::ip::basic_resolver<tcp, Strand> resolver_;
  unsigned attempt_ = 0;
  std::minstd_rand rng_;

  std::atomic<std::uint64_t> commands_{0}, writes_{0}, connects_{0};
  mutable std::mutex error_mutex_;
  std::string last_error_;
};

// ------------------------------------------------------------------------------------------------
// Connection: commands and scripts.

namespace {

class ConnectionImpl final : public Connection, private Link {
 public:
  ConnectionImpl(asio::io_context& io, Options options) : Link(io, std::move(options)) {}

  void start() override {
    asio::dispatch(strand_, [self = me()] { self->begin(); });
  }

  void stop() override {
    stopped_ = true;
    asio::dispatch(strand_, [self = me()] { self->halt(); });
  }

  bool connected() const override { return connected_; }

  void command(std::vector<std::string> argv, ReplyCallback cb) override {
    asio::dispatch(strand_, [self = me(), argv = std::move(argv), cb = std::move(cb)]() mutable {
      self->run_command(argv, std::move(cb));
    });
  }

  void eval(const std::string& script, std::vector<std::string> keys, std::vector<std::string> args,
            ReplyCallback cb) override {
    auto call = std::make_shared<EvalCall>(EvalCall{script, std::move(keys), std::move(args), std::move(cb)});
    asio::dispatch(strand_, [self = me(), call = std::move(call)]() mutable { self->run_eval(std::move(call)); });
  }

  void on_connected(std::function<void()> fn) override {
    asio::dispatch(strand_, [self = me(), fn = std::move(fn)]() mutable { self->on_connected_.push_back(std::move(fn)); });
  }

  void on_disconnected(std::function<void()> fn) override {
    asio::dispatch(strand_,
                   [self = me(), fn = std::move(fn)]() mutable { self->on_disconnected_.push_back(std::move(fn)); });
  }

  Stats stats() const override { return link_stats(); }
  std::string last_error() const override { return link_last_error(); }

 private:
  struct EvalCall {
    std::string script;
    std::vector<std::string> keys;
    std::vector<std::string> args;
    ReplyCallback cb;
  };

  std::shared_ptr<ConnectionImpl> me() { return std::static_pointer_cast<ConnectionImpl>(shared_from_this()); }
  std::shared_ptr<Link> self() override { return std::shared_ptr<Link>(shared_from_this(), static_cast<Link*>(this)); }

  void became_ready() override {
    if (stopped_) return;
    for (auto& fn : on_connected_) fn();
  }

  void run_command(const std::vector<std::string>& argv, ReplyCallback cb) {
    if (!ready()) return post_failure(strand_, std::move(cb), Errc::disconnected);
    if (argv.empty()) {
      // "*0" gets no reply from Redis and would shift every later reply onto the wrong callback.
      Reply error;
      error.type = Reply::Type::error;
      error.str = "ERR empty command";
      asio::post(strand_, [cb = std::move(cb), error = std::move(error)]() mutable { cb(Errc::ok, std::move(error)); });
      return;
    }
    ArgvView view(argv.size());
    std::size_t i = 0;
    fill(view, i, argv);
    enqueue(view, std::move(cb));
  }

  const std::string& sha_of(const std::string& script) {
    auto it = sha_.find(script);
    if (it == sha_.end()) it = sha_.emplace(script, sha1_hex(script)).first;
    return it->second;
  }

  // EVALSHA first; on NOSCRIPT (a restarted server, SCRIPT FLUSH) the same call as EVAL, which
  // also loads the script for the next EVALSHA. The EVAL leaves behind commands queued meanwhile.
  void run_eval(std::shared_ptr<EvalCall> call) {
    if (!ready()) return post_failure(strand_, std::move(call->cb), Errc::disconnected);
    send_script(*call, "EVALSHA", sha_of(call->script), [this, call](Errc e, Reply r) mutable {
      if (e == Errc::ok && r.is_error() && r.str.starts_with("NOSCRIPT")) {
        auto& c = *call;
        if (!ready()) return c.cb(Errc::disconnected, Reply{});  // an earlier callback ended it
        send_script(c, "EVAL", c.script, std::move(c.cb));
        return;
      }
      call->cb(e, std::move(r));
    });
  }

  void send_script(const EvalCall& call, std::string_view verb, std::string_view body, ReplyCallback cb) {
    auto numkeys = std::to_string(call.keys.size());
    ArgvView view(3 + call.keys.size() + call.args.size());
    view.set(0, verb);
    view.set(1, body);
    view.set(2, numkeys);
    std::size_t i = 3;
    fill(view, i, call.keys);
    fill(view, i, call.args);
    enqueue(view, std::move(cb));
  }

  std::unordered_map<std::string, std::string> sha_;  // script → hex SHA1
};

// ------------------------------------------------------------------------------------------------
// Subscriber: SUBSCRIBE mode, with a PING keepalive so that a silently dead connection is noticed.

class SubscriberImpl final : public Subscriber, private Link {
 public:
  SubscriberImpl(asio::io_context& io, Options options) : Link(io, std::move(options)) {}

  void start() override {
    asio::dispatch(strand_, [self = me()] { self->begin(); });
  }

  void stop() override {
    stopped_ = true;
    asio::dispatch(strand_, [self = me()] { self->halt(); });
  }

  bool connected() const override { return subscribed_; }

  void subscribe(const std::string& channel) override {
    asio::dispatch(strand_, [self = me(), channel]() mutable { self->add_channel(std::move(channel)); });
  }

  void on_message(std::function<void(const std::string&, const std::string&)> fn) override {
    asio::dispatch(strand_, [self = me(), fn = std::move(fn)]() mutable { self->on_message_.push_back(std::move(fn)); });
  }

  void on_subscribed(std::function<void()> fn) override {
    asio::dispatch(strand_,
                   [self = me(), fn = std::move(fn)]() mutable { self->on_subscribed_.push_back(std::move(fn)); });
  }

  void reconnect() override {
    asio::dispatch(strand_, [self = me()] {
      self->reset_backoff();
      self->fail(Errc::disconnected, "reconnect requested");
    });
  }

  Stats stats() const override { return link_stats(); }
  std::string last_error() const override { return link_last_error(); }

 private:
  std::shared_ptr<SubscriberImpl> me() { return std::static_pointer_cast<SubscriberImpl>(shared_from_this()); }
  std::shared_ptr<Link> self() override { return std::shared_ptr<Link>(shared_from_this(), static_cast<Link*>(this)); }

  void add_channel(std::string channel) {
    if (std::find(channels_.begin(), channels_.end(), channel) != channels_.end()) return;
    channels_.push_back(std::move(channel));
    if (wire_up()) send_subscribe(channels_.back());
  }

  // One SUBSCRIBE per channel: one confirmation each, so each has its own entry in the FIFO.
  void send_subscribe(const std::string& channel) {
    subscribed_ = false;
    ++confirmations_left_;
    enqueue({"SUBSCRIBE", channel}, [this](Errc e, Reply r) {
      if (e != Errc::ok) return;
      if (r.type != Reply::Type::array || r.elements.empty() || r.elements[0].str != "subscribe")
        return fail(Errc::protocol, "SUBSCRIBE answered with " + (r.is_error() ? r.str : std::string("a non-confirmation")));
      --confirmations_left_;
      confirm_if_done();
    });
  }

  void confirm_if_done() {
    if (!ready() || confirmations_left_ != 0 || subscribed_) return;
    subscribed_ = true;
    if (stopped_) return;
    for (auto& fn : on_subscribed_) fn();
  }

  void queue_setup() override {
    confirmations_left_ = 0;
    for (const auto& channel : channels_) send_subscribe(channel);
  }

  void became_ready() override {
    next_ping_ = Clock::now() + ms(options_.ping_interval_ms);
    arm_before(next_ping_);
    confirm_if_done();  // no channels: subscribed to the empty set at once
  }

  void lost() override {
    subscribed_ = false;
    confirmations_left_ = 0;
  }

  Clock::time_point tick(Clock::time_point now) override {
    if (now >= next_ping_) {
      // In subscribe mode the answer is ["pong", ""]; its arrival is all that matters.
      enqueue({"PING"}, [](Errc, Reply) {});
      next_ping_ = now + ms(options_.ping_interval_ms);
    }
    return next_ping_;
  }

  bool intercept(const Reply& r) override {
    if (!is_message_push(r)) return false;
    if (stopped_) return true;
    for (auto& fn : on_message_) fn(r.elements[1].str, r.elements[2].str);
    return true;
  }

  std::vector<std::string> channels_;
  std::size_t confirmations_left_ = 0;
  std::atomic<bool> subscribed_{false};
  Clock::time_point next_ping_ = Clock::time_point::max();
  std::vector<std::function<void(const std::string&, const std::string&)>> on_message_;
  std::vector<std::function<void()>> on_subscribed_;
};

}  // namespace

std::shared_ptr<Connection> Connection::create(asio::io_context& io, Options options) {
  return std::make_shared<ConnectionImpl>(io, std::move(options));
}

std::shared_ptr<Subscriber> Subscriber::create(asio::io_context& io, Options options) {
  return std::make_shared<SubscriberImpl>(io, std::move(options));
}

// ------------------------------------------------------------------------------------------------
// redis://[[user]:password@]host[:port][/db]

namespace {

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    unsigned value = 0;
    if (i + 2 >= in.size()) return false;
    auto [end, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, value, 16);
    if (ec != std::errc() || end != in.data() + i + 3) return false;
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return true;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string parse_url(const std::string& url, Options& out) {
  constexpr std::string_view kScheme = "redis://";
  std::string_view s = url;
  if (!s.starts_with(kScheme)) {
    auto sep = s.find("://");
    if (sep == std::string_view::npos) return "Redis URL '" + url + "' must start with redis://";
    return "Redis URL scheme '" + std::string(s.substr(0, sep)) + "' is not supported (only redis://, no TLS)";
  }
  s.remove_prefix(kScheme.size());

  Options o = out;
  o.username.clear();
  o.password.clear();
  o.port = 6379;
  o.db = 0;

  auto authority_end = s.find_first_of("/?#");
  std::string_view authority = s.substr(0, authority_end);
  std::string_view rest = authority_end == std::string_view::npos ? std::string_view{} : s.substr(authority_end);

  // The last '@' ends the credentials, so an unencoded '@' in a password still parses.
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    auto userinfo = authority.substr(0, at);
    authority.remove_prefix(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string_view::npos)
      return "Redis URL credentials need a ':' (redis://:password@host or redis://user:password@host)";
    if (!percent_decode(userinfo.substr(0, colon), o.username) ||
        !percent_decode(userinfo.substr(colon + 1), o.password))
      return "Redis URL credentials have a bad %-escape";
    if (o.password.empty()) return "Redis URL has a user but an empty password";
  }

  std::string_view host, port;
  bool has_port = false;
  if (authority.starts_with('[')) {  // [IPv6]
    auto close = authority.find(']');
    if (close == std::string_view::npos) return "Redis URL host has an unclosed '['";
    host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return "Redis URL has unexpected text after the host";
      port = after.substr(1);
      has_port = true;
    }
  } else {
    auto colon = authority.find(':');
    if (colon != std::string_view::npos && authority.rfind(':') != colon)
      return "Redis URL: write an IPv6 host in brackets, e.g. redis://[::1]:6379";
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (host.empty()) return "Redis URL '" + url + "' has no host";
  if (has_port) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (!all_digits(port) || ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
      return "Redis URL has a bad port '" + std::string(port) + "' (expected 1-65535)";
    o.port = static_cast<std::uint16_t>(value);
  }

  if (!rest.empty()) {
    if (rest.find_first_of("?#") != std::string_view::npos)
      return "Redis URL query parameters and fragments are not supported";
    auto db = rest.substr(1);  // after the '/'
    if (!db.empty()) {
      int value = 0;
      auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), value);
      if (!all_digits(db) || ec != std::errc() || end != db.data() + db.size())
        return "Redis URL has a bad database number '" + std::string(db) + "'";
      o.db = value;
    }
  }

  o.host = std::string(host);
  out = std::move(o);
  return {};
}

}  // namespace herald::redis
