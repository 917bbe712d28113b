#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <eventflow/testing.hpp>
#include "../integration/backends.hpp"
#include "pg/connection.hpp"
#include "postgres.hpp"

namespace eventflow::plugins {
namespace {

using eventflow::testing::FakeContext;
using eventflow::testing::makeEvent;

struct ConnCloser {
  void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
struct ResultCloser {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};

// The url with its database replaced by `database` and `parameter` appended.
std::string withDatabase(const std::string& url, const std::string& database, const std::string& parameter = {}) {
  const std::size_t path = url.find('/', url.find("://") + 3);
  std::string base = path == std::string::npos ? url : url.substr(0, path);
  std::string query;
  if (path != std::string::npos) {
    const std::size_t question = url.find('?', path);
    if (question != std::string::npos) query = url.substr(question + 1);
  }
  if (!parameter.empty()) query += (query.empty() ? "" : "&") + parameter;
  return base + "/" + database + (query.empty() ? "" : "?" + query);
}

std::string databaseOf(const std::string& url) {
  const std::size_t path = url.find('/', url.find("://") + 3);
  if (path == std::string::npos) return {};
  return url.substr(path + 1, url.find('?', path) - path - 1);
}

class PostgresSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("EVENTFLOW_TEST_POSTGRES_URL");
    ASSERT_TRUE(url != nullptr && *url != '\0')
        << "EVENTFLOW_TEST_POSTGRES_URL is not set: this test needs a real PostgreSQL. Run it through "
           "scripts/test, which starts one and exports the variable (or scripts/start-services DIR; source DIR/env).";
    url_ = url;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "ef_sink_" + std::to_string(::getpid()) + "_" + info->name();
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    table_ = name.substr(0, 63);
    admin_.reset(PQconnectdb(url_.c_str()));
    ASSERT_EQ(PQstatus(admin_.get()), CONNECTION_OK) << PQerrorMessage(admin_.get());
    exec("SET client_min_messages = warning");
    exec("DROP TABLE IF EXISTS " + table_);
  }

  void TearDown() override {
    if (!admin_ || PQstatus(admin_.get()) != CONNECTION_OK) return;
    for (const std::string& sql : cleanup_) exec(sql);
    exec("DROP TABLE IF EXISTS " + table_);
  }

  FakeContext context() const { return FakeContext({}, {{"store.url", url_}}); }
  nlohmann::json config(nlohmann::json extra = nlohmann::json::object()) const {
    extra["table"] = table_;
    return extra;
  }

  void exec(const std::string& sql) {
    const std::unique_ptr<PGresult, ResultCloser> result(PQexec(admin_.get(), sql.c_str()));
    const auto status = PQresultStatus(result.get());
    ASSERT_TRUE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        << sql << ": " << PQresultErrorMessage(result.get());
  }

  // The first column of the first row; nullopt for NULL or no row.
  std::optional<std::string> value(const std::string& sql) {
    const std::unique_ptr<PGresult, ResultCloser> result(PQexec(admin_.get(), sql.c_str()));
    EXPECT_EQ(PQresultStatus(result.get()), PGRES_TUPLES_OK) << sql << ": " << PQresultErrorMessage(result.get());
    if (PQresultStatus(result.get()) != PGRES_TUPLES_OK || PQntuples(result.get()) == 0 ||
        PQgetisnull(result.get(), 0, 0))
      return std::nullopt;
    return std::string(PQgetvalue(result.get(), 0, 0));
  }

  std::optional<std::string> column(const std::string& expression, const std::string& id) {
    return value("SELECT " + expression + " FROM " + table_ + " WHERE event_id = '" + id + "'");
  }

  int count() { return std::stoi(value("SELECT COUNT(*) FROM " + table_).value_or("-1")); }

  static std::vector<Result> writeAll(PostgresSink& sink, std::span<Event> events) {
    std::vector<Event*> pointers;
    for (auto& event : events) pointers.push_back(&event);
    return sink.write(pointers);
  }

  // Another table of this test, dropped at its end. Identifiers stop at 63
  // bytes, so the suffix goes on a shortened name.
  std::string otherTable(const std::string& suffix) {
    std::string table = table_.substr(0, 50) + "_" + suffix;
    cleanup_.push_back("DROP TABLE IF EXISTS " + table);
    return table;
  }

