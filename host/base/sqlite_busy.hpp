#pragma once
// A busy handler for connections of this process that share one SQLite file
// (the store's writer and the sqlite sink's). SQLite's own (busy_timeout)
// sleeps 1, 2, 5, 10 … 100 ms between tries: under the mixed load the
// store's group commit takes the write lock every 1–3 ms, so a sink that
// found it taken slept ever longer, its workers idled (10 % of the CPU) and
// processing fell to 8.9k events/s while ingest ran at 15k/s. Trying again
// every 100 µs hands the lock over within a commit's length.

#include <sqlite3.h>

#include <chrono>
#include <thread>

namespace eventflow::sqlite {

class BusyWait {
 public:
  explicit BusyWait(std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) : limit_(limit) {}
  /// Installs the handler on `db`; this object must outlive the connection's use.
  void install(sqlite3* db) { sqlite3_busy_handler(db, &BusyWait::callback, this); }

 private:
  static int callback(void* self, int tries) {
    auto& me = *static_cast<BusyWait*>(self);
    const auto now = std::chrono::steady_clock::now();
    if (tries == 0) me.since_ = now;  // a connection is used by one thread at a time
    if (now - me.since_ >= me.limit_) return 0;  // SQLITE_BUSY, as busy_timeout would
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    return 1;
  }
  std::chrono::milliseconds limit_;
  std::chrono::steady_clock::time_point since_{};
};

/// Held around a write transaction by the connections of this process that
/// write the store's file (the store's group commit, the sqlite sink's), so
/// that one waits for the other's COMMIT on a mutex instead of finding the
/// write lock taken and polling (BusyWait): the poll's 100 µs sleeps lasted
/// 0.3 ms on a busy machine, in one commit of the store's in seven. SQLite's
/// static mutex for applications, so the host and a plugin library, each
/// with its own copy of this header, share the one libsqlite3 has. A no-op
/// if SQLite was built without threads. Another process (eventflow dlq …)
/// still meets the lock and BusyWait.
class WriteTurn {
 public:
  WriteTurn() : mutex_(sqlite3_mutex_alloc(SQLITE_MUTEX_STATIC_APP1)) { sqlite3_mutex_enter(mutex_); }
  ~WriteTurn() { sqlite3_mutex_leave(mutex_); }
  WriteTurn(const WriteTurn&) = delete;
  WriteTurn& operator=(const WriteTurn&) = delete;

 private:
  sqlite3_mutex* mutex_;
};

}  // namespace eventflow::sqlite
