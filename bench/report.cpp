#include "report.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

namespace bench {

namespace json = boost::json;

namespace {
void write(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(json::string(kv.key()));
        out += ':';
        write(out, kv.value());
      }
      out += '}';
      break;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write(out, e);
      }
      out += ']';
      break;
    }
    case json::kind::double_: {
      double d = v.get_double();
      if (!std::isfinite(d)) {
        out += "null";
        break;
      }
      char b[64];
      // Three decimals below 1000, one above: enough for rates and milliseconds alike.
      std::snprintf(b, sizeof b, std::fabs(d) < 1000 ? "%.3f" : "%.1f", d);
      std::string s = b;
      if (s.find('.') != std::string::npos) {
        while (s.back() == '0') s.pop_back();
        if (s.back() == '.') s.pop_back();
      }
      out += s;
      break;
    }
    default:
      out += json::serialize(v);
  }
}
}  // namespace

std::string to_text(const json::value& v) {
  std::string s;
  write(s, v);
  return s;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

bool append_line(const std::string& path, const std::string& line) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  std::ofstream f(path, std::ios::app);
  if (!f) return false;
  f << line << '\n';
  return static_cast<bool>(f);
}

}  // namespace bench
