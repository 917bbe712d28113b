#include "postgres.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include <libpq-fe.h>

#include <eventflow/time.hpp>

#include "base/tables.hpp"
#include "common/combiner.hpp"
#include "common/processed_row.hpp"
#include "pg/connection.hpp"
#include "pg/copy_text.hpp"

namespace eventflow::plugins {
namespace {

bool isIdentifier(std::string_view name) {
  const auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  if (name.empty() || !alpha(name.front())) return false;
  for (const char c : name)
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

// Errors name the url, and a url carries its password either as
// user:password@host or as a password= parameter.
std::string redactUrl(std::string url) {
  if (const std::size_t scheme = url.find("://"); scheme != std::string::npos) {
    const std::size_t start = scheme + 3;
    const std::string_view authority = std::string_view(url).substr(start, url.find_first_of("/?", start) - start);
    const std::size_t at = authority.rfind('@');
    const std::size_t colon = authority.find(':');
    if (at != std::string_view::npos && colon != std::string_view::npos && colon < at)
      url.replace(start + colon + 1, at - colon - 1, "***");
  }
  constexpr std::string_view kPassword = "password=";
  for (std::size_t pos = url.find(kPassword); pos != std::string::npos; pos = url.find(kPassword, pos)) {
    const std::size_t value = pos + kPassword.size();
    std::size_t end;
    if (value < url.size() && url[value] == '\'') {
      end = url.find('\'', value + 1);
      end = end == std::string::npos ? url.size() : end + 1;
    } else {
      end = std::min(url.find_first_of("& ", value), url.size());
    }
    url.replace(value, end - value, "***");
    pos = value + 3;
  }
  return url;
}

bool isPostgresUrl(std::string_view url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

using pg::oneLine;
using PgResult = pg::Result;

enum class Failure : std::uint8_t { none, data, unavailable };

struct Outcome {
  Failure failure = Failure::none;
  std::string message;
};

// What a failed statement means for the rows it carried.
Outcome failureOf(PGconn* conn, const pg::Status& status) {
  if (PQstatus(conn) != CONNECTION_OK || status.sqlstate.empty()) return {Failure::unavailable, status.message};
  // Class 22 (data exception) and 23 (integrity constraint violation) come
  // from the values of some row; anything else is the server's or the
  // connection's and would fail every row alike.
  const std::string_view code = status.sqlstate;
  const bool data = code.starts_with("22") || code.starts_with("23");
  const std::string& message = status.primary.empty() ? status.message : status.primary;
  return {data ? Failure::data : Failure::unavailable, message + " (SQLSTATE " + status.sqlstate + ")"};
}

Outcome run(PGconn* conn, const std::string& sql, const std::string* parameter = nullptr) {
  const char* value = parameter == nullptr ? nullptr : parameter->c_str();
  const PgResult result(parameter == nullptr
                            ? PQexec(conn, sql.c_str())
                            : PQexecParams(conn, sql.c_str(), 1, nullptr, &value, nullptr, nullptr, 0));
  const pg::Status status = pg::statusOf(conn, result.get());
  if (status.ok) return {};
  return failureOf(conn, status);
}

// `sql` with `batch` as its one parameter, prepared once per server session
// (`session`: the backend pid it was prepared in). Parsing and planning the
// INSERT for every small call was a large part of PostgreSQL's CPU under
// single posts (issue 13). A reset connection is a new session (a new
// backend pid) that knows no prepared statement.
Outcome runPrepared(PGconn* conn, const std::string& sql, int& session, const std::string& batch) {
  if (PQbackendPID(conn) != session) {
    const PgResult made(PQprepare(conn, "ef_sink_insert", sql.c_str(), 1, nullptr));
    const pg::Status status = pg::statusOf(conn, made.get());
    if (!status.ok) return failureOf(conn, status);
    session = PQbackendPID(conn);
  }
  const char* value = batch.c_str();
  const PgResult result(PQexecPrepared(conn, "ef_sink_insert", 1, &value, nullptr, nullptr, 0));
  const pg::Status status = pg::statusOf(conn, result.get());
  if (status.ok) return {};
  if (status.sqlstate == "26000") session = 0;  // lost behind our back: prepared again next time
  return failureOf(conn, status);
}

void rollbackQuietly(PGconn* conn) noexcept {
  const PGTransactionStatusType status = PQtransactionStatus(conn);
  if (status == PQTRANS_INTRANS || status == PQTRANS_INERROR) PQclear(PQexec(conn, "ROLLBACK"));
}

// libpq prints notices on stderr unless told otherwise, and CREATE TABLE IF
// NOT EXISTS sends one at every start.
void forwardNotice(void* context, const char* message) noexcept {
  try {
    static_cast<Context*>(context)->log(LogLevel::debug, "postgres: " + oneLine(message));
  } catch (...) {
  }
}

// PostgreSQL keeps microseconds; sending the parsed instant rather than the
// text means the server never parses a string differently from
// parseRfc3339 or refuses one it accepted (2026-02-31 rolls over there).
std::optional<std::string> timestampColumn(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  const std::optional<SystemTime> parsed = parseRfc3339(*text);
  // min and max are parseRfc3339's clamps for years it cannot represent: a
  // clamped instant would be a wrong one.
  if (!parsed || *parsed == SystemTime::min() || *parsed == SystemTime::max()) return std::nullopt;
  const auto seconds = std::chrono::floor<std::chrono::seconds>(*parsed);
  const std::string micros =
      std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(*parsed - seconds).count());
  std::string formatted = formatRfc3339(seconds);  // ends in ".000Z"
  formatted.replace(formatted.size() - 4, 3, std::string(6 - micros.size(), '0') + micros);
  return formatted;
}

nlohmann::json orNull(const std::optional<std::string>& value) {
  if (!value) return nullptr;
  return *value;
}

// The row's values as they go to the server, whichever way they travel.
ProcessedRow columnsOf(const Event& event) {
  ProcessedRow row = makeProcessedRow(event);
  row.timestamp = timestampColumn(row.timestamp);
  return row;
}

std::string rowJson(const ProcessedRow& row, const std::string& processed_at) {
  nlohmann::json object = nlohmann::json::object();
  object["event_id"] = row.event_id;
  object["event_type"] = row.event_type;
  object["user_id"] = orNull(row.user_id);
  object["timestamp"] = orNull(row.timestamp);
  object["properties"] = orNull(row.properties);
  object["enriched_data"] = row.enriched_data;
  object["pipeline"] = row.pipeline;
  object["processed_at"] = processed_at;
  object["attempts"] = row.attempts;
  return dumpProcessedJson(object);
}

// The rows in COPY's text format, in the column order of copy_sql_; nullopt
// when a value cannot travel that way.
std::optional<std::string> copyData(const std::vector<ProcessedRow>& rows, const std::string& processed_at) {
  std::size_t size = 0;
  for (const ProcessedRow& row : rows)
    size += row.event_id.size() + row.event_type.size() + row.user_id.value_or("").size() +
            row.timestamp.value_or("").size() + row.properties.value_or("").size() + row.enriched_data.size() +
            row.pipeline.size() + processed_at.size() + 32;
  std::string data;
  data.reserve(size + size / 16);
  for (const ProcessedRow& row : rows) {
    using pg::copy_text::nullable;
    if (!pg::copy_text::appendRow(data, {row.event_id, row.event_type, nullable(row.user_id), nullable(row.timestamp),
                                     nullable(row.properties), row.enriched_data, row.pipeline, processed_at,
                                     std::to_string(row.attempts)}))
      return std::nullopt;
  }
  return data;
}

// COPY has no ON CONFLICT: an id twice in one batch would fail it for sure.
// Ids compare as PostgreSQL's uuid does, by their hex digits in any case
// (a spelling missed here only costs the failed COPY).
bool distinctIds(const std::vector<ProcessedRow>& rows) {
  std::vector<std::string> ids;
  ids.reserve(rows.size());
  for (const ProcessedRow& row : rows) {
    std::string digits;
    digits.reserve(32);
    for (const char c : row.event_id)
      if (std::isxdigit(static_cast<unsigned char>(c)) != 0)
        digits += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ids.push_back(std::move(digits));
  }
  std::sort(ids.begin(), ids.end());
  return std::adjacent_find(ids.begin(), ids.end()) == ids.end();
}

std::string arrayOf(const std::vector<std::string>& rows, std::size_t first, std::size_t last) {
  std::size_t size = 2;
  for (std::size_t i = first; i < last; ++i) size += rows[i].size() + 1;
  std::string array;
  array.reserve(size);
  array += '[';
  for (std::size_t i = first; i < last; ++i) {
    if (i != first) array += ',';
    array += rows[i];
  }
  array += ']';
  return array;
}

}  // namespace

// The instances of one url and table in this process (one per worker, of
// every pipeline) hand their rows to each other: whichever finds no write
// running writes every waiting worker's rows in one call on its own
// connection, and each worker gets its rows' results back. Six workers
// writing by turns made 4.4 rows per INSERT and as many transactions; one
// worker per pipeline instead of two ran the mixed load 23 % faster on
// Redis + PostgreSQL. A refused row is still rejected alone; a failure of
// the server is a retry of every event of the call, as it was of each.
class PostgresSink::Group {
 public:
  static std::shared_ptr<Group> of(const std::string& key) {
    return sharedByKey<Group>(key, [] { return std::make_shared<Group>(); });
  }

