// The HTTP driver: one coroutine per keep-alive connection, all on one event loop. See
// http_driver.hpp for the numbering of notifications and the ledger.
#include "http_driver.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <cstring>

#include "checks.hpp"
#include "clock.hpp"
#include "ws_wire.hpp"

namespace bench {

namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using asio::awaitable;
using boost::system::error_code;

namespace {

void append_num(std::string& s, std::uint64_t v) {
  char b[24];
  auto r = std::to_chars(b, b + sizeof b, v);
  s.append(b, r.ptr);
}

bool iequal_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if ((text[i] | 0x20) != (prefix[i] | 0x20)) return false;
  return true;
}

struct Response {
  int status = 0;
  bool close = false;
  std::string body;
};

class Driver {
 public:
  Driver(const DriveSpec& spec, DriveProgress& progress) : spec_(spec), progress_(progress), deadline_(io_) {
    result_.clients.resize(spec.clients);
    next_ = spec.first;
    auto addr = asio::ip::make_address_v4(spec.host);
    target_ = tcp::endpoint(addr, spec.port);
    host_port_ = spec.host + ":" + std::to_string(spec.port);
    padding_.assign(spec.payload, 'x');
  }

  DriveResult run() {
    start_us_ = now_us();
    result_.t_start = start_us_;
    end_by_ = start_us_ + static_cast<std::uint64_t>(spec_.deadline_s * 1e6);
    deadline_.expires_after(std::chrono::microseconds(end_by_ - start_us_));
    deadline_.async_wait([this](error_code ec) {
      if (ec) return;
      result_.cut = true;
      for (auto* s : sockets_) {
        error_code e;
        s->close(e);
      }
    });
    live_ = spec_.connections;
    for (unsigned i = 0; i < spec_.connections; ++i) asio::co_spawn(io_, connection(), asio::detached);
    io_.run();
    return std::move(result_);
  }

 private:
  // The next request's notifications [k0, k0 + n); n = 0 when there is nothing left to send.
  std::pair<std::uint64_t, std::uint64_t> take() {
    auto end = spec_.first + spec_.total;
    if (next_ >= end || now_us() >= end_by_) {
      if (next_ < end) result_.cut = true;
      return {0, 0};
    }
    std::uint64_t n = std::min<std::uint64_t>(spec_.batch ? spec_.batch : 1, end - next_);
    auto k0 = next_;
    next_ += n;
    for (auto k = k0; k < k0 + n; ++k) result_.clients[k % spec_.clients].sent = k / spec_.clients + 1;
    progress_.issued.store(next_ - spec_.first, std::memory_order_relaxed);
    return {k0, n};
  }

  void append_item(std::string& b, std::uint64_t k, std::uint64_t stamp, std::uint64_t written) {
    auto c = k % spec_.clients;
    b += spec_.legacy ? "{\"clientId\":\"" : "{\"client_id\":\"";
    b += spec_.prefix;
    append_num(b, c);
    b += "\",\"data\":{\"c\":";
    append_num(b, c);
    b += ",\"s\":";
    append_num(b, k / spec_.clients);
    b += ",\"t\":";
    append_num(b, stamp);
    if (spec_.rate > 0) {
      // When it was written, beside when it was due: tells herald's delay from the driver's own.
      b += ",\"w\":";
      append_num(b, written);
    }
    if (!padding_.empty()) {
      b += ",\"p\":\"";
      b += padding_;
      b += '"';
    }
    b += "}}";
  }

  void build(std::string& req, std::string& body, std::uint64_t k0, std::uint64_t n, std::uint64_t stamp,
             std::uint64_t written) {
    body.clear();
    if (spec_.batch) {
      body += "{\"notifications\":[";
      for (auto k = k0; k < k0 + n; ++k) {
        if (k != k0) body += ',';
        append_item(body, k, stamp, written);
      }
      body += "]}";
    } else {
      append_item(body, k0, stamp, written);
    }
    req.clear();
    req += spec_.batch    ? "POST /v1/notifications/batch HTTP/1.1\r\nHost: "
           : spec_.legacy ? "POST /notify HTTP/1.1\r\nHost: "
                          : "POST /v1/notifications HTTP/1.1\r\nHost: ";
    req += host_port_;
    req += "\r\nContent-Type: application/json\r\nContent-Length: ";
    append_num(req, body.size());
    req += "\r\n\r\n";
    req += body;
  }

  void fail(std::uint64_t k0, std::uint64_t n) {
    for (auto k = k0; k < k0 + n; ++k) result_.clients[k % spec_.clients].failed.push_back(k / spec_.clients);
    result_.failed += n;
  }

  void accept(std::uint64_t k, std::string_view id) {
    std::uint64_t ms = 0, seq = 0;
    if (!ws::parse_id(id, ms, seq)) {
      ++result_.statuses["202 without a valid id"];
      return fail(k, 1);
    }
    auto& l = result_.clients[k % spec_.clients];
    ++l.n202;
    l.sum += delivery_hash(k / spec_.clients, ms, seq);
    ++result_.accepted;
  }

