// PostgreSQL store: connections and statements through the libpq layer
// (host/pg), group commits in postgres_commit.cpp, and the reads both engines
// share in queries.cpp with PostgreSQL's dialect.

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>

#include "base/ids.hpp"
#include "base/log.hpp"
#include "base/tables.hpp"
#include "pg/connection.hpp"
#include "store/postgres_commit.hpp"
#include "store/queries.hpp"
#include "store/store.hpp"

namespace eventflow::store {
namespace {

// Each entry is one schema version; never edit one that has shipped.
// Version 1 also creates processed_events (tables::processedEventsDdl), which
// journeys read.
const char* const kMigrations[] = {
    R"(
CREATE TABLE raw_events (
  event_id uuid PRIMARY KEY,
  event_type text NOT NULL,
  pipeline text NOT NULL,
  payload jsonb NOT NULL,
  payload_sha256 text NOT NULL,
  correlation_id text,
  received_at timestamptz NOT NULL,
  state text NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL,
  last_error text
);
CREATE INDEX raw_events_unfinished ON raw_events (updated_at)
  WHERE state IN ('received', 'queued', 'processing', 'retrying');
CREATE INDEX raw_events_pipeline_state ON raw_events (pipeline, state);
CREATE TABLE failed_events (
  event_id uuid PRIMARY KEY,
  pipeline text NOT NULL,
  payload jsonb NOT NULL,
  error_type text NOT NULL,
  error_message text,
  stage text,
  plugin text,
  attempts integer NOT NULL,
  first_failed_at timestamptz NOT NULL,
  failed_at timestamptz NOT NULL,
  replay_count integer NOT NULL DEFAULT 0
);
CREATE INDEX failed_events_pipeline ON failed_events (pipeline, failed_at);
CREATE INDEX failed_events_error_type ON failed_events (error_type, failed_at);
)",
    // 2: the DLQ listing without a pipeline or error_type filter, in failed_at order.
    R"(
CREATE INDEX failed_events_failed_at ON failed_events (failed_at, event_id);
)",
    // 3: how often the embedded queue handed an event out after a crash (poison, G5).
    R"(
ALTER TABLE raw_events ADD COLUMN deliveries integer NOT NULL DEFAULT 0;
)",
    // 4: every state change inserted into this index, all on the few pages
    // of one (pipeline, state) key, where concurrent workers queued on each
    // other's page locks (measured: 12 ms per 90-row batch of 'done' under
    // load, against 2 ms alone). Only the summary's counts read it, and they
    // scan the whole table either way.
    R"(
DROP INDEX IF EXISTS raw_events_pipeline_state;
)",
    // 5: COPY leaves updated_at to the server's clock, which the relay's
    // staleness test compares it with.
    R"(
ALTER TABLE raw_events ALTER COLUMN updated_at SET DEFAULT now();
)",
    // 6: first delivery to outcome, for /metrics/summary's avg_processing_time_ms.
    R"(
ALTER TABLE raw_events ADD COLUMN processing_us bigint;
)",
    // 7: the summary's counters (queries.hpp). Statement triggers with
    // transition tables: one aggregated delta row per (pipeline, state) per
    // statement, appended, so concurrent commits never wait on each other's
    // counter rows; compactCounts() folds the deltas into the totals. The
    // triggers exist before the totals are first counted: CREATE TRIGGER
    // locks out writers until this migration commits, so no row is counted
    // twice or missed. Then retention's index of terminal events.
    R"(
CREATE TABLE event_counts (
  pipeline text NOT NULL, state text NOT NULL, n bigint NOT NULL, PRIMARY KEY (pipeline, state));
CREATE TABLE event_count_deltas (pipeline text NOT NULL, state text NOT NULL, n bigint NOT NULL);
CREATE TABLE processing_minutes (
  pipeline text NOT NULL, minute bigint NOT NULL, finished bigint NOT NULL, processing_us bigint NOT NULL,
  PRIMARY KEY (pipeline, minute));
CREATE TABLE processing_deltas (
  pipeline text NOT NULL, minute bigint NOT NULL, finished bigint NOT NULL, processing_us bigint NOT NULL);
CREATE FUNCTION eventflow_count_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_count_deltas (pipeline, state, n)
    SELECT pipeline, state, count(*) FROM new_rows GROUP BY pipeline, state;
  RETURN NULL;