  std::vector<Result> write(PostgresSink& self, std::vector<ProcessedRow>& rows) {
    Batch mine{&rows, {}};
    combiner_.join(mine, [&self](std::vector<Batch*>& group) noexcept {
      std::vector<Result> results;
      if (group.size() == 1) {
        results = self.writeRows(*group.front()->rows);
      } else {
        std::vector<ProcessedRow> all;
        for (Batch* b : group) all.insert(all.end(), std::make_move_iterator(b->rows->begin()),
                                          std::make_move_iterator(b->rows->end()));
        results = self.writeRows(all);
      }
      std::size_t at = 0;
      for (Batch* b : group) {
        const std::size_t n = b->rows->size();
        b->results.assign(std::make_move_iterator(results.begin() + static_cast<std::ptrdiff_t>(at)),
                          std::make_move_iterator(results.begin() + static_cast<std::ptrdiff_t>(at + n)));
        at += n;
      }
    });
    return std::move(mine.results);
  }

 private:
  struct Batch {
    std::vector<ProcessedRow>* rows;
    std::vector<Result> results;
  };
  Combiner<Batch> combiner_;
};

PostgresSink::PostgresSink(const nlohmann::json& config, Context& context) : context_(context) {
  if (!config.is_object()) throw std::invalid_argument("postgres: config must be an object");
  if (const auto it = config.find("table"); it != config.end()) {
    if (!it->is_string() || !isIdentifier(it->get_ref<const std::string&>()))
      throw std::invalid_argument("postgres: table " + it->dump() +
                                  " is not an identifier ([A-Za-z_][A-Za-z0-9_]*)");
    table_ = it->get<std::string>();
  }
  if (const auto it = config.find("batch_size"); it != config.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1)
      throw std::invalid_argument("postgres: batch_size must be a positive integer");
    batch_size_ = static_cast<std::size_t>(it->get<std::int64_t>());
  }
  std::string url;
  if (const auto it = config.find("url"); it != config.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty())
      throw std::invalid_argument("postgres: url must be a non-empty string");
    url = it->get<std::string>();
  } else {
    url = context.setting("store.url");
    if (!isPostgresUrl(url))
      throw std::invalid_argument(
          "postgres: the stage config has no url and the host setting store.url " +
          (url.empty() ? std::string("is empty")
                       : "'" + redactUrl(url) + "' is not a postgresql:// or postgres:// url") +
          "; set url in the stage config or use a PostgreSQL store");
  }

