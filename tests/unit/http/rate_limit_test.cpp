#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "http/rate_limit.hpp"

using namespace eventflow;
using eventflow::http::RateLimiter;
using eventflow::http::RateOutcome;
using namespace std::chrono_literals;

namespace {

std::vector<config::ApiKey> keys(double eps, std::uint64_t burst) {
  config::ApiKey limited{.name = "limited", .sha256 = std::string(64, 'a'), .scopes = {"ingest"},
                         .rate = config::RateSpec{.events_per_second = eps, .burst = burst}};
  config::ApiKey free{.name = "free", .sha256 = std::string(64, 'b'), .scopes = {"ingest"}, .rate = std::nullopt};
  return {limited, free};
}

const RateLimiter::Clock::time_point kStart = RateLimiter::Clock::time_point(1000s);

}  // namespace

TEST(RateLimiter, AFullBucketTakesBurstThenRefillsAtTheRate) {
  RateLimiter limiter(keys(100, 10));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(limiter.take(0, 1, kStart).outcome, RateOutcome::allowed) << i;
  const auto over = limiter.take(0, 1, kStart);
  ASSERT_EQ(over.outcome, RateOutcome::limited);
  EXPECT_EQ(over.wait, 10ms) << "one event's refill at 100/s";
  EXPECT_EQ(limiter.take(0, 1, kStart + 9ms).outcome, RateOutcome::limited);
  EXPECT_EQ(limiter.take(0, 1, kStart + 10ms).outcome, RateOutcome::allowed);
  // After a long idle spell the bucket is full again, never fuller.
  EXPECT_EQ(limiter.take(0, 10, kStart + 1h).outcome, RateOutcome::allowed);
  EXPECT_EQ(limiter.take(0, 1, kStart + 1h).outcome, RateOutcome::limited);
}

TEST(RateLimiter, ABatchTakesAllItsEventsOrNone) {
  RateLimiter limiter(keys(100, 10));
  EXPECT_EQ(limiter.take(0, 6, kStart).outcome, RateOutcome::allowed);
  const auto refused = limiter.take(0, 6, kStart);
  ASSERT_EQ(refused.outcome, RateOutcome::limited);
  EXPECT_EQ(refused.wait, 20ms) << "two events short";
  // The refused batch took nothing: four still fit.
  EXPECT_EQ(limiter.take(0, 4, kStart).outcome, RateOutcome::allowed);
  EXPECT_EQ(limiter.take(0, 11, kStart + 1h).outcome, RateOutcome::too_large) << "never fits, whatever the wait";
}

TEST(RateLimiter, UnlimitedKeysAndNoKeyAlwaysPass) {
  RateLimiter limiter(keys(1, 1));
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(limiter.take(1, 1000, kStart).outcome, RateOutcome::allowed);
    ASSERT_EQ(limiter.take(RateLimiter::kNoKey, 1000, kStart).outcome, RateOutcome::allowed);
  }
  EXPECT_EQ(limiter.take(0, 0, kStart).outcome, RateOutcome::allowed) << "nothing to count";
}

TEST(RateLimiter, SlowRatesAndRetryAfterRoundUp) {
  RateLimiter limiter(keys(0.5, 1));  // one event every 2 s
  EXPECT_EQ(limiter.take(0, 1, kStart).outcome, RateOutcome::allowed);
  const auto v = limiter.take(0, 1, kStart + 500ms);
  ASSERT_EQ(v.outcome, RateOutcome::limited);
  EXPECT_EQ(v.wait, 1500ms);
  EXPECT_EQ(RateLimiter::retryAfterSeconds(v.wait), 2u);
  EXPECT_EQ(RateLimiter::retryAfterSeconds(1ns), 1u);
  EXPECT_EQ(RateLimiter::retryAfterSeconds(0ns), 1u) << "never Retry-After: 0";
  EXPECT_EQ(RateLimiter::retryAfterSeconds(2s), 2u);
}

TEST(RateLimiter, ConcurrentTakersNeverGetMoreThanTheBudget) {
  RateLimiter limiter(keys(1000, 500));
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (limiter.take(0, 1, kStart).outcome == RateOutcome::allowed) ++allowed;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 500) << "exactly the burst at one instant";
}
