#include <Poco/Data/RecordSet.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>

#include <filesystem>
#include <mutex>

#include "store/store.hpp"

namespace eventflow::store {
namespace {

using Poco::Data::Keywords::bind;
using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;

// Each entry is one schema version; never edit one that has shipped.
const char* const kMigrations[] = {
    R"(
CREATE TABLE raw_events (
  event_id TEXT PRIMARY KEY,
  event_type TEXT NOT NULL,
  pipeline TEXT NOT NULL,
  payload TEXT NOT NULL,
  payload_sha256 TEXT NOT NULL,
  correlation_id TEXT,
  received_at TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  updated_at TEXT NOT NULL,
  last_error TEXT
);
CREATE INDEX raw_events_unfinished ON raw_events(state, updated_at)
  WHERE state IN ('received', 'queued', 'processing', 'retrying');
CREATE INDEX raw_events_pipeline_state ON raw_events(pipeline, state);
CREATE TABLE IF NOT EXISTS processed_events (
  event_id TEXT PRIMARY KEY,
  event_type TEXT NOT NULL,
  user_id TEXT,
  timestamp TEXT,
  properties TEXT,
  enriched_data TEXT,
  pipeline TEXT NOT NULL,
  processed_at TEXT NOT NULL,
  attempts INTEGER NOT NULL
);
CREATE TABLE failed_events (
  event_id TEXT PRIMARY KEY,
  pipeline TEXT NOT NULL,
  payload TEXT NOT NULL,
  error_type TEXT NOT NULL,
  error_message TEXT,
  stage TEXT,
  plugin TEXT,
  attempts INTEGER NOT NULL,
  first_failed_at TEXT NOT NULL,
  failed_at TEXT NOT NULL,
  replay_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX failed_events_pipeline ON failed_events(pipeline, failed_at);
CREATE INDEX failed_events_error_type ON failed_events(error_type, failed_at);
)",
    // 2: the DLQ listing without a pipeline or error_type filter, in failed_at order.
    R"(
CREATE INDEX failed_events_failed_at ON failed_events(failed_at, event_id);
)",
    // 3: how often the embedded queue handed an event out after a crash (poison, G5).
    R"(
ALTER TABLE raw_events ADD COLUMN deliveries integer NOT NULL DEFAULT 0;
)",
    // 4: first delivery to outcome, for /metrics/summary's avg_processing_time_ms.
    R"(
ALTER TABLE raw_events ADD COLUMN processing_us integer;
)",
};