  // The rows travel as one JSON array parameter. properties and enriched_data
  // are JSON text inside it and are cast here, so any JSON value (a bare
  // string too) arrives as the jsonb of the text the sqlite sink stores.
  insert_sql_ = "INSERT INTO " + table_ +
                " (event_id, event_type, user_id, timestamp, properties, enriched_data, pipeline, processed_at,"
                " attempts) SELECT event_id, event_type, user_id, timestamp, properties::jsonb, enriched_data::jsonb,"
                " pipeline, processed_at, attempts FROM json_to_recordset($1::json) AS x(event_id uuid,"
                " event_type text, user_id text, timestamp timestamptz, properties text, enriched_data text, pipeline text,"
                " processed_at timestamptz, attempts integer) ON CONFLICT (event_id) DO NOTHING";

  copy_sql_ = "COPY " + table_ +
              " (event_id, event_type, user_id, timestamp, properties, enriched_data, pipeline, processed_at,"
              " attempts) FROM STDIN";

  // libpq's own parser, as it will read the url: a malformed one is a
  // config error, named, and `eventflow validate` reports it too.
  const auto info = pg::parseConnInfo(url, config.contains("url") ? "postgres: url" : "postgres: store.url");
  if (!info) throw std::invalid_argument(info.error().message);

  // `eventflow validate`: the config is checked; no connection is made.
  if (context.setting("validate_only") == "1") return;

