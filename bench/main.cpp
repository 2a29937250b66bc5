// herald-bench: Herald's load tool. The same binary is the controller (what a user runs) and,
// started by the controller with --worker, each worker process holding WebSocket clients.
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

#include <boost/json.hpp>

#include "herald_process.hpp"
#include "options.hpp"
#include "scenarios.hpp"
#include "worker.hpp"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && std::string(argv[1]) == "--worker") {
    boost::json::error_code ec;
    auto spec = boost::json::parse(argv[2], ec);
    if (ec || !spec.is_object()) {
      std::fputs("herald-bench --worker: the spec is not a JSON object\n", stderr);
      return 2;
    }
    return bench::run_worker(spec.get_object());
  }

  bench::Options options;
  int code = 0;
  if (!bench::parse_options(argc, argv, options, code)) return code;

  // The last resort of "everything is bounded": whatever hangs, the process ends, and takes its
  // herald with it (the workers end on their own when their pipe closes).
  auto limit = std::chrono::duration<double>(options.timeout + 60);
  std::thread([limit] {
    std::this_thread::sleep_for(limit);
    std::fputs("herald-bench: watchdog: the scenario did not end in time; exiting\n", stderr);
    bench::kill_started_herald();
    std::_Exit(3);
  }).detach();

  return bench::run_scenario(options);
}