END $$;
CREATE FUNCTION eventflow_count_updates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_count_deltas (pipeline, state, n)
    SELECT pipeline, state, sum(d) FROM (
      SELECT o.pipeline, o.state, -1 AS d FROM old_rows o JOIN new_rows w ON w.event_id = o.event_id
        WHERE w.state <> o.state
      UNION ALL
      SELECT w.pipeline, w.state, 1 FROM old_rows o JOIN new_rows w ON w.event_id = o.event_id
        WHERE w.state <> o.state) c
    GROUP BY pipeline, state HAVING sum(d) <> 0;
  INSERT INTO processing_deltas (pipeline, minute, finished, processing_us)
    SELECT w.pipeline, floor(extract(epoch FROM w.updated_at) / 60)::bigint, count(*), sum(w.processing_us)
    FROM old_rows o JOIN new_rows w ON w.event_id = o.event_id
    WHERE w.state <> o.state AND w.state IN ('done', 'dead') AND w.processing_us IS NOT NULL
    GROUP BY 1, 2;
  RETURN NULL;
END $$;
CREATE TRIGGER raw_events_count_inserts AFTER INSERT ON raw_events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION eventflow_count_inserts();
CREATE TRIGGER raw_events_count_updates AFTER UPDATE ON raw_events
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION eventflow_count_updates();
INSERT INTO event_counts (pipeline, state, n) SELECT pipeline, state, count(*) FROM raw_events GROUP BY pipeline, state;
CREATE INDEX raw_events_terminal ON raw_events (pipeline, state, updated_at)
  WHERE state IN ('done', 'dead', 'discarded');
)",
    // 8: the update trigger without nested loops. Transition tables have no
    // index, and the cached plans of its joins, made for a few rows, ran as
    // nested loops: quadratic in the rows of the statement (131 ms for a
    // worker's commit of a thousand state changes, and a purge of a large
    // DLQ would have run for hours). The counts need no join (every old row
    // takes one from its state, every new row adds one to its own; rows whose
    // state stayed cancel out); the processing times keep theirs, hashed.
    R"(
CREATE OR REPLACE FUNCTION eventflow_count_updates() RETURNS trigger LANGUAGE plpgsql
SET enable_nestloop = off AS $$
BEGIN
  INSERT INTO event_count_deltas (pipeline, state, n)
    SELECT pipeline, state, sum(d) FROM (
      SELECT pipeline, state, -1 AS d FROM old_rows
      UNION ALL
      SELECT pipeline, state, 1 FROM new_rows) c
    GROUP BY pipeline, state HAVING sum(d) <> 0;
  INSERT INTO processing_deltas (pipeline, minute, finished, processing_us)
    SELECT w.pipeline, floor(extract(epoch FROM w.updated_at) / 60)::bigint, count(*), sum(w.processing_us)
    FROM old_rows o JOIN new_rows w ON w.event_id = o.event_id
    WHERE w.state <> o.state AND w.state IN ('done', 'dead') AND w.processing_us IS NOT NULL
    GROUP BY 1, 2;
  RETURN NULL;
END $$;
)",
};

// An arbitrary constant: the advisory lock that serialises migrations when
// several hosts start at once.
constexpr const char* kMigrationLock = "727465";

std::string ts(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
}

// libpq prints NOTICEs on stderr; an operator's log wants them at debug at most.
void notice(void*, const char* message) { log::debug("postgresql notice", {{"notice", message}}); }

Rows rowsOf(const pg::Result& r) {
  Rows out(static_cast<std::size_t>(PQntuples(r.get())));
  const int columns = PQnfields(r.get());
  for (int i = 0; i < static_cast<int>(out.size()); ++i) {
    Row& row = out[static_cast<std::size_t>(i)];
    row.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c)
      row.push_back(PQgetisnull(r.get(), i, c) ? std::nullopt : std::optional<std::string>(PQgetvalue(r.get(), i, c)));
  }
  return out;
}

// A uuid[] literal of the ids that are UUIDs (PostgreSQL refuses the whole
// array for one that is not).
std::string uuidArray(std::span<const std::string> ids) {
  std::string array = "{";
  for (const auto& id : ids) {
    if (!isUuid(id)) continue;
    array += (array.size() > 1 ? "," : "") + id;
  }
  return array + "}";
}