  // Defaults first: the url's own values override them. Without a timeout
  // an unroutable host would hold start-up for minutes.
  auto connected = pg::connect(*info, {{"connect_timeout", "10"}, {"application_name", "eventflow-sink-postgres"}});
  if (!connected)
    throw std::runtime_error("postgres: cannot connect to " + redactUrl(url) + ": " + connected.error().message);
  conn_ = std::move(*connected);
  group_ = Group::of(url + "\n" + table_);
  PGconn* conn = conn_.get();
  PQsetNoticeProcessor(conn, &forwardNotice, &context_);

  // Workers start together, and concurrent CREATE TABLE IF NOT EXISTS of one
  // table can still fail on a catalog unique index: the lock makes the others
  // wait and then find the table.
  const std::string lock_key = "eventflow sink postgres " + table_;
  Outcome created = run(conn, "BEGIN");
  if (created.failure == Failure::none) created = run(conn, "SELECT pg_advisory_xact_lock(hashtext($1))", &lock_key);
  if (created.failure == Failure::none)
    created = run(conn, tables::processedEventsDdl(tables::Engine::postgresql, table_));
  if (created.failure == Failure::none) created = run(conn, "COMMIT");
  if (created.failure != Failure::none) {
    rollbackQuietly(conn);
    throw std::runtime_error("postgres: cannot create table " + table_ + " in " + redactUrl(url) + ": " +
                             created.message);
  }
}

PostgresSink::~PostgresSink() = default;

std::vector<Result> PostgresSink::write(std::span<Event* const> events) {
  if (events.empty()) return {};
  std::vector<ProcessedRow> rows;
  try {
    rows.reserve(events.size());
    for (const Event* event : events) rows.push_back(columnsOf(*event));
  } catch (const std::exception& e) {
    return retryAll(events.size(), e.what());
  }
  return group_->write(*this, rows);
}

