// The service API's keys: every --api-key plus the lines of --api-key-file, which SIGHUP re-reads
// (key rotation without a restart). Checked in constant time per key, against every key.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

inline constexpr std::size_t kMinApiKeyChars = 16;

// Why a key cannot be used ("" = fine): too short, or not all visible ASCII.
std::string api_key_problem(std::string_view key);

// A key file's text: one key per line; blank lines and lines starting with '#' are skipped,
// spaces around a key are ignored. Appends the keys; returns "" or what is wrong (with the line).
std::string parse_api_key_file(std::string_view text, std::vector<std::string>& keys);

// Reads and parses the file at path; an unreadable file or one without keys is an error.
std::string read_api_key_file(const std::string& path, std::vector<std::string>& keys);

class ApiKeys {
 public:
  // Throws std::invalid_argument (naming the file) when `file` is set and cannot be used.
  ApiKeys(std::vector<std::string> fixed, std::string file);

  bool empty() const { return current()->empty(); }
  std::size_t size() const { return current()->size(); }
  const std::string& file() const { return file_; }

  // Whether `presented` is one of the keys.
  bool matches(std::string_view presented) const;

  // Re-reads the file (if any). On an error the keys stay as they were and the error is returned.
  std::string reload();

 private:
  std::shared_ptr<const std::vector<std::string>> current() const;

  std::vector<std::string> fixed_;
  std::string file_;
  mutable std::mutex mu_;  // guards only the pointer swap and copy
  std::shared_ptr<const std::vector<std::string>> keys_;
};

}  // namespace herald
