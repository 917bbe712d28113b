// sqlite::WriteTurn: two connections of one process that write one SQLite
// file take turns on a mutex, so the second never meets the first's write
// lock (SQLITE_BUSY, then BusyWait's polling).

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>

#include "base/sqlite_busy.hpp"

namespace {

std::filesystem::path freshFile() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const auto path = std::filesystem::temp_directory_path() /
                    ("eventflow-turn-" + std::string(info->name()) + "-" + std::to_string(::getpid()) + ".db");
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
  return path;
}

sqlite3* open(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr), SQLITE_OK);
  return db;  // no busy handler: meeting the other's lock is SQLITE_BUSY at once
}

int exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

TEST(SqliteWriteTurn, ASecondWriterWaitsForTheFirstsCommitInsteadOfMeetingItsLock) {
  // The store and the sqlite sink rely on it: built without mutexes, a turn
  // would exclude nothing.
  ASSERT_NE(sqlite3_threadsafe(), 0) << "this libsqlite3 was built without mutexes";
  const auto path = freshFile();
  sqlite3* first = open(path);
  sqlite3* second = open(path);
  ASSERT_EQ(exec(first, "CREATE TABLE t (n INTEGER)"), SQLITE_OK);

  std::atomic<bool> second_done{false};
  int second_rc = -1;
  std::thread other;
  {
    const eventflow::sqlite::WriteTurn turn;
    ASSERT_EQ(exec(first, "BEGIN"), SQLITE_OK);
    ASSERT_EQ(exec(first, "INSERT INTO t VALUES (1)"), SQLITE_OK);  // the write lock is first's now
    other = std::thread([&] {
      const eventflow::sqlite::WriteTurn mine;
      second_rc = exec(second, "BEGIN; INSERT INTO t VALUES (2); COMMIT");
      second_done = true;
    });
    // However long first keeps its transaction, second waits on the turn.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(second_done.load()) << "the second writer did not wait for its turn";
    ASSERT_EQ(exec(first, "COMMIT"), SQLITE_OK);
  }
  other.join();
  EXPECT_EQ(second_rc, SQLITE_OK) << "the second writer met the first's lock: " << sqlite3_errmsg(second);
  sqlite3_stmt* count = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(first, "SELECT COUNT(*) FROM t", -1, &count, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(count), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(count, 0), 2);
  sqlite3_finalize(count);
  sqlite3_close(second);
  sqlite3_close(first);
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
}

}  // namespace
