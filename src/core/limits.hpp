// Abuse limits: how many connections one address may hold and open per second, how many requests
// a service may make per second, and how many hellos one client id may say per second.
//
// Every limiter is a token bucket kept as one time value (GCRA: the instant at which the bucket
// would be full again). A bucket is 8 bytes, and a bucket whose instant has passed is the same as
// none, so tables drop such entries and only hold the callers that are active right now.
//
// Invariant: memory stays bounded whatever the traffic. A table keeps an entry only while it
// matters (a connection is open, or a bucket has not refilled yet); past a fixed number of
// entries per shard it forgets the buckets that would refill soonest, never an entry that counts
// open connections (those are bounded by the connections themselves).
//
// All event loops share this state. Tables are split in shards with a mutex each: one short lock
// per new connection or hello. An API key's bucket is a single atomic: no lock per request.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config.hpp"

namespace herald::limits {

// Steady time in nanoseconds: the clock every limiter reads.
std::int64_t now_ns();

// A token bucket of `burst` tokens refilled at `per_second`, as a rule applied to a state `tat`
// (0 = a full bucket). Per_second 0 is "no limit".
class Rate {
 public:
  Rate() = default;
  Rate(std::uint32_t per_second, std::uint32_t burst);
  bool on() const { return interval_ > 0; }

  // Takes one token. Returns 0 when there was one (and updates tat), else the nanoseconds until
  // there will be one (tat unchanged: a refused take costs nothing).
  std::int64_t take(std::int64_t& tat, std::int64_t now) const {
    auto t = tat > now ? tat : now;
    if (t - now > tolerance_) return t - now - tolerance_;
    tat = t + interval_;
    return 0;
  }
  // The same on a state shared between threads.
  std::int64_t take(std::atomic<std::int64_t>& tat, std::int64_t now) const;

 private:
  std::int64_t interval_ = 0;   // ns per token
  std::int64_t tolerance_ = 0;  // (burst - 1) intervals
};

// An address as the limits count it, in 8 bytes (it rides along with every connection): IPv4
// (also written v4-mapped in IPv6) as itself, IPv6 by its /64 prefix, since one subscriber is
// commonly given a whole /64. IPv4 fills the low 32 bits only, which no routable /64 does (only
// the reserved ::/32, whose ::1 shares 0 with 0.0.0.0, never a peer).
struct IpKey {
  std::uint64_t value = 0;
  static IpKey of(const boost::asio::ip::address& a);
  friend bool operator==(const IpKey&, const IpKey&) = default;
};
struct IpKeyHash {
  std::size_t operator()(const IpKey& k) const;
};

namespace detail {

// A sharded map whose entries say themselves when they can go: idle() (dropping it loses
// nothing), evictable() (may be forgotten under pressure) and expiry() (the soonest go first).
// Pruning runs when a shard has doubled since the last one, so it costs O(1) per insert.
template <class Key, class Entry, class Hash>
class Table {
 public:
  explicit Table(std::size_t max_entries) : per_shard_max_(std::max<std::size_t>(1, max_entries / kShards)) {}

  // Calls fn(entry) under the shard's lock, the entry created when absent; drops it after if idle.
  template <class Fn>
  auto with(const Key& k, std::int64_t now, Fn&& fn) {
    auto& s = shards_[Hash{}(k) % kShards];
    std::lock_guard lock(s.mu);
    auto it = s.map.find(k);
    if (it == s.map.end()) {
      if (s.map.size() >= s.next_prune) prune(s, now);
      it = s.map.try_emplace(k).first;
    }
    auto result = fn(it->second);
    if (it->second.idle(now)) s.map.erase(it);
    return result;
  }

  std::size_t size() const {
    std::size_t n = 0;
    for (auto& s : shards_) {
      std::lock_guard lock(s.mu);
      n += s.map.size();
    }
    return n;
  }

 private:
  static constexpr std::size_t kShards = 64;
  static constexpr std::size_t kMinPrune = 64;
  struct alignas(64) Shard {
    mutable std::mutex mu;
    std::unordered_map<Key, Entry, Hash> map;
    std::size_t next_prune = kMinPrune;
  };

  void prune(Shard& s, std::int64_t now);