std::vector<Result> PostgresSink::writeRows(std::vector<ProcessedRow>& rows) {
  // Every path below answers one result per row; anything short is a retry.
  std::string error;
  try {
    const std::string processed_at = formatRfc3339(std::chrono::system_clock::now());
    if (rows.size() >= pg::kCopyFromRows && distinctIds(rows)) {
      if (const std::optional<std::string> data = copyData(rows, processed_at)) {
        if (std::optional<std::vector<Result>> copied = copyAll(*data, rows.size())) return std::move(*copied);
      }
    }
    std::vector<std::string> json;
    json.reserve(rows.size());
    for (const ProcessedRow& row : rows) json.push_back(rowJson(row, processed_at));
    auto results = insertAll(json);
    if (results.size() != rows.size()) results.resize(rows.size(), Result::retry("postgres " + table_ + ": no result"));
    return results;
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception";
  }
  rollbackQuietly(conn_.get());
  return retryAll(rows.size(), error);
}

std::optional<std::vector<Result>> PostgresSink::copyAll(const std::string& data, std::size_t count) {
  PGconn* conn = conn_.get();
  for (bool reset = false;; reset = true) {
    if (PQstatus(conn) != CONNECTION_OK) {
      PQreset(conn);
      if (PQstatus(conn) != CONNECTION_OK)
        return retryAll(count, "connection lost and reconnecting failed: " + oneLine(PQerrorMessage(conn)));
    }
    rollbackQuietly(conn);
    const pg::Status status = pg::copyIn(conn, copy_sql_, data);
    if (status.ok) return std::vector<Result>(count, Result::ok());
    const Outcome copied = failureOf(conn, status);
    // COPY is all or nothing and knows no ON CONFLICT: a redelivered event
    // (23505) or one refused value leaves no row behind, and the INSERT
    // path then skips the one and finds the other. Any other error it meets
    // again, and answers as before.
    if (PQstatus(conn) == CONNECTION_OK) {
      context_.log(LogLevel::debug, "postgres " + table_ + ": COPY of " + std::to_string(count) +
                                        " rows failed (" + copied.message + "); inserting them instead");
      return std::nullopt;
    }
    // As in insertAlone: the COPY failed whole, so it runs once more on a
    // new connection; one that committed before the connection went meets
    // its own rows (23505) and ends on the INSERT path.
    if (reset) return retryAll(count, copied.message);
  }
}

std::vector<Result> PostgresSink::insertAll(const std::vector<std::string>& rows) {
  if (rows.size() <= batch_size_) return insertAlone(rows);
  if (const auto failed = begin()) return retryAll(rows.size(), *failed);
  PGconn* conn = conn_.get();
  for (std::size_t first = 0; first < rows.size();) {
    const std::size_t last = first + std::min(batch_size_, rows.size() - first);
    const std::string batch = arrayOf(rows, first, last);
    const Outcome inserted = runPrepared(conn, insert_sql_, prepared_session_, batch);
    if (inserted.failure == Failure::unavailable) {
      rollbackQuietly(conn);
      return retryAll(rows.size(), inserted.message);
    }
    if (inserted.failure == Failure::data) {
      rollbackQuietly(conn);
      context_.log(LogLevel::warn, "postgres " + table_ + ": a row was refused (" + inserted.message +
                                       "); writing the rows of this call one by one");
      return insertRowByRow(rows, first);
    }
    first = last;
  }
  if (const Outcome committed = run(conn, "COMMIT"); committed.failure != Failure::none) {
    rollbackQuietly(conn);
    return retryAll(rows.size(), committed.message);
  }
  return std::vector<Result>(rows.size(), Result::ok());
}

std::vector<Result> PostgresSink::insertAlone(const std::vector<std::string>& rows) {
  // One statement is its own transaction: BEGIN and COMMIT around it would
  // cost two more round trips per call.
  PGconn* conn = conn_.get();
  const std::string batch = arrayOf(rows, 0, rows.size());
  for (bool reset = false;; reset = true) {
    if (PQstatus(conn) != CONNECTION_OK) {
      PQreset(conn);
      if (PQstatus(conn) != CONNECTION_OK)
        return retryAll(rows.size(), "connection lost and reconnecting failed: " + oneLine(PQerrorMessage(conn)));
    }
    rollbackQuietly(conn);
    const Outcome inserted = runPrepared(conn, insert_sql_, prepared_session_, batch);
    if (inserted.failure == Failure::none) return std::vector<Result>(rows.size(), Result::ok());
    if (inserted.failure == Failure::data) {
      context_.log(LogLevel::warn, "postgres " + table_ + ": a row was refused (" + inserted.message +
                                       "); writing the rows of this call one by one");
      return insertRowByRow(rows, 0);
    }
    // A restarted server or a killed backend shows only when the connection
    // is next used; the statement failed whole, so it runs once more on a
    // new connection.
    if (reset || PQstatus(conn) == CONNECTION_OK) return retryAll(rows.size(), inserted.message);
  }
}