  // Counts, for expectCopies, the COPY statements that reach `table` and
  // those of them that wrote their rows. A BEFORE STATEMENT
  // trigger runs before any row is read, an AFTER STATEMENT one only when
  // all went in; sequences keep their counts when a COPY is rolled back.
  void countCopies(const std::string& table) {
    const std::string prefix = table_.substr(0, 45) + "_c" + std::to_string(counters_.size());
    counters_[table] = prefix;
    cleanup_.push_back("DROP FUNCTION IF EXISTS " + prefix + "_count() CASCADE");
    cleanup_.push_back("DROP SEQUENCE IF EXISTS " + prefix + "_tried, " + prefix + "_done");
    exec("CREATE SEQUENCE " + prefix + "_tried");
    exec("CREATE SEQUENCE " + prefix + "_done");
    exec("CREATE FUNCTION " + prefix + "_count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF current_query() " +
         "ILIKE 'COPY%' THEN PERFORM nextval(CASE TG_WHEN WHEN 'BEFORE' THEN '" + prefix + "_tried' ELSE '" + prefix +
         "_done' END); END IF; RETURN NULL; END $$");
    for (const char* when : {"BEFORE", "AFTER"})
      exec("CREATE TRIGGER " + prefix + "_" + when + " " + when + " INSERT ON " + table +
           " FOR EACH STATEMENT EXECUTE FUNCTION " + prefix + "_count()");
  }

  int counted(const std::string& sequence) {
    return std::stoi(value("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM " + sequence).value_or("-1"));
  }
  void expectCopies(const std::string& table, int tried, int done) {
    EXPECT_EQ(counted(counters_.at(table) + "_tried"), tried) << "COPY statements begun on " << table;
    EXPECT_EQ(counted(counters_.at(table) + "_done"), done) << "COPY statements that wrote their rows on " << table;
  }

  // Every row of `other` equals the row of table_ with its event_id, column
  // by column; processed_at, the time of the write, only has the same form.
  void expectSameRows(const std::string& other, int rows) {
    EXPECT_EQ(count(), rows);
    EXPECT_EQ(value("SELECT COUNT(*) FROM " + other), std::to_string(rows));
    const std::string joined = " FROM " + table_ + " a JOIN " + other + " b USING (event_id)";
    EXPECT_EQ(value("SELECT COUNT(*)" + joined), std::to_string(rows));
    for (const char* name : {"event_type", "user_id", "timestamp", "properties", "enriched_data", "properties::text",
                             "enriched_data::text", "pipeline", "attempts"}) {
      const std::string a = std::string("a.") + name;
      const std::string b = std::string("b.") + name;
      EXPECT_EQ(value("SELECT COUNT(*)" + joined + " WHERE " + a + " IS DISTINCT FROM " + b), "0") << name;
    }
    for (const std::string& table : {table_, other})
      EXPECT_EQ(value("SELECT COUNT(*) FROM " + table +
                      " WHERE abs(extract(epoch FROM now() - processed_at)) > 60"
                      " OR extract(microseconds FROM processed_at)::bigint % 1000 <> 0"),
                "0")
          << table;
  }

  std::string url_;
  std::string table_;
  std::vector<std::string> cleanup_;
  std::map<std::string, std::string> counters_;  // table → prefix of its COPY counters
  std::unique_ptr<PGconn, ConnCloser> admin_;
};

std::string uuid(int n) {
  std::string digits = std::to_string(n);
  return "00000000-0000-4000-8000-" + std::string(12 - digits.size(), '0') + digits;
}

Event purchase(int n, nlohmann::json user_id) {
  Event event = makeEvent({{"event_type", "purchase"},
                           {"user_id", std::move(user_id)},
                           {"timestamp", "2026-01-02T05:04:05.123456+02:00"},
                           {"correlation_id", "c-1"},
                           {"properties", {{"amount", 1500}}},
                           {"category", "high_value"},
                           {"processed_by", "eventflow"}},
                          uuid(n));
  event.type = "purchase";
  event.pipeline = "purchases";
  return event;
}

std::vector<Event> purchases(int from, int to) {
  std::vector<Event> events;
  for (int n = from; n < to; ++n) events.push_back(purchase(n, "u-" + std::to_string(n)));
  return events;
}

TEST_F(PostgresSinkTest, WritesOneRowPerEventWithMappedColumns) {
  FakeContext ctx = context();
  PostgresSink sink(config(), ctx);
  std::vector<Event> events{purchase(1, "u-1"), purchase(2, 42)};
  events[1].attempt = 3;
  const auto results = writeAll(sink, events);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& result : results) EXPECT_TRUE(result.isOk()) << result.reason();
  EXPECT_EQ(count(), 2);

