#include "http/rate_limit.hpp"

#include <algorithm>
#include <cmath>

namespace eventflow::http {

RateLimiter::RateLimiter(const std::vector<config::ApiKey>& keys)
    : size_(keys.size()), buckets_(std::make_unique<Bucket[]>(keys.size())) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (!keys[i].rate) continue;
    auto& b = buckets_[i];
    b.limited = true;
    // The config bounds (events_per_second <= 1e9, burst <= a day's refill)
    // keep both under 2^47 ns.
    b.interval_ns = std::max<std::int64_t>(1, std::llround(1e9 / keys[i].rate->events_per_second));
    b.burst = keys[i].rate->burst;
    b.tolerance_ns = b.interval_ns * static_cast<std::int64_t>(b.burst);
  }
}

RateVerdict RateLimiter::take(std::size_t key, std::uint64_t events, Clock::time_point now) {
  if (key >= size_ || !buckets_[key].limited || events == 0) return {};
  auto& b = buckets_[key];
  if (events > b.burst) return {RateOutcome::too_large, {}};
  const std::int64_t at = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  const std::int64_t cost = b.interval_ns * static_cast<std::int64_t>(events);
  std::int64_t tat = b.tat.load(std::memory_order_relaxed);
  for (;;) {
    // An idle bucket is full: its arrival time is not in the past.
    const std::int64_t next = std::max(tat, at) + cost;
    if (next - at > b.tolerance_ns) return {RateOutcome::limited, std::chrono::nanoseconds(next - at - b.tolerance_ns)};
    if (b.tat.compare_exchange_weak(tat, next, std::memory_order_relaxed)) return {};
  }
}

std::uint64_t RateLimiter::retryAfterSeconds(std::chrono::nanoseconds wait) {
  const auto ns = std::max<std::int64_t>(0, wait.count());
  return std::max<std::uint64_t>(1, static_cast<std::uint64_t>((ns + 999'999'999) / 1'000'000'000));
}

}  // namespace eventflow::http
