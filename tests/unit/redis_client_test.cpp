// The Redis client (engine/redis/redis_client) against real redis-server processes that each test
// starts on a free loopback port: reply shapes, pipelining, calls from other threads, scripts with
// the NOSCRIPT fallback, AUTH/SELECT, reconnecting after the server dies, command timeouts,
// protocol errors, the subscriber's resubscription and keepalive, stop(), and parse_url.
// Nothing sleeps to synchronise: tests run the io_context until a condition holds or a deadline
// passes. Skipped when redis-server is not installed (HERALD_REDIS_SERVER overrides its path).
#include "engine/redis/redis_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>

#include "redis_server.hpp"
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>


namespace herald::redis {

std::ostream& operator<<(std::ostream& os, Errc e) {
  switch (e) {
    case Errc::ok: return os << "ok";
    case Errc::disconnected: return os << "disconnected";
    case Errc::timeout: return os << "timeout";
    case Errc::protocol: return os << "protocol";
  }
  return os << "?";
}

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using herald::testing::free_port;
using herald::testing::redis_server_path;
using herald::testing::RedisServer;

struct Outcome {
  bool done = false;
  Errc errc = Errc::ok;
  Reply reply;
};

class RedisTest : public ::testing::Test {
 protected:
  virtual std::vector<std::string> server_args() { return {}; }

  void SetUp() override {
    if (redis_server_path().empty()) GTEST_SKIP() << "redis-server is not installed";
    auto args = server_args();
    args.insert(args.end(), {"--enable-debug-command", "yes"});  // DEBUG SLEEP makes a slow server
    server_ = std::make_unique<RedisServer>(std::move(args));
    ASSERT_NE(server_->port(), 0);
    ASSERT_TRUE(server_->start()) << "redis-server did not start";
  }

  void TearDown() override {
    for (auto& c : connections_) c->stop();
    for (auto& s : subscribers_) s->stop();
    for (int i = 0; i < 100 && io_.poll() > 0; ++i) {
    }
    connections_.clear();
    subscribers_.clear();
    server_.reset();
  }

  Options options() const {
    Options o;
    o.host = "127.0.0.1";
    o.port = server_->port();
    o.connect_timeout_ms = 1000;
    o.command_timeout_ms = 2000;
    o.backoff_min_ms = 10;
    o.backoff_max_ms = 100;
    return o;
  }

  std::shared_ptr<Connection> make(Options o) {
    auto c = Connection::create(io_, std::move(o));
    connections_.push_back(c);
    return c;
  }

  std::shared_ptr<Connection> open(Options o) {
    auto c = make(std::move(o));
    c->start();
    EXPECT_TRUE(wait_for([&] { return c->connected(); })) << c->last_error();
    return c;
  }

  std::shared_ptr<Subscriber> make_subscriber(Options o) {
    auto s = Subscriber::create(io_, std::move(o));
    subscribers_.push_back(s);
    return s;
  }

  // Runs the io_context until pred() holds; false if it did not within limit.
  template <class Pred>
  bool wait_for(Pred pred, std::chrono::milliseconds limit = 10s) {
    auto end = Clock::now() + limit;
    while (!pred()) {
      if (Clock::now() >= end) return false;
      io_.run_one_for(10ms);
    }
    return true;
  }

  std::shared_ptr<Outcome> send(Connection& c, std::vector<std::string> argv) {
    auto out = std::make_shared<Outcome>();
    c.command(std::move(argv), [out](Errc e, Reply r) {
      EXPECT_FALSE(out->done) << "callback ran twice";
      out->done = true;
      out->errc = e;
      out->reply = std::move(r);
    });
    return out;
  }

  Outcome call(Connection& c, std::vector<std::string> argv) {
    auto what = argv.empty() ? std::string() : argv[0];
    auto out = send(c, std::move(argv));
    EXPECT_TRUE(wait_for([&] { return out->done; })) << what << " got no callback";
    return *out;
  }

  Reply ok(Connection& c, std::vector<std::string> argv) {
    auto what = argv.empty() ? std::string() : argv[0];
    auto out = call(c, std::move(argv));
    EXPECT_EQ(out.errc, Errc::ok) << what;
    return out.reply;
  }