  const std::string id = uuid(2);
  EXPECT_EQ(column("event_type", id), "purchase");
  EXPECT_EQ(column("user_id", id), "42");
  EXPECT_EQ(column("user_id", uuid(1)), "u-1");
  EXPECT_EQ(column("timestamp = '2026-01-02T03:04:05.123456Z'::timestamptz", id), "t");
  EXPECT_EQ(column("properties->>'amount'", id), "1500");
  EXPECT_EQ(column("enriched_data->>'category'", id), "high_value");
  EXPECT_EQ(column("enriched_data = '{\"category\": \"high_value\", \"processed_by\": \"eventflow\"}'", id),
            "t");
  EXPECT_EQ(column("pipeline", id), "purchases");
  EXPECT_EQ(column("abs(extract(epoch FROM now() - processed_at)) < 60", id), "t");
  EXPECT_EQ(column("attempts", id), "3");
  EXPECT_EQ(column("attempts", uuid(1)), "1");
}

TEST_F(PostgresSinkTest, AbsentFieldsAndBadTimestampBecomeNull) {
  FakeContext ctx = context();
  PostgresSink sink(config(), ctx);
  std::vector<Event> events{makeEvent({{"event_type", "page_view"}}, uuid(1)),
                            makeEvent({{"event_type", "page_view"}, {"timestamp", "yesterday"}}, uuid(2)),
                            makeEvent({{"event_type", "page_view"}, {"timestamp", "2026-13-01T00:00:00Z"}}, uuid(3))};
  for (const auto& result : writeAll(sink, events)) EXPECT_TRUE(result.isOk()) << result.reason();
  EXPECT_EQ(count(), 3);
  EXPECT_EQ(column("user_id IS NULL AND properties IS NULL AND timestamp IS NULL", uuid(1)), "t");
  EXPECT_EQ(column("enriched_data::text", uuid(1)), "{}");
  EXPECT_EQ(column("timestamp IS NULL", uuid(2)), "t");
  EXPECT_EQ(column("timestamp IS NULL", uuid(3)), "t");
}

TEST_F(PostgresSinkTest, RedeliveredEventAddsNoRow) {
  FakeContext ctx = context();
  PostgresSink sink(config(), ctx);
  std::vector<Event> first{purchase(1, "u-1")};
  ASSERT_TRUE(writeAll(sink, first).front().isOk());

  std::vector<Event> again{purchase(1, "u-changed"), purchase(3, "u-3"), purchase(3, "u-3")};
  again.front().attempt = 2;
  for (const auto& result : writeAll(sink, again)) EXPECT_TRUE(result.isOk()) << result.reason();
  EXPECT_EQ(count(), 2);
  EXPECT_EQ(column("user_id", uuid(1)), "u-1");
  EXPECT_EQ(column("attempts", uuid(1)), "1");
}

TEST_F(PostgresSinkTest, WritesAllOfACallLargerThanBatchSize) {
  FakeContext ctx = context();
  PostgresSink sink(config({{"batch_size", 3}}), ctx);
  std::vector<Event> events = purchases(1, 12);
  const auto results = writeAll(sink, events);
  ASSERT_EQ(results.size(), 11u);
  for (const auto& result : results) EXPECT_TRUE(result.isOk()) << result.reason();
  EXPECT_EQ(count(), 11);
  EXPECT_EQ(column("user_id", uuid(11)), "u-11");
}

TEST_F(PostgresSinkTest, ConfiguredUrlWinsOverStoreUrl) {
  FakeContext ctx({}, {{"store.url", "sqlite:///nonexistent/events.db"}});
  PostgresSink sink(config({{"url", url_}}), ctx);
  std::vector<Event> events{purchase(1, "u-1")};
  ASSERT_TRUE(writeAll(sink, events).front().isOk());
  EXPECT_EQ(count(), 1);
}

