// A log-linear latency histogram in the spirit of HdrHistogram, small enough to sit in every
// worker and to travel over a pipe as sparse JSON.
//
// Values are microseconds. Below 128 every value has its own bucket; above, each power of two is
// cut into 64 buckets, so a reported percentile is within 1/64 (1.6%) of the true value. A
// percentile is reported as the highest value its bucket can hold (never optimistic); the
// maximum is kept exactly.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

#include <boost/json.hpp>

namespace bench {

class Histogram {
 public:
  static constexpr int kSub = 64;
  static constexpr std::size_t kBuckets = 128 + kSub * 40;

  void record(std::uint64_t v) {
    ++counts_[index(v)];
    ++total_;
    max_ = std::max(max_, v);
  }

  void merge(const Histogram& o) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    max_ = std::max(max_, o.max_);
  }

  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return max_; }

  // The value at quantile q (0..1], as the upper bound of its bucket, capped at the maximum.
  std::uint64_t quantile(double q) const {
    if (!total_) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.999999);
    rank = std::clamp<std::uint64_t>(rank, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper(i), max_);
    }
    return max_;
  }

  // Sparse form: {"max":M,"b":[[index,count],...]}.
  boost::json::object to_json() const {
    boost::json::array b;
    for (std::size_t i = 0; i < kBuckets; ++i)
      if (counts_[i]) b.push_back(boost::json::array{i, counts_[i]});
    return {{"max", max_}, {"b", std::move(b)}};
  }

  static Histogram from_json(const boost::json::value& v) {
    Histogram h;
    if (!v.is_object()) return h;
    auto& o = v.get_object();
    if (auto* m = o.if_contains("max")) h.max_ = m->to_number<std::uint64_t>();
    if (auto* b = o.if_contains("b"))
      for (auto& pair : b->get_array()) {
        auto& p = pair.get_array();
        auto i = p[0].to_number<std::size_t>();
        auto n = p[1].to_number<std::uint64_t>();
        if (i < kBuckets) h.counts_[i] += n, h.total_ += n;
      }
    return h;
  }

 private:
  static std::size_t index(std::uint64_t v) {
    if (v < 128) return static_cast<std::size_t>(v);
    int m = std::bit_width(v) - 7;  // v >> m lies in [64, 128)
    std::size_t i = static_cast<std::size_t>(kSub) * m + static_cast<std::size_t>(v >> m);
    return std::min(i, kBuckets - 1);
  }
  static std::uint64_t upper(std::size_t i) {
    if (i < 128) return i;
    std::size_t m = i / kSub - 1;
    std::uint64_t mant = i - kSub * m;  // in [64, 128)
    return ((mant + 1) << m) - 1;
  }

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace bench
