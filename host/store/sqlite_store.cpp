#include <Poco/Data/RecordSet.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/Utility.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <thread>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>

#include "base/log.hpp"
#include "base/sqlite_busy.hpp"
#include "base/sqlite_statement.hpp"
#include "base/tables.hpp"
#include "base/threads.hpp"
#include "base/throttle.hpp"
#include "store/queries.hpp"
#include "store/sqlite_schema.hpp"
#include "store/store.hpp"

namespace eventflow::store {
namespace {

using sqlite::SqliteStatement;
using sqlite::Used;

using Poco::Data::Keywords::bind;
using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;

std::string nowText() { return formatRfc3339(std::chrono::system_clock::now()); }

class SqliteStore final : public Store, private SqlDialect {
 public:
  explicit SqliteStore(const std::string& path)
      : path_(path), writer_(open("NORMAL")), reader_(open("FULL")), checkpointer_(open("NORMAL")) {
    sqlite3* db = Poco::Data::SQLite::Utility::dbHandle(writer_);
    busy_.install(db);
    // In place of the writer's automatic checkpoint (a WAL hook is what
    // wal_autocheckpoint installs): that one ran inside the commit that
    // crossed 1000 pages, copying 4 MB and fsyncing twice on the one writer's
    // thread, a tenth of its time under the mixed load. A passive checkpoint
    // on another connection never blocks the writer.
    sqlite3_wal_hook(db, &SqliteStore::walWritten, this);
    checkpoint_thread_ = std::thread([this] {
      nameThread("ef-checkpoint");
      checkpoints();
    });
  }

  ~SqliteStore() override {
    {
      std::lock_guard lock(checkpoint_mutex_);
      checkpoint_stop_ = true;
    }
    checkpoint_cv_.notify_all();
    checkpoint_thread_.join();
  }

  std::string backend() const override { return "sqlite"; }

