#pragma once
// Value parsers for config scalars (durations, byte sizes, listen
// addresses): what a key's text must look like, apart from where it is.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace eventflow::config {

// Longer than any timeout or interval means anything; far enough from the
// int64 milliseconds that a product of two of them cannot overflow.
constexpr std::int64_t kMaxDurationDays = 365;

/// Digits, an optional fraction and a unit (ms, s, m, h, d; none: seconds),
/// at most kMaxDurationDays; nullopt otherwise.
std::optional<Millis> strictDuration(const std::string& s);

/// A byte size: a whole number of bytes, or one with a unit (B, KiB, MiB,
/// GiB; KB, MB, GB in powers of ten); nullopt when malformed or too large.
std::optional<std::uint64_t> parseSize(std::string_view text);

/// What is wrong with a server.listen HOST:PORT; empty when fine.
std::string listenProblem(const std::string& listen);

}  // namespace eventflow::config
