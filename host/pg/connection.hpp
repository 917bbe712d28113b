#pragma once
// A small libpq layer shared by the PostgreSQL store and the postgres sink:
// connection strings parsed by libpq itself, connections, statements with
// text or binary parameters, and COPY. Standard library and libpq only, so
// the sink (a plugin, which must not link the host) can link it too.

#include <libpq-fe.h>

#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/expected.hpp"

namespace eventflow::pg {

struct ResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

struct ConnDeleter {
  void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;

/// libpq messages end in a newline and continue on tab-indented lines; an
/// error value or a log line is one line.
std::string oneLine(const char* text);

/// A connection string as libpq reads it: a postgresql:// (or postgres://)
/// URL, percent-decoded, or key=value pairs with libpq's quoting.
struct ConnInfo {
  std::vector<std::pair<std::string, std::string>> params;  // keyword, value; only those given
  /// Where it points, for messages: host, port, database and user, never
  /// the password.
  std::string describe() const;
};

/// Parses `text` with PQconninfoParse, so a password may hold '=', spaces,
/// quotes or backslashes (percent-encoded in a URL). An error names `key`
/// (the setting the text came from) and what libpq found wrong.
Expected<ConnInfo> parseConnInfo(const std::string& text, std::string_view key);

/// Connects with `defaults` first, then the parsed values, which win.
/// An error carries libpq's message.
Expected<Conn> connect(const ConnInfo& info, const std::vector<std::pair<std::string, std::string>>& defaults);

/// How a statement or a COPY ended.
struct Status {
  bool ok = true;
  std::string sqlstate{};  // of a server error; empty otherwise
  std::string message{};   // one line: libpq's whole message (severity, detail)
  std::string primary{};   // the server's primary message alone, when it sent one
  bool uniqueViolation() const { return sqlstate == "23505"; }
};

/// The status of `result` (null: the connection's error).
Status statusOf(PGconn* conn, const PGresult* result);

/// Runs `sql`, a COPY … FROM STDIN, sending `data` (text or binary format,
/// as the statement says), and leaves the connection idle whatever happens:
/// every result is read, and a COPY that cannot be ended costs the session
/// (PQreset). COPY is all or nothing and knows no ON CONFLICT: the caller
/// decides what a failure means for its rows.
Status copyIn(PGconn* conn, const std::string& sql, std::string_view data);

/// Rows in one write from which COPY is used instead of an INSERT, by the
/// store (raw_events, a group commit) and the postgres sink
/// (processed_events, a worker's batch). COPY costs a second round trip (the
/// server answers the COPY command before the data goes) but far less server
/// CPU per row: from 32 rows on the sink's COPY took end to end from 21.4k to
/// 23.8k events/s with a quarter less PostgreSQL CPU per event, and raw_events
/// went 2.2-2.7x cheaper on the server (docs/benchmarks.md). 64 for both
/// measured 16% slower end to end than 32 for the sink: a worker's batch
/// (then up to 64, now 512) is often smaller than 64 (docs/benchmarks.md,
/// issue 12).
inline constexpr std::size_t kCopyFromRows = 32;

/// One connection for a caller's statements: prepared statements kept per
/// session, and a statement that finds the connection broken outside a
/// transaction (a server restart shows only then) runs once more on a new
/// one. Not thread-safe.
class Connection {
 public:
  using Notice = void (*)(void* arg, const char* message);

  /// `notice`: where the server's NOTICEs go (libpq prints them on stderr).
  /// `setup`: statements run at the start of every session, this one and
  /// each after a reconnect (e.g. SET for the session's settings).
  static Expected<std::unique_ptr<Connection>> open(const ConnInfo& info, Notice notice = nullptr,
                                                    std::string setup = {});

  PGconn* raw() { return conn_.get(); }

  /// Runs one statement (or a script, without parameters); text in, text out.
  Expected<Result> exec(const std::string& sql, const std::vector<std::string>& params = {});
  /// exec with every parameter in PostgreSQL's binary format; not prepared.
  Expected<Result> execBinary(const std::string& sql, const std::vector<std::string>& params);
  /// For the hot statements: prepared once per session under `name` and run
  /// by name after that, so PostgreSQL parses and plans them once.
  /// `binary`: every parameter is in PostgreSQL's binary format.
  Expected<Result> prepared(const char* name, const std::string& sql, const std::vector<std::string>& params,
                            bool binary = false);
  /// Like prepared, for an INSERT that would rather fail than probe for
  /// conflicts: false, with nothing inserted, when a row repeats a unique key.
  /// Outside a transaction only (inside one the failure aborts it).
  Expected<bool> preparedInsert(const char* name, const std::string& sql, const std::vector<std::string>& params,
                                bool binary = false);
  /// copyIn on this connection; false, with nothing copied, when a row
  /// would repeat a unique key.
  Expected<bool> copy(const std::string& sql, std::string_view data);

 private:
  Connection(Conn conn, Notice notice, std::string setup);
  Expected<void> connected();
  Expected<void> newSession();
  Expected<bool> copyOnce(const std::string& sql, std::string_view data);
  Expected<Result> execNamed(const char* name, const std::string& sql, const std::vector<std::string>& params,
                             bool binary);
  Expected<Result> execOnce(const char* name, const std::string& sql, const std::vector<std::string>& params,
                            bool binary);
  void rollbackFailed();

  Conn conn_;
  std::string setup_;
  // The server process of the session that prepared_ belongs to: a reset
  // anywhere (copyIn's too) starts a session that knows none of them.
  int session_ = 0;
  std::set<std::string> prepared_;
  std::string last_state_;  // SQLSTATE of the last statement, empty if it succeeded
};

/// The value at (row, col) as text; empty for NULL.
inline std::string text(const Result& r, int row, int col) {
  return PQgetisnull(r.get(), row, col) ? std::string() : std::string(PQgetvalue(r.get(), row, col));
}

}  // namespace eventflow::pg