std::vector<Result> PostgresSink::insertRowByRow(const std::vector<std::string>& rows, std::size_t refused_first) {
  if (const auto failed = begin()) return retryAll(rows.size(), *failed);
  PGconn* conn = conn_.get();
  // A savepoint around each statement undoes only a refused one; everything
  // else stays in the one transaction of this call.
  const auto insert = [&](std::size_t first, std::size_t last) -> Outcome {
    if (Outcome saved = run(conn, "SAVEPOINT eventflow_rows"); saved.failure != Failure::none)
      return {Failure::unavailable, std::move(saved.message)};
    const std::string batch = arrayOf(rows, first, last);
    Outcome inserted = runPrepared(conn, insert_sql_, prepared_session_, batch);
    if (inserted.failure == Failure::unavailable) return inserted;
    Outcome ended = run(conn, inserted.failure == Failure::none ? "RELEASE SAVEPOINT eventflow_rows"
                                                                : "ROLLBACK TO SAVEPOINT eventflow_rows");
    if (ended.failure != Failure::none) return {Failure::unavailable, std::move(ended.message)};
    return inserted;
  };

  std::vector<Result> results(rows.size(), Result::ok());
  for (std::size_t first = 0; first < rows.size();) {
    const std::size_t last = first + std::min(batch_size_, rows.size() - first);
    // Batches other than the refused one most likely go in whole.
    const Outcome batch = first == refused_first ? Outcome{Failure::data, {}} : insert(first, last);
    if (batch.failure == Failure::unavailable) {
      rollbackQuietly(conn);
      return retryAll(rows.size(), batch.message);
    }
    for (std::size_t i = first; batch.failure == Failure::data && i < last; ++i) {
      const Outcome row = insert(i, i + 1);
      if (row.failure == Failure::unavailable) {
        rollbackQuietly(conn);
        return retryAll(rows.size(), row.message);
      }
      if (row.failure == Failure::data)
        results[i] = Result::reject("postgres " + table_ + ": " + row.message, "sink_rejected");
    }
    first = last;
  }
  if (const Outcome committed = run(conn, "COMMIT"); committed.failure != Failure::none) {
    rollbackQuietly(conn);
    return retryAll(rows.size(), committed.message);
  }
  return results;
}

std::optional<std::string> PostgresSink::begin() {
  PGconn* conn = conn_.get();
  bool reset = false;
  while (true) {
    if (PQstatus(conn) != CONNECTION_OK) {
      if (reset) return "connection lost and reconnecting failed: " + oneLine(PQerrorMessage(conn));
      PQreset(conn);
      reset = true;
      continue;
    }
    rollbackQuietly(conn);
    const Outcome begun = run(conn, "BEGIN");
    if (begun.failure == Failure::none) return std::nullopt;
    // A restarted server or a killed backend shows only when the connection
    // is next used, and nothing of this call has been sent yet: reconnecting
    // once here spares every event a retry.
    if (reset || PQstatus(conn) == CONNECTION_OK) return begun.message;
  }
}

std::vector<Result> PostgresSink::retryAll(std::size_t count, const std::string& message) const {
  return std::vector<Result>(count, Result::retry("postgres " + table_ + ": " + message, "sink_unavailable"));
}

}  // namespace eventflow::plugins
