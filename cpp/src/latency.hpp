#pragma once
// Attempt durations in a fixed log-scale histogram: what the per-minute delivery statistics
// keep (docs/delivery.md, "Delivery statistics"). Histograms of any minutes, webhooks or nodes
// add up bucket by bucket, so percentiles over a window cost one read of its minutes.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace brandhooks {

class LatencyHistogram {
 public:
  // Bucket 0 holds durations below kFirstUs; bucket b >= 1 holds [kFirstUs * 2^((b-1)/4),
  // kFirstUs * 2^(b/4)): each spans a factor 2^(1/4) (19%), so the middle of a bucket is within
  // 2^(1/8) (9%) of anything in it. The last bucket also holds everything longer (from 30 h).
  static constexpr std::int64_t kFirstUs = 100;
  static constexpr int kPerDoubling = 4;
  static constexpr int kBuckets = 1 + kPerDoubling * 30;

  static int bucket(std::int64_t duration_us);
  // What a duration of the bucket is taken to be: its geometric middle (bucket 0: half of kFirstUs).
  static double estimate_ms(int bucket);

  void add_duration(std::int64_t duration_us) { add(bucket(duration_us), 1); }
  void add(int bucket, std::int64_t n);
  void add(const LatencyHistogram& other);
  std::int64_t total() const { return total_; }
  // The nearest-rank percentile (0 < p <= 1) as its bucket's estimate; none when empty.
  std::optional<double> percentile_ms(double p) const;

  // Stored as a JSON array of counts (SQLite) or an integer[] (PostgreSQL), bucket 0 first,
  // without trailing zeros.
  const std::vector<std::int64_t>& counts() const { return counts_; }
  std::string to_json() const;
  static LatencyHistogram from_json(const std::string& json);

 private:
  std::vector<std::int64_t> counts_;
  std::int64_t total_ = 0;
};

}  // namespace brandhooks
