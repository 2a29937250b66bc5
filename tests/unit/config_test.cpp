// Configuration (config.*): the one option list, its defaults (the ones DESIGN §6 promises), the
// command line and HERALD_* environment (the command line wins), validate(), and the README
// table, which must be exactly what config_markdown() generates.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "config.hpp"

#ifndef HERALD_SOURCE_DIR
#error "HERALD_SOURCE_DIR must be defined (the repository root, for README.md)"
#endif

namespace herald {
namespace {

std::string env_name_of(const std::string& flag) {
  std::string e = "HERALD_";
  for (char c : flag) e += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return e;
}

template <class T>
std::string text_of(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return v;
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    std::string out;
    for (auto& s : v) out += (out.empty() ? "" : ",") + s;
    return out;
  } else {
    return std::to_string(v);
  }
}

// name -> current value as text, for every option.
std::map<std::string, std::string> values_of(Config& c) {
  std::map<std::string, std::string> out;
  for_each_option(c, [&](const char* name, auto& field, const char*) { out[name] = text_of(field); });
  return out;
}

std::vector<std::string> option_names() {
  Config c;
  std::vector<std::string> out;
  for_each_option(c, [&](const char* name, auto&, const char*) { out.emplace_back(name); });
  return out;
}

// Clears every HERALD_* variable of the options for the test's duration, and restores them.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto& n : option_names()) {
      auto e = env_name_of(n);
      if (const char* v = std::getenv(e.c_str())) saved_[e] = v;
      ::unsetenv(e.c_str());
    }
  }
  void TearDown() override {
    for (auto& n : option_names()) ::unsetenv(env_name_of(n).c_str());
    for (auto& [k, v] : saved_) ::setenv(k.c_str(), v.c_str(), 1);
  }
  void set_env(const std::string& name, const std::string& value) { ::setenv(name.c_str(), value.c_str(), 1); }

  // Runs parse_config over `args` (argv[0] is added).
  bool parse(std::vector<std::string> args, Config& out, int& code) {
    args.insert(args.begin(), "herald");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    code = -1;
    return parse_config(static_cast<int>(args.size()), argv.data(), out, code);
  }

  std::map<std::string, std::string> saved_;
};

TEST_F(ConfigTest, OptionsAreUniqueAndDocumented) {
  Config c;
  std::set<std::string> seen;
  int n = 0;
  for_each_option(c, [&](const char* name, auto&, const char* help) {
    ++n;
    std::string s = name;
    EXPECT_TRUE(seen.insert(s).second) << "duplicate option " << s;
    EXPECT_FALSE(s.empty());
    EXPECT_NE(s.substr(0, 1), "-") << s;
    for (char ch : s) EXPECT_TRUE(std::islower(static_cast<unsigned char>(ch)) || ch == '-') << s;
    EXPECT_GT(std::string(help).size(), 10u) << s << " needs a real description";
  });
  EXPECT_EQ(n, 41);
}

TEST_F(ConfigTest, DesignOptionsAllExist) {
  auto names = option_names();
  std::set<std::string> have(names.begin(), names.end());
  for (const char* want : {"listen", "api-listen", "threads", "engine", "redis-url", "redis-cluster", "instance-id",
                           "api-key", "client-auth", "jwt-secret", "heartbeat-ms", "drain-ms", "inbox-max",
                           "inbox-ttl-s", "max-message-bytes", "max-connections", "log-level"})
    EXPECT_TRUE(have.count(want)) << "DESIGN §6 names --" << want;
  EXPECT_EQ(names.front(), "listen");
}

