// The embedded store's hot statements, as SQLite plans them on a migrated
// database: no temporary b-tree per insert or state change (a constant IN
// list of more than two values gets one at every execution, and a partial
// index evaluates its condition on every row written), and the partial
// indexes still serve the queries that repeat their conditions.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "store/state.hpp"
#include "store/store.hpp"

using namespace eventflow;

namespace {

class SqlitePlan : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("eventflow-plan-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    auto opened = store::openStore("sqlite://" + (dir_ / "ef.db").string());
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = std::move(*opened);
    ASSERT_TRUE(store_->migrate());
    ASSERT_EQ(sqlite3_open((dir_ / "ef.db").string().c_str(), &db_), SQLITE_OK);
  }
  void TearDown() override {
    sqlite3_close(db_);
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The opcodes (EXPLAIN) or the plan's details (EXPLAIN QUERY PLAN), one per line.
  std::string explain(const std::string& sql, bool plan) {
    sqlite3_stmt* stmt = nullptr;
    const std::string text = (plan ? "EXPLAIN QUERY PLAN " : "EXPLAIN ") + sql;
    EXPECT_EQ(sqlite3_prepare_v2(db_, text.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db_);
    std::string out;
    while (sqlite3_step(stmt) == SQLITE_ROW)
      out += std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, plan ? 3 : 1))) + "\n";
    sqlite3_finalize(stmt);
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  sqlite3* db_ = nullptr;
};

}  // namespace

TEST_F(SqlitePlan, InsertsAndStateChangesBuildNoTemporaryBtree) {
  const std::string insert =
      "INSERT OR IGNORE INTO raw_events(event_id, event_type, pipeline, payload, payload_sha256, correlation_id, "
      "received_at, state, attempts, updated_at) VALUES(?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?)";
  EXPECT_EQ(explain(insert, false).find("OpenEphemeral"), std::string::npos) << explain(insert, false);
  const std::string update = "UPDATE raw_events SET state = ?, updated_at = ? WHERE event_id = ? AND NOT " +
                             store::terminalStatesOr();
  EXPECT_EQ(explain(update, false).find("OpenEphemeral"), std::string::npos) << explain(update, false);
  // What the migration replaced: the old IN-list form does build one.
  const std::string old = "UPDATE raw_events SET state = ? WHERE event_id = ? AND state NOT IN " +
                          store::terminalStatesSql();
  EXPECT_NE(explain(old, false).find("OpenEphemeral"), std::string::npos) << "SQLite changed; the note is stale";
}

TEST_F(SqlitePlan, RetentionAndRecoveryStillFindTheirRowsThroughThePartialIndexes) {
  const std::string prune = "SELECT event_id FROM raw_events WHERE pipeline = ? AND " + store::terminalStatesOr() +
                            " AND state = 'done' AND updated_at < ? ORDER BY updated_at LIMIT ?";
  EXPECT_NE(explain(prune, true).find("raw_events_terminal"), std::string::npos) << explain(prune, true);
  const std::string stale = "SELECT event_id FROM raw_events WHERE " + store::unfinishedStatesOr() +
                            " AND updated_at < ? ORDER BY updated_at LIMIT ?";
  EXPECT_NE(explain(stale, true).find("raw_events_unfinished"), std::string::npos) << explain(stale, true);
}
