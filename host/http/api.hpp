#pragma once
// The route handlers of DESIGN §3. Ingest answers from a committer thread
// once its group commit is in; every other route runs on a blocking (or
// probe) thread and may wait on the store. Which route a request is, its
// methods and its scope come from the route table (routes.hpp).

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "http/rate_limit.hpp"
#include "http/reply.hpp"
#include "http/routes.hpp"
#include "http/server.hpp"

namespace eventflow::store { struct DeadFilter; }

namespace eventflow::http {

class Api {
 public:
  explicit Api(const Services& s);

  /// True for the routes `ingest` answers without blocking.
  static bool isIngest(const Request& req);
  /// True for health and metrics, which must never queue behind admin work.
  static bool isProbe(const Request& req);

  /// POST /events and /events/batch: `respond` runs once the events are committed.
  void ingest(const Request& req, const std::string& correlation, const std::function<void(Reply)>& respond);

  /// Every other route; may block on the store. `route` is set to the
  /// matched pattern (metrics label), left alone when none matched.
  Reply handle(const Request& req, std::string& route, const std::string& correlation);

 private:
  Reply dispatch(const Request& req, const Route& r, const std::string& path);
  void ingestBody(const Request& req, const std::string& correlation, bool batch, std::size_t key,
                  const std::function<void(Reply)>& respond);
  /// Nothing when key `key` may send `events` more events now; else its 429 or 413.
  std::optional<Reply> admit(std::size_t key, std::size_t events);
  Reply journey(const std::string& path);
  Reply health();
  Reply ready();
  Reply metrics();
  void refreshBooks();
  Reply summary();
  // admin_routes.cpp
  Reply pipelines();
  Reply reload();
  // dlq_routes.cpp
  Reply dlqPage(const Request& req);
  std::optional<Reply> filterParameter(const std::string& key, const std::string& value, store::DeadFilter& filter);
  Reply replayAll(const Request& req);
  Reply dlqItem(const Request& req, RouteId id, const std::string& path);

  const Services& s_;
  RateLimiter limiter_;
  static constexpr auto kBooksEvery = std::chrono::seconds(5);
  std::mutex books_mutex_;
  std::chrono::steady_clock::time_point books_at_{};  // under books_mutex_
};

/// An event id from a path, in lower case when it is a UUID (ids are kept in
/// lower case, see pipeline::canonicaliseEventId).
std::string idFromPath(const std::string& path, std::size_t from, std::size_t drop_suffix = 0);

}  // namespace eventflow::http