TEST_F(ConfigTest, DefaultsAreTheDocumentedOnes) {
  Config c;
  auto v = values_of(c);
  EXPECT_EQ(v["listen"], "127.0.0.1:8080");
  EXPECT_EQ(v["api-listen"], "");
  EXPECT_EQ(v["threads"], "0");
  EXPECT_EQ(v["engine"], "memory");
  EXPECT_EQ(v["redis-url"], "redis://127.0.0.1:6379");
  EXPECT_EQ(v["api-key"], "");
  EXPECT_EQ(v["client-auth"], "auto");
  EXPECT_EQ(v["jwt-leeway-s"], "30");
  EXPECT_EQ(v["api-key-file"], "");
  EXPECT_EQ(v["heartbeat-ms"], "20000");        // heartbeat 20 s
  EXPECT_EQ(v["drain-ms"], "5000");             // drain 5 s
  EXPECT_EQ(v["inbox-max"], "10000");           // inbox 10,000 notifications
  EXPECT_EQ(v["inbox-ttl-s"], "604800");        // kept 7 days
  EXPECT_EQ(v["max-message-bytes"], "65536");   // client frames up to 64 KiB
  EXPECT_EQ(v["max-body-bytes"], "1048576");    // HTTP bodies up to 1 MiB
  EXPECT_EQ(v["log-level"], "info");
  EXPECT_EQ(v["max-header-bytes"], "16384");
  EXPECT_EQ(v["http-timeout-ms"], "30000");
  EXPECT_EQ(v["max-connections-per-ip"], "1000");
  EXPECT_EQ(v["connect-rate-per-ip"], "200");
  EXPECT_EQ(v["connect-burst-per-ip"], "1000");
  EXPECT_EQ(v["api-rate-limit"], "0");  // off: services are authenticated
  EXPECT_EQ(v["hello-rate"], "5");
  EXPECT_EQ(v["hello-burst"], "10");
  EXPECT_EQ(validate(c), "") << "the defaults must be valid";
}

TEST_F(ConfigTest, EffectiveThreads) {
  Config c;
  c.threads = 3;
  EXPECT_EQ(c.effective_threads(), 3u);
  c.threads = 0;
  EXPECT_GE(c.effective_threads(), 1u);
}

TEST_F(ConfigTest, NoArgumentsGiveDefaults) {
  Config c;
  int code;
  ASSERT_TRUE(parse({}, c, code));
  Config d;
  EXPECT_EQ(values_of(c), values_of(d));
}

TEST_F(ConfigTest, ParsesCommandLine) {
  Config c;
  int code;
  ASSERT_TRUE(parse({"--listen", "0.0.0.0:9000", "--api-listen=127.0.0.1:9001", "--threads", "4", "--engine",
                     "redis", "--redis-url", "redis://10.0.0.1:7000", "--instance-id", "east-1", "--heartbeat-ms",
                     "1500", "--drain-ms", "0", "--inbox-max", "7", "--inbox-ttl-s", "60", "--max-message-bytes",
                     "4096", "--client-auth", "jwt", "--jwt-secret", "s3cret", "--log-level", "debug"},
                    c, code));
  EXPECT_EQ(c.listen, "0.0.0.0:9000");
  EXPECT_EQ(c.api_listen, "127.0.0.1:9001");
  EXPECT_EQ(c.threads, 4u);
  EXPECT_EQ(c.engine, "redis");
  EXPECT_EQ(c.redis_url, "redis://10.0.0.1:7000");
  EXPECT_EQ(c.instance_id, "east-1");
  EXPECT_EQ(c.heartbeat_ms, 1500u);
  EXPECT_EQ(c.drain_ms, 0u);
  EXPECT_EQ(c.inbox_max, 7u);
  EXPECT_EQ(c.inbox_ttl_s, 60u);
  EXPECT_EQ(c.max_message_bytes, 4096u);
  EXPECT_EQ(c.client_auth, "jwt");
  EXPECT_EQ(c.jwt_secret, "s3cret");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.max_body_bytes, 1048576u);  // untouched options keep their defaults
}

TEST_F(ConfigTest, ApiKeyIsRepeatableAndCommaSeparated) {
  Config c;
  int code;
  ASSERT_TRUE(parse({"--api-key", "key-aaaaaaaaaaaaaaaa", "--api-key", "key-bbbbbbbbbbbbbbbb,key-cccccccccccccccc"}, c, code));
  EXPECT_EQ(c.api_keys, (std::vector<std::string>{"key-aaaaaaaaaaaaaaaa", "key-bbbbbbbbbbbbbbbb", "key-cccccccccccccccc"}));
}

TEST_F(ConfigTest, ParsesEnvironment) {
  set_env("HERALD_LISTEN", "0.0.0.0:7000");
  set_env("HERALD_HEARTBEAT_MS", "3000");
  set_env("HERALD_INBOX_TTL_S", "120");
  set_env("HERALD_LOG_LEVEL", "warn");
  set_env("HERALD_CLIENT_AUTH", "none");  // not loopback: no client auth must be explicit
  set_env("HERALD_API_KEY", "key-aaaaaaaaaaaaaaaa,key-bbbbbbbbbbbbbbbb");
  Config c;
  int code;
  ASSERT_TRUE(parse({}, c, code));
  EXPECT_EQ(c.listen, "0.0.0.0:7000");
  EXPECT_EQ(c.heartbeat_ms, 3000u);
  EXPECT_EQ(c.inbox_ttl_s, 120u);
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_EQ(c.api_keys, (std::vector<std::string>{"key-aaaaaaaaaaaaaaaa", "key-bbbbbbbbbbbbbbbb"}));
}