TEST_F(PostgresSinkTest, RefusedRowIsRejectedAndTheOthersAreWritten) {
  FakeContext ctx = context();
  PostgresSink sink(config({{"batch_size", 2}}), ctx);
  exec("ALTER TABLE " + table_ + " ADD CONSTRAINT user_not_bad CHECK (user_id <> 'bad')");

  // Batches of two: [1,2] [3,bad] [5,not-a-uuid] [nul,8]. The first goes in
  // whole before the second fails, so the fallback also redoes it.
  std::vector<Event> events = purchases(1, 9);
  events[3] = purchase(4, "bad");
  events[5].id = "not-a-uuid";
  events[6].body["properties"] = {{"note", std::string("a\0b", 3)}};
  const auto results = writeAll(sink, events);
  ASSERT_EQ(results.size(), 8u);
  for (const std::size_t i : {0u, 1u, 2u, 4u, 7u}) EXPECT_TRUE(results[i].isOk()) << i << ": " << results[i].reason();
  for (const std::size_t i : {3u, 5u, 6u}) {
    EXPECT_EQ(results[i].status(), Result::Status::reject) << i;
    EXPECT_EQ(results[i].errorType(), "sink_rejected") << i;
  }
  EXPECT_NE(results[3].reason().find("user_not_bad"), std::string::npos) << results[3].reason();
  EXPECT_NE(results[5].reason().find("uuid"), std::string::npos) << results[5].reason();
  EXPECT_EQ(count(), 5);
  EXPECT_FALSE(column("event_id", uuid(4)).has_value());
  EXPECT_EQ(column("user_id", uuid(8)), "u-8");
}

// The workers' instances of one table write each other's rows: under
// concurrent calls every row lands, and each worker gets its own rows'
// results back, its refused row rejected and nobody else's.
TEST_F(PostgresSinkTest, WorkersSharingATableGetTheirOwnResults) {
  FakeContext ctx = context();
  std::vector<std::unique_ptr<PostgresSink>> sinks;
  for (int i = 0; i < 4; ++i) sinks.push_back(std::make_unique<PostgresSink>(config(), ctx));
  exec("ALTER TABLE " + table_ + " ADD CONSTRAINT user_not_bad CHECK (user_id <> 'bad')");
  constexpr int kCalls = 40, kBatch = 5;
  std::vector<std::future<std::pair<int, int>>> outcomes;  // ok, rejected
  for (int w = 0; w < 4; ++w)
    outcomes.push_back(std::async(std::launch::async, [&, w] {
      std::pair<int, int> seen{0, 0};
      for (int n = 0; n < kCalls; ++n) {
        const int first = 1 + (w * kCalls + n) * kBatch;
        std::vector<Event> events = purchases(first, first + kBatch);
        if (w == 3 && n % 4 == 0) events[2] = purchase(first + 2, "bad");  // worker 3's own refused rows
        for (const Result& r : writeAll(*sinks[static_cast<std::size_t>(w)], events)) {
          if (r.isOk()) ++seen.first;
          else if (r.status() == Result::Status::reject) ++seen.second;
        }
      }
      return seen;
    }));
  for (int w = 0; w < 4; ++w) {
    const auto [ok, rejected] = outcomes[static_cast<std::size_t>(w)].get();
    const int refused = w == 3 ? kCalls / 4 : 0;
    EXPECT_EQ(rejected, refused) << "worker " << w;
    EXPECT_EQ(ok, kCalls * kBatch - refused) << "worker " << w;
  }
  EXPECT_EQ(count(), 4 * kCalls * kBatch - kCalls / 4);
}

TEST_F(PostgresSinkTest, ServerErrorIsRetryForEveryEventAndTheSinkRecovers) {
  FakeContext ctx = context();
  PostgresSink sink(config(), ctx);
  // 80 rows go as a COPY first, whose failure must end the same way.
  for (const int size : {2, 80}) {
    SCOPED_TRACE(size);
    exec("DROP TABLE " + table_);
    std::vector<Event> events = purchases(1, 1 + size);
    const auto results = writeAll(sink, events);
    ASSERT_EQ(results.size(), static_cast<std::size_t>(size));
    for (const auto& result : results) {
      EXPECT_EQ(result.status(), Result::Status::retry);
      EXPECT_EQ(result.errorType(), "sink_unavailable");
      EXPECT_NE(result.reason().find(table_), std::string::npos) << result.reason();
    }

    // The failed transaction was rolled back, so the same connection goes on.
    exec("CREATE TABLE " + table_ +
         " (event_id uuid PRIMARY KEY, event_type text NOT NULL, user_id text, timestamp timestamptz,"
         " properties jsonb, enriched_data jsonb, pipeline text NOT NULL, processed_at timestamptz NOT NULL,"
         " attempts integer NOT NULL)");
    for (const auto& result : writeAll(sink, events)) EXPECT_TRUE(result.isOk()) << result.reason();
    EXPECT_EQ(count(), size);
  }
}

