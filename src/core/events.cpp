#include "core/events.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

namespace herald {

boost::json::object event_to_json(const engine::StatusEvent& ev) {
  boost::json::object o;
  if (!ev.id.empty()) o["id"] = ev.id;
  o["type"] = engine::event_type_name(ev.type);
  o["client_id"] = ev.client_id;
  o["instance"] = ev.instance;
  o["session"] = ev.session;
  o["remote"] = ev.remote;
  o["ts"] = ev.ts_ms;
  if (ev.type == engine::EventType::disconnected) o["reason"] = ev.reason;
  if (ev.type == engine::EventType::reconnected) {
    o["previous_instance"] = ev.previous_instance;
    o["offline_ms"] = ev.offline_ms;
  }
  return o;
}

void log_event(const engine::StatusEvent& ev) {
  static auto logger = spdlog::get("events");
  if (!logger) return;
  auto o = event_to_json(ev);
  o["event"] = "status";
  logger->info(boost::json::serialize(o));
}

}  // namespace herald
