#pragma once
/// Time helpers for plugins and the host: RFC 3339 timestamps and
/// human durations ("250ms", "30s", "5m", "2h", "7d"). Header-only, no state.

#include <charconv>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace eventflow {

using SystemTime = std::chrono::system_clock::time_point;

/// Formats as RFC 3339 in UTC with milliseconds: 2026-11-25T21:04:58.123Z.
inline std::string formatRfc3339(SystemTime t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::int64_t secs = ms / 1000;
  std::int64_t frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    secs -= 1;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(frac));
  return buf;
}

namespace detail {
inline bool readInt(std::string_view s, std::size_t pos, std::size_t len, int& out) {
  if (pos + len > s.size()) return false;
  for (std::size_t i = pos; i < pos + len; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return std::from_chars(s.data() + pos, s.data() + pos + len, out).ec == std::errc{};
}
inline std::int64_t daysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}
}  // namespace detail

/// Parses an RFC 3339 timestamp (date, 'T' or ' ', time, optional fraction,
/// then 'Z' or ±hh:mm). Returns nullopt for anything else.
inline std::optional<SystemTime> parseRfc3339(std::string_view s) {
  int year, month, day, hour, minute, second;
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    return std::nullopt;
  if (!detail::readInt(s, 0, 4, year) || !detail::readInt(s, 5, 2, month) ||
      !detail::readInt(s, 8, 2, day) || !detail::readInt(s, 11, 2, hour) ||
      !detail::readInt(s, 14, 2, minute) || !detail::readInt(s, 17, 2, second))
    return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return std::nullopt;
  std::size_t pos = 19;
  std::int64_t nanos = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 9) nanos = nanos * 10 + (s[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (std::size_t i = digits; i < 9; ++i) nanos *= 10;
  }
  if (pos >= s.size()) return std::nullopt;
  std::int64_t offset_minutes = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (pos + 6 > s.size() || s[pos + 3] != ':' || !detail::readInt(s, pos + 1, 2, oh) ||
        !detail::readInt(s, pos + 4, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset_minutes = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const std::int64_t days = detail::daysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const std::int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  // system_clock counts nanoseconds in 64 bits (years 1678 to 2261); a date
  // outside that is clamped rather than wrapped around.
  constexpr std::int64_t kLimit = std::numeric_limits<SystemTime::rep>::max() / 1'000'000'000 - 1;
  if (secs > kLimit) return SystemTime::max();
  if (secs < -kLimit) return SystemTime::min();
  return SystemTime(std::chrono::duration_cast<SystemTime::duration>(std::chrono::seconds(secs) +
                                                                     std::chrono::nanoseconds(nanos)));
}

/// Parses "250ms", "30s", "5m", "2h", "7d" (a bare number is seconds).
/// Returns nullopt for anything else: a negative value, "nan" or "inf", or a
/// duration of 2^63 ms (292 million years) or more, which no 64-bit count of
/// milliseconds holds.
inline std::optional<std::chrono::milliseconds> parseDuration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || !std::isfinite(value) || value < 0) return std::nullopt;
  const std::string_view unit(end, static_cast<std::size_t>(s.data() + s.size() - end));
  double factor;
  if (unit.empty() || unit == "s") factor = 1000;
  else if (unit == "ms") factor = 1;
  else if (unit == "m") factor = 60'000;
  else if (unit == "h") factor = 3'600'000;
  else if (unit == "d") factor = 86'400'000;
  else return std::nullopt;
  // Converting a double at or past 2^63 to int64 is undefined behaviour.
  const double ms = value * factor;
  if (!(ms < 9223372036854775808.0)) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

}  // namespace eventflow
