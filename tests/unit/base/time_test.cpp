#include <gtest/gtest.h>

#include <eventflow/time.hpp>

using namespace eventflow;

TEST(Time, Rfc3339RoundTripsAndHonoursOffsets) {
  auto t = parseRfc3339("2026-11-25T21:04:58.123Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(formatRfc3339(*t), "2026-11-25T21:04:58.123Z");
  auto shifted = parseRfc3339("2026-11-25T23:04:58.123+02:00");
  ASSERT_TRUE(shifted);
  EXPECT_EQ(*shifted, *t);
  EXPECT_FALSE(parseRfc3339("2026-11-25"));
  EXPECT_FALSE(parseRfc3339("2026-13-25T00:00:00Z"));
  EXPECT_FALSE(parseRfc3339("2026-11-25T00:00:00"));
  EXPECT_FALSE(parseRfc3339("2026-11-25T00:00:00Zjunk"));
  // beyond what system_clock holds: clamped, never wrapped into the past
  EXPECT_GT(*parseRfc3339("2999-01-01T00:00:00Z"), *t);
  EXPECT_LT(*parseRfc3339("1500-01-01T00:00:00Z"), *t);
}

TEST(Time, Durations) {
  EXPECT_EQ(parseDuration("250ms")->count(), 250);
  EXPECT_EQ(parseDuration("30s")->count(), 30000);
  EXPECT_EQ(parseDuration("5m")->count(), 300000);
  EXPECT_EQ(parseDuration("7d")->count(), 7 * 86400000LL);
  EXPECT_EQ(parseDuration("2")->count(), 2000);
  EXPECT_FALSE(parseDuration("soon"));
  EXPECT_FALSE(parseDuration("-1s"));
  EXPECT_FALSE(parseDuration("5 parsecs"));
}

// Issue 11: a huge value was converted to int64 past its range (undefined
// behaviour, in practice a negative or arbitrary duration); nan and inf
// passed the `value < 0` check.
TEST(Time, DurationsOutOfRangeOrNotFiniteAreRefused) {
  EXPECT_FALSE(parseDuration("1e300s"));
  EXPECT_FALSE(parseDuration("1e400"));  // past double's range too
  EXPECT_FALSE(parseDuration("9223372036854775808ms"));  // 2^63 ms
  EXPECT_FALSE(parseDuration("106752000000d"));          // just past 2^63 ms in days
  EXPECT_FALSE(parseDuration("nan"));
  EXPECT_FALSE(parseDuration("nans"));
  EXPECT_FALSE(parseDuration("inf"));
  EXPECT_FALSE(parseDuration("infinitys"));
  EXPECT_FALSE(parseDuration("-inf"));
  EXPECT_FALSE(parseDuration("-0.5ms"));
  EXPECT_FALSE(parseDuration("-9223372036854775808ms"));
  // The largest values that fit are still exact enough and positive.
  const auto days = parseDuration("106751991d");  // ~292,000 years
  ASSERT_TRUE(days);
  EXPECT_EQ(days->count(), 106751991LL * 86400000LL);
  const auto near = parseDuration("9223372036854774784ms");  // the largest double below 2^63
  ASSERT_TRUE(near);
  EXPECT_GT(near->count(), 0);
  EXPECT_EQ(parseDuration("0")->count(), 0);
  EXPECT_EQ(parseDuration("1.5s")->count(), 1500);
}
