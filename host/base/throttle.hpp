#pragma once
// A failure that repeats on every call (Redis down, the store refusing
// commits) is logged once a few seconds, not once per call: at 25,000 events/s
// a line per failed call would bury everything else in the log.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

namespace eventflow {

/// Lets one call through per `period`, from any thread; counts the others.
class Throttle {
 public:
  explicit Throttle(std::chrono::steady_clock::duration period = std::chrono::seconds(5)) : period_(period.count()) {}

  /// True for the first call of each period; `suppressed` then says how many
  /// calls were held back since the last one let through.
  bool allow(std::uint64_t& suppressed) {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto last = last_.load();
    if (now - last >= period_ && last_.compare_exchange_strong(last, now)) {
      suppressed = held_.exchange(0);
      return true;
    }
    held_.fetch_add(1);
    return false;
  }

 private:
  const std::int64_t period_;
  std::atomic<std::int64_t> last_{std::numeric_limits<std::int64_t>::min() / 2};
  std::atomic<std::uint64_t> held_{0};
};

}  // namespace eventflow