// Every option, through its HERALD_* variable alone.
TEST_F(ConfigTest, EveryOptionHasItsEnvironmentVariable) {
  // A valid value, different from the default, per option.
  std::map<std::string, std::string> value{
      {"listen", "0.0.0.0:1"},        {"api-listen", "127.0.0.1:2"},     {"engine", "redis"},
      {"redis-url", "redis://h:1/2"}, {"redis-cluster", "h1:1,h2:2"},    {"instance-id", "inst-9"},
      {"api-key", "key-123456789abcdef"},    {"client-auth", "jwt"},            {"jwt-secret", "sekrit"},
      {"allowed-origins", "https://app.example.com"},
      {"log-level", "error"},         {"threads", "3"},
      {"api-key-file", "/etc/herald/api-keys"},                          {"jwt-public-key", "/etc/herald/jwt.pem"},
      {"jwt-audience", "herald"},     {"jwt-issuer", "https://auth.example.com"},
      {"jwt-leeway-s", "120"},
      {"tls-cert", "/etc/herald/chain.pem"}, {"tls-key", "/etc/herald/key.pem"}, {"api-tls", "off"},
  };
  Config defaults;
  auto base = values_of(defaults);
  for (auto& name : option_names()) {
    SCOPED_TRACE(name);
    std::string v = value.count(name) ? value[name] : std::to_string(std::stoul(base[name]) + 4096);
    for (auto& n : option_names()) ::unsetenv(env_name_of(n).c_str());
    set_env(env_name_of(name), v);
    if (name == "client-auth" || name == "jwt-audience" || name == "jwt-issuer") set_env("HERALD_JWT_SECRET", "sekrit");
    if (name == "listen") set_env("HERALD_CLIENT_AUTH", "none");
    if (name == "tls-cert") set_env("HERALD_TLS_KEY", "/etc/herald/key.pem");
    if (name == "tls-key") set_env("HERALD_TLS_CERT", "/etc/herald/chain.pem");
    if (name == "api-tls") set_env("HERALD_API_LISTEN", "127.0.0.1:2");
    Config c;
    int code;
    ASSERT_TRUE(parse({}, c, code)) << env_name_of(name) << "=" << v;
    EXPECT_EQ(values_of(c)[name], v) << env_name_of(name) << " was not read";
  }
}

TEST_F(ConfigTest, CommandLineWinsOverEnvironment) {
  set_env("HERALD_HEARTBEAT_MS", "3000");
  set_env("HERALD_ENGINE", "redis");
  set_env("HERALD_API_KEY", "key-fromenv1-0000000");
  Config c;
  int code;
  ASSERT_TRUE(parse({"--heartbeat-ms", "4000", "--api-key", "key-fromargv-0000000"}, c, code));
  EXPECT_EQ(c.heartbeat_ms, 4000u);
  EXPECT_EQ(c.api_keys, (std::vector<std::string>{"key-fromargv-0000000"}));
  EXPECT_EQ(c.engine, "redis");  // not on the command line: the environment's
}

TEST_F(ConfigTest, BadCommandLinesFail) {
  const std::vector<std::vector<std::string>> bad{
      {"--no-such-option"},
      {"--heartbeat-ms", "fast"},
      {"--heartbeat-ms"},
      {"--threads", "1.5"},
      {"--inbox-max=-5"},
      {"--inbox-max", "4294967296"},  // does not fit in 32 bits
      {"stray-positional"},
  };
  for (auto& args : bad) {
    Config c;
    int code;
    std::string joined;
    for (auto& a : args) joined += a + " ";
    testing::internal::CaptureStderr();
    testing::internal::CaptureStdout();
    bool ok = parse(args, c, code);
    testing::internal::GetCapturedStdout();
    auto err = testing::internal::GetCapturedStderr();
    EXPECT_FALSE(ok) << "accepted: " << joined;
    EXPECT_NE(code, 0) << joined;
    EXPECT_FALSE(err.empty()) << joined << " failed without saying why";
  }
}

