#include "core/limits.hpp"

#include <chrono>
#include <functional>
#include <random>

namespace herald::limits {

namespace {

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// Random per process, so that nobody can choose addresses that all land in one shard.
std::uint64_t seed() {
  static const std::uint64_t s = [] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }();
  return s;
}

}  // namespace

std::int64_t now_ns() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

Rate::Rate(std::uint32_t per_second, std::uint32_t burst) {
  if (per_second == 0) return;
  interval_ = 1'000'000'000LL / per_second;
  tolerance_ = static_cast<std::int64_t>(std::max<std::uint32_t>(burst, 1) - 1) * interval_;
}

std::int64_t Rate::take(std::atomic<std::int64_t>& tat, std::int64_t now) const {
  auto cur = tat.load(std::memory_order_relaxed);
  for (;;) {
    auto t = cur > now ? cur : now;
    if (t - now > tolerance_) return t - now - tolerance_;
    if (tat.compare_exchange_weak(cur, t + interval_, std::memory_order_relaxed)) return 0;
  }
}

IpKey IpKey::of(const boost::asio::ip::address& a) {
  if (a.is_v4()) return IpKey{a.to_v4().to_uint()};
  auto v6 = a.to_v6();
  // ::ffff:a.b.c.d is a.b.c.d: both spellings count as one.
  if (v6.is_v4_mapped()) return of(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6));
  auto b = v6.to_bytes();
  std::uint64_t prefix = 0;
  for (int i = 0; i < 8; ++i) prefix = prefix << 8 | b[i];
  return IpKey{prefix};
}

std::size_t IpKeyHash::operator()(const IpKey& k) const { return mix(k.value ^ seed()); }

std::size_t detail::U64Hash::operator()(std::uint64_t k) const { return mix(k ^ seed()); }

// ---- connections per address ---------------------------------------------------------------

IpSlot& IpSlot::operator=(IpSlot&& o) noexcept {
  if (this != &o) {
    reset();
    table_ = o.table_;
    key_ = o.key_;
    o.table_ = nullptr;
  }
  return *this;
}

void IpSlot::reset() {
  if (!table_) return;
  table_->release(key_, now_ns());
  table_ = nullptr;
}

ConnectionTable::ConnectionTable(std::uint32_t max_per_address, Rate rate, std::size_t max_idle_entries)
    : max_(max_per_address), rate_(rate), table_(max_idle_entries) {}

ConnectionTable::Verdict ConnectionTable::admit(const IpKey& ip, std::int64_t now, IpSlot& slot) {
  if (!on()) return Verdict::admitted;
  // The cap is checked first: a connection refused for it does not spend a token.
  auto v = table_.with(ip, now, [&](detail::Address& a) {
    if (max_ > 0 && a.open >= max_) return Verdict::over_cap;
    if (rate_.on() && rate_.take(a.tat, now) != 0) return Verdict::over_rate;
    ++a.open;
    return Verdict::admitted;
  });
  if (v == Verdict::admitted) slot = IpSlot(this, ip);
  return v;
}

void ConnectionTable::release(const IpKey& ip, std::int64_t now) {
  table_.with(ip, now, [](detail::Address& a) {
    if (a.open > 0) --a.open;
    return 0;
  });
}

// ---- API requests ---------------------------------------------------------------------------

ApiRate::ApiRate(Rate rate, std::size_t max_entries) : rate_(rate), keys_(max_entries), addresses_(max_entries) {}

std::int64_t ApiRate::take_key(std::string_view key, std::int64_t now) {
  if (!rate_.on()) return 0;
  std::uint64_t h = std::hash<std::string_view>{}(key);
  return keys_.with(h, now, [&](detail::Bucket& b) { return rate_.take(b.tat, now); });
}

std::int64_t ApiRate::take_address(const IpKey& ip, std::int64_t now) {
  if (!rate_.on()) return 0;
  return addresses_.with(ip, now, [&](detail::Bucket& b) { return rate_.take(b.tat, now); });
}

// ---- hellos ---------------------------------------------------------------------------------

HelloRate::HelloRate(Rate rate, std::size_t max_ids) : rate_(rate), ids_(max_ids) {}

std::int64_t HelloRate::take(std::string_view client_id, std::int64_t now) {
  if (!rate_.on()) return 0;
  std::uint64_t key = std::hash<std::string_view>{}(client_id);
  return ids_.with(key, now, [&](detail::Bucket& b) { return rate_.take(b.tat, now); });
}

Limits::Limits(const Config& c)
    : connections(c.max_connections_per_ip, Rate(c.connect_rate_per_ip, c.connect_burst_per_ip)),
      api(Rate(c.api_rate_limit, c.api_rate_burst ? c.api_rate_burst : c.api_rate_limit)),
      hello(Rate(c.hello_rate, c.hello_burst)) {}

std::uint32_t retry_after_s(std::int64_t ns) {
  auto s = (ns + 999'999'999) / 1'000'000'000;
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(s, 1, 24 * 3600));
}

}  // namespace herald::limits
