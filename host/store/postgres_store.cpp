// PostgreSQL store. Poco::Data::PostgreSQL owns the sessions; the statements
// go through libpq on the session's connection, because the hot path is
// set-based (a whole group commit is one COPY, or one statement with one JSON
// parameter) and Poco has neither COPY nor array or JSON parameter types.

#include <Poco/Data/PostgreSQL/Connector.h>
#include <Poco/Data/PostgreSQL/SessionImpl.h>
#include <Poco/Data/Session.h>
#include <Poco/Exception.h>
#include <Poco/URI.h>
#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_set>

#include "base/ids.hpp"
#include "base/log.hpp"
#include "common/copy_text.hpp"
#include "store/store.hpp"

namespace eventflow::store {
namespace {

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
CREATE TABLE IF NOT EXISTS processed_events (
  event_id uuid PRIMARY KEY,
  event_type text NOT NULL,
  user_id text,
  timestamp timestamptz,
  properties jsonb,
  enriched_data jsonb,
  pipeline text NOT NULL,
  processed_at timestamptz NOT NULL,
  attempts integer NOT NULL
);
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
};

// An arbitrary constant: the advisory lock that serialises migrations when
// several hosts start at once.
constexpr const char* kMigrationLock = "727465";

std::string ts(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
}

std::string quote(const std::string& s) { return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

// The id as PostgreSQL's uuid type prints it: isUuid takes either case.
std::string lowercase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}


// Poco's connector takes libpq's key=value form; operators write URLs.
Expected<std::string> conninfo(const std::string& url) {
  std::string out;
  // Poco splits the string itself on spaces and '=' and knows no quoting.
  bool unusable = false;
  auto add = [&](const std::string& key, const std::string& value) {
    if (value.empty()) return;
    if (value.find_first_of(" '\\=") != std::string::npos) unusable = true;
    out += (out.empty() ? "" : " ") + key + "=" + value;
  };
  try {
    Poco::URI uri(url);
    const std::string info = uri.getUserInfo();
    const auto colon = info.find(':');
    std::string user, password;
    Poco::URI::decode(info.substr(0, colon), user);
    if (colon != std::string::npos) Poco::URI::decode(info.substr(colon + 1), password);
    add("host", uri.getHost());
    if (uri.getPort()) add("port", std::to_string(uri.getPort()));
    add("user", user);
    add("password", password);
    add("dbname", uri.getPath().empty() ? "" : uri.getPath().substr(1));
    for (const auto& [key, value] : uri.getQueryParameters()) add(key, value);
  } catch (const Poco::Exception& e) {
    return makeError("store url is not a postgresql:// URL: " + e.displayText());
  }
  if (unusable) return makeError("store url: values with spaces, quotes, backslashes or '=' are not supported");
  return out;
}

class Connection {
 public:
  explicit Connection(const std::string& url) : session_("PostgreSQL", url) {
    // libpq prints NOTICEs on stderr; an operator's log wants them at debug at most.
    PQsetNoticeProcessor(raw(), [](void*, const char* message) { log::debug("postgresql notice", {{"notice", message}}); },
                         nullptr);
  }

  PGconn* raw() {
    auto* impl = static_cast<Poco::Data::PostgreSQL::SessionImpl*>(session_.impl());
    return static_cast<PGconn*>(impl->handle());
  }

  /// Runs one statement (or a script, without parameters); text in, text out.
  Expected<Result> exec(const std::string& sql, const std::vector<std::string>& params = {}) {
    return execNamed({}, sql, params);
  }

  /// Like exec, for the hot statements: prepared once per connection under
  /// `name` and executed by name after that, so PostgreSQL parses and plans
  /// them once, not per group commit.
  /// exec with every parameter in PostgreSQL's binary format; not prepared.
  Expected<Result> execBinary(const std::string& sql, const std::vector<std::string>& params) {
    return execNamed(nullptr, sql, params, true);
  }

  /// `binary`: every parameter is in PostgreSQL's binary format.
  Expected<Result> prepared(const char* name, const std::string& sql, const std::vector<std::string>& params,
                            bool binary = false) {
    return execNamed(name, sql, params, binary);
  }

  /// Like prepared, for an INSERT that would rather fail than probe for
  /// conflicts: false, with nothing inserted, when a row repeats a unique key.
  /// Outside a transaction only (inside one the failure aborts it).
  Expected<bool> preparedInsert(const char* name, const std::string& sql, const std::vector<std::string>& params,
                                bool binary = false) {
    auto r = execNamed(name, sql, params, binary);
    if (r) return true;
    if (last_state_ == "23505") return false;
    return r.error();
  }

  /// Runs `sql`, a COPY ... FROM STDIN, with `data` in COPY's text format.
  /// False, with nothing copied, when a row would repeat a unique key: COPY
  /// has no ON CONFLICT, and the caller decides what to do instead.
  Expected<bool> copyIn(const std::string& sql, const std::string& data) {
    PGconn* conn = raw();
    // As in execNamed: outside a transaction a failed COPY left nothing
    // behind, and a retry that meets rows it did commit gets false.
    const bool idle = PQtransactionStatus(conn) == PQTRANS_IDLE;
    auto result = copyOnce(sql, data);
    if (!result && idle && PQstatus(conn) == CONNECTION_BAD) return copyOnce(sql, data);
    return result;
  }

