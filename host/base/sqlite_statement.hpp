#pragma once
// A statement prepared once on a writer connection (the store's, the sqlite
// sink's) and reset for each use (SQLITE_PREPARE_PERSISTENT). Through Poco every execution built,
// compiled and finalized its statement: the SQLite parser and Poco's
// statement set-up were a visible part of the single committer's time.

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace eventflow::sqlite {

/// An SQLite error on a writer connection, with its message.
struct SqliteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size() + 1), SQLITE_PREPARE_PERSISTENT, &stmt_,
                           nullptr) != SQLITE_OK)
      throw SqliteError(std::string("preparing '") + sql + "': " + sqlite3_errmsg(db));
  }
  ~SqliteStatement() { sqlite3_finalize(stmt_); }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  /// Parameters are numbered from 1; text is bound without a copy, so it
  /// must live until step().
  SqliteStatement& bind(int i, std::string_view text) {
    check(sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_STATIC));
    return *this;
  }
  /// Nothing binds NULL.
  SqliteStatement& bindNullable(int i, const std::optional<std::string>& text) {
    if (text) return bind(i, std::string_view(*text));
    check(sqlite3_bind_null(stmt_, i));
    return *this;
  }
  SqliteStatement& bind(int i, std::int64_t value) {
    check(sqlite3_bind_int64(stmt_, i, value));
    return *this;
  }
  /// Runs to completion (or to the first row); true when a row is ready.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail(rc);
    return false;
  }
  std::string columnText(int i) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return text ? std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i))) : std::string();
  }
  /// Ready for the next use; releases the bound text.
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  /// Rows the last step() changed.
  int changes() const { return sqlite3_changes(db_); }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail(rc);
  }
  [[noreturn]] void fail(int rc) {
    const std::string message = sqlite3_errmsg(db_);
    sqlite3_reset(stmt_);
    throw SqliteError(std::string(sqlite3_errstr(rc)) + ": " + message);
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

/// Resets a statement when leaving a scope, error or not.
class Used {
 public:
  explicit Used(SqliteStatement& s) : s_(s) {}
  ~Used() { s_.reset(); }
  Used(const Used&) = delete;
  Used& operator=(const Used&) = delete;
  SqliteStatement* operator->() { return &s_; }

 private:
  SqliteStatement& s_;
};

}  // namespace eventflow::sqlite
