#pragma once
// The reads and row mappings both engines share. An engine supplies how it
// runs a query and spells a few things (parameters, times and JSON as text);
// the SQL and what the rows mean are written here once.

#include <cstdint>
#include <map>
#include <utility>
#include <optional>
#include <string>
#include <vector>

#include "store/store.hpp"

namespace eventflow::store {

/// A result row: each value as text, nullopt for NULL.
using Row = std::vector<std::optional<std::string>>;
using Rows = std::vector<Row>;

/// What differs between SQLite and PostgreSQL for the shared reads.
class SqlDialect {
 public:
  virtual ~SqlDialect() = default;
  /// Runs `sql` with text parameters.
  virtual Expected<Rows> query(const std::string& sql, const std::vector<std::string>& params) = 0;
  /// Appends `value` to `params`; returns its placeholder, cast to `type`
  /// (a PostgreSQL type name) where the engine needs that.
  virtual std::string param(std::vector<std::string>& params, std::string value, const char* type = nullptr) const = 0;
  /// `column` (a time) as RFC 3339 text, UTC, milliseconds.
  virtual std::string time(const std::string& column) const = 0;
  /// `column` (a JSON document) as JSON text.
  virtual std::string jsonText(const std::string& column) const = 0;
  /// The condition "failed_at (of f) is at or before `until`", at
  /// millisecond precision, as listings show it.
  virtual std::string failedUntil(std::vector<std::string>& params, SystemTime until) const = 0;
  /// Whether an id that is not a UUID can be stored at all (PostgreSQL's
  /// uuid column refuses it, so a lookup of one answers "unknown" at once).
  virtual bool uuidIdsOnly() const = 0;
  /// The condition "the event is unfinished" as the engine's partial index
  /// on it is written.
  virtual const std::string& unfinishedCondition() const = 0;
};

Expected<std::vector<PendingEvent>> readUnfinished(SqlDialect& db);
Expected<std::optional<Journey>> readJourney(SqlDialect& db, const std::string& id);
Expected<std::map<std::string, StateCounts>> readCounts(SqlDialect& db);
Expected<DeadPage> readDead(SqlDialect& db, const DeadFilter& filter);
Expected<std::vector<std::string>> readSettled(SqlDialect& db, std::span<const std::string> ids);
Expected<std::optional<DeadEvent>> readOneDead(SqlDialect& db, const std::string& id);

/// The columns pendingFrom reads, of raw_events as `r` (prefix "r.") or unnamed.
std::string pendingColumns(const SqlDialect& db, const std::string& prefix = {});
std::vector<PendingEvent> pendingFrom(const Rows& rows);

/// The dead events `filter` selects: " WHERE …" over failed_events f JOIN
/// raw_events r (limit and offset are the caller's).
std::string deadWhere(const SqlDialect& db, const DeadFilter& filter, std::vector<std::string>& params);
inline constexpr const char* kDeadFrom = " FROM failed_events f JOIN raw_events r ON r.event_id = f.event_id";

/// The schema both engines give the summary's counters (a migration each).
/// event_counts holds the number of events per pipeline and state;
/// processing_minutes the events that turned done or dead per minute (unix
/// time / 60) with the sum of their processing times. Both are kept in the
/// writing transaction. SQLite's store writes the totals itself, one upsert
/// per pipeline and state a transaction touched, counting the unfinished
/// states together as kInFlight (one writer, no contention). PostgreSQL's
/// statement triggers append to the *_deltas tables, as concurrent commits
/// would otherwise queue on the few total rows, and compactCounts() folds
/// those in. Reads add both.
inline constexpr const char* kFoldCounts =
    "INSERT INTO event_counts (pipeline, state, n) SELECT pipeline, state, SUM(n) FROM moved GROUP BY pipeline, state "
    "ON CONFLICT (pipeline, state) DO UPDATE SET n = event_counts.n + excluded.n";
inline constexpr const char* kFoldMinutes =
    "INSERT INTO processing_minutes (pipeline, minute, finished, processing_us) SELECT pipeline, minute, "
    "SUM(finished), SUM(processing_us) FROM moved GROUP BY pipeline, minute ON CONFLICT (pipeline, minute) DO UPDATE "
    "SET finished = processing_minutes.finished + excluded.finished, "
    "processing_us = processing_minutes.processing_us + excluded.processing_us";

/// The event_counts state under which SQLite counts every unfinished state
/// together (readCounts takes any state it does not know as in flight).
inline constexpr const char* kInFlight = "in_flight";

/// One writing transaction's changes to the counters, written as one upsert
/// per pipeline and state (and minute) at its end.
struct CountDeltas {
  std::map<std::pair<std::string, std::string>, std::int64_t> counts;
  std::map<std::pair<std::string, std::int64_t>, std::pair<std::int64_t, std::int64_t>> minutes;  // finished, µs

  void move(const std::string& pipeline, const std::string& from, const std::string& to, std::int64_t n = 1) {
    counts[{pipeline, from}] -= n;
    counts[{pipeline, to}] += n;
  }
  void add(const std::string& pipeline, const std::string& state, std::int64_t n = 1) { counts[{pipeline, state}] += n; }
  void finished(const std::string& pipeline, std::int64_t processing_us);
};

/// The minute (unix time / 60) processing_minutes older than which no
/// summary reads.
std::int64_t oldestSummaryMinute();

/// raw_events.last_error for a transition: "error_type: message", or empty.
std::string lastError(const Transition& t);

}  // namespace eventflow::store