  Expected<void> migrate() override {
    std::lock_guard lock(write_mutex_);
    try {
      writer_ << "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)", now;
      int current = 0;
      writer_ << "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", into(current), now;
      const auto kMigrations = sqliteMigrations();
      const int latest = static_cast<int>(kMigrations.size());
      if (current > latest)
        return makeError("database " + path_ + " has schema version " + std::to_string(current) +
                         ", newer than this EventFlow knows (" + std::to_string(latest) + ")");
      for (int v = current + 1; v <= latest; ++v) {
        writer_.begin();
        std::string script = kMigrations[v - 1];
        if (v == 1) script += tables::processedEventsDdl(tables::Engine::sqlite) + ";";
        // The whole script at once: a trigger's body holds ';' of its own.
        char* message = nullptr;
        if (sqlite3_exec(Poco::Data::SQLite::Utility::dbHandle(writer_), script.c_str(), nullptr, nullptr, &message) !=
            SQLITE_OK) {
          const std::string what = message ? message : "unknown error";
          sqlite3_free(message);
          rollbackWriter();
          return makeError("migrating " + path_ + " to version " + std::to_string(v) + ": " + what);
        }
        writer_ << "INSERT INTO schema_migrations(version, applied_at) VALUES(?, ?)", bind(v), bind(nowText()), now;
        writer_.commit();
      }
      if (auto synced = sync(); !synced) return synced.error();
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
    const sqlite::WriteTurn turn;  // through the rollback, too
    try {
      Hot& hot = prepared();
      Used(hot.begin)->step();
      const std::string stamp = nowText();
      CountDeltas deltas;
      std::string received_at;
      for (const auto& e : inserts) {
        received_at = formatRfc3339(e.received_at);
        {
          Used insert(hot.insert);
          insert->bind(1, e.id).bind(2, e.type).bind(3, e.pipeline).bind(4, e.payload).bind(5, e.sha256);
          insert->bind(6, e.correlation_id).bind(7, received_at).bind(8, stamp);
          insert->step();
          if (insert->changes() == 1) {
            statuses.push_back(InsertStatus::inserted);
            deltas.add(e.pipeline, kInFlight);
            continue;
          }
        }
        Used select(hot.sha);
        select->bind(1, e.id);
        const std::string existing = select->step() ? select->columnText(0) : std::string();
        statuses.push_back(existing == e.sha256 ? InsertStatus::duplicate : InsertStatus::conflict);
      }
      for (const auto& t : transitions) apply(hot, t, stamp, deltas);
      count(hot, deltas);
      Used(hot.commit)->step();
    } catch (const std::exception& e) {
      rollbackWriter();
      return makeError(std::string("sqlite commit: ") + e.what());
    }
    return statuses;
  }

  // The writer commits with synchronous=NORMAL: its WAL frames are written,
  // not fsynced. This fsyncs them, for every commit that returned before,
  // off the writer's lock: the group committer answers (202, acks) only
  // after it. An fsync of the WAL file covers every frame written to it
  // before, the sinks' too; a checkpoint fsyncs the WAL before copying it
  // and the database after, so frames it took are durable in the database.
  bool durableOnCommit() const override { return false; }
  Expected<void> sync() override {
    const std::string wal = path_ + "-wal";
    const int fd = ::open(wal.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return {};  // no WAL: every commit is in the database, fsynced by its checkpoint
      return makeError("sqlite sync: cannot open " + wal + ": " + std::strerror(errno));
    }
    const int rc = ::fdatasync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return makeError("sqlite sync: fdatasync " + wal + ": " + std::strerror(err));
    return {};
  }

  Expected<std::vector<PendingEvent>> unfinished() override { return readUnfinished(*this); }

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
      if (auto synced = sync(); !synced) return synced.error();
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
      select << "SELECT " + pendingColumns(*this) + " FROM raw_events WHERE " + unfinishedStatesOr() +
                    " AND updated_at < ? ORDER BY updated_at LIMIT ?",
          bind(cutoff), bind(static_cast<int>(limit)), now;
      out = pendingFrom(rowsOf(select));
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

  Expected<std::optional<Journey>> journey(const std::string& id) override { return readJourney(*this, id); }
  Expected<std::map<std::string, StateCounts>> counts() override { return readCounts(*this); }
  Expected<std::vector<std::string>> settled(std::span<const std::string> ids) override {
    return readSettled(*this, ids);
  }

  Expected<void> compactCounts() override {
    std::lock_guard lock(write_mutex_);
    try {
      writer_ << "DELETE FROM processing_minutes WHERE minute < ?", bind(oldestSummaryMinute()), now;
    } catch (const Poco::Exception& e) {
      return makeError("sqlite counters: " + e.displayText());
    }
    return {};
  }

  Expected<std::size_t> prune(const std::string& pipeline, State state, std::chrono::milliseconds older_than,
                              std::size_t limit) override {
    if (!isTerminal(state)) return makeError(std::string("retention never prunes ") + toString(state) + " events");
    std::lock_guard lock(write_mutex_);
    try {
      const std::string cutoff = formatRfc3339(std::chrono::system_clock::now() - older_than);
      // The partial index's own condition, word for word: SQLite uses a
      // partial index only for a query that repeats it (a full scan of
      // raw_events each second, under the write lock, halved the mixed load).
      const std::string doomed = "(SELECT event_id FROM raw_events WHERE pipeline = ? AND " +
                                 terminalStatesOr() + " AND state = " + sql(state) +
                                 " AND updated_at < ? ORDER BY updated_at LIMIT ?)";
      const int n = static_cast<int>(limit);
      // Most passes find nothing: then no write transaction is opened.
      int found = 0;
      writer_ << "SELECT COUNT(*) FROM " + doomed, bind(pipeline), bind(cutoff), bind(n), into(found), now;
      if (found == 0) return std::size_t{0};
      // One writer: nothing changes these rows between the statements.
      writer_.begin();
      writer_ << "DELETE FROM processed_events WHERE event_id IN " + doomed, bind(pipeline), bind(cutoff), bind(n), now;
      writer_ << "DELETE FROM failed_events WHERE event_id IN " + doomed, bind(pipeline), bind(cutoff), bind(n), now;
      Poco::Data::Statement del(writer_);
      del << "DELETE FROM raw_events WHERE event_id IN " + doomed, bind(pipeline), bind(cutoff), bind(n);
      const std::size_t deleted = del.execute();
      writer_.commit();
      return deleted;
    } catch (const Poco::Exception& e) {
      if (writer_.isTransaction()) writer_.rollback();
      return makeError("sqlite retention: " + e.displayText());
    }
  }
  Expected<DeadPage> listDead(const DeadFilter& filter) override { return readDead(*this, filter); }
  Expected<std::optional<DeadEvent>> getDead(const std::string& id) override { return readOneDead(*this, id); }

  Expected<ReplayResult> replay(std::span<const std::string> ids) override {
    std::lock_guard lock(write_mutex_);
    ReplayResult out;
    try {
      writer_.begin();
      const std::string stamp = nowText();
      CountDeltas deltas;
      for (const auto& id : ids) {
        Poco::Data::Statement update(writer_);
        update << "UPDATE raw_events SET state = " + sql(State::queued) +
                      ", attempts = 0, last_error = NULL, updated_at = ? WHERE event_id = ? AND state = " +
                      sql(State::dead),
            bind(stamp), bind(id);
        if (update.execute() != 1) {
          out.skipped.push_back(id);
          continue;
        }
        writer_ << "UPDATE failed_events SET replay_count = replay_count + 1 WHERE event_id = ?", bind(id), now;
        Poco::Data::Statement select(writer_);
        select << "SELECT " + pendingColumns(*this) + " FROM raw_events WHERE event_id = ?", bind(id), now;
        auto row = pendingFrom(rowsOf(select));
        for (const auto& e : row) deltas.move(e.pipeline, toString(State::dead), kInFlight);
        out.replayed.insert(out.replayed.end(), row.begin(), row.end());
      }
      count(prepared(), deltas);
      writer_.commit();
      if (auto synced = sync(); !synced) return synced.error();
    } catch (const Poco::Exception& e) {
      if (writer_.isTransaction()) writer_.rollback();
      return makeError("sqlite replay: " + e.displayText());
    } catch (const std::exception& e) {
      rollbackWriter();
      return makeError(std::string("sqlite replay: ") + e.what());
    }
    return out;
  }

  Expected<bool> discard(const std::string& id) override {
    std::vector<std::string> ids{id};
    auto n = discardDead(" AND event_id = ?", ids);
    if (!n) return n.error();
    return *n == 1;
  }

  Expected<std::uint64_t> purge(const DeadFilter& filter) override {
    std::vector<std::string> params;
    const std::string where = deadWhere(*this, filter, params);
    return discardDead(" AND event_id IN (SELECT f.event_id" + std::string(kDeadFrom) + where + ")", params);
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
  // `synchronous`: FULL fsyncs each commit; NORMAL leaves that to sync().
  Poco::Data::Session open(const std::string& synchronous) {
    Poco::Data::Session s("SQLite", path_);
    // First: journal_mode=WAL may need the database's lock, which another
    // connection may hold; no statement runs before the timeout is ours.
    s << "PRAGMA busy_timeout=10000", now;
    std::string mode;
    s << "PRAGMA journal_mode=WAL", into(mode), now;
    // Either way a commit is fsynced before ingest answers 202 (G1).
    s << "PRAGMA synchronous=" + synchronous, now;
    return s;
  }

  // SqlDialect: the shared reads, on the reader connection.
  Expected<Rows> query(const std::string& sql, const std::vector<std::string>& params) override {
    std::lock_guard lock(read_mutex_);
    try {
      Poco::Data::Statement select(reader_);
      select << sql;
      for (const auto& p : params) select, bind(p);
      select, now;
      return rowsOf(select);
    } catch (const Poco::Exception& e) {
      return makeError("sqlite: " + e.displayText());
    }
  }
  std::string param(std::vector<std::string>& params, std::string value, const char*) const override {
    params.push_back(std::move(value));
    return "?";
  }
  // Times are stored as fixed-width RFC 3339 text, so they compare as text.
  std::string time(const std::string& column) const override { return column; }
  std::string jsonText(const std::string& column) const override { return column; }
  std::string failedUntil(std::vector<std::string>& params, SystemTime until) const override {
    return "f.failed_at <= " + param(params, formatRfc3339(until), nullptr);
  }
  bool uuidIdsOnly() const override { return false; }
  const std::string& unfinishedCondition() const override { return unfinishedStatesOr(); }

  static Rows rowsOf(Poco::Data::Statement& select) {
    Rows out;
    Poco::Data::RecordSet rs(select);
    const std::size_t columns = rs.columnCount();
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
      Row& row = out.emplace_back();
      row.reserve(columns);
      for (std::size_t c = 0; c < columns; ++c)
        row.push_back(rs[c].isEmpty() ? std::nullopt : std::optional<std::string>(rs[c].convert<std::string>()));
    }
    return out;
  }

  // The group commit's statements, prepared once on the writer connection
  // (after migrate(): they name its tables).
  struct Hot {
    explicit Hot(sqlite3* db)
        : begin(db, "BEGIN"),
          commit(db, "COMMIT"),
          insert(db,
                 "INSERT OR IGNORE INTO raw_events(event_id, event_type, pipeline, payload, payload_sha256, "
                 "correlation_id, received_at, state, attempts, updated_at) VALUES(?, ?, ?, ?, ?, ?, ?, " +
                     sql(State::queued) + ", 0, ?)"),
          sha(db, "SELECT payload_sha256 FROM raw_events WHERE event_id = ?"),
          // A terminal event never changes state again (G2, G3). No
          // RETURNING: SQLite gathers its rows in a temporary b-tree, opened
          // and closed on every execution, which was a fifth of the
          // committer's time; `pipeline` reads the row again instead.
          update(db,
                 "UPDATE raw_events SET state = ?, attempts = ?, updated_at = ?, last_error = NULLIF(?, ''), "
                 "processing_us = CASE WHEN ?5 >= 0 THEN ?5 ELSE processing_us END WHERE event_id = ? AND NOT " +
                     terminalStatesOr()),
          pipeline(db, "SELECT pipeline FROM raw_events WHERE event_id = ?"),
          dead(db,
               "INSERT OR REPLACE INTO failed_events(event_id, pipeline, payload, error_type, error_message, stage, "
               "plugin, attempts, first_failed_at, failed_at, replay_count) "
               "SELECT r.event_id, r.pipeline, r.payload, ?1, ?2, ?3, ?4, ?5, COALESCE(f.first_failed_at, ?6), ?6, "
               "COALESCE(f.replay_count, 0) FROM raw_events r LEFT JOIN failed_events f ON f.event_id = r.event_id "
               "WHERE r.event_id = ?7"),
          counts(db,
                 "INSERT INTO event_counts (pipeline, state, n) VALUES (?, ?, ?) ON CONFLICT (pipeline, state) DO "
                 "UPDATE SET n = n + excluded.n"),
          minutes(db,
                  "INSERT INTO processing_minutes (pipeline, minute, finished, processing_us) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT (pipeline, minute) DO UPDATE SET finished = finished + excluded.finished, "
                  "processing_us = processing_us + excluded.processing_us") {}
    SqliteStatement begin, commit, insert, sha, update, pipeline, dead, counts, minutes;
  };

  Hot& prepared() {
    if (!hot_) hot_ = std::make_unique<Hot>(Poco::Data::SQLite::Utility::dbHandle(writer_));
    return *hot_;
  }

  // Dead events matching `condition` (with `params`) turn discarded, and
  // their counts move with them, in one transaction.
  Expected<std::uint64_t> discardDead(const std::string& condition, const std::vector<std::string>& params) {
    std::lock_guard lock(write_mutex_);
    try {
      const std::string dead = " FROM raw_events WHERE state = " + sql(State::dead) + condition;
      writer_.begin();
      Poco::Data::Statement select(writer_);
      select << "SELECT pipeline, COUNT(*)" + dead + " GROUP BY pipeline";
      for (const auto& p : params) select, bind(p);
      select, now;
      CountDeltas deltas;
      std::uint64_t total = 0;
      for (const Row& r : rowsOf(select)) {
        const auto n = std::stoll(r.at(1).value_or("0"));
        deltas.move(r.at(0).value_or(""), toString(State::dead), toString(State::discarded), n);
        total += static_cast<std::uint64_t>(n);
      }
      Poco::Data::Statement update(writer_);
      update << "UPDATE raw_events SET state = " + sql(State::discarded) + ", updated_at = ? WHERE event_id IN "
                "(SELECT event_id" + dead + ")",
          bind(nowText());
      for (const auto& p : params) update, bind(p);
      update.execute();
      count(prepared(), deltas);
      writer_.commit();
      if (auto synced = sync(); !synced) return synced.error();
      return total;
    } catch (const Poco::Exception& e) {
      if (writer_.isTransaction()) writer_.rollback();
      return makeError("sqlite discard: " + e.displayText());
    } catch (const std::exception& e) {
      rollbackWriter();
      return makeError(std::string("sqlite discard: ") + e.what());
    }
  }

  // The summary's counters, in the writing transaction: one upsert per
  // pipeline and state a commit touched. Per-row triggers did the same for
  // 2.5 µs per insert and 3.7 µs per state change on the one writer, and took
  // a fifth off the mixed load end to end.
  void count(Hot& hot, const CountDeltas& deltas) {
    for (const auto& [key, n] : deltas.counts) {
      if (n == 0) continue;
      Used upsert(hot.counts);
      upsert->bind(1, key.first).bind(2, key.second).bind(3, n);
      upsert->step();
    }
    for (const auto& [key, m] : deltas.minutes) {
      Used upsert(hot.minutes);
      upsert->bind(1, key.first).bind(2, key.second).bind(3, m.first).bind(4, m.second);
      upsert->step();
    }
  }

  void rollbackWriter() noexcept {
    sqlite3* db = Poco::Data::SQLite::Utility::dbHandle(writer_);
    // A failed COMMIT or statement may have rolled back already.
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  void apply(Hot& hot, const Transition& t, const std::string& stamp, CountDeltas& deltas) {
    const State state = stateOf(t.kind);
    const std::string last_error = lastError(t);
    std::string pipeline;
    {
      Used update(hot.update);
      update->bind(1, std::string_view(toString(state))).bind(2, static_cast<std::int64_t>(t.attempts));
      update->bind(3, stamp).bind(4, last_error);
      update->bind(5, static_cast<std::int64_t>(t.processing_us)).bind(6, t.id);
      update->step();
      if (update->changes() != 1) return;  // unknown, or terminal already
    }
    if (!isTerminal(state)) return;  // unfinished to unfinished: in flight still
    {
      Used select(hot.pipeline);
      select->bind(1, t.id);
      if (select->step()) pipeline = select->columnText(0);
    }
    deltas.move(pipeline, kInFlight, toString(state));
    if (t.processing_us >= 0) deltas.finished(pipeline, t.processing_us);
    if (state != State::dead) return;
    Used dead(hot.dead);
    dead->bind(1, t.error_type).bind(2, t.error_message).bind(3, t.stage).bind(4, t.plugin);
    dead->bind(5, static_cast<std::int64_t>(t.attempts)).bind(6, stamp).bind(7, t.id);
    dead->step();
  }

  // WAL pages after which a commit asks for a checkpoint: 64 MiB of 4 KiB
  // pages. A page that several commits change between two checkpoints is
  // copied once, so fewer checkpoints copy less. Against SQLite's default
  // of 1000, under the mixed load: the checkpoint thread's CPU 1.2 s -> 0.5 s
  // per 15 s and 20.3k/20.9k -> 21.4k/21.4k events/s; with random (version
  // 4) event ids, which touch a random index page per row, 3.8 s -> 2.5 s
  // and +6% events/s over four pairs (docs/benchmarks.md, session 12). The
  // WAL file stays at its largest size between checkpoints.
  static constexpr int kCheckpointPages = 16000;

  static int walWritten(void* self, sqlite3*, const char*, int pages) {
    if (pages < kCheckpointPages) return SQLITE_OK;
    auto& me = *static_cast<SqliteStore*>(self);
    {
      std::lock_guard lock(me.checkpoint_mutex_);
      me.checkpoint_due_ = true;
    }
    me.checkpoint_cv_.notify_one();
    return SQLITE_OK;
  }

  void checkpoints() {
    for (;;) {
      {
        std::unique_lock lock(checkpoint_mutex_);
        checkpoint_cv_.wait(lock, [&] { return checkpoint_stop_ || checkpoint_due_; });
        if (checkpoint_stop_) return;
        checkpoint_due_ = false;
      }
      // Copies what no reader still needs and fsyncs the WAL, then the
      // database; the next commit after a complete one starts the WAL over.
      int pages = 0, copied = 0;
      const int rc = sqlite3_wal_checkpoint_v2(Poco::Data::SQLite::Utility::dbHandle(checkpointer_), nullptr,
                                               SQLITE_CHECKPOINT_PASSIVE, &pages, &copied);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        if (std::uint64_t suppressed = 0; checkpoint_failures_.allow(suppressed))
          log::warn("sqlite checkpoint failed", {{"error", sqlite3_errstr(rc)}, {"database", path_},
                                                 {"failures_not_logged", std::to_string(suppressed)}});
    }
  }

  std::string path_;
  std::mutex write_mutex_;
  std::mutex read_mutex_;
  Poco::Data::Session writer_;
  Poco::Data::Session reader_;
  Poco::Data::Session checkpointer_;  // the checkpoint thread's alone
  std::mutex checkpoint_mutex_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_due_ = false;
  bool checkpoint_stop_ = false;
  Throttle checkpoint_failures_;
  std::thread checkpoint_thread_;
  sqlite::BusyWait busy_;
  std::unique_ptr<Hot> hot_;  // after the sessions: finalized before they close
};

}  // namespace

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
