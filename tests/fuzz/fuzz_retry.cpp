// Retry-After (from receivers) and durations (from users): any text is refused or gives a delay
// within the caps, whatever the clock; a schedule's jittered delays stay within their bounds.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <random>
#include <string>

#include "brandhooks/errors.hpp"
#include "fuzz_check.hpp"
#include "retry.hpp"

using namespace brandhooks;


extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  // A clock between 1970 and 2200 (microseconds), as a real one would be.
  std::int64_t now = in.ConsumeIntegralInRange<std::int64_t>(0, 7'258'118'400'000'000);
  double jitter = in.ConsumeFloatingPointInRange<double>(0, 0.99);
  std::string text = in.ConsumeRemainingBytesAsString();

  if (auto delay = parse_retry_after(text, now)) check(*delay >= 0 && *delay <= kMaxRetryAfter);

  try {
    std::int64_t d = parse_duration(text);
    check(d >= 0 && d <= kMaxDuration);
  } catch (const ValidationError&) {
  }

  try {
    RetryPolicy policy(text, jitter);
    std::mt19937_64 rng(1);
    check(policy.max_attempts() >= 1);
    for (std::size_t made = 0; made < policy.max_attempts() && made < 64; ++made) {
      auto delay = policy.next_delay(static_cast<int>(made), rng);
      check(delay && *delay >= 0 && static_cast<double>(*delay) <= 2.0 * static_cast<double>(kMaxDuration));
    }
    check(!policy.next_delay(static_cast<int>(policy.max_attempts()), rng));
  } catch (const ValidationError&) {
  }
  return 0;
}
