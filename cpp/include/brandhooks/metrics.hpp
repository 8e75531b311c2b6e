#pragma once
// Counters the core keeps for /metrics. Monotonic since the Hub started; lock-free to update.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace brandhooks {

// A fixed-bucket histogram of seconds (Prometheus style: cumulative at read time).
class Histogram {
 public:
  // Upper bounds in seconds; +Inf is implicit.
  static constexpr std::array<double, 14> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,    1,     2.5,  5,     10,   30};
  void observe(double seconds);

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> sum_micros_{0};
  std::atomic<std::uint64_t> count_{0};
};

// A counter per label value, for rare events (a mutex is cheap enough there).
class LabeledCounter {
 public:
  void add(const std::string& label, std::uint64_t n) {
    std::lock_guard lock(mutex_);
    counts_[label] += n;
  }
  std::map<std::string, std::uint64_t> snapshot() const {
    std::lock_guard lock(mutex_);
    return counts_;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t> counts_;
};

struct Metrics {
  std::atomic<std::uint64_t> events_published{0};
  std::atomic<std::uint64_t> deliveries_created{0};
  std::atomic<std::uint64_t> attempts{0};
  std::atomic<std::uint64_t> deliveries_delivered{0};
  std::atomic<std::uint64_t> deliveries_failed{0};  // gave up (schedule exhausted or 410)
  std::atomic<std::uint64_t> retries_scheduled{0};
  std::atomic<std::uint64_t> webhooks_disabled{0};
  std::atomic<std::uint64_t> deliveries_pruned{0};
  // Leases of other nodes that stopped renewing, taken over by this one's claims, per node
  // that held them.
  LabeledCounter leases_taken_over;
  // Attempt outcomes dropped because another node had taken the lease over meanwhile.
  std::atomic<std::uint64_t> leases_lost{0};
  // This node's leases that its dispatcher did not hold (the COMMIT of the claim or publish
  // that took them lost its answer), given back to the queue.
  std::atomic<std::uint64_t> leases_taken_back{0};
  // Attempt outcomes found recorded when their batch was written again (its first COMMIT
  // lost its answer but had committed).
  std::atomic<std::uint64_t> outcomes_already_recorded{0};
  // Attempt spans dropped because the exporter's queue was full (Hub::enable_attempt_spans).
  std::atomic<std::uint64_t> attempt_spans_dropped{0};
  Histogram attempt_seconds;
  Histogram publish_to_delivered_seconds;
};

}  // namespace brandhooks
