#include "store/queries.hpp"

#include <cctype>
#include <set>

#include "base/ids.hpp"

namespace eventflow::store {
namespace {

const std::string& value(const Row& row, std::size_t col) {
  static const std::string kEmpty;
  return row.at(col) ? *row[col] : kEmpty;
}

unsigned number(const Row& row, std::size_t col) {
  const std::string& text = value(row, col);
  return text.empty() ? 0 : static_cast<unsigned>(std::stoul(text));
}

std::uint64_t count(const Row& row, std::size_t col) {
  const std::string& text = value(row, col);
  return text.empty() ? 0 : std::stoull(text);
}

std::string deadColumns(const SqlDialect& db) {
  return "SELECT f.event_id, f.pipeline, r.event_type, f.error_type, COALESCE(f.error_message, ''), "
         "COALESCE(f.stage, ''), COALESCE(f.plugin, ''), f.attempts, " + db.time("f.first_failed_at") + ", " +
         db.time("f.failed_at") + ", f.replay_count, " + db.jsonText("f.payload") + ", COALESCE(r.correlation_id, ''), " +
         db.time("r.received_at") + kDeadFrom;
}

std::vector<DeadEvent> deadFrom(const Rows& rows) {
  std::vector<DeadEvent> out;
  out.reserve(rows.size());
  for (const Row& r : rows)
    out.push_back({.event_id = value(r, 0),
                   .pipeline = value(r, 1),
                   .event_type = value(r, 2),
                   .error_type = value(r, 3),
                   .error_message = value(r, 4),
                   .stage = value(r, 5),
                   .plugin = value(r, 6),
                   .attempts = number(r, 7),
                   .first_failed_at = value(r, 8),
                   .failed_at = value(r, 9),
                   .replay_count = number(r, 10),
                   .payload = value(r, 11),
                   .correlation_id = value(r, 12),
                   .received_at = value(r, 13)});
  return out;
}

}  // namespace

State stateOf(Transition::Kind kind) {
  switch (kind) {
    case Transition::Kind::done: return State::done;
    case Transition::Kind::dead: return State::dead;
    case Transition::Kind::retrying: return State::retrying;
  }
  return State::retrying;
}

const char* toString(Transition::Kind kind) { return toString(stateOf(kind)); }

std::string lastError(const Transition& t) {
  return t.error_message.empty() ? std::string() : t.error_type + ": " + t.error_message;
}

std::string pendingColumns(const SqlDialect& db, const std::string& prefix) {
  const std::string& p = prefix;
  return p + "event_id, " + p + "event_type, " + p + "pipeline, " + db.jsonText(p + "payload") + ", COALESCE(" + p +
         "correlation_id, ''), " + db.time(p + "received_at") + ", " + p + "attempts";
}

std::vector<PendingEvent> pendingFrom(const Rows& rows) {
  std::vector<PendingEvent> out;
  out.reserve(rows.size());
  for (const Row& r : rows)
    out.push_back({.id = value(r, 0),
                   .type = value(r, 1),
                   .pipeline = value(r, 2),
                   .payload = value(r, 3),
                   .correlation_id = value(r, 4),
                   .received_at = parseRfc3339(value(r, 5)).value_or(std::chrono::system_clock::now()),
                   .attempts = number(r, 6)});
  return out;
}

std::string deadWhere(const SqlDialect& db, const DeadFilter& filter, std::vector<std::string>& params) {
  std::string where = " WHERE r.state = " + sql(State::dead);
  if (!filter.pipeline.empty()) where += " AND f.pipeline = " + db.param(params, filter.pipeline);
  if (!filter.error_type.empty()) where += " AND f.error_type = " + db.param(params, filter.error_type);
  if (filter.since) where += " AND f.failed_at >= " + db.param(params, formatRfc3339(*filter.since), "timestamptz");
  if (filter.until) where += " AND " + db.failedUntil(params, *filter.until);
  return where;
}

Expected<std::vector<PendingEvent>> readUnfinished(SqlDialect& db) {
  auto rows = db.query("SELECT " + pendingColumns(db) + " FROM raw_events WHERE " + db.unfinishedCondition() +
                           " ORDER BY received_at",
                       {});
  if (!rows) return rows.error();
  return pendingFrom(*rows);
}

Expected<std::optional<Journey>> readJourney(SqlDialect& db, const std::string& id) {
  std::vector<std::string> params;
  const std::string key = db.param(params, id);
  auto raw = db.query("SELECT event_id, event_type, pipeline, state, attempts, " + db.time("received_at") + ", " +
                          db.time("updated_at") + ", last_error, correlation_id, " + db.jsonText("payload") +
                          " FROM raw_events WHERE event_id = " + key,
                      params);
  if (!raw) return raw.error();
  if (raw->empty()) return std::optional<Journey>();
  const Row& r = raw->front();
  Journey j{.event_id = value(r, 0),
            .event_type = value(r, 1),
            .pipeline = value(r, 2),
            .state = parseState(value(r, 3)).value_or(State::received),
            .attempts = number(r, 4),
            .received_at = value(r, 5),
            .updated_at = value(r, 6),
            .last_error = r.at(7),
            .correlation_id = r.at(8),
            .payload = value(r, 9)};
  auto failed = db.query("SELECT error_type, error_message, stage, plugin, attempts, " + db.time("first_failed_at") +
                             ", " + db.time("failed_at") + ", replay_count FROM failed_events WHERE event_id = " + key,
                         params);
  if (!failed) return failed.error();
  if (!failed->empty()) {
    const Row& f = failed->front();
    j.dead_letter = Journey::DeadLetter{.error_type = f.at(0),
                                        .error_message = f.at(1),
                                        .stage = f.at(2),
                                        .plugin = f.at(3),
                                        .attempts = number(f, 4),
                                        .first_failed_at = value(f, 5),
                                        .failed_at = value(f, 6),
                                        .replay_count = number(f, 7)};
  }
  // processed_events belongs to the sinks: a store whose events go
  // elsewhere may not have it filled, and its absence is no error here.
  auto processed = db.query("SELECT " + db.time("processed_at") + ", " + db.jsonText("enriched_data") +
                                " FROM processed_events WHERE event_id = " + key,
                            params);
  if (processed && !processed->empty())
    j.processed = Journey::Processed{.processed_at = value(processed->front(), 0),
                                     .enriched_data = processed->front().at(1)};
  return std::optional<Journey>(std::move(j));
}

void CountDeltas::finished(const std::string& pipeline, std::int64_t processing_us) {
  const auto minute =
      std::chrono::duration_cast<std::chrono::minutes>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto& m = minutes[{pipeline, minute}];
  m.first += 1;
  m.second += processing_us;
}

std::int64_t oldestSummaryMinute() {
  const auto now = std::chrono::duration_cast<std::chrono::minutes>(std::chrono::system_clock::now().time_since_epoch());
  // The window's minutes, the current one partly: avg_processing_time_ms
  // covers the last 4-5 minutes rather than exactly kProcessingWindow.
  return (now - kProcessingWindow).count() + 1;
}

Expected<std::map<std::string, StateCounts>> readCounts(SqlDialect& db) {
  auto rows = db.query(
      "SELECT pipeline, state, SUM(n) FROM (SELECT pipeline, state, n FROM event_counts UNION ALL "
      "SELECT pipeline, state, n FROM event_count_deltas) c GROUP BY pipeline, state",
      {});
  if (!rows) return rows.error();
  std::map<std::string, StateCounts> out;
  for (const Row& r : *rows) {
    const auto n = count(r, 2);
    if (n == 0) continue;  // a state every event of the pipeline has left
    auto& c = out[value(r, 0)];
    const auto state = parseState(value(r, 1));
    c.received += n;
    if (state == State::done) c.processed += n;
    else if (state == State::dead) c.dead += n;
    else if (state == State::discarded) c.discarded += n;
    else c.in_flight += n;
  }
  auto recent = db.query(
      "SELECT pipeline, SUM(finished), SUM(processing_us) FROM (SELECT pipeline, minute, finished, processing_us "
      "FROM processing_minutes UNION ALL SELECT pipeline, minute, finished, processing_us FROM processing_deltas) p "
      "WHERE minute >= " + std::to_string(oldestSummaryMinute()) + " GROUP BY pipeline",
      {});
  if (!recent) return recent.error();
  for (const Row& r : *recent) {
    auto& c = out[value(r, 0)];
    c.finished_recently += count(r, 1);
    const std::string& sum = value(r, 2);
    c.processing_ms_sum += (sum.empty() ? 0 : std::stod(sum)) / 1000;
  }
  return out;
}

Expected<std::vector<std::string>> readSettled(SqlDialect& db, std::span<const std::string> ids) {
  // Ids compare without case: PostgreSQL prints a uuid in lower case.
  const auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  std::vector<std::string> params;
  std::string in;
  for (const auto& id : ids) {
    if (db.uuidIdsOnly() && !isUuid(id)) continue;  // never stored there: it counts as gone
    in += (in.empty() ? "" : ", ") + db.param(params, id, "uuid");
  }
  std::set<std::string> unfinished;
  if (!in.empty()) {
    auto rows = db.query("SELECT event_id FROM raw_events WHERE event_id IN (" + in + ") AND " +
                             db.unfinishedCondition(),
                         params);
    if (!rows) return rows.error();
    for (const Row& r : *rows) unfinished.insert(lower(value(r, 0)));
  }
  std::vector<std::string> out;
  for (const auto& id : ids)
    if (!unfinished.count(lower(id))) out.push_back(id);
  return out;
}

Expected<DeadPage> readDead(SqlDialect& db, const DeadFilter& filter) {
  std::vector<std::string> params;
  const std::string where = deadWhere(db, filter, params);
  auto counted = db.query(std::string("SELECT COUNT(*)") + kDeadFrom + where, params);
  if (!counted) return counted.error();
  DeadPage page;
  page.total = counted->empty() ? 0 : count(counted->front(), 0);
  if (filter.limit == 0) return page;
  auto rows = db.query(deadColumns(db) + where + " ORDER BY f.failed_at, f.event_id LIMIT " +
                           std::to_string(filter.limit) + " OFFSET " + std::to_string(filter.offset),
                       params);
  if (!rows) return rows.error();
  page.items = deadFrom(*rows);
  return page;
}

Expected<std::optional<DeadEvent>> readOneDead(SqlDialect& db, const std::string& id) {
  if (db.uuidIdsOnly() && !isUuid(id)) return std::optional<DeadEvent>();
  std::vector<std::string> params;
  const std::string where = " WHERE r.state = " + sql(State::dead) + " AND f.event_id = " + db.param(params, id);
  auto rows = db.query(deadColumns(db) + where, params);
  if (!rows) return rows.error();
  auto items = deadFrom(*rows);
  if (items.empty()) return std::optional<DeadEvent>();
  return std::optional<DeadEvent>(std::move(items.front()));
}

}  // namespace eventflow::store