 private:
  Expected<void> connected() {
    PGconn* conn = raw();
    if (PQstatus(conn) != CONNECTION_OK) {
      PQreset(conn);
      prepared_.clear();  // a new server session knows none of them
    }
    if (PQstatus(conn) != CONNECTION_OK) return makeError(failure(nullptr));
    return {};
  }

  std::string failure(const PGresult* r) {
    std::string message = "postgresql: ";
    message += r ? PQresultErrorMessage(r) : PQerrorMessage(raw());
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return message;
  }

  Expected<bool> copyOnce(const std::string& sql, const std::string& data) {
    PGconn* conn = raw();
    if (auto ok = connected(); !ok) return ok.error();
    Result started(PQexec(conn, sql.c_str()), &PQclear);
    if (PQresultStatus(started.get()) != PGRES_COPY_IN) {
      const std::string message = failure(started.get());
      if (PQtransactionStatus(conn) == PQTRANS_INERROR) Result(PQexec(conn, "ROLLBACK"), &PQclear);
      return makeError(message);
    }
    // In pieces, so libpq's buffer stays small and a size always fits its int.
    constexpr std::size_t kPiece = 1 << 16;
    bool sent = true;
    for (std::size_t at = 0; sent && at < data.size(); at += kPiece)
      sent = PQputCopyData(conn, data.data() + at, static_cast<int>(std::min(kPiece, data.size() - at))) == 1;
    std::string error;
    if (!sent || PQputCopyEnd(conn, nullptr) != 1) error = failure(nullptr);
    // Every result up to the NULL is read, or the next statement finds the
    // connection still busy with this one.
    bool unique_violation = false;
    while (PGresult* next = PQgetResult(conn)) {
      Result r(next, &PQclear);
      const auto status = PQresultStatus(next);
      if (status == PGRES_COMMAND_OK) continue;
      if (status == PGRES_COPY_IN) {
        // PQputCopyEnd failed and the COPY cannot end: only a new session
        // makes the connection usable again (the server drops the COPY).
        PQreset(conn);
        prepared_.clear();
        if (error.empty()) error = "postgresql: COPY did not end";
        break;
      }
      const char* state = PQresultErrorField(next, PG_DIAG_SQLSTATE);
      unique_violation = state && std::string(state) == "23505";
      if (error.empty()) error = failure(next);
    }
    if (PQtransactionStatus(conn) == PQTRANS_INERROR) Result(PQexec(conn, "ROLLBACK"), &PQclear);
    if (unique_violation) return false;
    if (!error.empty()) return makeError(error);
    return true;
  }

  Expected<Result> execNamed(const char* name, const std::string& sql, const std::vector<std::string>& params,
                             bool binary = false) {
    PGconn* conn = raw();
    // A connection broken by a server restart only shows when a statement
    // fails on it. Outside a transaction that statement can simply run again.
    const bool idle = PQtransactionStatus(conn) == PQTRANS_IDLE;
    auto result = execOnce(name, sql, params, binary);
    if (!result && idle && PQstatus(conn) == CONNECTION_BAD) return execOnce(name, sql, params, binary);
    return result;
  }

  Expected<Result> execOnce(const char* name, const std::string& sql, const std::vector<std::string>& params,
                            bool binary) {
    PGconn* conn = raw();
    if (auto ok = connected(); !ok) return ok.error();
    if (name && !prepared_.count(name)) {
      Result made(PQprepare(conn, name, sql.c_str(), static_cast<int>(params.size()), nullptr), &PQclear);
      if (PQresultStatus(made.get()) != PGRES_COMMAND_OK) return makeError(failure(made.get()));
      prepared_.insert(name);
    }
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const auto& p : params) {
      values.push_back(p.c_str());
      lengths.push_back(static_cast<int>(p.size()));
      formats.push_back(binary ? 1 : 0);
    }
    const int n = static_cast<int>(params.size());
    Result r(name             ? PQexecPrepared(conn, name, n, values.data(), lengths.data(), formats.data(), 0)
             : params.empty() ? PQexec(conn, sql.c_str())
                              : PQexecParams(conn, sql.c_str(), n, nullptr, values.data(), lengths.data(), formats.data(), 0),
             &PQclear);
    const auto status = PQresultStatus(r.get());
    const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    last_state_ = state ? state : "";
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      const std::string message = failure(r.get());
      if (PQtransactionStatus(conn) == PQTRANS_INERROR) Result(PQexec(conn, "ROLLBACK"), &PQclear);
      return makeError(message);
    }
    return r;
  }

  Poco::Data::Session session_;
  std::set<std::string> prepared_;
  std::string last_state_;  // SQLSTATE of the last statement, empty if it succeeded
};

std::string text(const Result& r, int row, int col) {
  return PQgetisnull(r.get(), row, col) ? std::string() : std::string(PQgetvalue(r.get(), row, col));
}
nlohmann::json nullable(const Result& r, int row, int col) {
  if (PQgetisnull(r.get(), row, col)) return nullptr;
  return std::string(PQgetvalue(r.get(), row, col));
}

class PostgresStore final : public Store {
 public:
  // Group commits in flight at once. Fewer and larger commits cost
  // PostgreSQL less CPU per row, and PostgreSQL flushes its WAL one commit
  // after another anyway. On 2 cores 2 writers beat 4 (16.9k against 15.2k
  // single posts/s); once a commit cost little of our own CPU, 1 beat 2
  // (single posts 26.7k against 25.4k, mean of 4 alternated runs) with 15-20%
  // less PostgreSQL CPU, and matched it end to end.
  static constexpr std::size_t kWriters = 1;

