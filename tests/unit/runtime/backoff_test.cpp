// The retry delay (G4, docs/plugins.md "Results, errors and retries"):
// initial × multiplier^(n−1), capped, and with full jitter anywhere from zero
// up to that. Only end-to-end tests saw it before, through timing.

#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "runtime/workers.hpp"

using namespace eventflow;
using std::chrono::milliseconds;

namespace {

config::RetrySpec spec(bool jitter) {
  config::RetrySpec r;
  r.initial_backoff = milliseconds(200);
  r.multiplier = 2.0;
  r.max_backoff = milliseconds(30'000);
  r.full_jitter = jitter;
  return r;
}

}  // namespace

TEST(RetryDelay, WithoutJitterGrowsByTheMultiplierUpToTheCap) {
  const auto r = spec(false);
  EXPECT_EQ(runtime::retryDelay(r, 1, 0.5), milliseconds(200)) << "the first retry waits initial_backoff";
  EXPECT_EQ(runtime::retryDelay(r, 2, 0.5), milliseconds(400));
  EXPECT_EQ(runtime::retryDelay(r, 3, 0.5), milliseconds(800));
  EXPECT_EQ(runtime::retryDelay(r, 7, 0.5), milliseconds(12'800));
  EXPECT_EQ(runtime::retryDelay(r, 8, 0.5), milliseconds(25'600));
  EXPECT_EQ(runtime::retryDelay(r, 9, 0.5), milliseconds(30'000)) << "51.2 s is capped at max_backoff";
  EXPECT_EQ(runtime::retryDelay(r, 0, 0.5), milliseconds(200)) << "attempt 0 counts as the first";
}

TEST(RetryDelay, AHugeAttemptCountStaysAtTheCap) {
  const auto r = spec(false);
  // 2^1999 is infinity as a double; the cap still holds, never a wrap to negative.
  EXPECT_EQ(runtime::retryDelay(r, 2000, 0.5), milliseconds(30'000));
  EXPECT_EQ(runtime::retryDelay(r, 4'000'000'000u, 0.5), milliseconds(30'000));
}

TEST(RetryDelay, FullJitterIsWithinZeroAndTheCappedDelay) {
  const auto r = spec(true);
  EXPECT_EQ(runtime::retryDelay(r, 3, 0.0), milliseconds(0));
  EXPECT_EQ(runtime::retryDelay(r, 3, 0.5), milliseconds(400));
  EXPECT_LT(runtime::retryDelay(r, 3, 0.999999), milliseconds(800));
  EXPECT_EQ(runtime::retryDelay(r, 20, 0.25), milliseconds(7'500)) << "jitter scales the capped delay";

  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  milliseconds low = milliseconds::max(), high = milliseconds::min();
  for (int i = 0; i < 10'000; ++i) {
    const auto d = runtime::retryDelay(r, 4, unit(rng));
    ASSERT_GE(d, milliseconds(0));
    ASSERT_LT(d, milliseconds(1'600));
    low = std::min(low, d);
    high = std::max(high, d);
  }
  // Full jitter spreads over the whole range, not around the middle.
  EXPECT_LT(low, milliseconds(50));
  EXPECT_GT(high, milliseconds(1'550));
}