class PostgresStore final : public Store, private SqlDialect {
 public:
  // Group commits in flight at once. Fewer and larger commits cost
  // PostgreSQL less CPU per row, and PostgreSQL flushes its WAL one commit
  // after another anyway. On 2 cores 2 writers beat 4 (16.9k against 15.2k
  // single posts/s); once a commit cost little of our own CPU, 1 beat 2
  // (single posts 26.7k against 25.4k, mean of 4 alternated runs) with 15-20%
  // less PostgreSQL CPU, and matched it end to end.
  static constexpr std::size_t kWriters = 1;

  PostgresStore(std::unique_ptr<pg::Connection> writer, std::unique_ptr<pg::Connection> reader,
                std::vector<std::unique_ptr<pg::Connection>> committers)
      : writer_(std::move(writer)), reader_(std::move(reader)), committers_(std::move(committers)) {
    for (auto& c : committers_) idle_.push_back(c.get());
  }

  std::string backend() const override { return "postgresql"; }
  std::size_t writers() const override { return kWriters; }

  Expected<void> migrate() override {
    std::lock_guard lock(write_mutex_);
    auto locked = writer_->exec(std::string("SELECT pg_advisory_lock(") + kMigrationLock + ")");
    if (!locked) return locked.error();
    auto result = migrateLocked();
    (void)writer_->exec(std::string("SELECT pg_advisory_unlock(") + kMigrationLock + ")");
    return result;
  }

  Expected<std::vector<InsertStatus>> commit(std::span<const RawEvent> inserts,
                                             std::span<const Transition> transitions) override {
    pg::Connection* conn = nullptr;
    {
      std::unique_lock lock(idle_mutex_);
      idle_cv_.wait(lock, [&] { return !idle_.empty(); });
      conn = idle_.back();
      idle_.pop_back();
    }
    auto result = postgres::commitOn(*conn, inserts, transitions);
    {
      std::lock_guard lock(idle_mutex_);
      idle_.push_back(conn);
    }
    idle_cv_.notify_one();
    return result;
  }

  Expected<std::vector<PendingEvent>> unfinished() override { return readUnfinished(*this); }

  Expected<std::map<std::string, unsigned>> recordDeliveries(const std::vector<std::string>& ids) override {
    std::map<std::string, unsigned> out;
    if (ids.empty()) return out;
    std::string array = "{";
    for (const auto& id : ids) array += (array.size() > 1 ? "," : "") + id;
    array += "}";
    std::lock_guard lock(write_mutex_);
    auto r = writer_->exec("UPDATE raw_events SET deliveries = deliveries + 1 WHERE event_id = ANY($1::uuid[]) "
                           "RETURNING event_id, deliveries",
                           {array});
    if (!r) return r.error();
    for (int i = 0; i < PQntuples(r->get()); ++i)
      out[pg::text(*r, i, 0)] = static_cast<unsigned>(std::stoul(pg::text(*r, i, 1)));
    return out;
  }

  Expected<std::vector<PendingEvent>> stale(std::chrono::milliseconds older_than, std::size_t limit) override {
    std::lock_guard lock(write_mutex_);
    // Claiming (updated_at = now) keeps two relays from republishing one event at once.
    auto r = writer_->exec(
        "UPDATE raw_events r SET updated_at = now() FROM (SELECT event_id FROM raw_events WHERE state IN " +
            unfinishedStatesSql() + " AND updated_at < now() - make_interval(secs => $1::float8 / 1000) "
            "ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED) s WHERE r.event_id = s.event_id RETURNING " +
            pendingColumns(*this, "r."),
        {std::to_string(older_than.count()), std::to_string(limit)});
    if (!r) return r.error();
    return pendingFrom(rowsOf(*r));
  }

  Expected<std::optional<Journey>> journey(const std::string& id) override { return readJourney(*this, id); }
  Expected<std::map<std::string, StateCounts>> counts() override { return readCounts(*this); }
  Expected<std::vector<std::string>> settled(std::span<const std::string> ids) override {
    return readSettled(*this, ids);
  }