  explicit PostgresStore(const std::string& url) : writer_(url), reader_(url) {
    for (std::size_t i = 0; i < kWriters; ++i) committers_.push_back(std::make_unique<Connection>(url));
    for (auto& c : committers_) idle_.push_back(c.get());
  }

  static constexpr std::size_t kCopyFrom = 64;  // rows in a group commit

  std::string backend() const override { return "postgresql"; }
  std::size_t writers() const override { return kWriters; }

  Expected<void> migrate() override {
    std::lock_guard lock(write_mutex_);
    auto locked = writer_.exec(std::string("SELECT pg_advisory_lock(") + kMigrationLock + ")");
    if (!locked) return locked.error();
    auto result = migrateLocked();
    (void)writer_.exec(std::string("SELECT pg_advisory_unlock(") + kMigrationLock + ")");
    return result;
  }

  Expected<std::vector<InsertStatus>> commit(std::span<const RawEvent> inserts,
                                             std::span<const Transition> transitions) override {
    Connection* conn = nullptr;
    {
      std::unique_lock lock(idle_mutex_);
      idle_cv_.wait(lock, [&] { return !idle_.empty(); });
      conn = idle_.back();
      idle_.pop_back();
    }
    auto result = commitOn(*conn, inserts, transitions);
    {
      std::lock_guard lock(idle_mutex_);
      idle_.push_back(conn);
    }
    idle_cv_.notify_one();
    return result;
  }

  Expected<std::vector<PendingEvent>> unfinished() override {
    std::lock_guard lock(read_mutex_);
    auto r = reader_.exec("SELECT event_id, event_type, pipeline, payload::text, COALESCE(correlation_id, ''), " +
                          ts("received_at") + ", attempts FROM raw_events WHERE state IN ('received', 'queued', "
                          "'processing', 'retrying') ORDER BY received_at");
    if (!r) return r.error();
    return pending(*r);
  }

  Expected<std::map<std::string, unsigned>> recordDeliveries(const std::vector<std::string>& ids) override {
    std::map<std::string, unsigned> out;
    if (ids.empty()) return out;
    std::string array = "{";
    for (const auto& id : ids) array += (array.size() > 1 ? "," : "") + id;
    array += "}";
    std::lock_guard lock(write_mutex_);
    auto r = writer_.exec("UPDATE raw_events SET deliveries = deliveries + 1 WHERE event_id = ANY($1::uuid[]) "
                          "RETURNING event_id, deliveries",
                          {array});
    if (!r) return r.error();
    for (int i = 0; i < PQntuples(r->get()); ++i) out[text(*r, i, 0)] = static_cast<unsigned>(std::stoul(text(*r, i, 1)));
    return out;
  }

  Expected<std::vector<PendingEvent>> stale(std::chrono::milliseconds older_than, std::size_t limit) override {
    std::lock_guard lock(write_mutex_);
    // Claiming (updated_at = now) keeps two relays from republishing one event at once.
    auto r = writer_.exec(
        "UPDATE raw_events r SET updated_at = now() FROM (SELECT event_id FROM raw_events WHERE state IN "
        "('received', 'queued', 'processing', 'retrying') AND updated_at < now() - make_interval(secs => $1::float8 / 1000) "
        "ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED) s WHERE r.event_id = s.event_id RETURNING r.event_id, "
        "r.event_type, r.pipeline, r.payload::text, COALESCE(r.correlation_id, ''), " + ts("r.received_at") + ", r.attempts",
        {std::to_string(older_than.count()), std::to_string(limit)});
    if (!r) return r.error();
    return pending(*r);
  }

  Expected<nlohmann::json> journey(const std::string& id) override {
    std::lock_guard lock(read_mutex_);
    auto r = reader_.exec("SELECT event_id, event_type, pipeline, state, attempts, " + ts("received_at") + ", " +
                              ts("updated_at") + ", last_error, correlation_id, payload::text FROM raw_events WHERE event_id = $1",
                          {id});
    if (!r) return r.error();
    if (PQntuples(r->get()) == 0) return nlohmann::json(nullptr);
    const auto& row = *r;
    nlohmann::json j{{"event_id", text(row, 0, 0)},   {"event_type", text(row, 0, 1)},
                     {"pipeline", text(row, 0, 2)},   {"state", text(row, 0, 3)},
                     {"attempts", std::stoi(text(row, 0, 4))}, {"received_at", text(row, 0, 5)},
                     {"updated_at", text(row, 0, 6)}, {"last_error", nullable(row, 0, 7)},
                     {"correlation_id", nullable(row, 0, 8)}};
    j["event"] = nlohmann::json::parse(text(row, 0, 9), nullptr, false);
    auto f = reader_.exec("SELECT error_type, error_message, stage, plugin, attempts, " + ts("first_failed_at") + ", " +
                              ts("failed_at") + ", replay_count FROM failed_events WHERE event_id = $1",
                          {id});
    if (!f) return f.error();
    if (PQntuples(f->get()) > 0)
      j["dead_letter"] = {{"error_type", nullable(*f, 0, 0)}, {"error_message", nullable(*f, 0, 1)},
                          {"stage", nullable(*f, 0, 2)},      {"plugin", nullable(*f, 0, 3)},
                          {"attempts", std::stoi(text(*f, 0, 4))}, {"first_failed_at", text(*f, 0, 5)},
                          {"failed_at", text(*f, 0, 6)},      {"replay_count", std::stoi(text(*f, 0, 7))}};
    auto p = reader_.exec("SELECT " + ts("processed_at") + ", enriched_data::text FROM processed_events WHERE event_id = $1", {id});
    if (p && PQntuples(p->get()) > 0)
      j["processed"] = {{"processed_at", text(*p, 0, 0)},
                        {"enriched_data", nlohmann::json::parse(PQgetisnull(p->get(), 0, 1) ? "null" : text(*p, 0, 1), nullptr, false)}};
    addHistory(j);
    return j;
  }

