#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Nullable.h>
#include <gtest/gtest.h>

#include <eventflow/time.hpp>

#include <eventflow/testing.hpp>
#include "sqlite.hpp"

namespace eventflow::plugins {
namespace {

using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;
using eventflow::testing::FakeContext;
using eventflow::testing::makeEvent;

class SqliteSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("eventflow-sqlite-" + std::to_string(::getpid()) + "-" + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = (dir_ / "events.db").string();
    Poco::Data::SQLite::Connector::registerConnector();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  FakeContext context() const { return FakeContext({}, {{"store.url", "sqlite://" + db_}}); }

  int count(const std::string& table = "processed_events") const {
    Poco::Data::Session session(Poco::Data::SQLite::Connector::KEY, db_);
    int rows = -1;
    session << "SELECT COUNT(*) FROM " + table, into(rows), now;
    return rows;
  }

  static std::vector<Result> writeAll(SqliteSink& sink, std::vector<Event>& events) {
    std::vector<Event*> pointers;
    for (auto& event : events) pointers.push_back(&event);
    return sink.write(pointers);
  }

  std::filesystem::path dir_;
  std::string db_;
};

Event purchase(const std::string& id, nlohmann::json user_id) {
  Event event = makeEvent({{"event_type", "purchase"},
                           {"user_id", std::move(user_id)},
                           {"timestamp", "2026-01-02T03:04:05.000Z"},
                           {"correlation_id", "c-1"},
                           {"properties", {{"amount", 1500}}},
                           {"category", "high_value"},
                           {"processed_by", "eventflow"}},
                          id);
  event.type = "purchase";
  event.pipeline = "purchases";
  return event;
}

TEST_F(SqliteSinkTest, WritesOneRowPerEventWithMappedColumns) {
  FakeContext ctx = context();
  SqliteSink sink(nlohmann::json::object(), ctx);
  std::vector<Event> events{purchase("id-1", "u-1"), purchase("id-2", 42)};
  const auto results = writeAll(sink, events);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& result : results) EXPECT_TRUE(result.isOk()) << result.reason();
  EXPECT_EQ(count(), 2);

  Poco::Data::Session session(Poco::Data::SQLite::Connector::KEY, db_);
  std::string event_type, user_id, timestamp, properties, enriched, pipeline, processed_at;
  int attempts = 0;
  std::string id = "id-2";
  session << "SELECT event_type, user_id, timestamp, properties, enriched_data, pipeline, processed_at, attempts "
             "FROM processed_events WHERE event_id = ?",
      use(id), into(event_type), into(user_id), into(timestamp), into(properties), into(enriched), into(pipeline),
      into(processed_at), into(attempts), now;
  EXPECT_EQ(event_type, "purchase");
  EXPECT_EQ(user_id, "42");
  EXPECT_EQ(timestamp, "2026-01-02T03:04:05.000Z");
  EXPECT_EQ(nlohmann::json::parse(properties), nlohmann::json({{"amount", 1500}}));
  const nlohmann::json expected_enriched = {{"category", "high_value"}, {"processed_by", "eventflow"}};
  EXPECT_EQ(nlohmann::json::parse(enriched), expected_enriched);
  EXPECT_EQ(pipeline, "purchases");
  EXPECT_TRUE(parseRfc3339(processed_at).has_value()) << processed_at;
  EXPECT_EQ(attempts, 1);
}

TEST_F(SqliteSinkTest, RedeliveredEventAddsNoRow) {
  FakeContext ctx = context();
  SqliteSink sink(nlohmann::json::object(), ctx);
  std::vector<Event> first{purchase("id-1", "u-1")};
  ASSERT_TRUE(writeAll(sink, first).front().isOk());

  std::vector<Event> again{purchase("id-1", "u-changed"), purchase("id-3", "u-3")};
  again.front().attempt = 2;
  for (const auto& result : writeAll(sink, again)) EXPECT_TRUE(result.isOk()) << result.reason();
  EXPECT_EQ(count(), 2);

  Poco::Data::Session session(Poco::Data::SQLite::Connector::KEY, db_);
  std::string user_id;
  session << "SELECT user_id FROM processed_events WHERE event_id = 'id-1'", into(user_id), now;
  EXPECT_EQ(user_id, "u-1");
}

TEST_F(SqliteSinkTest, AbsentFieldsBecomeNull) {
  FakeContext ctx = context();
  SqliteSink sink(nlohmann::json::object(), ctx);
  std::vector<Event> events{makeEvent({{"event_type", "page_view"}})};
  ASSERT_TRUE(writeAll(sink, events).front().isOk());

  Poco::Data::Session session(Poco::Data::SQLite::Connector::KEY, db_);
  Poco::Nullable<std::string> user_id, properties;
  std::string enriched;
  session << "SELECT user_id, properties, enriched_data FROM processed_events", into(user_id), into(properties),
      into(enriched), now;
  EXPECT_TRUE(user_id.isNull());
  EXPECT_TRUE(properties.isNull());
  EXPECT_EQ(enriched, "{}");
}

TEST_F(SqliteSinkTest, WritesConfiguredTable) {
  FakeContext ctx = context();
  SqliteSink sink({{"table", "audit_copy"}}, ctx);
  std::vector<Event> events{purchase("id-1", "u-1")};
  ASSERT_TRUE(writeAll(sink, events).front().isOk());
  EXPECT_EQ(count("audit_copy"), 1);
}

TEST_F(SqliteSinkTest, DatabaseErrorIsRetryForEveryEvent) {
  FakeContext ctx = context();
  SqliteSink sink(nlohmann::json::object(), ctx);
  {
    Poco::Data::Session session(Poco::Data::SQLite::Connector::KEY, db_);
    session << "DROP TABLE processed_events", now;
  }
  std::vector<Event> events{purchase("id-1", "u-1"), purchase("id-2", "u-2")};
  const auto results = writeAll(sink, events);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& result : results) {
    EXPECT_EQ(result.status(), Result::Status::retry);
    EXPECT_EQ(result.errorType(), "sink_unavailable");
    EXPECT_FALSE(result.reason().empty());
  }