  std::array<Shard, kShards> shards_;
  std::size_t per_shard_max_;
};

template <class Key, class Entry, class Hash>
void Table<Key, Entry, Hash>::prune(Shard& s, std::int64_t now) {
  std::erase_if(s.map, [now](const auto& kv) { return kv.second.idle(now); });
  std::vector<std::int64_t> expiries;
  for (auto& [k, e] : s.map)
    if (e.evictable()) expiries.push_back(e.expiry());
  if (expiries.size() >= per_shard_max_) {
    // Over the cap: forget the buckets that would refill soonest, down to half of it.
    auto drop = expiries.size() - per_shard_max_ / 2;
    std::nth_element(expiries.begin(), expiries.begin() + static_cast<std::ptrdiff_t>(drop - 1), expiries.end());
    auto cut = expiries[drop - 1];
    for (auto it = s.map.begin(); it != s.map.end() && drop > 0;) {
      if (it->second.evictable() && it->second.expiry() <= cut) {
        it = s.map.erase(it);
        --drop;
      } else {
        ++it;
      }
    }
  }
  s.next_prune = std::max(kMinPrune, 2 * s.map.size());
}

struct Bucket {
  std::int64_t tat = 0;
  bool idle(std::int64_t now) const { return tat <= now; }
  bool evictable() const { return true; }
  std::int64_t expiry() const { return tat; }
};

struct Address {
  std::uint32_t open = 0;
  std::int64_t tat = 0;
  bool idle(std::int64_t now) const { return open == 0 && tat <= now; }
  bool evictable() const { return open == 0; }
  std::int64_t expiry() const { return tat; }
};

struct U64Hash {
  std::size_t operator()(std::uint64_t k) const;
};

}  // namespace detail

class ConnectionTable;

// One admitted connection's place in its address's count; given back when destroyed. Moves with
// the socket from the HTTP session to the WebSocket session. Empty when the limits are off.
class IpSlot {
 public:
  IpSlot() = default;
  IpSlot(ConnectionTable* table, const IpKey& key) : table_(table), key_(key) {}
  IpSlot(IpSlot&& o) noexcept : table_(o.table_), key_(o.key_) { o.table_ = nullptr; }
  IpSlot& operator=(IpSlot&& o) noexcept;
  IpSlot(const IpSlot&) = delete;
  ~IpSlot() { reset(); }
  void reset();

 private:
  ConnectionTable* table_ = nullptr;
  IpKey key_;
};

// Open TCP connections (HTTP and WebSocket) and new connections per second, per address.
class ConnectionTable {
 public:
  enum class Verdict { admitted, over_cap, over_rate };
  // max_per_address 0 and rate off: nothing is counted.
  ConnectionTable(std::uint32_t max_per_address, Rate rate, std::size_t max_idle_entries = 65536);
  bool on() const { return max_ > 0 || rate_.on(); }

  // admitted: `slot` now holds the connection's place.
  Verdict admit(const IpKey& ip, std::int64_t now, IpSlot& slot);
  std::size_t size() const { return table_.size(); }

 private:
  friend class IpSlot;
  void release(const IpKey& ip, std::int64_t now);

  std::uint32_t max_;
  Rate rate_;
  detail::Table<IpKey, detail::Address, IpKeyHash> table_;
};

// Service API requests per second: per API key, or per caller address when no key is set.
class ApiRate {
 public:
  ApiRate(Rate rate, std::size_t max_entries = 4096);
  bool on() const { return rate_.on(); }
  // 0: go; else nanoseconds until a request would be allowed.
  // `key` is the API key the request presented (already checked): keys from --api-key and from
  // --api-key-file (which SIGHUP may change) each get a bucket, kept as a 64-bit hash.
  std::int64_t take_key(std::string_view key, std::int64_t now);
  std::int64_t take_address(const IpKey& ip, std::int64_t now);

 private:
  Rate rate_;
  detail::Table<std::uint64_t, detail::Bucket, detail::U64Hash> keys_;
  detail::Table<IpKey, detail::Bucket, IpKeyHash> addresses_;
};

// Hellos per second per client id, on this instance. Ids are kept as a 64-bit hash (two ids
// sharing one would share a bucket: one chance in 2^64 per pair).
class HelloRate {
 public:
  HelloRate(Rate rate, std::size_t max_ids = 65536);
  bool on() const { return rate_.on(); }
  std::int64_t take(std::string_view client_id, std::int64_t now);
  std::size_t size() const { return ids_.size(); }

 private:
  Rate rate_;
  detail::Table<std::uint64_t, detail::Bucket, detail::U64Hash> ids_;
};

// The instance's limiters, made from the configuration.
struct Limits {
  explicit Limits(const Config& c);
  ConnectionTable connections;
  ApiRate api;
  HelloRate hello;
};

// Whole seconds to announce in Retry-After for a wait of `ns` (at least 1).
std::uint32_t retry_after_s(std::int64_t ns);

}  // namespace herald::limits
