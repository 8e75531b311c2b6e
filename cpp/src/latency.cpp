#include "latency.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "brandhooks/errors.hpp"

namespace brandhooks {

int LatencyHistogram::bucket(std::int64_t duration_us) {
  if (duration_us < kFirstUs) return 0;
  double steps = std::floor(std::log2(static_cast<double>(duration_us) / kFirstUs) * kPerDoubling);
  return std::min(kBuckets - 1, 1 + static_cast<int>(steps));
}

double LatencyHistogram::estimate_ms(int bucket) {
  if (bucket <= 0) return kFirstUs / 2 / 1e3;
  return kFirstUs * std::exp2((bucket - 0.5) / kPerDoubling) / 1e3;
}

void LatencyHistogram::add(int bucket, std::int64_t n) {
  if (bucket < 0 || bucket >= kBuckets) throw StorageError("a latency histogram bucket out of range");
  if (n == 0) return;
  if (counts_.size() <= static_cast<std::size_t>(bucket)) counts_.resize(static_cast<std::size_t>(bucket) + 1);
  counts_[static_cast<std::size_t>(bucket)] += n;
  total_ += n;
}

void LatencyHistogram::add(const LatencyHistogram& other) {
  for (std::size_t b = 0; b < other.counts_.size(); ++b) add(static_cast<int>(b), other.counts_[b]);
}

std::optional<double> LatencyHistogram::percentile_ms(double p) const {
  if (total_ == 0) return std::nullopt;
  auto rank = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(p * static_cast<double>(total_))));
  std::int64_t seen = 0;
  for (std::size_t b = 0; b < counts_.size(); ++b) {
    seen += counts_[b];
    if (seen >= rank) return estimate_ms(static_cast<int>(b));
  }
  return estimate_ms(static_cast<int>(counts_.size()) - 1);
}

std::string LatencyHistogram::to_json() const { return nlohmann::json(counts_).dump(); }

LatencyHistogram LatencyHistogram::from_json(const std::string& json) {
  LatencyHistogram h;
  auto counts = nlohmann::json::parse(json).get<std::vector<std::int64_t>>();
  for (std::size_t b = 0; b < counts.size(); ++b) h.add(static_cast<int>(b), counts[b]);
  return h;
}

}  // namespace brandhooks