TEST_F(ConfigTest, BadEnvironmentFails) {
  set_env("HERALD_DRAIN_MS", "soon");
  Config c;
  int code;
  testing::internal::CaptureStderr();
  bool ok = parse({}, c, code);
  testing::internal::GetCapturedStderr();
  EXPECT_FALSE(ok);
  EXPECT_NE(code, 0);
}

TEST_F(ConfigTest, InvalidValuesFailWithExitCode2) {
  Config c;
  int code;
  testing::internal::CaptureStderr();
  bool ok = parse({"--engine", "mongo"}, c, code);
  auto err = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(ok);
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("--engine must be memory or redis"), std::string::npos) << err;
}

TEST_F(ConfigTest, HelpListsEveryOptionAndExitsZero) {
  Config c;
  int code;
  testing::internal::CaptureStdout();
  bool ok = parse({"--help"}, c, code);
  auto out = testing::internal::GetCapturedStdout();
  EXPECT_FALSE(ok);
  EXPECT_EQ(code, 0);
  for (auto& n : option_names()) EXPECT_NE(out.find("--" + n), std::string::npos) << n << " missing from --help";
  EXPECT_NE(out.find("HERALD_HEARTBEAT_MS"), std::string::npos) << "--help should name the environment variables";
}

TEST_F(ConfigTest, PrintConfigMarkdownPrintsTheTable) {
  Config c;
  int code;
  testing::internal::CaptureStdout();
  bool ok = parse({"--print-config-markdown"}, c, code);
  auto out = testing::internal::GetCapturedStdout();
  EXPECT_FALSE(ok);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, config_markdown());
}

TEST_F(ConfigTest, ValidateRejects) {
  struct Case {
    const char* what;
    void (*change)(Config&);
    const char* mentions;
  };
  const Case cases[] = {
      {"engine", [](Config& c) { c.engine = "mongo"; }, "--engine"},
      {"engine case", [](Config& c) { c.engine = "Memory"; }, "--engine"},
      {"client-auth", [](Config& c) { c.client_auth = "basic"; }, "--client-auth"},
      {"jwt without secret", [](Config& c) { c.client_auth = "jwt"; }, "--jwt-secret"},
      {"heartbeat", [](Config& c) { c.heartbeat_ms = 99; }, "--heartbeat-ms"},
      {"hello timeout", [](Config& c) { c.hello_timeout_ms = 99; }, "--hello-timeout-ms"},
      {"inbox-max", [](Config& c) { c.inbox_max = 0; }, "--inbox-max"},
      {"inbox-ttl", [](Config& c) { c.inbox_ttl_s = 0; }, "--inbox-ttl-s"},
      {"events-max", [](Config& c) { c.events_max = 0; }, "event"},
      {"global-events-max", [](Config& c) { c.global_events_max = 0; }, "event"},
      {"max-message-bytes", [](Config& c) { c.max_message_bytes = 255; }, "--max-message-bytes"},
      {"max-body-bytes", [](Config& c) { c.max_body_bytes = 255; }, "--max-body-bytes"},
      {"max-queue-bytes", [](Config& c) { c.max_queue_bytes = 4095; }, "--max-queue-bytes"},
      {"max-batch", [](Config& c) { c.max_batch = 0; }, "--max-batch"},
      {"max-header-bytes small", [](Config& c) { c.max_header_bytes = 1023; }, "--max-header-bytes"},
      {"max-header-bytes large", [](Config& c) { c.max_header_bytes = 1024 * 1024 + 1; }, "--max-header-bytes"},
      {"http-timeout", [](Config& c) { c.http_timeout_ms = 99; }, "--http-timeout-ms"},
      {"connect burst", [](Config& c) { c.connect_burst_per_ip = 0; }, "--connect-burst-per-ip"},
      {"hello burst", [](Config& c) { c.hello_burst = 0; }, "--hello-burst"},
      {"api rate too high", [](Config& c) { c.api_rate_limit = 1000001; }, "--api-rate-limit"},
      {"threads", [](Config& c) { c.threads = 257; }, "--threads"},
      {"short api key", [](Config& c) { c.api_keys = {"key-long-enough", "short"}; }, "--api-key"},
      {"instance-id with ':'", [](Config& c) { c.instance_id = "a:b"; }, "--instance-id"},
      {"instance-id with a space", [](Config& c) { c.instance_id = "a b"; }, "--instance-id"},
      {"instance-id too long", [](Config& c) { c.instance_id = std::string(65, 'i'); }, "--instance-id"},
      {"log-level", [](Config& c) { c.log_level = "verbose"; }, "--log-level"},
  };
  for (auto& k : cases) {
    Config c;
    k.change(c);
    auto err = validate(c);
    EXPECT_NE(err, "") << k.what << " was accepted";
    EXPECT_NE(err.find(k.mentions), std::string::npos) << k.what << ": " << err;
  }
}

