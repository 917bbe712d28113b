#include "app/produce_events.hpp"

#include <cstdio>
#include <ctime>
#include <cstdlib>

#include <eventflow/time.hpp>

#include "base/ids.hpp"

namespace eventflow::app {
namespace {

std::string wallClock(std::int64_t secs, std::int64_t micros, int digits) {
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char text[48];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  if (digits == 3) std::snprintf(frac, sizeof frac, ".%03lld", static_cast<long long>(micros / 1000));
  else std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(micros));
  return std::string(text, n) + frac;
}

}  // namespace

Timestamps timestampsAt(std::chrono::system_clock::time_point t, int offset_minutes) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const std::int64_t secs = us / 1'000'000, micros = us % 1'000'000;
  Timestamps out;
  out.utc = formatRfc3339(t);
  char zone[16];
  std::snprintf(zone, sizeof zone, "%c%02d:%02d", offset_minutes < 0 ? '-' : '+', std::abs(offset_minutes) / 60,
                std::abs(offset_minutes) % 60);
  out.offset = wallClock(secs + offset_minutes * 60, micros, 3) + zone;
  out.naive = wallClock(secs, micros, 6);
  return out;
}

// Appends one event shaped like the original EventFlow's. Built as text, not
// through nlohmann::json: the generator should spend its CPU on the host's
// side of the loopback, not on itself.
void appendEvent(std::string& out, std::mt19937_64& rng, std::uint64_t n, bool invalid, bool random_id,
                 const std::string& timestamp) {
  static const char* const kTypes[] = {"purchase", "user_signup", "page_view", "custom"};
  static const char* const kPages[] = {"/", "/pricing", "/docs", "/blog", "/checkout"};
  std::uniform_int_distribution<int> user(1, 100000);
  const bool drop_user = invalid && n % 4 == 1;
  out += R"({"event_id":")";
  out += random_id ? newRandomUuid() : newUuid();
  out += R"(","event_type":")";
  out += kTypes[n % 4];
  out += '"';
  if (!drop_user) {
    out += R"(,"user_id":"user_)";
    out += std::to_string(user(rng));
    out += '"';
  }
  out += R"(,"timestamp":")";
  // Every shipped pipeline refuses a timestamp in the future.
  out += invalid ? std::string("2999-01-01T00:00:00Z") : timestamp;
  out += R"(","properties":)";
  switch (n % 4) {
    case 0: {
      std::uniform_int_distribution<int> cents(100, 200000);
      const int c = cents(rng);
      char amount[32];
      std::snprintf(amount, sizeof amount, "%d.%02d", c / 100, c % 100);
      out += R"({"amount":)";
      out += invalid ? "-1.0" : amount;
      out += R"(,"currency":"USD","product_id":"prod_)";
      out += std::to_string(user(rng) % 500);
      out += R"("})";
      break;
    }
    case 1:
      out += (n / 4) % 2 ? R"({"plan":"pro","source":"web"})" : R"({"plan":"free","source":"web"})";
      break;
    case 2:
      out += R"({"page":")";
      out += kPages[(n / 4) % 5];
      out += R"(","referrer":"https://example.com"})";
      break;
    default:
      out += R"({"name":"button_click","value":)";
      out += std::to_string(n % 100);
      out += '}';
      break;
  }
  out += '}';
}

}  // namespace eventflow::app
