// Writing the result line: JSON with numbers as people read them ("12.345", not "1.2345E1",
// which is what Boost.JSON's serializer would print for a double).
#pragma once

#include <boost/json.hpp>
#include <string>

namespace bench {

std::string to_text(const boost::json::value& v);

// UTC now as 2025-01-31T12:34:56Z.
std::string utc_now();

// Appends `line` and a newline to `path`, creating its directory. False on failure.
bool append_line(const std::string& path, const std::string& line);

}  // namespace bench
