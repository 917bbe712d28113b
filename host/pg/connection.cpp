#include "pg/connection.hpp"

#include <algorithm>

namespace eventflow::pg {

std::string oneLine(const char* text) {
  std::string line;
  bool space = false;
  for (const char* c = text == nullptr ? "" : text; *c != '\0'; ++c) {
    if (*c == '\n' || *c == '\t' || *c == '\r') {
      space = !line.empty();
      continue;
    }
    if (space) line += ' ';
    space = false;
    line += *c;
  }
  return line;
}

std::string ConnInfo::describe() const {
  std::string host = "localhost", port, dbname, user;
  for (const auto& [key, value] : params) {
    if (key == "host" || key == "hostaddr") host = value;
    else if (key == "port") port = value;
    else if (key == "dbname") dbname = value;
    else if (key == "user") user = value;
  }
  std::string out = host + (port.empty() ? "" : ":" + port);
  if (!dbname.empty()) out += "/" + dbname;
  if (!user.empty()) out += " as " + user;
  return out;
}

Expected<ConnInfo> parseConnInfo(const std::string& text, std::string_view key) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(text.c_str(), &error);
  if (options == nullptr) {
    std::string message = error != nullptr ? oneLine(error) : "out of memory";
    PQfreemem(error);
    return makeError(std::string(key) + " is not a PostgreSQL URL or connection string: " + message);
  }
  ConnInfo info;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o)
    if (o->val != nullptr) info.params.emplace_back(o->keyword, o->val);
  PQconninfoFree(options);
  return info;
}

Expected<Conn> connect(const ConnInfo& info, const std::vector<std::pair<std::string, std::string>>& defaults) {
  std::vector<const char*> keywords, values;
  for (const auto* list : {&defaults, &info.params})
    for (const auto& [key, value] : *list) {
      keywords.push_back(key.c_str());
      values.push_back(value.c_str());
    }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  // expand_dbname 0: the values are parsed already; a dbname that looks like
  // a URL is a database's name.
  Conn conn(PQconnectdbParams(keywords.data(), values.data(), 0));
  if (!conn) return makeError("out of memory");
  if (PQstatus(conn.get()) != CONNECTION_OK) return makeError(oneLine(PQerrorMessage(conn.get())));
  return conn;
}

Status statusOf(PGconn* conn, const PGresult* result) {
  const ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_COPY_IN) return {};
  Status out{.ok = false};
  if (result == nullptr) {
    out.message = oneLine(PQerrorMessage(conn));
    return out;
  }
  if (const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE)) out.sqlstate = state;
  if (const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY)) out.primary = primary;
  out.message = oneLine(PQresultErrorMessage(result));
  if (out.message.empty()) out.message = oneLine(PQerrorMessage(conn));
  return out;
}

Status copyIn(PGconn* conn, const std::string& sql, std::string_view data) {
  const Result started(PQexec(conn, sql.c_str()));
  if (!started || PQresultStatus(started.get()) != PGRES_COPY_IN) {
    Status failed = statusOf(conn, started.get());
    if (failed.ok) failed = {.ok = false, .message = "not a COPY FROM STDIN"};
    return failed;
  }
  // In pieces, so libpq's buffer stays small and a size always fits its int.
  constexpr std::size_t kPiece = std::size_t{1} << 16;
  bool sent = true;
  for (std::size_t at = 0; sent && at < data.size(); at += kPiece)
    sent = PQputCopyData(conn, data.data() + at, static_cast<int>(std::min(kPiece, data.size() - at))) == 1;
  Status outcome;
  if (!sent || PQputCopyEnd(conn, nullptr) != 1) outcome = {.ok = false, .message = oneLine(PQerrorMessage(conn))};
  // A refused row ends the COPY at once on the server, which then discards
  // the rest of the data; its error is one of the results read here. Every
  // result up to the null is read, or the next statement finds the
  // connection still busy with this one.
  while (PGresult* next = PQgetResult(conn)) {
    const Result result(next);
    const ExecStatusType status = PQresultStatus(next);
    if (status == PGRES_COMMAND_OK) continue;
    if (status == PGRES_COPY_IN) {
      // PQputCopyEnd failed and the COPY cannot end: only a new session
      // makes the connection usable again (the server drops the COPY).
      if (outcome.ok) outcome = {.ok = false, .message = "COPY did not end"};
      PQreset(conn);
      break;
    }
    if (outcome.ok) outcome = statusOf(conn, next);
  }
  return outcome;
}

