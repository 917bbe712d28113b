#pragma once
// Durations in stage configs ("250ms", "5s", "1h"), for the built-in plugins.

#include <chrono>
#include <optional>
#include <string_view>

#include <eventflow/time.hpp>

namespace eventflow::plugins {

/// The shape of a config duration; schemas say the same with the pattern
/// "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)?$". parseDuration takes what from_chars
/// takes ("1e3s"); this shape, with a bounded number of digits, keeps it to
/// what a person writes.
inline bool looksLikeDuration(std::string_view text) {
  std::size_t i = 0;
  std::size_t digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i, ++digits;
  if (digits == 0 || digits > 9) return false;
  if (i < text.size() && text[i] == '.') {
    const std::size_t start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start || i - start > 9) return false;
  }
  const std::string_view unit = text.substr(i);
  return unit.empty() || unit == "ms" || unit == "s" || unit == "m" || unit == "h" || unit == "d";
}

/// The duration `text` names, when it has the shape above and lies within
/// [min, max]; nullopt otherwise.
inline std::optional<std::chrono::milliseconds> parseConfigDuration(std::string_view text,
                                                                    std::chrono::milliseconds min,
                                                                    std::chrono::milliseconds max) {
  if (!looksLikeDuration(text)) return std::nullopt;
  const auto value = parseDuration(text);
  if (!value || *value < min || *value > max) return std::nullopt;
  return value;
}

}  // namespace eventflow::plugins