TEST_F(ConfigTest, ClientAuthAutoAndTheLoopbackRule) {
  Config c;  // 127.0.0.1, no key: auto comes to none, allowed on loopback
  EXPECT_EQ(client_auth_mode(c), "none");
  EXPECT_EQ(validate(c), "");
  for (const char* l : {"127.0.0.1:0", "127.8.9.10:80", "localhost:1", "[::1]:8080", "[::ffff:127.0.0.1]:1"}) {
    c.listen = l;
    EXPECT_TRUE(is_loopback_listen(l)) << l;
    EXPECT_EQ(validate(c), "") << l;
  }
  for (const char* l : {"0.0.0.0:8080", "*:8080", ":8080", "[::]:8080", "10.1.2.3:80", "[2001:db8::1]:80",
                        "128.0.0.1:1", "example.com:80"}) {
    c.listen = l;
    EXPECT_FALSE(is_loopback_listen(l)) << l;
    auto err = validate(c);
    EXPECT_NE(err.find("--client-auth none"), std::string::npos) << l << ": " << err;
    EXPECT_NE(err.find("--jwt-secret"), std::string::npos) << l << ": " << err;
  }
  c.listen = "0.0.0.0:8080";
  c.client_auth = "none";  // explicit: allowed anywhere
  EXPECT_EQ(validate(c), "");
  EXPECT_EQ(client_auth_mode(c), "none");
  c.client_auth = "auto";
  c.jwt_secret = "sekrit";
  EXPECT_EQ(validate(c), "");
  EXPECT_EQ(client_auth_mode(c), "jwt");
  c.jwt_secret.clear();
  c.jwt_public_key = "/etc/herald/jwt.pem";
  EXPECT_EQ(validate(c), "");
  EXPECT_EQ(client_auth_mode(c), "jwt");
  c.client_auth = "none";  // a key configured, auth explicitly off: none wins
  EXPECT_EQ(client_auth_mode(c), "none");
}

TEST_F(ConfigTest, ValidateRejectsAuthCombinations) {
  struct Case {
    const char* what;
    void (*change)(Config&);
    const char* mentions;
  };
  const Case cases[] = {
      {"two kinds of key", [](Config& c) { c.jwt_secret = "s"; c.jwt_public_key = "k.pem"; }, "not both"},
      {"jwt without key", [](Config& c) { c.client_auth = "jwt"; }, "--jwt-public-key"},
      {"leeway", [](Config& c) { c.jwt_secret = "s"; c.jwt_leeway_s = 3601; }, "--jwt-leeway-s"},
      {"audience without jwt", [](Config& c) { c.jwt_audience = "herald"; }, "--jwt-audience"},
      {"issuer without jwt", [](Config& c) { c.client_auth = "none"; c.jwt_issuer = "i"; }, "--jwt-issuer"},
      {"api key with a space", [](Config& c) { c.api_keys = {"key with a space inside"}; }, "--api-key"},
      {"api key of 15", [](Config& c) { c.api_keys = {"123456789012345"}; }, "16"},
  };
  for (auto& k : cases) {
    Config c;
    k.change(c);
    auto err = validate(c);
    EXPECT_NE(err, "") << k.what << " was accepted";
    EXPECT_NE(err.find(k.mentions), std::string::npos) << k.what << ": " << err;
  }
}

TEST_F(ConfigTest, ValidateAcceptsBoundaries) {
  Config c;
  c.heartbeat_ms = 100;
  c.hello_timeout_ms = 100;
  c.inbox_max = 1;
  c.inbox_ttl_s = 1;
  c.events_max = 1;
  c.global_events_max = 1;
  c.max_message_bytes = 256;
  c.max_body_bytes = 256;
  c.max_queue_bytes = 4096;
  c.max_batch = 1;
  c.threads = 256;
  c.api_keys = {"0123456789abcdef"};
  c.instance_id = std::string(64, 'i');
  EXPECT_EQ(validate(c), "");
  c.instance_id = "AZaz09._-";
  c.client_auth = "jwt";
  c.jwt_secret = "x";
  c.engine = "redis";
  for (const char* level : {"trace", "debug", "info", "warn", "error", "off"}) {
    c.log_level = level;
    EXPECT_EQ(validate(c), "") << level;
  }
}