  Outcome eval(Connection& c, const std::string& script, std::vector<std::string> keys,
               std::vector<std::string> args) {
    auto out = std::make_shared<Outcome>();
    c.eval(script, std::move(keys), std::move(args), [out](Errc e, Reply r) {
      out->done = true;
      out->errc = e;
      out->reply = std::move(r);
    });
    EXPECT_TRUE(wait_for([&] { return out->done; }));
    return *out;
  }

  // Waits until c answers a PING, retrying while it reconnects.
  bool recovers(Connection& c, std::chrono::milliseconds limit = 10s) {
    std::shared_ptr<Outcome> ping;
    return wait_for(
        [&] {
          if (ping && ping->done) {
            if (ping->errc == Errc::ok) return true;
            ping.reset();
          }
          if (!ping && c.connected()) ping = send(c, {"PING"});
          return false;
        },
        limit);
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<RedisServer> server_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::vector<std::shared_ptr<Subscriber>> subscribers_;
};

// --- commands and replies ------------------------------------------------------------------------

TEST_F(RedisTest, RepliesOfEveryShape) {
  auto c = open(options());

  auto set = ok(*c, {"SET", "k", "v"});
  EXPECT_EQ(set.type, Reply::Type::status);
  EXPECT_EQ(set.str, "OK");

  auto get = ok(*c, {"GET", "k"});
  EXPECT_EQ(get.type, Reply::Type::string);
  EXPECT_EQ(get.str, "v");

  EXPECT_TRUE(ok(*c, {"GET", "missing"}).is_nil());

  EXPECT_EQ(ok(*c, {"INCR", "n"}).integer, 1);
  auto incr = ok(*c, {"INCR", "n"});
  EXPECT_EQ(incr.type, Reply::Type::integer);
  EXPECT_EQ(incr.integer, 2);

  // Redis error replies are replies (Errc::ok), not connection failures.
  auto wrong = ok(*c, {"INCR", "k"});
  EXPECT_TRUE(wrong.is_error());
  EXPECT_EQ(wrong.str.rfind("ERR", 0), 0u) << wrong.str;
  EXPECT_TRUE(ok(*c, {"NO-SUCH-COMMAND"}).is_error());
  EXPECT_TRUE(c->connected());

  // Binary-safe arguments and values.
  std::string binary("a\0b\r\nc", 6);
  ok(*c, {"SET", "bin", binary});
  EXPECT_EQ(ok(*c, {"GET", "bin"}).str, binary);

  // Nested arrays: XRANGE gives [[id, [field, value, ...]], ...].
  ok(*c, {"XADD", "s", "1-1", "f", "v"});
  ok(*c, {"XADD", "s", "2-1", "g", "w", "h", "x"});
  auto range = ok(*c, {"XRANGE", "s", "-", "+"});
  ASSERT_EQ(range.type, Reply::Type::array);
  ASSERT_EQ(range.elements.size(), 2u);
  EXPECT_EQ(range.elements[0].elements[0].str, "1-1");
  ASSERT_EQ(range.elements[0].elements[1].type, Reply::Type::array);
  EXPECT_EQ(range.elements[0].elements[1].elements[1].str, "v");
  EXPECT_EQ(range.elements[1].elements[0].str, "2-1");
  EXPECT_EQ(range.elements[1].elements[1].elements.size(), 4u);
  EXPECT_TRUE(ok(*c, {"XRANGE", "none", "-", "+"}).elements.empty());

  // An empty command would get no reply and shift every later one; it is refused.
  auto empty = ok(*c, {});
  EXPECT_TRUE(empty.is_error());
  EXPECT_EQ(ok(*c, {"GET", "k"}).str, "v");
}

TEST_F(RedisTest, CommandsOfOneTurnLeaveInOneWrite) {
  auto c = open(options());
  auto before = c->stats();
  std::vector<long long> got;
  int failures = 0;
  asio::post(io_, [&] {
    for (int i = 0; i < 1000; ++i)
      c->command({"INCR", "p"}, [&](Errc e, Reply r) {
        if (e != Errc::ok) ++failures;
        got.push_back(r.integer);
      });
  });
  ASSERT_TRUE(wait_for([&] { return got.size() == 1000; }));
  EXPECT_EQ(failures, 0);
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], static_cast<long long>(i + 1));
  auto after = c->stats();
  EXPECT_EQ(after.commands - before.commands, 1000u);
  EXPECT_EQ(after.writes - before.writes, 1u);
}