  void settle(const Response& r, std::uint64_t k0, std::uint64_t n) {
    if (!spec_.batch && spec_.legacy) {
      if (r.status == 202) {
        // No id in the legacy answer: the worker hashes (seq, 0, seq) the same way.
        auto& l = result_.clients[k0 % spec_.clients];
        ++l.n202;
        l.sum += delivery_hash(k0 / spec_.clients, 0, k0 / spec_.clients);
        ++result_.accepted;
        return;
      }
      ++result_.statuses[std::to_string(r.status)];
      return fail(k0, n);
    }
    if (!spec_.batch) {
      if (r.status == 202) {
        auto at = r.body.find("\"id\":\"");
        auto end = at == std::string::npos ? at : r.body.find('"', at + 6);
        if (end != std::string::npos) return accept(k0, std::string_view(r.body).substr(at + 6, end - at - 6));
      }
      ++result_.statuses[std::to_string(r.status)];
      return fail(k0, n);
    }
    if (r.status != 200) {
      result_.statuses[std::to_string(r.status)] += n;
      return fail(k0, n);
    }
    json::error_code ec;
    auto v = json::parse(r.body, ec);
    const json::array* results = nullptr;
    if (!ec && v.is_object())
      if (auto* a = v.get_object().if_contains("results"); a && a->is_array()) results = &a->get_array();
    if (!results || results->size() != n) {
      result_.statuses["200 with unreadable results"] += n;
      return fail(k0, n);
    }
    for (std::uint64_t i = 0; i < n; ++i) {
      auto& item = (*results)[i];
      const json::object* o = item.if_object();
      const json::value* st = o ? o->if_contains("status") : nullptr;
      const json::value* id = o ? o->if_contains("id") : nullptr;
      if (st && st->is_int64() && st->get_int64() == 202 && id && id->is_string()) {
        accept(k0 + i, id->get_string());
      } else {
        ++result_.statuses["item " + (st ? json::serialize(*st) : std::string("?"))];
        fail(k0 + i, 1);
      }
    }
  }

  // Reads one response (Content-Length bodies only: Herald never chunks).
  awaitable<bool> read_response(tcp::socket& s, std::string& rbuf, Response& r) {
    char tmp[65536];
    error_code ec;
    for (;;) {
      auto he = rbuf.find("\r\n\r\n");
      if (he != std::string::npos) {
        std::string_view head(rbuf.data(), he + 2);
        if (head.size() < 12 || head.substr(0, 5) != "HTTP/") co_return false;
        r.status = std::atoi(head.data() + 9);
        std::size_t length = 0;
        r.close = false;
        std::size_t pos = head.find("\r\n");
        while (pos != std::string_view::npos && pos + 2 < head.size()) {
          auto line = head.substr(pos + 2, head.find("\r\n", pos + 2) - pos - 2);
          if (iequal_prefix(line, "content-length:")) length = std::strtoull(line.data() + 15, nullptr, 10);
          if (iequal_prefix(line, "connection:") && line.find("close") != std::string_view::npos) r.close = true;
          pos = head.find("\r\n", pos + 2);
        }
        if (rbuf.size() >= he + 4 + length) {
          r.body.assign(rbuf, he + 4, length);
          rbuf.erase(0, he + 4 + length);
          co_return true;
        }
      }
      auto n = co_await s.async_read_some(asio::buffer(tmp), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return false;
      rbuf.append(tmp, n);
    }
  }

  awaitable<void> connection() {
    tcp::socket s(io_);
    sockets_.push_back(&s);
    asio::steady_timer pace(io_);
    std::string rbuf, req, body;
    Response r;
    error_code ec;
    for (;;) {
      if (!s.is_open()) {
        if (now_us() >= end_by_) break;
        co_await s.async_connect(target_, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
          ++result_.transport_errors;
          s.close(ec);
          pace.expires_after(std::chrono::milliseconds(100));
          co_await pace.async_wait(asio::redirect_error(asio::use_awaitable, ec));
          continue;
        }
        ++result_.connects;
        s.set_option(tcp::no_delay(true), ec);
        rbuf.clear();
      }
      auto [k0, n] = take();
      if (!n) break;
      std::uint64_t stamp = now_us();
      if (spec_.rate > 0) {
        auto due = start_us_ + static_cast<std::uint64_t>(static_cast<double>(k0 - spec_.first) * 1e6 / spec_.rate);
        if (due > stamp) {
          pace.expires_after(std::chrono::microseconds(due - stamp));
          co_await pace.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        stamp = due;
      }
      auto written = now_us();
      build(req, body, k0, n, stamp, written);
      if (spec_.rate > 0) result_.send_lag.record(written > stamp ? written - stamp : 0);
      ++result_.requests;
      co_await asio::async_write(s, asio::buffer(req), asio::redirect_error(asio::use_awaitable, ec));
      // (Not `!ec && co_await …`: GCC 12 miscompiles co_await inside a condition.)
      bool ok = false;
      if (!ec) ok = co_await read_response(s, rbuf, r);
      if (!ok) {
        ++result_.transport_errors;
        fail(k0, n);
        s.close(ec);
      } else {
        auto now = now_us();
        result_.request_latency.record(now - written);
        result_.t_end = now;
        settle(r, k0, n);
        if (r.close) s.close(ec);
      }
      progress_.answered.fetch_add(n, std::memory_order_relaxed);
      progress_.accepted.store(result_.accepted, std::memory_order_relaxed);
    }
    std::erase(sockets_, &s);
    if (--live_ == 0) deadline_.cancel();
  }

  const DriveSpec& spec_;
  DriveProgress& progress_;
  asio::io_context io_{1};
  asio::steady_timer deadline_;
  tcp::endpoint target_;
  std::string host_port_;
  std::string padding_;
  std::vector<tcp::socket*> sockets_;
  std::uint64_t next_ = 0;
  std::uint64_t start_us_ = 0, end_by_ = 0;
  unsigned live_ = 0;
  DriveResult result_;
};

}  // namespace

DriveResult drive(const DriveSpec& spec, DriveProgress& progress) {
  Driver d(spec, progress);
  return d.run();
}

}  // namespace bench