  Expected<void> compactCounts() override {
    std::lock_guard lock(write_mutex_);
    // One implicit transaction: a delta leaves its table as it reaches the
    // totals. A delta a concurrent commit has not committed yet is not seen,
    // and waits for the next fold; a second folder skips the rows this one took.
    auto r = writer_->exec(std::string("WITH moved AS (DELETE FROM event_count_deltas RETURNING pipeline, state, n) ") +
                           kFoldCounts + "; WITH moved AS (DELETE FROM processing_deltas RETURNING pipeline, minute, "
                           "finished, processing_us) " + kFoldMinutes + "; DELETE FROM processing_minutes WHERE minute < " +
                           std::to_string(oldestSummaryMinute()));
    if (!r) return r.error();
    return {};
  }

  Expected<std::size_t> prune(const std::string& pipeline, State state, std::chrono::milliseconds older_than,
                              std::size_t limit) override {
    if (!isTerminal(state)) return makeError(std::string("retention never prunes ") + toString(state) + " events");
    std::lock_guard lock(write_mutex_);
    // The rows are locked as they are chosen (and re-checked if a replay
    // moved one meanwhile); another pruner skips them rather than waiting.
    auto r = writer_->exec(
        "WITH doomed AS (SELECT event_id FROM raw_events WHERE pipeline = $1 AND state IN " + terminalStatesSql() +
            " AND state = " + sql(state) +
            " AND updated_at < now() - make_interval(secs => $2::float8 / 1000) ORDER BY updated_at LIMIT $3 "
            "FOR UPDATE SKIP LOCKED), "
            "p AS (DELETE FROM processed_events WHERE event_id IN (SELECT event_id FROM doomed)), "
            "f AS (DELETE FROM failed_events WHERE event_id IN (SELECT event_id FROM doomed)) "
            "DELETE FROM raw_events WHERE event_id IN (SELECT event_id FROM doomed)",
        {pipeline, std::to_string(older_than.count()), std::to_string(limit)});
    if (!r) return r.error();
    return static_cast<std::size_t>(std::stoull(PQcmdTuples(r->get())));
  }
  Expected<DeadPage> listDead(const DeadFilter& filter) override { return readDead(*this, filter); }
  Expected<std::optional<DeadEvent>> getDead(const std::string& id) override { return readOneDead(*this, id); }

