// The process: builds the engine and the gateway, binds one acceptor per event loop on the same
// port (SO_REUSEPORT, so the kernel spreads connections over the loops), runs the loops, and
// carries out a graceful shutdown on SIGTERM/SIGINT (a second signal exits at once).
#pragma once

#include "config.hpp"

namespace herald {

// Runs until shutdown; returns the process exit code.
int run_server(Config config);

}  // namespace herald
