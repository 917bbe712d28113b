#pragma once
// eventflow produce's events: shaped like the original EventFlow's.

#include <chrono>
#include <cstdint>
#include <random>
#include <string>

namespace eventflow::app {

/// The instant an event says it happened, spelled the ways clients spell it:
/// "2026-12-06T03:40:00.123Z"; with an offset, "2026-12-06T09:10:00.123+05:30";
/// naive, as the original EventFlow's producer sends `datetime.utcnow()
/// .isoformat()`, "2026-12-06T03:40:00.123456" (taken as UTC).
struct Timestamps {
  std::string utc, offset, naive;
};
Timestamps timestampsAt(std::chrono::system_clock::time_point t, int offset_minutes);

/// Appends event number `n` (its type cycles purchase, user_signup,
/// page_view, custom) to `out` as JSON; `invalid`: one every shipped pipeline
/// refuses.
void appendEvent(std::string& out, std::mt19937_64& rng, std::uint64_t n, bool invalid, bool random_id,
                 const std::string& timestamp);

}  // namespace eventflow::app
