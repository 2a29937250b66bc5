// What the Redis engine's replies mean: each command's reply turned into engine values, as pure
// functions. Redis answers what it answers (a reply of another shape than expected, from another
// version, a proxy or a bug, must cost a Status::unavailable, never a crash), so these take any
// Reply; resp_fuzz feeds them arbitrary ones.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "engine/redis/redis_client.hpp"

namespace herald::engine::redis_replies {

// A route value "iid:sid"; none for nil, empty or colon-less values.
std::optional<Route> parse_route(const redis::Reply& r);

// A status event from a stream entry [id, [field, value, ...]] whose field "j" holds its JSON.
std::optional<StatusEvent> event_of(const redis::Reply& entry);

// The notify script's {id, prev, route, duplicate, evicted, receivers}; none when unusable.
struct NotifyReply {
  AppendResult result;
  bool evicted = false;
};
std::optional<NotifyReply> notify_reply(const redis::Reply& r);

// One XRANGE page of an inbox: entries with fields d (data), x (expiry ms), t (timestamp ms).
struct InboxPage {
  std::vector<StoredNotification> live;  // unexpired at now_ms, in reply order
  std::vector<std::string> expired;      // ids of expired entries, to XDEL
  Id last;                               // id of the last usable entry
  std::size_t entries = 0;               // entries in the reply, usable or not
};
InboxPage inbox_page(const redis::Reply& r, std::int64_t now_ms);

// EXEC of [SET route GET, XREVRANGE events COUNT 1] in open_session; `value` is the new route.
std::optional<SessionOpened> session_opened(const redis::Reply& exec, const std::string& value);

// EXEC of [GET route, XLEN inbox, XREVRANGE events COUNT n] in client_status.
std::optional<ClientStatus> client_status_of(const redis::Reply& exec);

// XREVRANGE of the events stream, newest first; unreadable entries are skipped.
std::vector<StatusEvent> events_of(const redis::Reply& r);

}  // namespace herald::engine::redis_replies