TEST_F(RedisTest, CommandsFromOtherThreadsAnswerOnTheIoContext) {
  auto c = open(options());
  auto io_thread = std::this_thread::get_id();
  std::atomic<int> answered{0}, wrong_thread{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i)
        c->command({"INCR", "mt"}, [&](Errc e, Reply) {
          if (std::this_thread::get_id() != io_thread) ++wrong_thread;
          if (e != Errc::ok) ++failed;
          ++answered;
        });
    });
  EXPECT_TRUE(wait_for([&] { return answered == 2000; }));
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong_thread, 0);
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(ok(*c, {"GET", "mt"}).str, "2000");
}

// --- scripts -------------------------------------------------------------------------------------

TEST_F(RedisTest, EvalUsesEvalshaAndFallsBackOnNoscript) {
  auto c = open(options());
  auto eval_count = [&] {
    // cmdstat_eval:calls=N,... counts the full-script EVALs the client had to send.
    auto info = ok(*c, {"INFO", "commandstats"}).str;
    auto at = info.find("cmdstat_eval:calls=");
    return at == std::string::npos ? 0LL : std::stoll(info.substr(at + 19));
  };
  const std::string script = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}";

  auto first = eval(*c, script, {"ek"}, {"a1"});  // not loaded yet: NOSCRIPT, then EVAL
  ASSERT_EQ(first.errc, Errc::ok);
  ASSERT_EQ(first.reply.type, Reply::Type::array) << first.reply.str;
  ASSERT_EQ(first.reply.elements.size(), 3u);
  EXPECT_EQ(first.reply.elements[0].str, "ek");
  EXPECT_EQ(first.reply.elements[1].str, "a1");
  EXPECT_EQ(first.reply.elements[2].integer, 1);
  EXPECT_EQ(eval_count(), 1);

  auto second = eval(*c, script, {"ek"}, {"a2"});  // loaded: EVALSHA alone
  EXPECT_EQ(second.reply.elements[2].integer, 2);
  EXPECT_EQ(eval_count(), 1);

  EXPECT_EQ(ok(*c, {"SCRIPT", "FLUSH"}).str, "OK");
  auto third = eval(*c, script, {"ek"}, {"a3"});  // flushed: NOSCRIPT, then EVAL again
  ASSERT_EQ(third.errc, Errc::ok);
  EXPECT_EQ(third.reply.elements[1].str, "a3");
  EXPECT_EQ(third.reply.elements[2].integer, 3);
  EXPECT_EQ(eval_count(), 2);

  // A script's own error is an error reply, passed through.
  ok(*c, {"SET", "str", "x"});
  auto bad = eval(*c, "return redis.call('INCR', KEYS[1])", {"str"}, {});
  EXPECT_EQ(bad.errc, Errc::ok);
  EXPECT_TRUE(bad.reply.is_error());
}

// --- AUTH and SELECT -----------------------------------------------------------------------------

class RedisAuthTest : public RedisTest {
 protected:
  std::vector<std::string> server_args() override { return {"--requirepass", "s3cret"}; }
  std::string base() const { return "127.0.0.1:" + std::to_string(server_->port()); }
};

TEST_F(RedisAuthTest, AuthAndSelectFromTheUrl) {
  auto in_db2 = options();
  ASSERT_EQ(parse_url("redis://:s3cret@" + base() + "/2", in_db2), "");
  auto c2 = open(in_db2);
  ok(*c2, {"SET", "k", "in-db-2"});
  EXPECT_NE(ok(*c2, {"CLIENT", "INFO"}).str.find(" db=2 "), std::string::npos);

  auto in_db0 = options();
  ASSERT_EQ(parse_url("redis://:s3cret@" + base(), in_db0), "");
  auto c0 = open(in_db0);
  EXPECT_TRUE(ok(*c0, {"GET", "k"}).is_nil());

  // AUTH with a user name (Redis 6 ACLs).
  EXPECT_EQ(ok(*c0, {"ACL", "SETUSER", "alice", "on", ">pw", "~*", "&*", "+@all"}).str, "OK");
  auto alice = options();
  ASSERT_EQ(parse_url("redis://alice:pw@" + base() + "/2", alice), "");
  auto ca = open(alice);
  EXPECT_EQ(ok(*ca, {"ACL", "WHOAMI"}).str, "alice");
  EXPECT_EQ(ok(*ca, {"GET", "k"}).str, "in-db-2");
}