TEST_F(PostgresSinkTest, KilledConnectionIsResetOnce) {
  FakeContext ctx = context();
  PostgresSink sink(config({{"url", withDatabase(url_, databaseOf(url_), "application_name=" + table_)}}), ctx);
  exec("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = '" + table_ + "'");
  EXPECT_EQ(value("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = '" + table_ + "'"), "0");

  std::vector<Event> events = purchases(1, 3);
  for (const auto& result : writeAll(sink, events)) EXPECT_TRUE(result.isOk()) << result.reason();
  EXPECT_EQ(count(), 2);
}

TEST_F(PostgresSinkTest, LostServerIsRetryForEveryEvent) {
  const std::string database = table_ + "_db";
  FakeContext ctx = context();
  // 80 rows lose the server in the middle of a COPY, 2 in an INSERT.
  for (const int size : {2, 80}) {
    SCOPED_TRACE(size);
    exec("DROP DATABASE IF EXISTS " + database);
    exec("CREATE DATABASE " + database);
    PostgresSink sink(config({{"url", withDatabase(url_, database)}}), ctx);
    std::vector<Event> events = purchases(1, 3);
    for (const auto& result : writeAll(sink, events)) EXPECT_TRUE(result.isOk()) << result.reason();

    // Dropping the database ends the sink's session and makes reconnecting fail.
    exec("DROP DATABASE " + database + " WITH (FORCE)");
    std::vector<Event> more = purchases(3, 3 + size);
    const auto results = writeAll(sink, more);
    ASSERT_EQ(results.size(), static_cast<std::size_t>(size));
    for (const auto& result : results) {
      EXPECT_EQ(result.status(), Result::Status::retry);
      EXPECT_EQ(result.errorType(), "sink_unavailable");
      EXPECT_NE(result.reason().find(database), std::string::npos) << result.reason();
    }
  }
  exec("DROP DATABASE IF EXISTS " + database);
}

// Events of every shape the row mapping knows, so that a value the COPY
// writes differently from the INSERT shows in some column.
std::vector<Event> assorted(int from, int to) {
  std::vector<Event> events;
  for (int n = from; n < to; ++n) {
    Event event = purchase(n, "u-" + std::to_string(n));
    switch (n % 8) {
      case 0:
        event = makeEvent({{"event_type", "page_view"}}, uuid(n));
        break;
      case 1:
        event.body["user_id"] = 42;
        event.body["timestamp"] = "yesterday";
        break;
      case 2:
        event.body["properties"] = "just text";
        event.body["timestamp"] = "2026-02-03T04:05:06Z";
        break;
      case 3:
        event.body["properties"] = nullptr;
        event.body["user_id"] = {{"nested", true}};
        break;
      case 4:
        event.body["properties"] = {{"list", {1, 2.5, "x", nullptr}}, {"empty", nlohmann::json::object()}};
        event.attempt = 3;
        break;
      case 5:
        event.body.erase("timestamp");
        event.body["tags"] = {"a", "b"};
        break;
      case 6:
        event.body["timestamp"] = 1767225600;
        event.body["note"] = "caf\u00e9 \u4e2d\u6587 \U0001F600";
        break;
      default:
        event.body["timestamp"] = "1999-12-31T23:59:59.999999-12:30";
        break;
    }
    events.push_back(std::move(event));
  }
  return events;
}

TEST_F(PostgresSinkTest, BigBatchIsOneCopyWithTheRowsTheInsertWrites) {
  FakeContext ctx = context();
  PostgresSink small(config(), ctx);
  const std::string other = otherTable("copy");
  PostgresSink big({{"table", other}}, ctx);
  countCopies(table_);
  countCopies(other);

  std::vector<Event> events = assorted(1, 81);
  for (std::size_t first = 0; first < events.size(); first += 4)
    for (const auto& result : writeAll(small, std::span(events).subspan(first, 4)))
      EXPECT_TRUE(result.isOk()) << result.reason();
  const auto results = writeAll(big, events);
  ASSERT_EQ(results.size(), 80u);
  for (const auto& result : results) EXPECT_TRUE(result.isOk()) << result.reason();

  expectCopies(table_, 0, 0);
  expectCopies(other, 1, 1);
  expectSameRows(other, 80);
  EXPECT_EQ(value("SELECT COUNT(*) FROM " + other + " WHERE user_id IS NULL AND properties IS NULL"), "10");
  EXPECT_EQ(value("SELECT COUNT(*) FROM " + other + " WHERE timestamp IS NULL"), "40");
}

