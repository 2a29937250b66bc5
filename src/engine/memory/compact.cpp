#include "engine/memory/compact.hpp"

#include <cstring>

namespace herald::engine {

PackedEvent::PackedEvent(const StatusEvent& ev) {
  const std::string* parts[kFields] = {&ev.id,     &ev.client_id, &ev.instance,         &ev.session,
                                       &ev.remote, &ev.reason,    &ev.previous_instance};
  std::size_t total = 0;
  for (auto* s : parts) total += s->size();
  void* mem = ::operator new(sizeof(Rep) + total);
  p_ = new (mem) Rep;
  p_->type = ev.type;
  p_->ts_ms = ev.ts_ms;
  p_->offline_ms = ev.offline_ms;
  auto* text = reinterpret_cast<char*>(p_ + 1);
  std::uint32_t at = 0;
  for (int f = 0; f < kFields; ++f) {
    if (!parts[f]->empty()) std::memcpy(text + at, parts[f]->data(), parts[f]->size());
    at += static_cast<std::uint32_t>(parts[f]->size());
    p_->end[f] = at;
  }
}

PackedEvent::~PackedEvent() {
  if (p_ && p_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    p_->~Rep();
    ::operator delete(p_);
  }
}

StatusEvent PackedEvent::unpack() const {
  StatusEvent ev;
  ev.type = p_->type;
  ev.ts_ms = p_->ts_ms;
  ev.offline_ms = p_->offline_ms;
  ev.id = field(kId);
  ev.client_id = field(kClient);
  ev.instance = field(kInstance);
  ev.session = field(kSession);
  ev.remote = field(kRemote);
  ev.reason = field(kReason);
  ev.previous_instance = field(kPrevious);
  return ev;
}

}  // namespace herald::engine
