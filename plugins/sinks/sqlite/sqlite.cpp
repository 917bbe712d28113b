#include "sqlite.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/Utility.h>
#include <Poco/Data/Session.h>
#include <Poco/Exception.h>

#include <eventflow/time.hpp>

#include "base/sqlite_busy.hpp"
#include "base/sqlite_statement.hpp"
#include "base/tables.hpp"
#include "common/combiner.hpp"
#include "common/processed_row.hpp"

namespace eventflow::plugins {
namespace {

using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;

constexpr std::string_view kScheme = "sqlite://";

bool isIdentifier(std::string_view name) {
  const auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  if (name.empty() || !alpha(name.front())) return false;
  for (const char c : name)
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

// A url named in an error must not leak the password of a postgresql:// url.
std::string redactUrl(const std::string& url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  const std::size_t at = url.find('@', scheme_end + 3);
  const std::size_t colon = url.find(':', scheme_end + 3);
  if (at == std::string::npos || colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

std::string databasePath(const std::string& url) {
  if (url.empty()) throw std::runtime_error("sqlite: the host setting store.url is empty");
  if (!url.starts_with(kScheme) || url.size() == kScheme.size())
    throw std::invalid_argument("sqlite: store.url '" + redactUrl(url) +
                                "' is not a sqlite:// url (sqlite:///abs/path.db or sqlite://relative.db)");
  return url.substr(kScheme.size());
}

void rollbackQuietly(sqlite3* db) noexcept {
  // A failed statement or COMMIT may have rolled back already.
  if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
}

}  // namespace

// One connection per database file in this process, shared by every sqlite
// sink instance (one per worker), whose concurrent writes join into one
// transaction (Combiner). Six connections taking the write lock by turns
// each dropped the others' page caches (SQLite rereads its pages after
// another connection's commit) and made the store's group commit wait for
// the lock, one small transaction after another.
class SqliteSink::Writer {
 public:
  explicit Writer(const std::string& path) : session_(Poco::Data::SQLite::Connector::KEY, path) {
    // The host's store writes the same file: wait for its transactions
    // rather than fail at once.
    int busy_timeout_ms = 0;
    session_ << "PRAGMA busy_timeout=10000", into(busy_timeout_ms), now;
    busy_.install(db());
    // No fsync of our own: the host marks these events done only after
    // write() returns, and answers for that only once it has fsynced the WAL
    // file, which covers every frame written to it before, ours too. If power
    // fails first, the events are not done and run again (G3), and INSERT OR
    // IGNORE writes the row again. The WAL keeps the file consistent either way.
    session_ << "PRAGMA synchronous=NORMAL", now;
    // The host's store checkpoints the WAL from a thread of its own at 16000
    // pages (sqlite_store.cpp); this one only if that falls far behind, at
    // twice as many, so that a worker seldom copies the WAL inside its commit.
    session_ << "PRAGMA wal_autocheckpoint=32000", now;
  }

  static std::shared_ptr<Writer> of(const std::string& path) {
    return sharedByKey<Writer>(path, [&] { return std::make_shared<Writer>(path); });
  }

  void execute(const std::string& sql) {
    std::lock_guard lock(connection_);
    session_ << sql, now;
  }

  /// Writes `rows` with `insert`, in a transaction shared with whatever
  /// other workers hand in meanwhile; the error's text, empty when written.
  std::string write(const std::string& insert, std::vector<ProcessedRow>& rows) {
    Batch mine{&insert, &rows};
    combiner_.join(mine, [this](std::vector<Batch*>& group) noexcept { commitGroup(group); });
    return mine.error;
  }

 private:
  struct Batch {
    const std::string* insert;
    std::vector<ProcessedRow>* rows;
    std::string error{};
  };

  sqlite3* db() { return Poco::Data::SQLite::Utility::dbHandle(session_); }

  void commitGroup(std::vector<Batch*>& group) noexcept {
    std::lock_guard lock(connection_);
    const std::string error = commit(group);
    if (error.empty()) return;
    if (group.size() == 1) {
      group.front()->error = error;
      return;
    }
    // One worker's rows must not fail the others': each alone.
    for (Batch* b : group) {
      std::vector<Batch*> one{b};
      b->error = commit(one);
    }
  }

  std::string commit(const std::vector<Batch*>& group) noexcept {
    const sqlite::WriteTurn turn;  // through the rollback, too
    try {
      const std::string processed_at = formatRfc3339(std::chrono::system_clock::now());
      run("BEGIN");
      for (Batch* b : group) {
        sqlite::SqliteStatement& insert = statement(*b->insert);
        for (const ProcessedRow& row : *b->rows) {
          sqlite::Used use(insert);
          use->bind(1, row.event_id).bind(2, row.event_type).bindNullable(3, row.user_id).bindNullable(4, row.timestamp);
          use->bindNullable(5, row.properties).bind(6, row.enriched_data).bind(7, row.pipeline).bind(8, processed_at);
          use->bind(9, static_cast<std::int64_t>(row.attempts));
          use->step();
        }
      }
      run("COMMIT");
      return {};
    } catch (const std::exception& e) {
      rollbackQuietly(db());
      return e.what();
    } catch (...) {
      rollbackQuietly(db());
      return "unknown exception";
    }
  }

  void run(const char* sql) {
    auto& s = statement(sql);
    sqlite::Used use(s);
    use->step();
  }

  sqlite::SqliteStatement& statement(const std::string& sql) {
    auto& slot = statements_[sql];
    if (!slot) slot = std::make_unique<sqlite::SqliteStatement>(db(), sql);
    return *slot;
  }

  sqlite::BusyWait busy_;  // before the session: it outlives the connection
  Poco::Data::Session session_;
  std::map<std::string, std::unique_ptr<sqlite::SqliteStatement>> statements_;  // after: finalized first
  std::mutex connection_;  // the session, the statements
  Combiner<Batch> combiner_;
};

SqliteSink::SqliteSink(const nlohmann::json& config, Context& context) {
  if (!config.is_object()) throw std::invalid_argument("sqlite: config must be an object");
  std::string table = "processed_events";
  if (const auto it = config.find("table"); it != config.end()) {
    if (!it->is_string() || !isIdentifier(it->get_ref<const std::string&>()))
      throw std::invalid_argument("sqlite: table " + it->dump() + " is not an identifier ([A-Za-z_][A-Za-z0-9_]*)");
    table = it->get<std::string>();
  }
  path_ = databasePath(context.setting("store.url"));
  insert_sql_ = "INSERT OR IGNORE INTO " + table +
                " (event_id, event_type, user_id, timestamp, properties, enriched_data, pipeline, processed_at,"
                " attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
  // `eventflow validate`: the config is checked; the database stays untouched.
  if (context.setting("validate_only") == "1") return;

  Poco::Data::SQLite::Connector::registerConnector();
  try {
    writer_ = Writer::of(path_);
    writer_->execute(tables::processedEventsDdl(tables::Engine::sqlite, table));
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("sqlite: cannot prepare table " + table + " in " + path_ + ": " + e.displayText());
  }
}

SqliteSink::~SqliteSink() = default;

std::vector<Result> SqliteSink::write(std::span<Event* const> events) {
  std::string error;
  try {
    std::vector<ProcessedRow> rows;
    rows.reserve(events.size());
    for (const Event* event : events) rows.push_back(makeProcessedRow(*event));
    error = writer_->write(insert_sql_, rows);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (error.empty()) return std::vector<Result>(events.size(), Result::ok());
  return std::vector<Result>(events.size(), Result::retry("sqlite " + path_ + ": " + error, "sink_unavailable"));
}

}  // namespace eventflow::plugins