TEST_F(PostgresSinkTest, CopyStartsAtTheSharedThreshold) {
  FakeContext ctx = context();
  PostgresSink sink(config(), ctx);
  countCopies(table_);
  const int from = static_cast<int>(pg::kCopyFromRows);
  std::vector<Event> below = purchases(1, from);
  for (const auto& result : writeAll(sink, below)) EXPECT_TRUE(result.isOk()) << result.reason();
  expectCopies(table_, 0, 0);
  std::vector<Event> at = purchases(from, 2 * from);
  for (const auto& result : writeAll(sink, at)) EXPECT_TRUE(result.isOk()) << result.reason();
  expectCopies(table_, 1, 1);
  EXPECT_EQ(count(), 2 * from - 1);
}

TEST_F(PostgresSinkTest, CopyKeepsEveryCharacter) {
  FakeContext ctx = context();
  PostgresSink sink(config(), ctx);
  const std::string other = otherTable("copy");
  PostgresSink big({{"table", other}}, ctx);
  countCopies(other);

  const std::vector<std::string> texts{"tab\there",        "new\nline",          "carriage\rreturn",
                                       "back\\slash",      "\\N",                "\\.",
                                       "ends in \\",       "quotes ' and \"",    "caf\u00e9 \u4e2d\u6587 \U0001F600",
                                       "\\t not a tab",    "\x01\x1f\x7f",       "",
                                       "comma, semi; |",   "{\"json\": 1}",      "  spaces  "};
  std::vector<Event> events = purchases(1, 81);
  for (std::size_t i = 0; i < events.size(); ++i) {
    const std::string& text = texts[i % texts.size()];
    events[i].body["user_id"] = text;
    events[i].body["properties"] = {{"note", text}};
    events[i].body[text.empty() ? "blank" : text] = text;
    events[i].type = "type " + text;
    events[i].pipeline = "pipeline " + text;
  }
  for (std::size_t first = 0; first < events.size(); first += 10)
    for (const auto& result : writeAll(sink, std::span(events).subspan(first, 10)))
      EXPECT_TRUE(result.isOk()) << result.reason();
  for (const auto& result : writeAll(big, events)) EXPECT_TRUE(result.isOk()) << result.reason();
  expectCopies(other, 1, 1);
  expectSameRows(other, 80);

  for (std::size_t i = 0; i < events.size(); ++i) {
    const std::string& text = texts[i % texts.size()];
    const std::string where = " FROM " + other + " WHERE event_id = '" + events[i].id + "'";
    EXPECT_EQ(value("SELECT user_id" + where), text) << i;
    EXPECT_EQ(value("SELECT properties->>'note'" + where), text) << i;
    EXPECT_EQ(value("SELECT event_type" + where), "type " + text) << i;
    EXPECT_EQ(value("SELECT pipeline" + where), "pipeline " + text) << i;
  }
}

TEST_F(PostgresSinkTest, RedeliveredEventInABigBatchAddsNoRow) {
  FakeContext ctx = context();
  PostgresSink sink(config(), ctx);
  countCopies(table_);
  std::vector<Event> first{purchase(7, "u-7")};
  ASSERT_TRUE(writeAll(sink, first).front().isOk());

  std::vector<Event> again = purchases(1, 81);
  again[6] = purchase(7, "u-changed");
  again[6].attempt = 2;
  const auto results = writeAll(sink, again);
  ASSERT_EQ(results.size(), 80u);
  for (const auto& result : results) EXPECT_TRUE(result.isOk()) << result.reason();
  expectCopies(table_, 1, 0);
  EXPECT_EQ(count(), 80);
  EXPECT_EQ(value("SELECT COUNT(DISTINCT event_id) FROM " + table_), "80");
  EXPECT_EQ(column("user_id", uuid(7)), "u-7");
  EXPECT_EQ(column("attempts", uuid(7)), "1");
  EXPECT_EQ(column("user_id", uuid(80)), "u-80");

  // The failed COPY left the connection as it was: the next batch copies.
  std::vector<Event> next = purchases(81, 161);
  for (const auto& result : writeAll(sink, next)) EXPECT_TRUE(result.isOk()) << result.reason();
  expectCopies(table_, 2, 1);
  EXPECT_EQ(count(), 160);
}

