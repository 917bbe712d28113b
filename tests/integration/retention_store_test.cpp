// Retention and the summary's counters in both stores (issue 16 part 2):
// counters follow every state change in the writing transaction, pruning
// deletes only old terminal events with their rows, and the books stay put.

#include <gtest/gtest.h>

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/UUIDGenerator.h>

#include <future>
#include <thread>

#include "backends.hpp"
#include "store_test.hpp"

using namespace eventflow;
using namespace eventflow::testing;
using TK = store::Transition::Kind;
using std::chrono::milliseconds;

namespace {

std::string uuid() { return Poco::UUIDGenerator::defaultGenerator().createRandom().toString(); }

class RetentionStore : public StoreTest {
 protected:
  RetentionStore() : StoreTest("retention") {}

  // Records new events of `pipeline`; returns their ids.
  std::vector<std::string> record(std::size_t n, const std::string& pipeline = "purchases") {
    std::vector<store::RawEvent> rows;
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < n; ++i) {
      const std::string id = uuid();
      const std::string body = R"({"event_type":"purchase","event_id":")" + id + R"("})";
      rows.push_back({id, "purchase", pipeline, body, "sha-" + id, "", std::chrono::system_clock::now()});
      ids.push_back(id);
    }
    auto r = store_->commit(rows, {});
    EXPECT_TRUE(r) << r.error().message;
    return ids;
  }

  void move(const std::vector<std::string>& ids, TK kind, std::int64_t processing_us = -1) {
    std::vector<store::Transition> t;
    for (const auto& id : ids)
      t.push_back({.kind = kind, .id = id, .attempts = 1, .error_type = kind == TK::done ? "" : "validation",
                   .error_message = kind == TK::done ? "" : "no", .stage = "validator x", .plugin = "x",
                   .processing_us = processing_us});
    auto r = store_->commit({}, t);
    ASSERT_TRUE(r) << r.error().message;
    // SQLite keeps updated_at in milliseconds, and a prune takes rows older
    // than its cutoff: one with older_than 0 must come a millisecond later.
    std::this_thread::sleep_for(milliseconds(2));
  }

  // Runs `sql` (no result) on the store's database, as another client would.
  void exec(const std::string& sql) {
    if (GetParam() == "sqlite") {
      Poco::Data::SQLite::Connector::registerConnector();
      Poco::Data::Session s("SQLite", (dir_ / "ef.db").string());
      s << sql, Poco::Data::Keywords::now;
    } else {
      PGconn* conn = PQconnectdb(url_.c_str());
      PGresult* r = PQexec(conn, sql.c_str());
      EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << sql << ": " << PQerrorMessage(conn);
      PQclear(r);
      PQfinish(conn);
    }
  }
  long long rows(const std::string& sql) {
    if (GetParam() != "sqlite") return pgCount(url_, sql);
    Poco::Data::SQLite::Connector::registerConnector();
    Poco::Data::Session s("SQLite", (dir_ / "ef.db").string());
    Poco::Int64 n = -1;
    s << sql, Poco::Data::Keywords::into(n), Poco::Data::Keywords::now;
    return n;
  }
  // A processed_events row for `id`, as a sink writing the store's own table leaves.
  void processedRow(const std::string& id) {
    exec("INSERT INTO processed_events (event_id, event_type, pipeline, processed_at, attempts) VALUES ('" + id +
         "', 'purchase', 'purchases', '2026-01-01T00:00:00Z', 1)");
  }
  store::StateCounts counts(const std::string& pipeline = "purchases") {
    auto c = store_->counts();
    EXPECT_TRUE(c) << c.error().message;
    return c ? (*c)[pipeline] : store::StateCounts{};
  }
  std::size_t prune(const std::string& pipeline, store::State state, milliseconds older_than = milliseconds(0)) {
    auto n = store_->prune(pipeline, state, older_than, 1000);
    EXPECT_TRUE(n) << n.error().message;
    return n ? *n : 0;
  }
};

}  // namespace

