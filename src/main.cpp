// herald: parse the configuration, set up logging, run.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "config.hpp"
#include "server.hpp"

int main(int argc, char** argv) {
  herald::Config config;
  int code = 0;
  if (!herald::parse_config(argc, argv, config, code)) return code;

  // Operational log on stderr; status events as bare JSON lines on stdout.
  auto log = spdlog::stderr_logger_mt("herald");
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(log);
  auto events = spdlog::stdout_logger_mt("events");
  events->set_pattern("%v");
  events->flush_on(spdlog::level::info);
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  log->flush_on(spdlog::level::info);
  return herald::run_server(std::move(config));
}