TEST_F(RedisAuthTest, WrongPasswordNeverConnectsAndSaysWhy) {
  auto o = options();
  o.password = "wrong";
  std::atomic<int> connected{0};
  auto c = make(o);
  c->on_connected([&] { ++connected; });
  c->start();
  ASSERT_TRUE(wait_for([&] { return c->stats().connects >= 3; })) << "keeps retrying";
  EXPECT_NE(c->last_error().find("AUTH"), std::string::npos) << c->last_error();
  EXPECT_EQ(connected, 0);
  EXPECT_FALSE(c->connected());
  EXPECT_EQ(call(*c, {"PING"}).errc, Errc::disconnected);
}

TEST_F(RedisTest, SelectsTheDatabase) {
  auto o5 = options();
  o5.db = 5;
  auto c5 = open(o5);
  auto c0 = open(options());
  ok(*c5, {"SET", "where", "five"});
  EXPECT_TRUE(ok(*c0, {"GET", "where"}).is_nil());
  EXPECT_EQ(ok(*c0, {"SELECT", "5"}).str, "OK");
  EXPECT_EQ(ok(*c0, {"GET", "where"}).str, "five");
}

// --- failures ------------------------------------------------------------------------------------

TEST_F(RedisTest, ReconnectsByItselfAfterTheServerRestarts) {
  auto o = options();
  o.command_timeout_ms = 5000;
  int ups = 0, downs = 0;
  auto c = make(o);
  c->on_connected([&] { ++ups; });
  c->on_disconnected([&] { ++downs; });
  c->start();
  ASSERT_TRUE(wait_for([&] { return ups == 1; }));
  ok(*c, {"SET", "k", "v"});

  // A command in flight when the server dies fails; it does not hang.
  auto writes = c->stats().writes;
  auto blocked = send(*c, {"BLPOP", "nothing", "0"});
  ASSERT_TRUE(wait_for([&] { return c->stats().writes > writes; }));
  server_->kill();
  ASSERT_TRUE(wait_for([&] { return blocked->done; }));
  EXPECT_TRUE(blocked->errc == Errc::disconnected || blocked->errc == Errc::timeout) << blocked->errc;
  ASSERT_TRUE(wait_for([&] { return !c->connected(); }));
  EXPECT_EQ(downs, 1);

  // While the server is down, commands fail at once instead of queueing.
  auto t0 = Clock::now();
  auto down = call(*c, {"GET", "k"});
  EXPECT_EQ(down.errc, Errc::disconnected);
  EXPECT_LT(Clock::now() - t0, 200ms);
  auto eval_down = eval(*c, "return 1", {}, {});
  EXPECT_EQ(eval_down.errc, Errc::disconnected);

  ASSERT_TRUE(server_->start());  // same port, empty data
  ASSERT_TRUE(wait_for([&] { return ups == 2; })) << c->last_error();
  EXPECT_TRUE(c->connected());
  EXPECT_TRUE(ok(*c, {"GET", "k"}).is_nil());
  ok(*c, {"SET", "k", "again"});
  EXPECT_EQ(ok(*c, {"GET", "k"}).str, "again");
  EXPECT_EQ(downs, 1);
}

TEST_F(RedisTest, CommandTimeoutDropsTheConnectionAndRecovers) {
  auto o = options();
  o.command_timeout_ms = 500;
  auto c = open(o);
  auto t0 = Clock::now();
  auto sleeper = send(*c, {"DEBUG", "SLEEP", "3"});
  auto behind = send(*c, {"PING"});  // same write, stuck behind it
  ASSERT_TRUE(wait_for([&] { return sleeper->done && behind->done; }, 5s));
  auto waited = Clock::now() - t0;
  EXPECT_EQ(sleeper->errc, Errc::timeout);
  EXPECT_NE(behind->errc, Errc::ok);
  EXPECT_GE(waited, 450ms);
  EXPECT_LT(waited, 1500ms);
  EXPECT_NE(c->last_error().find("no reply"), std::string::npos) << c->last_error();
  EXPECT_TRUE(recovers(*c));
  EXPECT_GE(c->stats().connects, 2u);
}

