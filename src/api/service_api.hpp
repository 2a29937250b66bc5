// The service API of DESIGN §3: routing, validation and answers, free of any HTTP library so it
// can be tested and fuzzed as plain functions. api/http_session carries it over HTTP/1.1.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/errors.hpp"
#include "core/limits.hpp"
#include "core/metrics.hpp"

namespace herald {
class Gateway;
class Loop;
}  // namespace herald

namespace herald::api {

struct ApiRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::string body;
  std::string authorization;  // the Authorization header, if any
  bool peer_is_loopback = false;
  limits::IpKey peer;  // the caller's address, for --api-rate-limit without keys
};

struct ApiResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<Err> error;  // set on error answers, for the metrics
};

// {"error":{"code","message"}} with the code's HTTP status.
ApiResponse error_response(Err e, std::string_view message);

// Answers one request. `respond` is called exactly once, possibly on another thread.
// `route` is set before any asynchronous work starts, for the metrics.
void handle(Gateway& gw, Loop& loop, ApiRequest req, std::function<void(ApiResponse)> respond);

// Which route a target names (for counting requests that never reach handle()).
ApiRoute classify(std::string_view method, std::string_view target);

}  // namespace herald::api
