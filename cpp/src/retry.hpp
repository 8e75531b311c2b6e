#pragma once
// When to try a failed delivery again.
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "brandhooks/config.hpp"  // parse_duration

namespace brandhooks {

// The longest Retry-After honoured (a day, in microseconds): a receiver cannot park its
// deliveries longer than the retry schedule would.
inline constexpr std::int64_t kMaxRetryAfter = 86'400'000'000;

// A Retry-After header (delay in seconds or an HTTP date) as a delay from `now_us`, in
// microseconds, at most kMaxRetryAfter (also when the number overflows 64 bits); nullopt when
// malformed. Dates in the past give 0.
std::optional<std::int64_t> parse_retry_after(std::string_view value, std::int64_t now_us);

class RetryPolicy {
 public:
  // `schedule`: comma-separated durations, the delay before attempt 1, 2, ... Throws
  // ValidationError when empty or malformed, or when jitter is outside [0, 1).
  RetryPolicy(std::string_view schedule, double jitter);

  std::int64_t first_delay() const { return delays_.front(); }
  std::size_t max_attempts() const { return delays_.size(); }
  // The delay before the next attempt after `attempts_made` attempts (jittered), or nullopt
  // when the schedule is exhausted.
  std::optional<std::int64_t> next_delay(int attempts_made, std::mt19937_64& rng) const;

 private:
  std::vector<std::int64_t> delays_;
  double jitter_;
};

}  // namespace brandhooks
