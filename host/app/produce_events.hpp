#pragma once
// eventflow produce's events: shaped like the original EventFlow's.

#include <cstdint>
#include <random>
#include <string>

namespace eventflow::app {

/// Appends event number `n` (its type cycles purchase, user_signup,
/// page_view, custom) to `out` as JSON; `invalid`: one every shipped pipeline
/// refuses.
void appendEvent(std::string& out, std::mt19937_64& rng, std::uint64_t n, bool invalid, bool random_id,
                 const std::string& timestamp);

}  // namespace eventflow::app