  // The failed transaction was rolled back, so the same sink recovers.
  {
    Poco::Data::Session session(Poco::Data::SQLite::Connector::KEY, db_);
    session << "CREATE TABLE processed_events (event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, user_id TEXT,"
               " timestamp TEXT, properties TEXT, enriched_data TEXT, pipeline TEXT NOT NULL,"
               " processed_at TEXT NOT NULL, attempts INTEGER NOT NULL)",
        now;
  }
  for (const auto& result : writeAll(sink, events)) EXPECT_TRUE(result.isOk()) << result.reason();
  EXPECT_EQ(count(), 2);
}

TEST_F(SqliteSinkTest, WaitsForAnotherWriterInsteadOfFailing) {
  FakeContext ctx = context();
  SqliteSink sink(nlohmann::json::object(), ctx);
  std::promise<void> locked;
  std::thread writer([&] {
    Poco::Data::Session session(Poco::Data::SQLite::Connector::KEY, db_);
    session << "BEGIN EXCLUSIVE", now;
    locked.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    session << "COMMIT", now;
  });
  locked.get_future().wait();
  std::vector<Event> events{purchase("id-1", "u-1")};
  const Result result = writeAll(sink, events).front();
  writer.join();
  EXPECT_TRUE(result.isOk()) << result.reason();
  EXPECT_EQ(count(), 1);
}

// The workers' instances share one connection and commit together: under
// concurrent writes every row lands, in its own table, and a worker whose
// rows fail (its table was dropped) does not fail the others' rows that
// shared its transaction.
TEST_F(SqliteSinkTest, WorkersSharingTheFileLoseNoRowAndOneFailureStaysItsOwn) {
  FakeContext ctx = context();
  std::vector<std::unique_ptr<SqliteSink>> sinks;
  for (int i = 0; i < 3; ++i) sinks.push_back(std::make_unique<SqliteSink>(nlohmann::json::object(), ctx));
  sinks.push_back(std::make_unique<SqliteSink>(nlohmann::json{{"table", "other"}}, ctx));
  sinks.push_back(std::make_unique<SqliteSink>(nlohmann::json{{"table", "gone"}}, ctx));
  {
    Poco::Data::Session session(Poco::Data::SQLite::Connector::KEY, db_);
    session << "DROP TABLE gone", now;
  }
  constexpr int kWrites = 60, kBatch = 5;
  std::vector<std::future<std::pair<int, int>>> outcomes;  // ok, retry
  for (std::size_t w = 0; w < sinks.size(); ++w)
    outcomes.push_back(std::async(std::launch::async, [&, w] {
      std::pair<int, int> seen{0, 0};
      for (int n = 0; n < kWrites; ++n) {
        std::vector<Event> events;
        for (int k = 0; k < kBatch; ++k)
          events.push_back(purchase("w" + std::to_string(w) + "-" + std::to_string(n) + "-" + std::to_string(k), "u"));
        for (const Result& r : writeAll(*sinks[w], events)) (r.isOk() ? seen.first : seen.second)++;
      }
      return seen;
    }));
  for (std::size_t w = 0; w < sinks.size(); ++w) {
    const auto [ok, retry] = outcomes[w].get();
    if (w == 4) {
      EXPECT_EQ(ok, 0) << "rows for a dropped table were reported written";
      EXPECT_EQ(retry, kWrites * kBatch);
    } else {
      EXPECT_EQ(ok, kWrites * kBatch) << "worker " << w << " failed with another's rows";
    }
  }
  EXPECT_EQ(count(), 3 * kWrites * kBatch);
  EXPECT_EQ(count("other"), kWrites * kBatch);
}

// `eventflow validate` creates the sink to check its config, and nothing more.
TEST_F(SqliteSinkTest, BeingValidatedChecksTheConfigAndOpensNothing) {
  FakeContext validating({}, {{"store.url", "sqlite://" + db_}, {"validate_only", "1"}});
  { SqliteSink sink({{"table", "checked"}}, validating); }
  EXPECT_FALSE(std::filesystem::exists(db_)) << "the database was opened";
  EXPECT_THROW(SqliteSink({{"table", "events; DROP TABLE x"}}, validating), std::invalid_argument);
  FakeContext wrong_store({}, {{"store.url", "postgresql://db/x"}, {"validate_only", "1"}});
  EXPECT_THROW(SqliteSink(nlohmann::json::object(), wrong_store), std::invalid_argument);
}

TEST_F(SqliteSinkTest, RefusesUnusableConfig) {
  FakeContext ctx = context();
  EXPECT_THROW(SqliteSink({{"table", "events; DROP TABLE x"}}, ctx), std::invalid_argument);
  FakeContext unset;
  EXPECT_THROW(SqliteSink(nlohmann::json::object(), unset), std::runtime_error);
  FakeContext postgres({}, {{"store.url", "postgresql://app:s3cret@db:5432/eventflow"}});
  try {
    SqliteSink sink(nlohmann::json::object(), postgres);
    ADD_FAILURE() << "accepted a postgresql url";
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("postgresql://app:***@db"), std::string::npos) << message;
    EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace eventflow::plugins