class RedisFakeServerTest : public RedisTest {
 protected:
  // A fake server that answers anything with `reply`: the client must fail the command as a
  // protocol error, say why in last_error(), and reconnect.
  void expect_protocol_failure(std::string_view reply, std::string_view why);
};

void RedisFakeServerTest::expect_protocol_failure(std::string_view reply, std::string_view why) {
  auto& t = *this;
  asio::ip::tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
  std::vector<std::shared_ptr<asio::ip::tcp::socket>> peers;
  std::function<void()> accept = [&] {
    acceptor.async_accept([&](boost::system::error_code ec, asio::ip::tcp::socket s) {
      if (ec) return;
      auto peer = std::make_shared<asio::ip::tcp::socket>(std::move(s));
      peers.push_back(peer);
      auto buf = std::make_shared<std::array<char, 512>>();
      peer->async_read_some(asio::buffer(*buf), [peer, buf, reply](boost::system::error_code ec, std::size_t) {
        if (!ec) asio::write(*peer, asio::buffer(reply), ec);
      });
      accept();
    });
  };
  accept();
  auto o = t.options();
  o.port = acceptor.local_endpoint().port();
  auto c = t.open(o);
  auto out = t.call(*c, {"PING"});
  EXPECT_EQ(out.errc, Errc::protocol);
  EXPECT_NE(c->last_error().find(why), std::string::npos) << c->last_error();
  EXPECT_TRUE(t.wait_for([&] { return c->stats().connects >= 2 && c->connected(); }));
  c->stop();
  acceptor.close();
}

TEST_F(RedisFakeServerTest, UnreadableReplyFailsWithProtocolAndReconnects) {
  expect_protocol_failure("@garbage\r\n", "protocol");  // no RESP type
}

// Found by resp_fuzz: hiredis allocates an announced array at once (16 GB for these 13 bytes).
TEST_F(RedisFakeServerTest, HugeArrayHeaderFailsWithProtocolAndReconnects) {
  expect_protocol_failure("*2000000000\r\n", "over the limit");
}

// --- stop and lifetime ---------------------------------------------------------------------------

TEST_F(RedisTest, StopFailsWhatIsOutstandingAndIsFinal) {
  auto c = open(options());
  int ups = 0;
  c->on_connected([&] { ++ups; });
  auto writes = c->stats().writes;
  auto blocked = send(*c, {"BLPOP", "nothing", "0"});
  ASSERT_TRUE(wait_for([&] { return c->stats().writes > writes; }));
  c->stop();
  c->stop();
  ASSERT_TRUE(wait_for([&] { return blocked->done; }));
  EXPECT_EQ(blocked->errc, Errc::disconnected);
  EXPECT_FALSE(c->connected());
  EXPECT_EQ(call(*c, {"PING"}).errc, Errc::disconnected);

  // Nothing keeps a stopped connection alive once its handlers have completed.
  std::weak_ptr<Connection> weak = c;
  connections_.clear();
  c.reset();
  EXPECT_TRUE(wait_for([&] { return weak.expired(); }, 2s));
  EXPECT_EQ(ups, 0);
}

TEST_F(RedisTest, StopFromACallbackFailsTheRestBeforeItReturns) {
  auto c = open(options());
  auto second = std::make_shared<Outcome>();
  bool second_done_when_stop_returned = false;
  asio::post(io_, [&] {
    c->command({"PING"}, [&](Errc, Reply) {
      c->stop();  // on the io_context: runs at once
      second_done_when_stop_returned = second->done;
    });
    c->command({"BLPOP", "nothing", "0"}, [second](Errc e, Reply r) {
      second->done = true;
      second->errc = e;
    });
  });
  ASSERT_TRUE(wait_for([&] { return second->done; }));
  EXPECT_TRUE(second_done_when_stop_returned);
  EXPECT_EQ(second->errc, Errc::disconnected);
}

// --- subscriber ----------------------------------------------------------------------------------