  Expected<std::map<std::string, StateCounts>> counts() override {
    std::lock_guard lock(read_mutex_);
    // One scan for the counts and the recent processing times.
    auto r = reader_.exec("SELECT pipeline, state, COUNT(*), COUNT(processing_us) FILTER (WHERE updated_at >= now() - $1::interval), "
                          "COALESCE(SUM(processing_us) FILTER (WHERE updated_at >= now() - $1::interval), 0) "
                          "FROM raw_events GROUP BY pipeline, state",
                          {std::to_string(kProcessingWindow.count()) + " minutes"});
    if (!r) return r.error();
    std::map<std::string, StateCounts> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      auto& c = out[text(*r, i, 0)];
      const auto state = text(*r, i, 1);
      const auto n = std::stoull(text(*r, i, 2));
      c.received += n;
      if (state == "done") c.processed += n;
      else if (state == "dead") c.dead += n;
      else if (state == "discarded") c.discarded += n;
      else c.in_flight += n;
      if (state == "done" || state == "dead") {
        c.finished_recently += std::stoull(text(*r, i, 3));
        c.processing_ms_sum += std::stod(text(*r, i, 4)) / 1000;
      }
    }
    return out;
  }

  Expected<DeadPage> listDead(const DeadFilter& filter) override {
    std::lock_guard lock(read_mutex_);
    std::vector<std::string> params;
    const std::string where = deadWhere(filter, params);
    auto counted = reader_.exec("SELECT COUNT(*) FROM failed_events f JOIN raw_events r ON r.event_id = f.event_id" + where,
                                params);
    if (!counted) return counted.error();
    DeadPage page;
    page.total = std::stoull(text(*counted, 0, 0));
    if (filter.limit == 0) return page;
    params.push_back(std::to_string(filter.limit));
    params.push_back(std::to_string(filter.offset));
    auto r = reader_.exec(deadColumns() + where + " ORDER BY f.failed_at, f.event_id LIMIT $" +
                              std::to_string(params.size() - 1) + " OFFSET $" + std::to_string(params.size()),
                          params);
    if (!r) return r.error();
    page.items = deadEvents(*r);
    return page;
  }

  Expected<std::optional<DeadEvent>> getDead(const std::string& id) override {
    if (!isUuid(id)) return std::optional<DeadEvent>();
    std::lock_guard lock(read_mutex_);
    auto r = reader_.exec(deadColumns() + " WHERE r.state = 'dead' AND f.event_id = $1", {id});
    if (!r) return r.error();
    auto items = deadEvents(*r);
    if (items.empty()) return std::optional<DeadEvent>();
    return std::optional<DeadEvent>(std::move(items.front()));
  }

  Expected<ReplayResult> replay(std::span<const std::string> ids) override {
    ReplayResult out;
    std::string array = "{";
    for (const auto& id : ids) {
      if (!isUuid(id)) continue;
      array += (array.size() > 1 ? "," : "") + id;
    }
    array += "}";
    std::lock_guard lock(write_mutex_);
    // One statement, so one transaction: the rows turn queued and their
    // replay_count grows together.
    auto r = writer_.exec(
        "WITH upd AS (UPDATE raw_events SET state = 'queued', attempts = 0, last_error = NULL, updated_at = now() "
        "WHERE event_id = ANY($1::uuid[]) AND state = 'dead' RETURNING event_id, event_type, pipeline, payload, "
        "correlation_id, received_at), "
        "bump AS (UPDATE failed_events f SET replay_count = f.replay_count + 1 FROM upd WHERE f.event_id = upd.event_id) "
        "SELECT event_id, event_type, pipeline, payload::text, COALESCE(correlation_id, ''), " + ts("received_at") +
            ", 0 FROM upd ORDER BY received_at",
        {array});
    if (!r) return r.error();
    out.replayed = pending(*r);
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
    auto r = writer_.exec("UPDATE raw_events SET state = 'discarded', updated_at = now() WHERE event_id = $1 AND state = 'dead'",
                          {id});
    if (!r) return r.error();
    return std::string(PQcmdTuples(r->get())) == "1";
  }

  Expected<std::uint64_t> purge(const DeadFilter& filter) override {
    std::vector<std::string> params;
    const std::string where = deadWhere(filter, params);
    std::lock_guard lock(write_mutex_);
    auto r = writer_.exec("UPDATE raw_events SET state = 'discarded', updated_at = now() WHERE state = 'dead' AND event_id IN "
                          "(SELECT f.event_id FROM failed_events f JOIN raw_events r ON r.event_id = f.event_id" + where + ")",
                          params);
    if (!r) return r.error();
    return std::stoull(PQcmdTuples(r->get()));
  }

  Expected<void> ping() override {
    std::lock_guard lock(read_mutex_);
    auto r = reader_.exec("SELECT 1");
    if (!r) return r.error();
    return {};
  }

 private:
  Expected<void> migrateLocked() {
    auto created = writer_.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)");
    if (!created) return created.error();
    auto current = writer_.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!current) return current.error();
    const int have = std::stoi(text(*current, 0, 0));
    const int latest = static_cast<int>(std::size(kMigrations));
    if (have > latest)
      return makeError("database schema version " + std::to_string(have) + " is newer than this EventFlow knows (" +
                       std::to_string(latest) + ")");
    for (int v = have + 1; v <= latest; ++v) {
      const std::string script = std::string("BEGIN;") + kMigrations[v - 1] +
                                 "INSERT INTO schema_migrations (version, applied_at) VALUES (" + std::to_string(v) +
                                 ", now()); COMMIT;";
      if (auto applied = writer_.exec(script); !applied) return makeError("migration " + std::to_string(v) + ": " + applied.error().message);
    }
    return {};
  }

  Expected<std::vector<InsertStatus>> commitOn(Connection& conn, std::span<const RawEvent> inserts,
                                               std::span<const Transition> transitions) {
    // One statement is its own transaction: the api's group commits (inserts
    // only) and the workers' (state changes only) need no BEGIN and COMMIT.
    if (transitions.empty()) {
      if (inserts.empty()) return std::vector<InsertStatus>{};
      // COPY takes two round trips (the server answers the COPY command
      // before the data goes), the INSERT one: small group commits, where
      // the round trip is the cost, insert.
      if (inserts.size() < kCopyFrom) {
        auto plain = insertNew(conn, inserts);
        if (!plain) return plain.error();
        if (*plain) return std::vector<InsertStatus>(inserts.size(), InsertStatus::inserted);
        return insertRows(conn, inserts);
      }
      auto copied = copyRows(conn, inserts);
      if (!copied) return copied.error();
      if (*copied) return std::vector<InsertStatus>(inserts.size(), InsertStatus::inserted);
      return insertRows(conn, inserts);
    }
    if (inserts.empty() && transitionStatements(transitions) == 1) {
      if (auto applied = applyTransitions(conn, transitions); !applied) return applied.error();
      return std::vector<InsertStatus>{};
    }
    if (auto begun = conn.exec("BEGIN"); !begun) return begun.error();
    std::vector<InsertStatus> statuses;
    if (!inserts.empty()) {
      auto inserted = insertRows(conn, inserts);
      if (!inserted) return rollback(conn, inserted.error());
      statuses = std::move(*inserted);
    }
    if (!transitions.empty()) {
      if (auto applied = applyTransitions(conn, transitions); !applied) return rollback(conn, applied.error());
    }
    if (auto done = conn.exec("COMMIT"); !done) return done.error();
    return statuses;
  }

  static Error rollback(Connection& conn, Error e) {
    (void)conn.exec("ROLLBACK");
    return e;
  }

  // The fast path for a batch of new ids: COPY skips the JSON parameter and
  // the ON CONFLICT probe per row. It is all or nothing, so false (nothing
  // copied) when an id is stored already or the batch cannot go this way.
  static Expected<bool> copyRows(Connection& conn, std::span<const RawEvent> inserts) {
    if (!distinctIds(inserts)) return false;  // a repeated id's second row needs the INSERT path's answer
    // COPY's binary format: PostgreSQL reads uuids and times without parsing
    // them and text without unescaping it.
    BinaryWriter data;
    data.reserve(inserts.size() * 320 + 32);
    data.raw({"PGCOPY\n\xff\r\n\0", 11});
    data.put(std::int32_t{0});  // flags
    data.put(std::int32_t{0});  // header extension
    for (const auto& e : inserts) {
      char id[16];
      if (!uuidBytes(e.id, id)) return false;
      for (const auto& text : {e.type, e.pipeline, e.payload, e.sha256, e.correlation_id})
        if (!copy_text::valid(text)) return false;  // PostgreSQL would refuse the whole COPY
      data.put(std::int16_t{9});
      data.value({id, sizeof id});
      data.value(e.type);
      data.value(e.pipeline);
      data.put(static_cast<std::uint32_t>(e.payload.size() + 1));  // jsonb: a version byte, then the text
      data.raw("\x01");
      data.raw(e.payload);
      data.value(e.sha256);
      if (e.correlation_id.empty()) data.null();
      else data.value(e.correlation_id);
      data.number(postgresMicros(e.received_at));
      data.value("queued");
      data.number(std::int32_t{0});  // attempts
    }
    data.put(std::int16_t{-1});
    return conn.copyIn("COPY raw_events (event_id, event_type, pipeline, payload, payload_sha256, correlation_id, "
                       "received_at, state, attempts) FROM STDIN (FORMAT binary)",  // updated_at: DEFAULT now()
                       data.take());
  }

  // Big-endian integers and length-prefixed values, as PostgreSQL's binary
  // formats (arrays, COPY) take them.
  class BinaryWriter {
   public:
    template <class T>
    void put(T v) {
      for (int shift = 8 * (static_cast<int>(sizeof(T)) - 1); shift >= 0; shift -= 8)
        data_ += static_cast<char>((static_cast<std::uint64_t>(v) >> shift) & 0xff);
    }
    void value(std::string_view bytes) {
      put(static_cast<std::uint32_t>(bytes.size()));
      data_.append(bytes);
    }
    /// A number as a value: its length, then its bytes.
    template <class T>
    void number(T v) {
      put(static_cast<std::uint32_t>(sizeof(T)));
      put(v);
    }
    void null() { put(std::int32_t{-1}); }
    void raw(std::string_view bytes) { data_.append(bytes); }
    void reserve(std::size_t n) { data_.reserve(n); }
    std::string take() { return std::move(data_); }

   private:
    std::string data_;
  };

  // PostgreSQL's binary array format (array_recv): one dimension, no NULL.
  class BinaryArray : public BinaryWriter {
   public:
    BinaryArray(std::uint32_t element_type, std::size_t size) {
      for (const std::uint32_t word : {1u, 0u, element_type, static_cast<std::uint32_t>(size), 1u}) put(word);
    }
    void add(std::string_view bytes) { value(bytes); }
  };

  // timestamptz's binary form: microseconds since 2000-01-01 UTC, here at
  // millisecond precision, as the text paths write it.
  static std::int64_t postgresMicros(SystemTime at) {
    constexpr std::int64_t kPostgresEpochMicros = 946'684'800'000'000;  // 2000-01-01 in Unix time
    return std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count() * 1000 -
           kPostgresEpochMicros;
  }

  // The 16 bytes of a canonical UUID; false if `id` is not one.
  static bool uuidBytes(std::string_view id, char (&out)[16]) {
    if (!isUuid(id)) return false;
    const auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    std::size_t k = 0;
    for (std::size_t i = 0; i < id.size(); i += (id[i] == '-' ? 1 : 2)) {
      if (id[i] == '-') continue;
      out[k++] = static_cast<char>(nibble(id[i]) << 4 | nibble(id[i + 1]));
    }
    return true;
  }

  // The rows as seven array parameters in PostgreSQL's binary format, one
  // per column. Arrays are read with less work than a JSON record set
  // (-7% of PostgreSQL's CPU on single posts), and binary ones without
  // parsing or escaping text: array_in was PostgreSQL's costliest function
  // on single posts, the text arrays' escaping the committer thread's.
  // Nothing when a text is not valid UTF-8 or holds a NUL, which PostgreSQL
  // would refuse for the whole statement.
  static std::optional<std::vector<std::string>> columnArrays(std::span<const RawEvent> inserts) {
    constexpr std::uint32_t kUuid = 2950, kText = 25, kTimestamptz = 1184;
    std::array<BinaryArray, 7> columns{BinaryArray(kUuid, inserts.size()),        BinaryArray(kText, inserts.size()),
                                       BinaryArray(kText, inserts.size()),        BinaryArray(kText, inserts.size()),
                                       BinaryArray(kText, inserts.size()),        BinaryArray(kText, inserts.size()),
                                       BinaryArray(kTimestamptz, inserts.size())};
    for (const auto& e : inserts) {
      char id[16];
      if (!uuidBytes(e.id, id)) return std::nullopt;
      columns[0].add({id, sizeof id});
      const std::array<std::string_view, 5> texts{e.type, e.pipeline, e.payload, e.sha256, e.correlation_id};
      for (std::size_t k = 0; k < texts.size(); ++k) {
        if (!copy_text::valid(texts[k])) return std::nullopt;
        columns[k + 1].add(texts[k]);
      }
      columns[6].number(postgresMicros(e.received_at));
    }
    std::vector<std::string> out;
    out.reserve(columns.size());
    for (auto& c : columns) out.push_back(c.take());
    return out;
  }

  // Fresh ids are the rule: inserted without ON CONFLICT, whose probe of the
  // key before each row was a tenth of PostgreSQL's CPU on single posts.
  // False, with nothing inserted, when a row repeats an id (a client's
  // retry): insertRows then answers each row.
  static Expected<bool> insertNew(Connection& conn, std::span<const RawEvent> inserts) {
    if (!distinctIds(inserts)) return false;
    auto columns = columnArrays(inserts);
    if (!columns) return false;
    return conn.preparedInsert("insert_raw_new",
        "INSERT INTO raw_events (event_id, event_type, pipeline, payload, payload_sha256, correlation_id, "
        "received_at, state, attempts, updated_at) SELECT event_id, event_type, pipeline, payload::jsonb, sha, "
        "NULLIF(cid, ''), received_at, 'queued', 0, now() FROM unnest($1::uuid[], $2::text[], $3::text[], "
        "$4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS x(event_id, event_type, pipeline, payload, sha, "
        "cid, received_at)",
        *columns, true);
  }

  static bool distinctIds(std::span<const RawEvent> inserts) {
    if (inserts.size() < 2) return true;
    std::unordered_set<std::string> seen;
    seen.reserve(inserts.size());
    for (const auto& e : inserts)
      if (!seen.insert(lowercase(e.id)).second) return false;
    return true;
  }

  static Expected<Result> insertStatement(Connection& conn, std::span<const RawEvent> inserts) {
    if (auto columns = columnArrays(inserts))
      return conn.prepared("insert_raw_arrays",
          "INSERT INTO raw_events (event_id, event_type, pipeline, payload, payload_sha256, correlation_id, "
          "received_at, state, attempts, updated_at) SELECT event_id, event_type, pipeline, payload::jsonb, sha, "
          "NULLIF(cid, ''), received_at, 'queued', 0, now() FROM unnest($1::uuid[], $2::text[], $3::text[], "
          "$4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS x(event_id, event_type, pipeline, payload, sha, "
          "cid, received_at) ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
          *columns, true);
    // The payload is already JSON text, so the parameter is assembled, not re-serialised.
    std::string rows = "[";
    for (const auto& e : inserts) {
      if (rows.size() > 1) rows += ',';
      rows += "{\"event_id\":" + quote(e.id) + ",\"event_type\":" + quote(e.type) + ",\"pipeline\":" + quote(e.pipeline) +
              ",\"payload\":" + e.payload + ",\"payload_sha256\":" + quote(e.sha256) +
              ",\"correlation_id\":" + quote(e.correlation_id) + ",\"received_at\":" + quote(formatRfc3339(e.received_at)) + "}";
    }
    rows += "]";
    return conn.prepared("insert_raw",
        "INSERT INTO raw_events (event_id, event_type, pipeline, payload, payload_sha256, correlation_id, received_at, "
        "state, attempts, updated_at) SELECT event_id, event_type, pipeline, payload, payload_sha256, NULLIF(correlation_id, ''), "
        "received_at, 'queued', 0, now() FROM json_to_recordset($1::json) AS x(event_id uuid, event_type text, pipeline text, "
        "payload jsonb, payload_sha256 text, correlation_id text, received_at timestamptz) "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        {rows});
  }

  static Expected<std::vector<InsertStatus>> insertRows(Connection& conn, std::span<const RawEvent> inserts) {
    auto r = insertStatement(conn, inserts);
    if (!r) return r.error();
    std::set<std::string> fresh;  // lowercase, as is every id compared with these answers
    for (int i = 0; i < PQntuples(r->get()); ++i) fresh.insert(text(*r, i, 0));
    std::vector<InsertStatus> statuses(inserts.size(), InsertStatus::inserted);
    std::vector<std::size_t> others;
    std::set<std::string> claimed;  // an id twice in one batch: only its first row was inserted
    for (std::size_t i = 0; i < inserts.size(); ++i) {
      const auto id = lowercase(inserts[i].id);
      if (fresh.count(id) && claimed.insert(id).second) continue;
      others.push_back(i);
    }
    if (others.empty()) return statuses;
    std::string ids = "{";
    for (std::size_t i : others) ids += (ids.size() > 1 ? "," : "") + inserts[i].id;
    ids += "}";
    auto existing = conn.exec("SELECT event_id, payload_sha256 FROM raw_events WHERE event_id = ANY($1::uuid[])", {ids});
    if (!existing) return existing.error();
    std::map<std::string, std::string> sha;
    for (int i = 0; i < PQntuples(existing->get()); ++i) sha[text(*existing, i, 0)] = text(*existing, i, 1);
    for (std::size_t i : others)
      statuses[i] = sha[lowercase(inserts[i].id)] == inserts[i].sha256 ? InsertStatus::duplicate : InsertStatus::conflict;
    return statuses;
  }

  static bool isDone(const Transition& t) { return t.kind == Transition::Kind::done; }

  // How many statements applyTransitions runs: `done` changes go by
  // themselves, the others together.
  static std::size_t transitionStatements(std::span<const Transition> transitions) {
    const auto done = static_cast<std::size_t>(std::count_if(transitions.begin(), transitions.end(), isDone));
    return (done > 0 ? 1 : 0) + (done < transitions.size() ? 1 : 0);
  }

  static Expected<void> applyTransitions(Connection& conn, std::span<const Transition> transitions) {
    // Nearly every change a worker commits is `done`: ids and attempts as two
    // arrays, in binary format, rather than eight JSON fields each, and no
    // payload carried along for a DLQ row they never get.
    const auto done = static_cast<std::size_t>(std::count_if(transitions.begin(), transitions.end(), isDone));
    if (done > 0) {
      constexpr std::uint32_t kUuid = 2950, kInt4 = 23;
      constexpr std::uint32_t kInt8 = 20;
      BinaryArray ids(kUuid, done), attempts(kInt4, done), micros(kInt8, done);
      bool binary = true;
      // when an id is not a UUID, for PostgreSQL's own error
      std::string text_ids = "{", text_attempts = "{", text_micros = "{";
      for (const auto& t : transitions) {
        if (!isDone(t)) continue;
        char id[16];
        binary = binary && uuidBytes(t.id, id);
        if (binary) {
          ids.add({id, sizeof id});
          attempts.number(static_cast<std::int32_t>(t.attempts));
          micros.number(static_cast<std::int64_t>(t.processing_us));
        }
        if (text_ids.size() > 1) text_ids += ',', text_attempts += ',', text_micros += ',';
        text_ids += t.id;
        text_attempts += std::to_string(t.attempts);
        text_micros += std::to_string(t.processing_us);
      }
      static const std::string kDone =
          "UPDATE raw_events r SET state = 'done', attempts = x.attempts, updated_at = now(), last_error = NULL, "
          "processing_us = NULLIF(x.us, -1) "
          "FROM unnest($1::uuid[], $2::integer[], $3::bigint[]) AS x(event_id, attempts, us) "
          "WHERE r.event_id = x.event_id AND r.state NOT IN ('done', 'dead', 'discarded')";
      auto r = binary ? conn.execBinary(kDone, {ids.take(), attempts.take(), micros.take()})
                      : conn.exec(kDone, {text_ids + "}", text_attempts + "}", text_micros + "}"});
      if (!r) return r.error();
    }
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& t : transitions)
      if (!isDone(t)) rows.push_back({{"event_id", t.id},
                      {"state", toString(t.kind)},
                      {"attempts", t.attempts},
                      {"last_error", t.error_message.empty() ? std::string() : t.error_type + ": " + t.error_message},
                      {"error_type", t.error_type},
                      {"error_message", t.error_message},
                      {"stage", t.stage},
                      {"plugin", t.plugin},
                      {"processing_us", t.processing_us}});
    if (rows.empty()) return {};
    // A terminal event never changes state again (G2, G3); only rows that
    // really turned dead reach the DLQ.
    // Not prepared: a cached generic plan made while raw_events was nearly
    // empty kept scanning the whole table once it had grown (measured: 116 ms
    // per 126-row batch at 200,000 rows, against 2 ms planned each time).
    auto r = conn.exec(
        "WITH x AS (SELECT * FROM json_to_recordset($1::json) AS x(event_id uuid, state text, attempts integer, "
        "last_error text, error_type text, error_message text, stage text, plugin text, processing_us bigint)), "
        "upd AS (UPDATE raw_events r SET state = x.state, attempts = x.attempts, updated_at = now(), "
        "last_error = NULLIF(x.last_error, ''), processing_us = COALESCE(NULLIF(x.processing_us, -1), r.processing_us) "
        "FROM x WHERE r.event_id = x.event_id AND r.state NOT IN "
        "('done', 'dead', 'discarded') RETURNING r.event_id, r.pipeline, r.payload, x.state, x.error_type, "
        "x.error_message, x.stage, x.plugin, x.attempts) "
        "INSERT INTO failed_events (event_id, pipeline, payload, error_type, error_message, stage, plugin, attempts, "
        "first_failed_at, failed_at, replay_count) SELECT event_id, pipeline, payload, error_type, error_message, "
        "NULLIF(stage, ''), NULLIF(plugin, ''), attempts, now(), now(), 0 FROM upd WHERE state = 'dead' "
        "ON CONFLICT (event_id) DO UPDATE SET error_type = EXCLUDED.error_type, error_message = EXCLUDED.error_message, "
        "stage = EXCLUDED.stage, plugin = EXCLUDED.plugin, attempts = EXCLUDED.attempts, failed_at = now()",
        {rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
    if (!r) return r.error();
    return {};
  }

  static std::string deadColumns() {
    return "SELECT f.event_id, f.pipeline, r.event_type, f.error_type, COALESCE(f.error_message, ''), "
           "COALESCE(f.stage, ''), COALESCE(f.plugin, ''), f.attempts, " + ts("f.first_failed_at") + ", " +
           ts("f.failed_at") + ", f.replay_count, f.payload::text, COALESCE(r.correlation_id, ''), " +
           ts("r.received_at") + " FROM failed_events f JOIN raw_events r ON r.event_id = f.event_id";
  }

  // failed_at is stored in microseconds and shown in milliseconds: `until`
  // takes in the whole millisecond an operator copies from a listing.
  static std::string deadWhere(const DeadFilter& filter, std::vector<std::string>& params) {
    std::string where = " WHERE r.state = 'dead'";
    auto add = [&](const std::string& column_op, std::string value, const std::string& after = {}) {
      params.push_back(std::move(value));
      where += " AND " + column_op + " $" + std::to_string(params.size()) + after;
    };
    if (!filter.pipeline.empty()) add("f.pipeline =", filter.pipeline);
    if (!filter.error_type.empty()) add("f.error_type =", filter.error_type);
    if (filter.since) add("f.failed_at >=", formatRfc3339(*filter.since), "::timestamptz");
    if (filter.until) add("f.failed_at <", formatRfc3339(*filter.until), "::timestamptz + interval '1 millisecond'");
    return where;
  }

  static std::vector<DeadEvent> deadEvents(const Result& r) {
    std::vector<DeadEvent> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      DeadEvent e;
      e.event_id = text(r, i, 0);
      e.pipeline = text(r, i, 1);
      e.event_type = text(r, i, 2);
      e.error_type = text(r, i, 3);
      e.error_message = text(r, i, 4);
      e.stage = text(r, i, 5);
      e.plugin = text(r, i, 6);
      e.attempts = static_cast<unsigned>(std::stoul(text(r, i, 7)));
      e.first_failed_at = text(r, i, 8);
      e.failed_at = text(r, i, 9);
      e.replay_count = static_cast<unsigned>(std::stoul(text(r, i, 10)));
      e.payload = text(r, i, 11);
      e.correlation_id = text(r, i, 12);
      e.received_at = text(r, i, 13);
      out.push_back(std::move(e));
    }
    return out;
  }

  static std::vector<PendingEvent> pending(const Result& r) {
    std::vector<PendingEvent> out;
    const int n = PQntuples(r.get());
    out.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      PendingEvent e;
      e.id = text(r, i, 0);
      e.type = text(r, i, 1);
      e.pipeline = text(r, i, 2);
      e.payload = text(r, i, 3);
      e.correlation_id = text(r, i, 4);
      e.received_at = parseRfc3339(text(r, i, 5)).value_or(std::chrono::system_clock::now());
      e.attempts = static_cast<unsigned>(std::stoul(text(r, i, 6)));
      out.push_back(std::move(e));
    }
    return out;
  }

  std::mutex write_mutex_;  // migrations and the relay's claims
  std::mutex read_mutex_;
  Connection writer_;
  Connection reader_;
  std::vector<std::unique_ptr<Connection>> committers_;
  std::mutex idle_mutex_;
  std::condition_variable idle_cv_;
  std::vector<Connection*> idle_;
};

}  // namespace

Expected<std::unique_ptr<Store>> openPostgresStore(const std::string& url) {
  Poco::Data::PostgreSQL::Connector::registerConnector();
  auto info = conninfo(url);
  if (!info) return info.error();
  try {
    return std::unique_ptr<Store>(std::make_unique<PostgresStore>(*info));
  } catch (const Poco::Exception& e) {
    return makeError("cannot connect to PostgreSQL: " + e.displayText());
  }
}

}  // namespace eventflow::store