  Expected<ReplayResult> replay(std::span<const std::string> ids) override {
    ReplayResult out;
    std::lock_guard lock(write_mutex_);
    // One statement, so one transaction: the rows turn queued and their
    // replay_count grows together.
    auto r = writer_->exec(
        "WITH upd AS (UPDATE raw_events SET state = " + sql(State::queued) + ", attempts = 0, last_error = NULL, "
        "updated_at = now() WHERE event_id = ANY($1::uuid[]) AND state = " + sql(State::dead) + " RETURNING event_id, "
        "event_type, pipeline, payload, correlation_id, received_at, attempts), "
        "bump AS (UPDATE failed_events f SET replay_count = f.replay_count + 1 FROM upd WHERE f.event_id = upd.event_id) "
        "SELECT " + pendingColumns(*this) + " FROM upd ORDER BY received_at",
        {uuidArray(ids)});
    if (!r) return r.error();
    out.replayed = pendingFrom(rowsOf(*r));
    std::set<std::string> done;
    for (const auto& e : out.replayed) done.insert(e.id);
    for (const auto& id : ids) {
      std::string lower = id;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!done.count(lower)) out.skipped.push_back(id);
    }
    return out;
  }

  Expected<bool> discard(const std::string& id) override {
    if (!isUuid(id)) return false;
    std::lock_guard lock(write_mutex_);
    auto r = writer_->exec("UPDATE raw_events SET state = " + sql(State::discarded) +
                               ", updated_at = now() WHERE event_id = $1 AND state = " + sql(State::dead),
                           {id});
    if (!r) return r.error();
    return std::string(PQcmdTuples(r->get())) == "1";
  }

  Expected<std::uint64_t> purge(const DeadFilter& filter) override {
    std::vector<std::string> params;
    const std::string where = deadWhere(*this, filter, params);
    std::lock_guard lock(write_mutex_);
    auto r = writer_->exec("UPDATE raw_events SET state = " + sql(State::discarded) + ", updated_at = now() WHERE state = " +
                               sql(State::dead) + " AND event_id IN (SELECT f.event_id" + kDeadFrom + where + ")",
                           params);
    if (!r) return r.error();
    return std::stoull(PQcmdTuples(r->get()));
  }

  Expected<void> ping() override {
    std::lock_guard lock(read_mutex_);
    auto r = reader_->exec("SELECT 1");
    if (!r) return r.error();
    return {};
  }

 private:
  // SqlDialect: the shared reads, on the reader connection.
  Expected<Rows> query(const std::string& sql, const std::vector<std::string>& params) override {
    std::lock_guard lock(read_mutex_);
    auto r = reader_->exec(sql, params);
    if (!r) return r.error();
    return rowsOf(*r);
  }
  std::string param(std::vector<std::string>& params, std::string value, const char* type) const override {
    params.push_back(std::move(value));
    return "$" + std::to_string(params.size()) + (type ? std::string("::") + type : std::string());
  }
  std::string time(const std::string& column) const override { return ts(column); }
  std::string jsonText(const std::string& column) const override { return column + "::text"; }
  // failed_at is stored in microseconds and shown in milliseconds: `until`
  // takes in the whole millisecond an operator copies from a listing.
  std::string failedUntil(std::vector<std::string>& params, SystemTime until) const override {
    return "f.failed_at < " + param(params, formatRfc3339(until), "timestamptz") + " + interval '1 millisecond'";
  }
  bool uuidIdsOnly() const override { return true; }
  const std::string& unfinishedCondition() const override {
    static const std::string text = "state IN " + unfinishedStatesSql();
    return text;
  }

  Expected<void> migrateLocked() {
    auto created = writer_->exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)");
    if (!created) return created.error();
    auto current = writer_->exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!current) return current.error();
    const int have = std::stoi(pg::text(*current, 0, 0));
    const int latest = static_cast<int>(std::size(kMigrations));
    if (have > latest)
      return makeError("database schema version " + std::to_string(have) + " is newer than this EventFlow knows (" +
                       std::to_string(latest) + ")");
    for (int v = have + 1; v <= latest; ++v) {
      const std::string script = std::string("BEGIN;") + kMigrations[v - 1] +
                                 (v == 1 ? tables::processedEventsDdl(tables::Engine::postgresql) + ";" : "") +
                                 "INSERT INTO schema_migrations (version, applied_at) VALUES (" + std::to_string(v) +
                                 ", now()); COMMIT;";
      if (auto applied = writer_->exec(script); !applied)
        return makeError("migration " + std::to_string(v) + ": " + applied.error().message);
    }
    return {};
  }

  std::mutex write_mutex_;  // migrations and the relay's claims
  std::mutex read_mutex_;
  std::unique_ptr<pg::Connection> writer_;
  std::unique_ptr<pg::Connection> reader_;
  std::vector<std::unique_ptr<pg::Connection>> committers_;
  std::mutex idle_mutex_;
  std::condition_variable idle_cv_;
  std::vector<pg::Connection*> idle_;
};

}  // namespace

Expected<std::unique_ptr<Store>> openPostgresStore(const std::string& url) {
  auto info = pg::parseConnInfo(url, "store.url");
  if (!info) return info.error();
  auto open = [&](std::string setup = {}) -> Expected<std::unique_ptr<pg::Connection>> {
    auto conn = pg::Connection::open(*info, &notice, std::move(setup));
    if (!conn) return makeError("cannot connect to PostgreSQL at " + info->describe() + ": " + conn.error().message);
    return std::move(*conn);
  };
  auto writer = open();
  if (!writer) return writer.error();
  auto reader = open();
  if (!reader) return reader.error();
  std::vector<std::unique_ptr<pg::Connection>> committers;
  for (std::size_t i = 0; i < PostgresStore::kWriters; ++i) {
    // Only primary-key reads and writes run here, as prepared statements
    // whose cached plans the session's settings keep to the key, hashed.
    auto c = open(postgres::kCommitterSession);
    if (!c) return c.error();
    committers.push_back(std::move(*c));
  }
  return std::unique_ptr<Store>(
      std::make_unique<PostgresStore>(std::move(*writer), std::move(*reader), std::move(committers)));
}

}  // namespace eventflow::store