TEST_F(RedisTest, SubscriberReceivesAndResubscribesAfterARestart) {
  auto s = make_subscriber(options());
  std::vector<std::pair<std::string, std::string>> got;
  int subscribed = 0;
  s->on_message([&](const std::string& ch, const std::string& payload) { got.emplace_back(ch, payload); });
  s->on_subscribed([&] { ++subscribed; });
  s->subscribe("a");
  s->subscribe("b");
  s->subscribe("a");  // once is enough
  s->start();
  ASSERT_TRUE(wait_for([&] { return s->connected(); }));
  EXPECT_EQ(subscribed, 1);

  auto c = open(options());
  EXPECT_EQ(ok(*c, {"PUBLISH", "a", "hello"}).integer, 1);
  EXPECT_EQ(ok(*c, {"PUBLISH", "b", std::string("bin\0ary", 7)}).integer, 1);
  ASSERT_TRUE(wait_for([&] { return got.size() == 2; }));
  EXPECT_EQ(got[0], std::make_pair(std::string("a"), std::string("hello")));
  EXPECT_EQ(got[1], std::make_pair(std::string("b"), std::string("bin\0ary", 7)));

  // A channel added later is subscribed on the live connection.
  s->subscribe("c");
  ASSERT_TRUE(wait_for([&] { return subscribed == 2 && s->connected(); }));
  EXPECT_EQ(ok(*c, {"PUBLISH", "c", "late"}).integer, 1);
  ASSERT_TRUE(wait_for([&] { return got.size() == 3; }));

  server_->kill();
  ASSERT_TRUE(wait_for([&] { return !s->connected(); }));
  ASSERT_TRUE(server_->start());
  ASSERT_TRUE(wait_for([&] { return subscribed == 3 && s->connected(); })) << s->last_error();
  ASSERT_TRUE(recovers(*c));
  for (const char* ch : {"a", "b", "c"}) EXPECT_EQ(ok(*c, {"PUBLISH", ch, "after"}).integer, 1) << ch;
  ASSERT_TRUE(wait_for([&] { return got.size() == 6; }));
  EXPECT_EQ(got[5].second, "after");
}

TEST_F(RedisTest, SubscriberNoticesASilentServerByPing) {
  auto o = options();
  o.ping_interval_ms = 100;
  o.command_timeout_ms = 300;
  auto s = make_subscriber(o);
  int subscribed = 0;
  s->on_subscribed([&] { ++subscribed; });
  s->subscribe("a");
  s->start();
  ASSERT_TRUE(wait_for([&] { return s->connected(); }));
  auto pings = s->stats().commands;
  ASSERT_TRUE(wait_for([&] { return s->stats().commands >= pings + 3; }, 2s)) << "PINGs are sent";
  EXPECT_TRUE(s->connected());

  server_->pause();
  EXPECT_TRUE(wait_for([&] { return !s->connected(); }, 3s));
  EXPECT_NE(s->last_error().find("no reply"), std::string::npos) << s->last_error();
  server_->resume();
  ASSERT_TRUE(wait_for([&] { return s->connected() && subscribed >= 2; }));

  auto c = open(options());
  std::string payload;
  s->on_message([&](const std::string&, const std::string& p) { payload = p; });
  EXPECT_EQ(ok(*c, {"PUBLISH", "a", "alive"}).integer, 1);
  EXPECT_TRUE(wait_for([&] { return payload == "alive"; }));
}

TEST_F(RedisTest, SubscriberReconnectsOnRequest) {
  auto s = make_subscriber(options());
  int subscribed = 0;
  std::string payload;
  s->on_subscribed([&] { ++subscribed; });
  s->on_message([&](const std::string&, const std::string& p) { payload = p; });
  s->subscribe("a");
  s->start();
  ASSERT_TRUE(wait_for([&] { return subscribed == 1; }));
  s->reconnect();
  ASSERT_TRUE(wait_for([&] { return subscribed == 2 && s->connected(); }));
  EXPECT_EQ(s->stats().connects, 2u);
  auto c = open(options());
  EXPECT_EQ(ok(*c, {"PUBLISH", "a", "x"}).integer, 1);
  EXPECT_TRUE(wait_for([&] { return payload == "x"; }));
  s->stop();
  s->stop();
  EXPECT_TRUE(wait_for([&] { return !s->connected(); }));
  ok(*c, {"PUBLISH", "a", "y"});
  ok(*c, {"PING"});
  EXPECT_EQ(payload, "x") << "no message after stop()";
}

// --- throughput ----------------------------------------------------------------------------------

