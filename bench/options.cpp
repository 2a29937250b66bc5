#include "options.hpp"

#include <CLI/CLI.hpp>
#include <type_traits>

namespace bench {

bool parse_options(int argc, char** argv, Options& out, int& exit_code) {
  CLI::App app{
      "herald-bench: Herald's load tool. Starts a fresh herald per scenario (or uses --target), drives it\n"
      "with WebSocket clients in worker processes and the service API, checks that every 202 arrives\n"
      "in order, prints one JSON line and appends it to --out.\n\n"
      "scenarios:\n"
      "  idle    open --connections clients and hold them: herald RSS per connection, connect time\n"
      "  notify  --clients connected, --count single notifies at --rate (0 = flat out): throughput, latency\n"
      "  batch   the same through the batch endpoint, --batch per request\n"
      "  burst   --clients (10000) connected, one notification per client per batch, flat out: frames/s\n"
      "  replay  --backlog per client stored while offline, then connect: notifications/s replayed\n"
      "  churn   --loops concurrent connect-hello-close loops for --seconds: connects/s\n"
      "  storm   redis-server + --instances (3) heralds, --clients (15000) on the first, which is killed\n"
      "          (SIGKILL) with --pending notifications per client posted right after: seconds until\n"
      "          every client is re-homed on the others and holds every pending notification"};
  app.get_formatter()->column_width(30);
  app.add_option("scenario", out.scenario, "idle, notify, batch, burst, replay, churn or storm")
      ->required()
      ->check(CLI::IsMember({"idle", "notify", "batch", "burst", "replay", "churn", "storm"}));
  app.add_flag("--quiet", out.quiet, "no progress on stderr");
  for_each_option(out, [&](const char* name, auto& field, const char* help) {
    auto* opt = app.add_option(std::string("--") + name, field, help);
    using T = std::remove_reference_t<decltype(field)>;
    if constexpr (!std::is_same_v<T, std::vector<std::string>> && !std::is_same_v<T, std::string>)
      opt->default_str(CLI::detail::to_string(field));
    if constexpr (std::is_same_v<T, std::vector<std::string>>) opt->allow_extra_args(false);
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e);
    return false;
  }
  return true;
}

}  // namespace bench
