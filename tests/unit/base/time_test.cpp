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
