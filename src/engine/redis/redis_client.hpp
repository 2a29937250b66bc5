// Herald's Redis client: hiredis's RESP reader and command formatter for the protocol, and our own
// connection driver on Asio for the I/O (Debian's hiredis 0.14 async API has no timeouts and
// cannot take sharded pub/sub pushes).
//
// - Automatic pipelining: every command issued during one event-loop turn leaves in one write.
// - Replies are matched to callbacks in order; a callback always runs exactly once, on the
//   connection's io_context: with the reply, or with an error when the connection failed or the
//   command timed out (then the command may or may not have run).
// - Reconnects by itself with capped exponential backoff and full jitter; AUTH and SELECT from
//   the URL are sent first on every connection.
// - The oldest outstanding command waiting longer than command_timeout_ms means a dead
//   connection: it is dropped and reconnected. Blocking commands (BLPOP, XREAD BLOCK) count too,
//   so block for less than that, or not at all.
// - Hold these objects by shared_ptr and call stop() before dropping them; stop() is final.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace herald::redis {

struct Reply {
  enum class Type { string, array, integer, nil, status, error } type = Type::nil;
  std::string str;  // string, status, error
  long long integer = 0;
  std::vector<Reply> elements;  // array

  bool is_error() const { return type == Type::error; }
  bool is_nil() const { return type == Type::nil; }
};

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string password;  // empty = no AUTH
  std::string username;  // empty = AUTH <password>
  int db = 0;
  std::uint32_t connect_timeout_ms = 2000;
  std::uint32_t command_timeout_ms = 2000;
  std::uint32_t backoff_min_ms = 50;
  std::uint32_t backoff_max_ms = 2000;
  std::uint32_t ping_interval_ms = 3000;  // Subscriber keepalive: a PING unanswered within
                                          // command_timeout_ms marks the connection dead
};

// Parses redis://[[user]:password@]host[:port][/db]. Returns an error text, empty when fine.
std::string parse_url(const std::string& url, Options& out);

enum class Errc { ok, disconnected, timeout, protocol };

// ok unless the command's fate is unknown (connection lost, timed out, unreadable reply).
// A Redis error reply (-ERR ...) is a Reply with Type::error and Errc::ok.
using ReplyCallback = std::function<void(Errc, Reply)>;

// Counters since create(), readable from any thread (for metrics and tests).
struct Stats {
  std::uint64_t commands = 0;  // commands written, AUTH/SELECT/PING included
  std::uint64_t writes = 0;    // socket writes: commands / writes is the pipelining factor
  std::uint64_t connects = 0;  // TCP connections established
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  static std::shared_ptr<Connection> create(boost::asio::io_context& io, Options options);
  virtual ~Connection() = default;

  // Connects and keeps reconnecting until stop().
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual bool connected() const = 0;

  // Queues one command (any thread); the callback runs on the connection's io_context.
  // While disconnected, commands fail at once with Errc::disconnected.
  virtual void command(std::vector<std::string> argv, ReplyCallback cb) = 0;

  // Runs a Lua script by EVALSHA, loading it (EVAL) on NOSCRIPT.
  virtual void eval(const std::string& script, std::vector<std::string> keys, std::vector<std::string> args,
                    ReplyCallback cb) = 0;

  // Called on the io_context after every successful (re)connect, once AUTH/SELECT are done.
  virtual void on_connected(std::function<void()> fn) = 0;
  // Called on the io_context when a connection is lost.
  virtual void on_disconnected(std::function<void()> fn) = 0;

  virtual Stats stats() const = 0;
  // Why the last connection or connection attempt failed (e.g. "AUTH: WRONGPASS ..."); any thread.
  virtual std::string last_error() const = 0;
};

// A connection in subscribe mode. Channels are (re)subscribed on every (re)connect.
class Subscriber : public std::enable_shared_from_this<Subscriber> {
 public:
  static std::shared_ptr<Subscriber> create(boost::asio::io_context& io, Options options);
  virtual ~Subscriber() = default;

  virtual void start() = 0;
  virtual void stop() = 0;
  virtual bool connected() const = 0;  // connected and all channels confirmed subscribed
  virtual void subscribe(const std::string& channel) = 0;  // any thread
  // Messages, on the io_context.
  virtual void on_message(std::function<void(const std::string& channel, const std::string& payload)> fn) = 0;
  virtual void on_subscribed(std::function<void()> fn) = 0;  // after each (re)subscribe completes
  // Drops the connection and reconnects (used when a health probe says delivery stopped).
  virtual void reconnect() = 0;

  virtual Stats stats() const = 0;
  virtual std::string last_error() const = 0;
};

}  // namespace herald::redis
