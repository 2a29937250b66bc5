// Finds the raw text of values inside JSON that has already been validated, so a notification's
// `data` is stored and sent exactly as the service wrote it (a parse-and-serialise round trip
// would rewrite numbers: 1.5 → 1.5E0, big integers → doubles) and is never re-serialised.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace herald {

// The raw value of the member `key` of the JSON object `object_text`; nullopt when the text is
// not an object, the key is absent, appears more than once or only in escaped form.
std::optional<std::string_view> raw_member(std::string_view object_text, std::string_view key);

// The raw elements of the JSON array `array_text`; nullopt when it is not an array.
std::optional<std::vector<std::string_view>> raw_elements(std::string_view array_text);

}  // namespace herald