std::string nowText() { return formatRfc3339(std::chrono::system_clock::now()); }

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const std::string& path) : path_(path), writer_(open()), reader_(open()) {}

  std::string backend() const override { return "sqlite"; }

  Expected<void> migrate() override {
    std::lock_guard lock(write_mutex_);
    try {
      writer_ << "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)", now;
      int current = 0;
      writer_ << "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", into(current), now;
      const int latest = static_cast<int>(std::size(kMigrations));
      if (current > latest)
        return makeError("database " + path_ + " has schema version " + std::to_string(current) +
                         ", newer than this EventFlow knows (" + std::to_string(latest) + ")");
      for (int v = current + 1; v <= latest; ++v) {
        writer_.begin();
        // Poco runs one statement per call; split the migration on ';'.
        std::string script = kMigrations[v - 1];
        std::size_t start = 0;
        while (start < script.size()) {
          std::size_t end = script.find(';', start);
          if (end == std::string::npos) end = script.size();
          const std::string stmt = script.substr(start, end - start);
          if (stmt.find_first_not_of(" \n\t") != std::string::npos) writer_ << stmt, now;
          start = end + 1;
        }
        writer_ << "INSERT INTO schema_migrations(version, applied_at) VALUES(?, ?)", bind(v), bind(nowText()), now;
        writer_.commit();
      }
    } catch (const Poco::Exception& e) {
      if (writer_.isTransaction()) writer_.rollback();
      return makeError("migrating " + path_ + ": " + e.displayText());
    }
    return {};
  }

  Expected<std::vector<InsertStatus>> commit(std::span<const RawEvent> inserts,
                                             std::span<const Transition> transitions) override {
    std::lock_guard lock(write_mutex_);
    std::vector<InsertStatus> statuses;
    statuses.reserve(inserts.size());
    try {
      writer_.begin();
      const std::string stamp = nowText();
      for (const auto& e : inserts) {
        Poco::Data::Statement insert(writer_);
        insert << "INSERT OR IGNORE INTO raw_events(event_id, event_type, pipeline, payload, payload_sha256, "
                  "correlation_id, received_at, state, attempts, updated_at) VALUES(?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?)",
            bind(e.id), bind(e.type), bind(e.pipeline), bind(e.payload), bind(e.sha256), bind(e.correlation_id),
            bind(formatRfc3339(e.received_at)), bind(stamp);
        if (insert.execute() == 1) {
          statuses.push_back(InsertStatus::inserted);
          continue;
        }
        std::string existing;
        writer_ << "SELECT payload_sha256 FROM raw_events WHERE event_id = ?", bind(e.id), into(existing), now;
        statuses.push_back(existing == e.sha256 ? InsertStatus::duplicate : InsertStatus::conflict);
      }
      for (const auto& t : transitions) apply(t, stamp);
      writer_.commit();
    } catch (const Poco::Exception& e) {
      if (writer_.isTransaction()) writer_.rollback();
      return makeError("sqlite commit: " + e.displayText());
    }
    return statuses;
  }

  Expected<std::vector<PendingEvent>> unfinished() override {
    std::lock_guard lock(read_mutex_);
    std::vector<PendingEvent> out;
    try {
      Poco::Data::Statement select(reader_);
      select << "SELECT event_id, event_type, pipeline, payload, COALESCE(correlation_id, ''), received_at, attempts "
                "FROM raw_events WHERE state IN ('received', 'queued', 'processing', 'retrying') ORDER BY received_at",
          now;
      out = pending(select);
    } catch (const Poco::Exception& e) {
      return makeError("sqlite unfinished: " + e.displayText());
    }
    return out;
  }

  Expected<std::map<std::string, unsigned>> recordDeliveries(const std::vector<std::string>& ids) override {
    std::lock_guard lock(write_mutex_);
    std::map<std::string, unsigned> out;
    try {
      writer_.begin();
      for (const auto& id : ids) {
        writer_ << "UPDATE raw_events SET deliveries = deliveries + 1 WHERE event_id = ?", bind(id), now;
        int n = 0;
        writer_ << "SELECT deliveries FROM raw_events WHERE event_id = ?", bind(id), into(n), now;
        out[id] = static_cast<unsigned>(n);
      }
      writer_.commit();
    } catch (const Poco::Exception& e) {
      if (writer_.isTransaction()) writer_.rollback();
      return makeError("sqlite deliveries: " + e.displayText());
    }
    return out;
  }

  Expected<std::vector<PendingEvent>> stale(std::chrono::milliseconds older_than, std::size_t limit) override {
    std::lock_guard lock(write_mutex_);
    std::vector<PendingEvent> out;
    try {
      const std::string cutoff = formatRfc3339(std::chrono::system_clock::now() - older_than);
      writer_.begin();
      Poco::Data::Statement select(writer_);
      select << "SELECT event_id, event_type, pipeline, payload, COALESCE(correlation_id, ''), received_at, attempts "
                "FROM raw_events WHERE state IN ('received', 'queued', 'processing', 'retrying') AND updated_at < ? "
                "ORDER BY updated_at LIMIT ?",
          bind(cutoff), bind(static_cast<int>(limit)), now;
      out = pending(select);
      const std::string stamp = nowText();
      for (const auto& e : out)
        writer_ << "UPDATE raw_events SET updated_at = ? WHERE event_id = ?", bind(stamp), bind(e.id), now;
      writer_.commit();
    } catch (const Poco::Exception& e) {
      if (writer_.isTransaction()) writer_.rollback();
      return makeError("sqlite stale: " + e.displayText());
    }
    return out;
  }

  Expected<nlohmann::json> journey(const std::string& id) override {
    std::lock_guard lock(read_mutex_);
    try {
      Poco::Data::Statement select(reader_);
      select << "SELECT event_id, event_type, pipeline, state, attempts, received_at, updated_at, last_error, "
                "correlation_id, payload FROM raw_events WHERE event_id = ?",
          bind(id), now;
      Poco::Data::RecordSet rs(select);
      if (!rs.moveFirst()) return nlohmann::json(nullptr);
      auto text = [&](std::size_t col) -> nlohmann::json {
        if (rs[col].isEmpty()) return nullptr;
        return rs[col].convert<std::string>();
      };
      nlohmann::json j{{"event_id", text(0)},     {"event_type", text(1)}, {"pipeline", text(2)},
                       {"state", text(3)},        {"attempts", rs[4].convert<int>()},
                       {"received_at", text(5)},  {"updated_at", text(6)}, {"last_error", text(7)},
                       {"correlation_id", text(8)}};
      j["event"] = nlohmann::json::parse(rs[9].convert<std::string>(), nullptr, false);
      Poco::Data::Statement failed(reader_);
      failed << "SELECT error_type, error_message, stage, plugin, attempts, first_failed_at, failed_at, replay_count "
                "FROM failed_events WHERE event_id = ?",
          bind(id), now;
      Poco::Data::RecordSet fs(failed);
      if (fs.moveFirst()) {
        auto ftext = [&](std::size_t col) -> nlohmann::json {
          if (fs[col].isEmpty()) return nullptr;
          return fs[col].convert<std::string>();
        };
        j["dead_letter"] = {{"error_type", ftext(0)}, {"error_message", ftext(1)}, {"stage", ftext(2)},
                            {"plugin", ftext(3)},     {"attempts", fs[4].convert<int>()},
                            {"first_failed_at", ftext(5)}, {"failed_at", ftext(6)},
                            {"replay_count", fs[7].convert<int>()}};
      }
      Poco::Data::Statement processed(reader_);
      processed << "SELECT processed_at, enriched_data FROM processed_events WHERE event_id = ?", bind(id), now;
      Poco::Data::RecordSet ps(processed);
      if (ps.moveFirst())
        j["processed"] = {{"processed_at", ps[0].convert<std::string>()},
                          {"enriched_data", nlohmann::json::parse(ps[1].isEmpty() ? "null" : ps[1].convert<std::string>(),
                                                                  nullptr, false)}};
      addHistory(j);
      return j;
    } catch (const Poco::Exception& e) {
      return makeError("sqlite journey: " + e.displayText());
    }
  }

  Expected<std::map<std::string, StateCounts>> counts() override {
    std::lock_guard lock(read_mutex_);
    std::map<std::string, StateCounts> out;
    try {
      Poco::Data::Statement select(reader_);
      // One scan for the counts and the recent processing times: updated_at
      // is RFC 3339 text of one width, so it compares as text.
      const std::string since = formatRfc3339(std::chrono::system_clock::now() - kProcessingWindow);
      select << "SELECT pipeline, state, COUNT(*), "
                "COUNT(CASE WHEN updated_at >= ? THEN processing_us END), "
                "COALESCE(SUM(CASE WHEN updated_at >= ? THEN processing_us END), 0) "
                "FROM raw_events GROUP BY pipeline, state",
          bind(since), bind(since), now;
      Poco::Data::RecordSet rs(select);
      for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
        auto& c = out[rs[0].convert<std::string>()];
        const auto state = rs[1].convert<std::string>();
        const auto n = rs[2].convert<std::uint64_t>();
        c.received += n;
        if (state == "done") c.processed += n;
        else if (state == "dead") c.dead += n;
        else if (state == "discarded") c.discarded += n;
        else c.in_flight += n;
        if (state == "done" || state == "dead") {
          c.finished_recently += rs[3].convert<std::uint64_t>();
          c.processing_ms_sum += rs[4].convert<double>() / 1000;
        }
      }
    } catch (const Poco::Exception& e) {
      return makeError("sqlite counts: " + e.displayText());
    }
    return out;
  }

  Expected<DeadPage> listDead(const DeadFilter& filter) override {
    std::lock_guard lock(read_mutex_);
    DeadPage page;
    try {
      std::vector<std::string> params;
      const std::string where = deadWhere(filter, params);
      Poco::Data::Statement count(reader_);
      count << "SELECT COUNT(*) FROM failed_events f JOIN raw_events r ON r.event_id = f.event_id" + where;
      for (const auto& p : params) count, bind(p);
      count, into(page.total), now;
      if (filter.limit == 0) return page;
      Poco::Data::Statement select(reader_);
      select << std::string(kDeadColumns) + where + " ORDER BY f.failed_at, f.event_id LIMIT ? OFFSET ?";
      for (const auto& p : params) select, bind(p);
      select, bind(static_cast<Poco::Int64>(filter.limit)), bind(static_cast<Poco::Int64>(filter.offset)), now;
      page.items = deadEvents(select);
    } catch (const Poco::Exception& e) {
      return makeError("sqlite listDead: " + e.displayText());
    }
    return page;
  }

  Expected<std::optional<DeadEvent>> getDead(const std::string& id) override {
    std::lock_guard lock(read_mutex_);
    try {
      Poco::Data::Statement select(reader_);
      select << std::string(kDeadColumns) + " WHERE r.state = 'dead' AND f.event_id = ?", bind(id), now;
      auto items = deadEvents(select);
      if (items.empty()) return std::optional<DeadEvent>();
      return std::optional<DeadEvent>(std::move(items.front()));
    } catch (const Poco::Exception& e) {
      return makeError("sqlite getDead: " + e.displayText());
    }
  }

  Expected<ReplayResult> replay(std::span<const std::string> ids) override {
    std::lock_guard lock(write_mutex_);
    ReplayResult out;
    try {
      writer_.begin();
      const std::string stamp = nowText();
      for (const auto& id : ids) {
        Poco::Data::Statement update(writer_);
        update << "UPDATE raw_events SET state = 'queued', attempts = 0, last_error = NULL, updated_at = ? "
                  "WHERE event_id = ? AND state = 'dead'",
            bind(stamp), bind(id);
        if (update.execute() != 1) {
          out.skipped.push_back(id);
          continue;
        }
        writer_ << "UPDATE failed_events SET replay_count = replay_count + 1 WHERE event_id = ?", bind(id), now;
        Poco::Data::Statement select(writer_);
        select << "SELECT event_id, event_type, pipeline, payload, COALESCE(correlation_id, ''), received_at, attempts "
                  "FROM raw_events WHERE event_id = ?",
            bind(id), now;
        auto row = pending(select);
        out.replayed.insert(out.replayed.end(), row.begin(), row.end());
      }
      writer_.commit();
    } catch (const Poco::Exception& e) {
      if (writer_.isTransaction()) writer_.rollback();
      return makeError("sqlite replay: " + e.displayText());
    }
    return out;
  }

  Expected<bool> discard(const std::string& id) override {
    std::lock_guard lock(write_mutex_);
    try {
      Poco::Data::Statement update(writer_);
      update << "UPDATE raw_events SET state = 'discarded', updated_at = ? WHERE event_id = ? AND state = 'dead'",
          bind(nowText()), bind(id);
      return update.execute() == 1;
    } catch (const Poco::Exception& e) {
      return makeError("sqlite discard: " + e.displayText());
    }
  }

  Expected<std::uint64_t> purge(const DeadFilter& filter) override {
    std::lock_guard lock(write_mutex_);
    try {
      std::vector<std::string> params;
      const std::string where = deadWhere(filter, params);
      Poco::Data::Statement update(writer_);
      update << "UPDATE raw_events SET state = 'discarded', updated_at = ? WHERE state = 'dead' AND event_id IN "
                "(SELECT f.event_id FROM failed_events f JOIN raw_events r ON r.event_id = f.event_id" + where + ")",
          bind(nowText());
      for (const auto& p : params) update, bind(p);
      return static_cast<std::uint64_t>(update.execute());
    } catch (const Poco::Exception& e) {
      return makeError("sqlite purge: " + e.displayText());
    }
  }

  Expected<void> ping() override {
    std::lock_guard lock(read_mutex_);
    try {
      int one = 0;
      reader_ << "SELECT 1", into(one), now;
    } catch (const Poco::Exception& e) {
      return makeError("sqlite: " + e.displayText());
    }
    return {};
  }

 private:
  Poco::Data::Session open() {
    Poco::Data::Session s("SQLite", path_);
    // First: journal_mode=WAL may need the database's lock, which another
    // connection may hold; no statement runs before the timeout is ours.
    s << "PRAGMA busy_timeout=10000", now;
    std::string mode;
    s << "PRAGMA journal_mode=WAL", into(mode), now;
    // FULL: a commit is fsynced before ingest answers 202 (G1).
    s << "PRAGMA synchronous=FULL", now;
    return s;
  }

  static std::vector<PendingEvent> pending(Poco::Data::Statement& select) {
    std::vector<PendingEvent> out;
    Poco::Data::RecordSet rs(select);
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
      PendingEvent e;
      e.id = rs[0].convert<std::string>();
      e.type = rs[1].convert<std::string>();
      e.pipeline = rs[2].convert<std::string>();
      e.payload = rs[3].convert<std::string>();
      e.correlation_id = rs[4].convert<std::string>();
      e.received_at = parseRfc3339(rs[5].convert<std::string>()).value_or(std::chrono::system_clock::now());
      e.attempts = rs[6].convert<unsigned>();
      out.push_back(std::move(e));
    }
    return out;
  }

  static constexpr const char* kDeadColumns =
      "SELECT f.event_id, f.pipeline, r.event_type, f.error_type, COALESCE(f.error_message, ''), COALESCE(f.stage, ''), "
      "COALESCE(f.plugin, ''), f.attempts, f.first_failed_at, f.failed_at, f.replay_count, f.payload, "
      "COALESCE(r.correlation_id, ''), r.received_at FROM failed_events f JOIN raw_events r ON r.event_id = f.event_id";

  // Times are stored as fixed-width RFC 3339 text, so they compare as text.
  static std::string deadWhere(const DeadFilter& filter, std::vector<std::string>& params) {
    std::string where = " WHERE r.state = 'dead'";
    if (!filter.pipeline.empty()) {
      where += " AND f.pipeline = ?";
      params.push_back(filter.pipeline);
    }
    if (!filter.error_type.empty()) {
      where += " AND f.error_type = ?";
      params.push_back(filter.error_type);
    }
    if (filter.since) {
      where += " AND f.failed_at >= ?";
      params.push_back(formatRfc3339(*filter.since));
    }
    if (filter.until) {
      where += " AND f.failed_at <= ?";
      params.push_back(formatRfc3339(*filter.until));
    }
    return where;
  }

  static std::vector<DeadEvent> deadEvents(Poco::Data::Statement& select) {
    std::vector<DeadEvent> out;
    Poco::Data::RecordSet rs(select);
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
      DeadEvent e;
      e.event_id = rs[0].convert<std::string>();
      e.pipeline = rs[1].convert<std::string>();
      e.event_type = rs[2].convert<std::string>();
      e.error_type = rs[3].convert<std::string>();
      e.error_message = rs[4].convert<std::string>();
      e.stage = rs[5].convert<std::string>();
      e.plugin = rs[6].convert<std::string>();
      e.attempts = rs[7].convert<unsigned>();
      e.first_failed_at = rs[8].convert<std::string>();
      e.failed_at = rs[9].convert<std::string>();
      e.replay_count = rs[10].convert<unsigned>();
      e.payload = rs[11].convert<std::string>();
      e.correlation_id = rs[12].convert<std::string>();
      e.received_at = rs[13].convert<std::string>();
      out.push_back(std::move(e));
    }
    return out;
  }

  void apply(const Transition& t, const std::string& stamp) {
    const std::string state = toString(t.kind);
    const std::string last_error = t.error_message.empty() ? "" : t.error_type + ": " + t.error_message;
    Poco::Data::Statement update(writer_);
    // A terminal event never changes state again (G2, G3).
    const Poco::Int64 us = t.processing_us;
    update << "UPDATE raw_events SET state = ?, attempts = ?, updated_at = ?, last_error = NULLIF(?, ''), "
              "processing_us = CASE WHEN ? >= 0 THEN ? ELSE processing_us END "
              "WHERE event_id = ? AND state NOT IN ('done', 'dead', 'discarded')",
        bind(state), bind(t.attempts), bind(stamp), bind(last_error), bind(us), bind(us), bind(t.id);
    if (update.execute() != 1 || t.kind != Transition::Kind::dead) return;
    writer_ << "INSERT OR REPLACE INTO failed_events(event_id, pipeline, payload, error_type, error_message, stage, "
               "plugin, attempts, first_failed_at, failed_at, replay_count) "
               "SELECT r.event_id, r.pipeline, r.payload, ?, ?, ?, ?, ?, COALESCE(f.first_failed_at, ?), ?, "
               "COALESCE(f.replay_count, 0) FROM raw_events r LEFT JOIN failed_events f ON f.event_id = r.event_id "
               "WHERE r.event_id = ?",
        bind(t.error_type), bind(t.error_message), bind(t.stage), bind(t.plugin), bind(t.attempts), bind(stamp),
        bind(stamp), bind(t.id), now;
  }

  std::string path_;
  std::mutex write_mutex_;
  std::mutex read_mutex_;
  Poco::Data::Session writer_;
  Poco::Data::Session reader_;
};

}  // namespace

const char* toString(Transition::Kind kind) {
  switch (kind) {
    case Transition::Kind::done: return "done";
    case Transition::Kind::dead: return "dead";
    case Transition::Kind::retrying: return "retrying";
  }
  return "unknown";
}

Expected<std::unique_ptr<Store>> openStore(const std::string& url) {
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) return openPostgresStore(url);
  if (url.rfind("sqlite://", 0) != 0)
    return makeError("store url must start with sqlite:// or postgresql://");
  const std::string path = url.substr(9);
  if (path.empty()) return makeError("store url '" + url + "' names no database file");
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (ec) return makeError("cannot create " + dir.string() + ": " + ec.message());
  Poco::Data::SQLite::Connector::registerConnector();
  try {
    return std::unique_ptr<Store>(std::make_unique<SqliteStore>(path));
  } catch (const Poco::Exception& e) {
    return makeError("cannot open " + path + ": " + e.displayText());
  }
}

}  // namespace eventflow::store
