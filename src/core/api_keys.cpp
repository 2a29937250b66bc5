#include "core/api_keys.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <openssl/crypto.h>
#include <stdexcept>

namespace herald {

std::string api_key_problem(std::string_view key) {
  if (key.size() < kMinApiKeyChars)
    return "is shorter than " + std::to_string(kMinApiKeyChars) + " characters";
  for (unsigned char c : key)
    if (c <= 0x20 || c >= 0x7f) return "has a character that is not visible ASCII (spaces are not allowed)";
  return {};
}

std::string parse_api_key_file(std::string_view text, std::vector<std::string>& keys) {
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) continue;
    line = line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
    if (line.front() == '#') continue;
    if (auto why = api_key_problem(line); !why.empty())
      return "line " + std::to_string(line_no) + ": the key " + why;
    keys.emplace_back(line);
  }
  return {};
}

std::string read_api_key_file(const std::string& path, std::vector<std::string>& keys) {
  constexpr std::size_t kMaxBytes = 1024 * 1024;
  std::ifstream in(path, std::ios::binary);
  if (!in) return "--api-key-file " + path + ": cannot read it: " + std::strerror(errno);
  std::string text(kMaxBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return "--api-key-file " + path + ": cannot read it";
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxBytes) return "--api-key-file " + path + ": larger than 1 MiB";
  std::vector<std::string> found;
  if (auto why = parse_api_key_file(text, found); !why.empty()) return "--api-key-file " + path + " " + why;
  if (found.empty()) return "--api-key-file " + path + ": has no keys (one per line; # starts a comment)";
  keys.insert(keys.end(), found.begin(), found.end());
  return {};
}

ApiKeys::ApiKeys(std::vector<std::string> fixed, std::string file) : fixed_(std::move(fixed)), file_(std::move(file)) {
  keys_ = std::make_shared<const std::vector<std::string>>(fixed_);
  if (auto why = reload(); !why.empty()) throw std::invalid_argument(why);
}

std::shared_ptr<const std::vector<std::string>> ApiKeys::current() const {
  std::lock_guard lock(mu_);
  return keys_;
}

std::string ApiKeys::reload() {
  auto next = fixed_;
  if (!file_.empty())
    if (auto why = read_api_key_file(file_, next); !why.empty()) return why;
  auto ptr = std::make_shared<const std::vector<std::string>>(std::move(next));
  std::lock_guard lock(mu_);
  keys_ = std::move(ptr);
  return {};
}

bool ApiKeys::matches(std::string_view presented) const {
  auto keys = current();
  bool ok = false;
  for (auto& k : *keys)  // constant time per key; every key is compared
    ok |= k.size() == presented.size() && CRYPTO_memcmp(k.data(), presented.data(), k.size()) == 0;
  return ok;
}

}  // namespace herald
