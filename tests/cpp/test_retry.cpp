#include <gtest/gtest.h>

#include "brandhooks/errors.hpp"
#include "retry.hpp"

using namespace brandhooks;

TEST(Retry, Durations) {
  EXPECT_EQ(parse_duration("0"), 0);
  EXPECT_EQ(parse_duration("5"), 5'000'000);
  EXPECT_EQ(parse_duration("1.5"), 1'500'000);
  EXPECT_EQ(parse_duration("250ms"), 250'000);
  EXPECT_EQ(parse_duration(" 5m "), 300'000'000);
  EXPECT_EQ(parse_duration("2h"), 7'200'000'000);
  EXPECT_EQ(parse_duration("1d"), 86'400'000'000);
  for (const char* bad : {"", "s", "-1", "5x", "1..2", "five"}) {
    EXPECT_THROW(parse_duration(bad), ValidationError) << bad;
  }
}

TEST(Retry, DefaultScheduleWithJitterBounds) {
  RetryPolicy policy("0,5s,5m,30m,2h,5h,10h,14h,20h,24h", 0.2);
  EXPECT_EQ(policy.max_attempts(), 10u);
  EXPECT_EQ(policy.first_delay(), 0);
  std::mt19937_64 rng(42);
  const std::int64_t base[] = {0, 5'000'000, 300'000'000, 1'800'000'000, 7'200'000'000};
  for (int made = 1; made < 5; ++made) {
    double lo = 1e18, hi = 0;
    for (int i = 0; i < 2000; ++i) {
      auto d = policy.next_delay(made, rng);
      ASSERT_TRUE(d);
      lo = std::min(lo, static_cast<double>(*d));
      hi = std::max(hi, static_cast<double>(*d));
    }
    EXPECT_GE(lo, 0.8 * static_cast<double>(base[made]));
    EXPECT_LE(hi, 1.2 * static_cast<double>(base[made]));
    EXPECT_LT(lo, 0.85 * static_cast<double>(base[made]));  // the jitter is really applied
    EXPECT_GT(hi, 1.15 * static_cast<double>(base[made]));
  }
  EXPECT_TRUE(policy.next_delay(9, rng));
  EXPECT_FALSE(policy.next_delay(10, rng));  // ten attempts made: give up
}

TEST(Retry, BadSchedules) {
  EXPECT_THROW(RetryPolicy("", 0.2), ValidationError);
  EXPECT_THROW(RetryPolicy("0,,5", 0.2), ValidationError);
  EXPECT_THROW(RetryPolicy("0,5", 1.5), ValidationError);
  EXPECT_THROW(RetryPolicy("0,5", -0.1), ValidationError);
}

TEST(Retry, RetryAfter) {
  EXPECT_EQ(parse_retry_after("3", 0), 3'000'000);
  EXPECT_EQ(parse_retry_after("0", 0), 0);
  // Wed, 21 Oct 2015 07:28:00 GMT = 1445412480
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470'000'000), 10'000'000);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490'000'000), 0);
  EXPECT_FALSE(parse_retry_after("soon", 0));
  EXPECT_FALSE(parse_retry_after("-5", 0));
}

// A receiver's number may have any size: it is capped before it is scaled to microseconds.
TEST(Retry, RetryAfterIsCappedWithoutOverflow) {
  EXPECT_EQ(parse_retry_after("10000000000000", 0), kMaxRetryAfter);
  EXPECT_EQ(parse_retry_after("9223372036854775807", 0), kMaxRetryAfter);
  EXPECT_EQ(parse_retry_after("99999999999999999999999999", 0), kMaxRetryAfter);  // past int64
  EXPECT_EQ(parse_retry_after("86401", 0), kMaxRetryAfter);
  EXPECT_EQ(parse_retry_after("86400", 0), kMaxRetryAfter);
  EXPECT_EQ(parse_retry_after(" 7 ", 0), 7'000'000);
  EXPECT_FALSE(parse_retry_after("", 0));
  EXPECT_FALSE(parse_retry_after("+5", 0));
  // A date a century away is a day at most.
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2115 07:28:00 GMT", 1445412470'000'000), kMaxRetryAfter);
}

TEST(Retry, DurationsTooLongAreRefused) {
  EXPECT_EQ(parse_duration("3650d"), kMaxDuration);
  for (const char* bad : {"3651d", "1e300", "10000000000000000000", "99999999999999999999h",
                          "1000000000000000000000000000000000000000ms"}) {
    EXPECT_THROW(parse_duration(bad), ValidationError) << bad;
  }
  EXPECT_THROW(RetryPolicy("0,100000d", 0.2), ValidationError);
}
