// The TLS transport of ws::Session: the same session, frames and protocol as session.cpp, with
// bytes carried by an ssl::stream. Reads are async_read_some into the link's own buffer; writes
// gather the queued frames into records of up to 16 KB (one large frame goes as it is) and
// async_write them. The frame queue's bookkeeping is the plain path's: written() advances it
// exactly like a completed writev does.
#include <boost/asio/write.hpp>

#include "core/loop.hpp"
#include "ws/session_tls.hpp"

namespace herald::ws {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr std::size_t kTlsRecord = 16 * 1024;  // the largest TLS record's plaintext
}  // namespace

void Session::start(Loop& loop, tls::Stream&& tls, std::string_view early, bool origin_allowed,
                    limits::IpSlot slot) {
  auto s = std::make_shared<Session>(loop, LoopSocket(loop.io()));
  s->slot_ = std::move(slot);
  s->tls_ = std::make_unique<TlsLink>(std::move(tls));
  error_code ec;
  s->remote_ = s->tls_->stream.next_layer().remote_endpoint(ec);
  s->counter_ = loop.add(s);
  s->begin(early, origin_allowed);
}

void Session::tls_read() {
  auto& in = tls_->in;
  tls_->stream.async_read_some(asio::buffer(in), [self = shared_from_this()](error_code ec, std::size_t n) {
    if (self->state_ == State::closed) return;
    if (ec) {  // EOF, close_notify, reset or a broken record: the client is gone
      self->terminate(self->state_ == State::closing ? self->reason_ : CloseReason::client_closed);
      return;
    }
    self->consume(std::span(self->tls_->in.data(), n));
    self->arm_read();
  });
}

bool Session::tls_flush() {
  if (out_head_ >= out_.size()) {
    std::string().swap(tls_->out);  // idle: hold nothing
    return true;
  }
  auto& head = out_[out_head_];
  std::shared_ptr<const std::string> keep;  // a large frame is written from where it lies
  asio::const_buffer chunk;
  if (head.bytes->size() - out_offset_ >= kTlsRecord) {
    keep = head.bytes;
    chunk = asio::buffer(keep->data() + out_offset_, keep->size() - out_offset_);
  } else {
    auto& out = tls_->out;
    out.clear();
    for (auto i = out_head_; i < out_.size() && out.size() < kTlsRecord; ++i) {
      auto& b = *out_[i].bytes;
      auto skip = i == out_head_ ? out_offset_ : 0;
      out.append(b, skip, std::min(b.size() - skip, kTlsRecord - out.size()));
    }
    chunk = asio::buffer(out);
  }
  write_waiting_ = true;
  asio::async_write(tls_->stream, chunk, [self = shared_from_this(), keep](error_code ec, std::size_t n) {
    self->write_waiting_ = false;
    if (self->state_ == State::closed) return;
    if (ec) {
      self->terminate(self->state_ == State::closing ? self->reason_ : CloseReason::client_closed);
      return;
    }
    self->written(n);
    self->flush();
  });
  return false;
}

}  // namespace herald::ws
