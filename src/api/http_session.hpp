// One HTTP/1.1 connection: Beast parses requests (header and body limits enforced as they
// arrive), the service API answers them, keep-alive is honoured; a WebSocket upgrade on /v1/ws
// writes the 101 and hands the raw socket to ws::Session, after which this object is gone.
#pragma once

#include "util/loop_socket.hpp"

namespace herald {
class Loop;
}

namespace herald::api {

// api_only: this listener serves the service API and refuses WebSocket upgrades.
void start_http_session(Loop& loop, LoopSocket socket, bool api_only);

}  // namespace herald::api