TEST_F(RedisTest, PipelinedThroughput) {
  auto c = open(options());
  constexpr int kTotal = 200000;
  constexpr int kWindow = 10000;  // commands in flight; each reply sends the next
  int issued = 0, answered = 0, failed = 0;
  long long last = 0;
  std::function<void()> issue = [&] {
    ++issued;
    c->command({"INCR", "tp"}, [&](Errc e, Reply r) {
      ++answered;
      if (e != Errc::ok || r.integer != last + 1) ++failed;
      last = r.integer;
      if (issued < kTotal) issue();
    });
  };
  auto before = c->stats();
  auto t0 = Clock::now();
  asio::post(io_, [&] {
    for (int i = 0; i < kWindow; ++i) issue();
  });
  ASSERT_TRUE(wait_for([&] { return answered == kTotal; }, 60s));
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  auto after = c->stats();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(last, kTotal);
  std::cout << "[ throughput ] " << kTotal << " pipelined INCRs in " << seconds * 1000 << " ms: "
            << static_cast<long long>(kTotal / seconds) << " ops/s, "
            << (after.commands - before.commands) / std::max<std::uint64_t>(1, after.writes - before.writes)
            << " commands per write\n";
}

// --- parse_url -----------------------------------------------------------------------------------

TEST(RedisParseUrl, AcceptsTheDocumentedForms) {
  Options o;
  o.command_timeout_ms = 1234;
  ASSERT_EQ(parse_url("redis://localhost", o), "");
  EXPECT_EQ(o.host, "localhost");
  EXPECT_EQ(o.port, 6379);
  EXPECT_EQ(o.db, 0);
  EXPECT_TRUE(o.password.empty());
  EXPECT_TRUE(o.username.empty());
  EXPECT_EQ(o.command_timeout_ms, 1234u);  // only what the URL says changes

  ASSERT_EQ(parse_url("redis://redis.internal:6380", o), "");
  EXPECT_EQ(o.host, "redis.internal");
  EXPECT_EQ(o.port, 6380);

  ASSERT_EQ(parse_url("redis://:pass@10.0.0.7:7000/2", o), "");
  EXPECT_EQ(o.host, "10.0.0.7");
  EXPECT_EQ(o.port, 7000);
  EXPECT_EQ(o.password, "pass");
  EXPECT_TRUE(o.username.empty());
  EXPECT_EQ(o.db, 2);

  ASSERT_EQ(parse_url("redis://user:pass@host", o), "");
  EXPECT_EQ(o.username, "user");
  EXPECT_EQ(o.password, "pass");
  EXPECT_EQ(o.host, "host");
  EXPECT_EQ(o.port, 6379);
  EXPECT_EQ(o.db, 0);

  ASSERT_EQ(parse_url("redis://:p%40ss%3Aw@host/", o), "");
  EXPECT_EQ(o.password, "p@ss:w");
  EXPECT_EQ(o.db, 0);

  ASSERT_EQ(parse_url("redis://:p@ss@host", o), "");  // the last '@' ends the credentials
  EXPECT_EQ(o.password, "p@ss");

  ASSERT_EQ(parse_url("redis://[::1]:6390/15", o), "");
  EXPECT_EQ(o.host, "::1");
  EXPECT_EQ(o.port, 6390);
  EXPECT_EQ(o.db, 15);
}

TEST(RedisParseUrl, RejectsWithAClearMessage) {
  struct Case {
    const char* url;
    const char* says;
  };
  for (auto [url, says] : {Case{"http://host", "scheme"}, Case{"rediss://host", "scheme"},
                           Case{"host:6379", "redis://"}, Case{"redis://host:0", "port"},
                           Case{"redis://host:65536", "port"}, Case{"redis://host:63a9", "port"},
                           Case{"redis://host:", "port"}, Case{"redis://host:-1", "port"},
                           Case{"redis://:6379", "host"}, Case{"redis://", "host"},
                           Case{"redis://host/x", "database"}, Case{"redis://host/-1", "database"},
                           Case{"redis://pass@host", "':'"}, Case{"redis://user:@host", "password"},
                           Case{"redis://:p%zz@host", "%"}, Case{"redis://host?db=1", "query"},
                           Case{"redis://::1:6379", "IPv6"}, Case{"redis://[::1", "["}}) {
    Options o;
    o.host = "unchanged";
    auto error = parse_url(url, o);
    EXPECT_NE(error.find(says), std::string::npos) << url << " → '" << error << "'";
    EXPECT_EQ(o.host, "unchanged") << url;
  }
}

}  // namespace
}  // namespace herald::redis
