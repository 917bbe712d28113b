#pragma once
// eventflow produce's report: the host's /metrics/summary (for --wait) and
// what a run printed.

// <utility> first: Debian 12's boost/asio/awaitable.hpp uses std::exchange
// without including it.
#include <utility>

#include <boost/asio.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/produce_load.hpp"

namespace eventflow::app {

/// The value at percentile `p` (0-100) of `sorted`; 0 when empty.
double percentile(std::vector<double>& sorted, double p);

/// GET /metrics/summary; nullopt when the host cannot be asked or does not answer 200 with JSON.
std::optional<nlohmann::json> summary(const Target& target, const boost::asio::ip::tcp::endpoint& endpoint,
                                      const std::string& auth);

/// What --wait found: every accepted event terminal (processed or dead) or not.
struct Drain {
  bool ok = false;
  double e2e_seconds = 0;  // from the first request to the last event terminal
  std::uint64_t processed = 0, dead = 0;
};

/// Polls the summary until `accepted` events more than `baseline` counted are
/// received and nothing is in flight, or `timeout` passes.
Drain waitTerminal(const Target& target, const boost::asio::ip::tcp::endpoint& endpoint, const std::string& auth,
                   const nlohmann::json& baseline, std::uint64_t accepted, Clock::time_point start,
                   std::chrono::seconds timeout);

/// One run, as printed.
struct Report {
  std::string mode;  // "mix" or "plain"
  std::string url;
  long long concurrency = 0, batch = 1;
  bool keep_alive = true;  // false with --close: a connection per request
  double seconds = 0;  // the load: first request to last answer
  std::uint64_t requests = 0, accepted = 0, failed = 0, invalid_accepted = 0;
  std::map<int, std::uint64_t> codes;  // status → requests; 0: no answer (connection failed)
  std::map<int, std::uint64_t> refused;  // status → events a 2xx batch answer refused
  std::vector<double> latencies;       // ms, sorted
  std::optional<Drain> drain;          // with --wait
  long long wait_timeout = 0;
};

/// The lines a person reads: the load's, printed before the wait, then the
/// end-to-end result (with --wait) and the count of failed requests.
void printLoad(std::ostream& out, Report& report);
void printEnd(std::ostream& out, const Report& report);

/// One object for scripts: the same numbers, "end_to_end" null without --wait.
nlohmann::json reportJson(Report& report);

}  // namespace eventflow::app