TEST_F(PostgresSinkTest, IdTwiceInABigBatchSkipsTheCopy) {
  FakeContext ctx = context();
  PostgresSink sink(config(), ctx);
  countCopies(table_);
  std::vector<Event> events = purchases(1, 81);
  // The same uuid spelled without hyphens.
  events[79] = purchase(3, "u-3 again");
  events[79].id = "00000000000040008000000000000003";
  const auto results = writeAll(sink, events);
  for (const auto& result : results) EXPECT_TRUE(result.isOk()) << result.reason();
  expectCopies(table_, 0, 0);
  EXPECT_EQ(count(), 79);
  EXPECT_EQ(column("user_id", uuid(3)), "u-3");
}

TEST_F(PostgresSinkTest, RefusedValuesInABigBatchAreRejectedAndTheOthersWritten) {
  FakeContext ctx = context();
  PostgresSink sink(config({{"batch_size", 10}}), ctx);
  countCopies(table_);
  exec("ALTER TABLE " + table_ + " ADD CONSTRAINT user_not_bad CHECK (user_id <> 'bad')");

  // Each makes the COPY fail with a data error: jsonb refuses \u0000
  // (22P05), uuid a non-uuid (22P02), the check its value (23514).
  std::vector<Event> events = purchases(1, 81);
  events[4].body["properties"] = {{"note", std::string("a\0b", 3)}};
  events[17].id = "not-a-uuid";
  events[33] = purchase(34, "bad");
  const auto results = writeAll(sink, events);
  ASSERT_EQ(results.size(), 80u);
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (i == 4 || i == 17 || i == 33) {
      EXPECT_EQ(results[i].status(), Result::Status::reject) << i;
      EXPECT_EQ(results[i].errorType(), "sink_rejected") << i;
    } else {
      EXPECT_TRUE(results[i].isOk()) << i << ": " << results[i].reason();
    }
  }
  EXPECT_NE(results[33].reason().find("user_not_bad"), std::string::npos) << results[33].reason();
  expectCopies(table_, 1, 0);
  EXPECT_EQ(count(), 77);
  EXPECT_FALSE(column("event_id", uuid(5)).has_value());
  EXPECT_FALSE(column("event_id", uuid(34)).has_value());
  EXPECT_EQ(column("user_id", uuid(80)), "u-80");

  std::vector<Event> next = purchases(81, 161);
  for (const auto& result : writeAll(sink, next)) EXPECT_TRUE(result.isOk()) << result.reason();
  expectCopies(table_, 2, 1);
  EXPECT_EQ(count(), 157);
}

TEST_F(PostgresSinkTest, NulOrBadUtf8TakesTheInsertPath) {
  FakeContext ctx = context();
  PostgresSink sink(config(), ctx);
  countCopies(table_);

  std::vector<Event> bad_utf8 = purchases(1, 81);
  bad_utf8[2].body["user_id"] = std::string("a\xff\xfe" "b");
  bad_utf8[3].body["note"] = std::string("\xc3\x28");
  for (const auto& result : writeAll(sink, bad_utf8)) EXPECT_TRUE(result.isOk()) << result.reason();
  EXPECT_EQ(column("user_id", uuid(3)), "a\uFFFD\uFFFDb");
  EXPECT_EQ(column("enriched_data->>'note'", uuid(4)), "\uFFFD(");

  std::vector<Event> nul = purchases(81, 161);
  nul[5].body["user_id"] = std::string("a\0b", 3);
  const auto results = writeAll(sink, nul);
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (i == 5) EXPECT_EQ(results[i].status(), Result::Status::reject) << results[i].reason();
    else EXPECT_TRUE(results[i].isOk()) << i << ": " << results[i].reason();
  }
  expectCopies(table_, 0, 0);
  EXPECT_EQ(count(), 159);
}

TEST_F(PostgresSinkTest, KilledConnectionIsResetOnceForACopy) {
  FakeContext ctx = context();
  PostgresSink sink(config({{"url", withDatabase(url_, databaseOf(url_), "application_name=" + table_)}}), ctx);
  countCopies(table_);
  exec("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = '" + table_ + "'");
  EXPECT_EQ(value("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = '" + table_ + "'"), "0");

  std::vector<Event> events = purchases(1, 81);
  for (const auto& result : writeAll(sink, events)) EXPECT_TRUE(result.isOk()) << result.reason();
  expectCopies(table_, 1, 1);
  EXPECT_EQ(count(), 80);
}

TEST_F(PostgresSinkTest, UnreachableServerFailsConstruction) {
  FakeContext ctx = context();
  try {
    PostgresSink sink(config({{"url", "postgresql://eventflow:s3cret@127.0.0.1:1/x"}}), ctx);
    ADD_FAILURE() << "connected to port 1";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("cannot connect to postgresql://eventflow:***@127.0.0.1:1/x"), std::string::npos)
        << message;
    EXPECT_NE(message.find("port 1 failed"), std::string::npos) << message;
    EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
  }
}