// Every path that changes a state moves the counters with it: commit's
// inserts and transitions, replay, discard, purge; a transition refused
// (terminal already) or a repeated id moves nothing.
TEST_P(RetentionStore, CountersFollowEveryStateChange) {
  const auto ids = record(6);
  record(1, "signups");
  auto c = counts();
  EXPECT_EQ(c.received, 6u);
  EXPECT_EQ(c.in_flight, 6u);
  // The same ids again: duplicates, nothing new.
  std::vector<store::RawEvent> again{{ids[0], "purchase", "purchases", "{}", "other", "", std::chrono::system_clock::now()}};
  ASSERT_TRUE(store_->commit(again, {}));
  EXPECT_EQ(counts().received, 6u);

  move({ids[0], ids[1]}, TK::done, 1000);
  move({ids[2], ids[3], ids[4]}, TK::dead, 3000);
  move({ids[5]}, TK::retrying);
  move({ids[0]}, TK::dead);  // refused: done is terminal
  c = counts();
  EXPECT_EQ(c.processed, 2u);
  EXPECT_EQ(c.dead, 3u);
  EXPECT_EQ(c.in_flight, 1u);
  EXPECT_EQ(c.received, 6u);
  EXPECT_EQ(c.finished_recently, 5u);
  EXPECT_DOUBLE_EQ(c.processing_ms_sum, 11.0);

  auto replayed = store_->replay(std::vector<std::string>{ids[2]});
  ASSERT_TRUE(replayed) << replayed.error().message;
  ASSERT_TRUE(store_->discard(ids[3]));
  store::DeadFilter all;
  all.pipeline = "purchases";
  auto purged = store_->purge(all);
  ASSERT_TRUE(purged);
  EXPECT_EQ(*purged, 1u);  // ids[4]
  c = counts();
  EXPECT_EQ(c.dead, 0u);
  EXPECT_EQ(c.discarded, 2u);
  EXPECT_EQ(c.in_flight, 2u);  // the replayed one and the retrying one
  EXPECT_EQ(c.processed + c.dead + c.discarded + c.in_flight, c.received);
  EXPECT_EQ(counts("signups").received, 1u);

  // Folding PostgreSQL's deltas changes nothing a reader sees.
  ASSERT_TRUE(store_->compactCounts());
  const auto folded = counts();
  EXPECT_EQ(folded.discarded, 2u);
  EXPECT_EQ(folded.in_flight, 2u);
  EXPECT_EQ(folded.received, 6u);
  EXPECT_EQ(folded.finished_recently, c.finished_recently);
}

// One statement changing thousands of rows counts each change once, and a
// change to the same state (retrying again) counts nothing. On PostgreSQL
// the update trigger joins its transition tables, which have no index: it
// runs without nested loops (migration 8), which were quadratic in the rows.
TEST_P(RetentionStore, AStatementOfThousandsOfChangesCountsEachOnce) {
  const auto ids = record(4000);
  const std::vector<std::string> done(ids.begin(), ids.begin() + 2500);
  const std::vector<std::string> dead(ids.begin() + 2500, ids.begin() + 3500);
  const std::vector<std::string> waiting(ids.begin() + 3500, ids.end());
  move(waiting, TK::retrying);
  move(waiting, TK::retrying);
  move(done, TK::done, 2000);
  move(dead, TK::dead, 1000);
  auto c = counts();
  EXPECT_EQ(c.received, 4000u);
  EXPECT_EQ(c.processed, 2500u);
  EXPECT_EQ(c.dead, 1000u);
  EXPECT_EQ(c.in_flight, 500u);
  EXPECT_EQ(c.finished_recently, 3500u);
  EXPECT_DOUBLE_EQ(c.processing_ms_sum, 2500 * 2.0 + 1000 * 1.0);
  store::DeadFilter all;
  auto purged = store_->purge(all);
  ASSERT_TRUE(purged) << purged.error().message;
  EXPECT_EQ(*purged, 1000u);
  c = counts();
  EXPECT_EQ(c.dead, 0u);
  EXPECT_EQ(c.discarded, 1000u);
  EXPECT_EQ(c.processed + c.dead + c.discarded + c.in_flight, c.received);
  if (GetParam() != "sqlite") {
    EXPECT_EQ(rows("SELECT COUNT(*) FROM pg_proc WHERE proname = 'eventflow_count_updates' AND "
                   "'enable_nestloop=off' = ANY(proconfig)"),
              1);
  }
}

// Pruning deletes old terminal events of one pipeline and state with their
// failed_events and processed_events rows; the counters keep them.
TEST_P(RetentionStore, PruneDeletesOldTerminalEventsWithTheirRowsAndKeepsTheirCount) {
  const auto done = record(3);
  const auto dead = record(2);
  const auto other = record(2, "signups");
  move(done, TK::done);
  move(dead, TK::dead);
  move(other, TK::done);
  for (const auto& id : done) processedRow(id);

  // Younger than the retention: nothing goes.
  EXPECT_EQ(prune("purchases", store::State::done, std::chrono::hours(1)), 0u);
  EXPECT_EQ(prune("purchases", store::State::done), 3u);
  EXPECT_EQ(rows("SELECT COUNT(*) FROM processed_events"), 0);
  EXPECT_EQ(rows("SELECT COUNT(*) FROM failed_events"), 2);  // the dead ones' are kept until they go
  EXPECT_EQ(prune("purchases", store::State::dead), 2u);
  EXPECT_EQ(rows("SELECT COUNT(*) FROM failed_events"), 0);
  EXPECT_EQ(rows("SELECT COUNT(*) FROM raw_events"), 2);  // the other pipeline's
  EXPECT_TRUE(journey(done[0]).is_null());

  const auto c = counts();
  EXPECT_EQ(c.received, 5u);
  EXPECT_EQ(c.processed, 3u);
  EXPECT_EQ(c.dead, 2u);
  EXPECT_EQ(counts("signups").processed, 2u);
  EXPECT_EQ(prune("signups", store::State::done), 2u);
  EXPECT_EQ(counts("signups").processed, 2u);
}

