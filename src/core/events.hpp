// Status events as JSON: the one serialisation used by the API, the event log line and (later)
// any engine that stores them as text.
#pragma once

#include <boost/json/object.hpp>
#include <string>

#include "engine/engine.hpp"

namespace herald {

boost::json::object event_to_json(const engine::StatusEvent& ev);

// Writes the event as one JSON line to the "events" log.
void log_event(const engine::StatusEvent& ev);

}  // namespace herald