// `eventflow validate` creates the sink to check its config: no connection,
// so a server nobody listens for is not an error then (see UnreachableServerFailsConstruction).
TEST_F(PostgresSinkTest, BeingValidatedChecksTheConfigAndConnectsNowhere) {
  FakeContext validating({}, {{"validate_only", "1"}});
  EXPECT_NO_THROW(PostgresSink(config({{"url", "postgresql://eventflow@127.0.0.1:1/x"}}), validating));
  EXPECT_THROW(PostgresSink(nlohmann::json{{"table", "bad name"}, {"url", url_}}, validating), std::invalid_argument);
  FakeContext sqlite_store({}, {{"store.url", "sqlite:///x.db"}, {"validate_only", "1"}});
  EXPECT_THROW(PostgresSink(nlohmann::json::object(), sqlite_store), std::invalid_argument);
}

TEST_F(PostgresSinkTest, StoreUrlMustBePostgresWhenNoUrlIsConfigured) {
  FakeContext sqlite({}, {{"store.url", "sqlite:///var/lib/eventflow/events.db"}});
  try {
    PostgresSink sink(config(), sqlite);
    ADD_FAILURE() << "accepted a sqlite store.url";
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("store.url 'sqlite:///var/lib/eventflow/events.db'"), std::string::npos) << message;
  }
  FakeContext secret({}, {{"store.url", "mysql://app:s3cret@db/events?password=other"}});
  try {
    PostgresSink sink(config(), secret);
    ADD_FAILURE() << "accepted a mysql store.url";
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("mysql://app:***@db/events?password=***"), std::string::npos) << message;
    EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
    EXPECT_EQ(message.find("other"), std::string::npos) << message;
  }
  FakeContext unset;
  try {
    PostgresSink sink(config(), unset);
    ADD_FAILURE() << "accepted an empty store.url";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("store.url is empty"), std::string::npos) << e.what();
  }
  FakeContext postgres({}, {{"store.url", "postgres://" + url_.substr(url_.find("://") + 3)}});
  EXPECT_NO_THROW(PostgresSink(config(), postgres));
}

TEST_F(PostgresSinkTest, RefusesUnusableConfig) {
  FakeContext ctx = context();
  EXPECT_THROW(PostgresSink({{"table", "events; DROP TABLE x"}}, ctx), std::invalid_argument);
  EXPECT_THROW(PostgresSink(config({{"batch_size", 0}}), ctx), std::invalid_argument);
  EXPECT_THROW(PostgresSink(config({{"url", ""}}), ctx), std::invalid_argument);
}

// The url goes through libpq's own parser: a password with '=', a space, a
// quote and a backslash (percent-encoded) reaches the server as it is.
TEST_F(PostgresSinkTest, APasswordWithEqualsSpaceQuoteAndBackslashConnects) {
  const std::string url = eventflow::testing::hostileRoleDatabase("sink_pw");
  ASSERT_FALSE(url.empty());
  const std::string wrong = eventflow::testing::hostileRoleDatabase("sink_pw", "wrong");
  FakeContext ctx = context();
  // pg_hba.conf is reloaded in the background: once a wrong password is
  // refused, the right one is what lets the sink in.
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    try {
      PostgresSink probe(config({{"url", wrong}}), ctx);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } catch (const std::runtime_error& e) {
      refused = std::string(e.what()).find("password authentication failed") != std::string::npos;
      EXPECT_TRUE(refused) << e.what();
    }
  }
  ASSERT_TRUE(refused) << "the test cluster never asked the role for its password";
  PostgresSink sink(config({{"url", url}}), ctx);
  std::vector<Event> events = purchases(1, 3);
  for (const auto& result : writeAll(sink, events)) EXPECT_TRUE(result.isOk()) << result.reason();
}

TEST_F(PostgresSinkTest, AMalformedUrlIsAConfigErrorNamingTheKey) {
  FakeContext validating({}, {{"validate_only", "1"}});
  try {
    PostgresSink sink(config({{"url", "postgresql://eventflow@127.0.0.1:1/x?nosuchoption=1"}}), validating);
    ADD_FAILURE() << "accepted a url libpq refuses";
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("postgres: url ", 0), 0u) << message;
    EXPECT_NE(message.find("nosuchoption"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace eventflow::plugins