// No unfinished event is ever deleted, however old, and a batch stops at its limit.
TEST_P(RetentionStore, PruneNeverTouchesAnUnfinishedEventAndKeepsToItsLimit) {
  const auto queued = record(3);
  const auto retrying = record(2);
  move(retrying, TK::retrying);
  const auto done = record(5);
  move(done, TK::done);
  for (const auto state : {store::State::received, store::State::queued, store::State::processing, store::State::retrying}) {
    auto refused = store_->prune("purchases", state, milliseconds(0), 100);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find(store::toString(state)), std::string::npos) << refused.error().message;
  }
  auto two = store_->prune("purchases", store::State::done, milliseconds(0), 2);
  ASSERT_TRUE(two) << two.error().message;
  EXPECT_EQ(*two, 2u);
  EXPECT_EQ(prune("purchases", store::State::done), 3u);
  EXPECT_EQ(prune("purchases", store::State::dead), 0u);
  EXPECT_EQ(prune("purchases", store::State::discarded), 0u);
  EXPECT_EQ(rows("SELECT COUNT(*) FROM raw_events"), 5);
  auto unfinished = store_->unfinished();
  ASSERT_TRUE(unfinished);
  EXPECT_EQ(unfinished->size(), 5u);
  EXPECT_EQ(counts().in_flight, 5u);
}

// Commits, prunes and folds from several threads at once (two processes'
// worth on PostgreSQL): the counters end exactly where the rows say.
TEST_P(RetentionStore, CountersStayExactUnderConcurrentCommitsPrunesAndFolds) {
  std::atomic<bool> stop{false};
  auto writer = std::async(std::launch::async, [&] {
    std::size_t n = 0;
    for (int round = 0; round < 40; ++round) {
      const auto ids = record(25);
      move({ids.begin(), ids.begin() + 20}, TK::done, 10);
      move({ids.begin() + 20, ids.end()}, TK::dead, 10);
      n += ids.size();
    }
    stop = true;
    return n;
  });
  auto pruner = [&] {
    std::size_t deleted = 0;
    while (!stop) {
      for (const auto state : {store::State::done, store::State::dead}) {
        auto d = store_->prune("purchases", state, milliseconds(0), 50);
        if (d) deleted += *d;
      }
      (void)store_->compactCounts();
    }
    return deleted;
  };
  auto p1 = std::async(std::launch::async, pruner);
  auto p2 = std::async(std::launch::async, pruner);
  const std::size_t written = writer.get();
  const std::size_t pruned = p1.get() + p2.get();
  ASSERT_TRUE(store_->compactCounts());
  const auto c = counts();
  EXPECT_EQ(c.received, written);
  EXPECT_EQ(c.processed, written * 4 / 5);
  EXPECT_EQ(c.dead, written / 5);
  EXPECT_EQ(c.in_flight, 0u);
  EXPECT_EQ(rows("SELECT COUNT(*) FROM raw_events"), static_cast<long long>(written - pruned));
}

// A redelivered event whose row is terminal, or gone to retention, is
// settled: its sinks must not run again. An unfinished one is not.
TEST_P(RetentionStore, SettledNamesTerminalAndPrunedEventsOnly) {
  const auto waiting = record(1);
  const auto done = record(2);
  move(done, TK::done);
  ASSERT_EQ(prune("purchases", store::State::done), 2u);
  const auto dead = record(1);
  move(dead, TK::dead);
  std::string upper = dead[0];
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::vector<std::string> ids{waiting[0], done[0], done[1], upper, "not-a-uuid"};
  auto settled = store_->settled(ids);
  ASSERT_TRUE(settled) << settled.error().message;
  EXPECT_EQ(*settled, (std::vector<std::string>{done[0], done[1], upper, "not-a-uuid"}));
}

INSTANTIATE_TEST_SUITE_P(Engines, RetentionStore, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& param_info) { return param_info.param; });