Expected<std::unique_ptr<Connection>> Connection::open(const ConnInfo& info, Notice notice, std::string setup) {
  // Without a timeout an unroutable host would hold start-up for minutes.
  auto conn = connect(info, {{"connect_timeout", "10"}});
  if (!conn) return conn.error();
  std::unique_ptr<Connection> out(new Connection(std::move(*conn), notice, std::move(setup)));
  if (auto ok = out->newSession(); !ok) return ok.error();
  return out;
}

Connection::Connection(Conn conn, Notice notice, std::string setup) : conn_(std::move(conn)), setup_(std::move(setup)) {
  if (notice != nullptr) PQsetNoticeProcessor(conn_.get(), notice, nullptr);
}

Expected<void> Connection::newSession() {
  prepared_.clear();
  session_ = PQbackendPID(raw());
  if (setup_.empty()) return {};
  Result r(PQexec(raw(), setup_.c_str()));
  const Status status = statusOf(raw(), r.get());
  if (!status.ok) {
    session_ = 0;  // run it again next time
    return makeError("postgresql: session setup: " + status.message);
  }
  return {};
}

Expected<Result> Connection::exec(const std::string& sql, const std::vector<std::string>& params) {
  return execNamed({}, sql, params, false);
}

Expected<Result> Connection::execBinary(const std::string& sql, const std::vector<std::string>& params) {
  return execNamed(nullptr, sql, params, true);
}

Expected<Result> Connection::prepared(const char* name, const std::string& sql, const std::vector<std::string>& params,
                                      bool binary) {
  return execNamed(name, sql, params, binary);
}

Expected<bool> Connection::preparedInsert(const char* name, const std::string& sql,
                                          const std::vector<std::string>& params, bool binary) {
  auto r = execNamed(name, sql, params, binary);
  if (r) return true;
  if (last_state_ == "23505") return false;
  return r.error();
}

Expected<bool> Connection::copy(const std::string& sql, std::string_view data) {
  // As in execNamed: outside a transaction a failed COPY left nothing
  // behind, and a retry that meets rows it did commit gets false.
  const bool idle = PQtransactionStatus(raw()) == PQTRANS_IDLE;
  auto result = copyOnce(sql, data);
  if (!result && idle && PQstatus(raw()) == CONNECTION_BAD) return copyOnce(sql, data);
  return result;
}

Expected<void> Connection::connected() {
  PGconn* conn = raw();
  if (PQstatus(conn) != CONNECTION_OK) PQreset(conn);
  if (PQstatus(conn) != CONNECTION_OK) return makeError("postgresql: " + oneLine(PQerrorMessage(conn)));
  if (PQbackendPID(conn) != session_) return newSession();
  return {};
}

void Connection::rollbackFailed() {
  if (PQtransactionStatus(raw()) == PQTRANS_INERROR) Result(PQexec(raw(), "ROLLBACK"));
}

Expected<bool> Connection::copyOnce(const std::string& sql, std::string_view data) {
  if (auto ok = connected(); !ok) return ok.error();
  const Status status = copyIn(raw(), sql, data);
  rollbackFailed();
  if (status.uniqueViolation()) return false;
  if (!status.ok) return makeError("postgresql: " + status.message);
  return true;
}

Expected<Result> Connection::execNamed(const char* name, const std::string& sql, const std::vector<std::string>& params,
                                       bool binary) {
  // A connection broken by a server restart only shows when a statement
  // fails on it. Outside a transaction that statement can simply run again.
  const bool idle = PQtransactionStatus(raw()) == PQTRANS_IDLE;
  auto result = execOnce(name, sql, params, binary);
  if (!result && idle && PQstatus(raw()) == CONNECTION_BAD) return execOnce(name, sql, params, binary);
  return result;
}

Expected<Result> Connection::execOnce(const char* name, const std::string& sql, const std::vector<std::string>& params,
                                      bool binary) {
  PGconn* conn = raw();
  if (auto ok = connected(); !ok) return ok.error();
  if (name && !prepared_.count(name)) {
    Result made(PQprepare(conn, name, sql.c_str(), static_cast<int>(params.size()), nullptr));
    if (PQresultStatus(made.get()) != PGRES_COMMAND_OK) return makeError("postgresql: " + statusOf(conn, made.get()).message);
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
                            : PQexecParams(conn, sql.c_str(), n, nullptr, values.data(), lengths.data(), formats.data(), 0));
  const Status status = statusOf(conn, r.get());
  last_state_ = status.sqlstate;
  // 26000: the session lost its prepared statements (DISCARD ALL behind a
  // pooler, a reset this layer did not see); prepared again next time.
  if (status.sqlstate == "26000") prepared_.clear();
  if (!status.ok) {
    rollbackFailed();
    return makeError("postgresql: " + status.message);
  }
  return r;
}

}  // namespace eventflow::pg
