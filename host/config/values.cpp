#include "config/values.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <limits>
#include <regex>
#include <utility>

#include <eventflow/time.hpp>

namespace eventflow::config {

// parseDuration (the SDK's) also takes what from_chars takes, such as "1e3s";
// a config takes digits, an optional fraction and a unit only, as people write
// them. (parseDuration refuses what int64 milliseconds cannot hold.)
std::optional<Millis> strictDuration(const std::string& s) {
  static const std::regex kShape("[0-9]{1,12}(\\.[0-9]{1,9})?(ms|s|m|h|d)?");
  if (!std::regex_match(s, kShape)) return std::nullopt;
  const auto d = parseDuration(s);
  if (!d || *d > std::chrono::hours(24 * kMaxDurationDays)) return std::nullopt;
  return d;
}

std::optional<std::uint64_t> parseSize(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end == text.data()) return std::nullopt;
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  static const std::pair<std::string_view, std::uint64_t> kUnits[] = {
      {"", 1},          {"B", 1},          {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30},
      {"KB", 1000},     {"MB", 1000'000},  {"GB", 1000'000'000}};
  for (const auto& [name, factor] : kUnits)
    if (unit == name) {
      if (value > std::numeric_limits<std::uint64_t>::max() / factor) return std::nullopt;
      return value * factor;
    }
  return std::nullopt;
}

// HOST:PORT as the HTTP server binds it: an IPv4 address, [IPv6], or a host
// name, and a port 1-65535 (0: any free port, for tests). Empty when fine.
std::string listenProblem(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return "must be HOST:PORT, such as 127.0.0.1:8000";
  const std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535)
    return "port '" + port + "' must be a number from 1 to 65535 (HOST:PORT, such as 127.0.0.1:8000)";
  if (host.empty()) return "needs a host before the port: 127.0.0.1 (this machine) or 0.0.0.0 (every interface)";
  unsigned char addr[16];
  if (host.front() == '[') {
    if (host.back() != ']' || ::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), addr) != 1)
      return "'" + host + "' is not an IPv6 address in brackets, such as [::1]";
    return {};
  }
  if (host.find(':') != std::string::npos) return "an IPv6 address goes in brackets: [" + host + "]:" + port;
  // All digits and dots: meant as an IPv4 address, and must be one (999.1.1.1 is not).
  if (host.find_first_not_of("0123456789.") == std::string::npos) {
    if (::inet_pton(AF_INET, host.c_str(), addr) != 1) return "'" + host + "' is not an IPv4 address";
    return {};
  }
  static const std::regex kName("([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*");
  if (host.size() > 253 || !std::regex_match(host, kName)) return "'" + host + "' is not a host name or address";
  return {};
}

}  // namespace eventflow::config