// TLS: the certificate and its key come together; --api-tls off only makes sense for a separate
// API address. (Whether the files can be read and match is checked when the server starts.)
TEST_F(ConfigTest, TlsOptions) {
  Config c;
  EXPECT_EQ(c.api_tls, "auto");
  c.tls_cert = "cert.pem";
  EXPECT_NE(validate(c).find("--tls-key"), std::string::npos) << "a certificate without a key was accepted";
  c.tls_cert.clear();
  c.tls_key = "key.pem";
  EXPECT_NE(validate(c).find("--tls-cert"), std::string::npos) << "a key without a certificate was accepted";
  c.tls_cert = "cert.pem";
  EXPECT_EQ(validate(c), "");
  c.api_tls = "on";
  EXPECT_NE(validate(c).find("--api-tls"), std::string::npos) << "--api-tls on was accepted";
  c.api_tls = "off";
  EXPECT_NE(validate(c).find("--api-listen"), std::string::npos) << "--api-tls off without --api-listen was accepted";
  c.api_listen = "127.0.0.1:9090";
  EXPECT_EQ(validate(c), "");

  Config parsed;
  int code = 0;
  ASSERT_TRUE(parse({"--tls-cert", "/etc/herald/chain.pem", "--tls-key", "/etc/herald/key.pem"}, parsed, code));
  EXPECT_EQ(parsed.tls_cert, "/etc/herald/chain.pem");
  EXPECT_EQ(parsed.tls_key, "/etc/herald/key.pem");
  Config half;
  EXPECT_FALSE(parse({"--tls-cert", "/etc/herald/chain.pem"}, half, code));
  EXPECT_EQ(code, 2);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST_F(ConfigTest, MarkdownHasARowPerOption) {
  auto md = config_markdown();
  ASSERT_FALSE(md.empty());
  EXPECT_EQ(md.back(), '\n');
  auto lines = lines_of(md);
  auto names = option_names();
  ASSERT_EQ(lines.size(), names.size() + 2);
  EXPECT_EQ(lines[0], "| flag | environment | default | meaning |");
  EXPECT_EQ(lines[1], "|---|---|---|---|");
  Config defaults;
  auto values = values_of(defaults);
  std::size_t i = 2;
  for_each_option(defaults, [&](const char* name, auto&, const char* help) {
    auto& row = lines[i++];
    std::string n = name;
    EXPECT_EQ(row.rfind("| `--" + n + "` | `" + env_name_of(n) + "` | ", 0), 0u) << row;
    auto d = values[n];
    if (!d.empty()) {
      EXPECT_NE(row.find(" | `" + d + "` | "), std::string::npos) << row;
    }
    EXPECT_NE(row.find(std::string(help) + " |"), std::string::npos) << row;
    EXPECT_EQ(row.back(), '|');
  });
}

// The README's configuration table is generated; this keeps it from drifting. Between the
// markers: the begin marker's line break, then exactly config_markdown(), then the end marker.
// To refresh it: `herald --print-config-markdown`.
TEST_F(ConfigTest, ReadmeTableMatchesGenerated) {
  const std::string path = std::string(HERALD_SOURCE_DIR) + "/README.md";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "cannot read " << path;
  std::stringstream buf;
  buf << in.rdbuf();
  auto readme = buf.str();
  const std::string begin = "<!-- config-table:begin -->", end = "<!-- config-table:end -->";
  auto b = readme.find(begin);
  ASSERT_NE(b, std::string::npos) << "README.md has no " << begin;
  ASSERT_EQ(readme.find(begin, b + 1), std::string::npos) << "two begin markers";
  auto e = readme.find(end, b);
  ASSERT_NE(e, std::string::npos) << "README.md has no " << end << " after " << begin;
  auto from = b + begin.size();
  ASSERT_LT(from, readme.size());
  ASSERT_EQ(readme[from], '\n') << "the begin marker must end its line";
  auto table = readme.substr(from + 1, e - from - 1);
  EXPECT_EQ(table, config_markdown()) << "README.md's table is stale: regenerate it with "
                                         "`herald --print-config-markdown`";
}

}  // namespace
}  // namespace herald
