// The store and queue contracts against the real engines: SQLite and
// PostgreSQL for the store, Redis Streams for the queue.

#include <gtest/gtest.h>

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/UUIDGenerator.h>

#include <filesystem>
#include <functional>
#include <future>
#include <set>
#include <thread>

#include "backends.hpp"
#include "base/sqlite_busy.hpp"
#include "store_test.hpp"
#include "pg/connection.hpp"
#include "queue/queue.hpp"
#include "store/group_commit.hpp"
#include "store/postgres_commit.hpp"
#include "store/store.hpp"

using namespace eventflow;
using namespace eventflow::testing;

namespace {

std::string uuid() { return Poco::UUIDGenerator::defaultGenerator().createRandom().toString(); }

store::RawEvent raw(const std::string& id, const std::string& body = R"({"event_type":"purchase","n":1})") {
  return {id, "purchase", "purchases", body, "sha-" + body, "corr-1", std::chrono::system_clock::now()};
}

// Rows of another pipeline that make a batch big enough for PostgreSQL's COPY
// path (it copies group commits of pg::kCopyFromRows rows or more, inserts smaller ones).
std::vector<store::RawEvent> padded(std::vector<store::RawEvent> rows) {
  while (rows.size() < 64) {
    auto filler = raw(uuid());
    filler.pipeline = "filler";
    rows.push_back(std::move(filler));
  }
  return rows;
}

class StoreContract : public StoreTest {
 protected:
  StoreContract() : StoreTest("store") {}
};

}  // namespace

// The url goes through libpq's own parser: a password with '=', a space, a
// quote and a backslash (percent-encoded) reaches the server as it is.
TEST(StoreUrl, APasswordWithEqualsSpaceQuoteAndBackslashConnects) {
  const std::string url = hostileRoleDatabase("store_pw");
  ASSERT_FALSE(url.empty());
  const std::string wrong = hostileRoleDatabase("store_pw", "wrong");
  // pg_hba.conf is reloaded in the background: once a wrong password is
  // refused, the right one is what lets the store in.
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    auto probe = store::openStore(wrong);
    refused = !probe;
    if (refused) EXPECT_NE(probe.error().message.find("password authentication failed"), std::string::npos)
        << probe.error().message;
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(refused) << "the test cluster never asked the role for its password";
  auto opened = store::openStore(url);
  ASSERT_TRUE(opened) << opened.error().message;
  ASSERT_TRUE((*opened)->migrate());
  std::vector<store::RawEvent> rows{raw(uuid())};
  auto committed = (*opened)->commit(rows, {});
  ASSERT_TRUE(committed) << committed.error().message;
  EXPECT_EQ(committed->front(), store::InsertStatus::inserted);
}

TEST(StoreUrl, AMalformedUrlIsAnErrorNamingTheKey) {
  auto opened = store::openStore("postgresql://eventflow@127.0.0.1:1/x?nosuchoption=1");
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().message.rfind("store.url ", 0), 0u) << opened.error().message;
  EXPECT_NE(opened.error().message.find("nosuchoption"), std::string::npos) << opened.error().message;
}

TEST_P(StoreContract, MigrationsAreIdempotentAndConcurrentStartsAreSafe) {
  // A second host starting against the same database applies nothing twice.
  std::vector<std::thread> hosts;
  std::atomic<int> failures{0};
  for (int i = 0; i < 3; ++i)
    hosts.emplace_back([&] {
      auto s = store::openStore(url_);
      if (!s || !(*s)->migrate()) ++failures;
    });
  for (auto& h : hosts) h.join();
  EXPECT_EQ(failures, 0);
  EXPECT_TRUE(store_->migrate());
}

TEST_P(StoreContract, InsertReportsInsertedDuplicateAndConflict) {
  const auto a = uuid(), b = uuid();
  std::vector<store::RawEvent> first{raw(a), raw(b)};
  auto r1 = store_->commit(first, {});
  ASSERT_TRUE(r1) << r1.error().message;
  EXPECT_EQ((*r1)[0], store::InsertStatus::inserted);
  EXPECT_EQ((*r1)[1], store::InsertStatus::inserted);
  // Same body again, another body, and one id twice within one batch.
  const auto c = uuid();
  std::vector<store::RawEvent> second{raw(a), raw(b, R"({"event_type":"purchase","n":2})"), raw(c), raw(c)};
  auto r2 = store_->commit(second, {});
  ASSERT_TRUE(r2) << r2.error().message;
  EXPECT_EQ((*r2)[0], store::InsertStatus::duplicate);
  EXPECT_EQ((*r2)[1], store::InsertStatus::conflict);
  EXPECT_EQ((*r2)[2], store::InsertStatus::inserted);
  EXPECT_EQ((*r2)[3], store::InsertStatus::duplicate);
  auto counts = store_->counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ((*counts)["purchases"].received, 3u);
  EXPECT_EQ((*counts)["purchases"].in_flight, 3u);
}

TEST_P(StoreContract, ABatchWithAStoredIdStillRecordsItsNewEvents) {
  // PostgreSQL copies a batch of new ids with COPY; one stored id makes the
  // COPY fail as a whole, and the batch falls back to INSERT ... ON CONFLICT.
  const auto a = uuid(), b = uuid();
  std::vector<store::RawEvent> first{raw(a), raw(b)};
  ASSERT_TRUE(store_->commit(first, {}));
  const auto d = uuid(), e = uuid(), f = uuid();
  auto second = padded({raw(d), raw(a), raw(e), raw(b, R"({"event_type":"purchase","n":2})"), raw(f)});
  auto r = store_->commit(second, {});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 64u);
  EXPECT_EQ((*r)[0], store::InsertStatus::inserted);
  EXPECT_EQ((*r)[1], store::InsertStatus::duplicate);
  EXPECT_EQ((*r)[2], store::InsertStatus::inserted);
  EXPECT_EQ((*r)[3], store::InsertStatus::conflict);
  EXPECT_EQ((*r)[4], store::InsertStatus::inserted);
  for (const auto& id : {d, e, f}) {
    const auto j = journey(id);
    ASSERT_FALSE(j.is_null()) << id << " is not recorded";
    EXPECT_EQ(j["state"], "queued");
    EXPECT_EQ(j["event"]["n"], 1);
  }
  EXPECT_EQ((journey(b))["event"]["n"], 1) << "a conflict keeps the first body";
  auto counts = store_->counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ((*counts)["purchases"].received, 5u);
  EXPECT_EQ((*counts)["purchases"].in_flight, 5u);
}

TEST_P(StoreContract, TextKeepsEscapesControlCharactersAndUnicode) {
  // Both ways PostgreSQL takes a group commit: COPY (pg::kCopyFromRows or more) and
  // the INSERT over column arrays (fewer).
  for (const bool big : {true, false}) {
    SCOPED_TRACE(big ? "COPY" : "INSERT");
    auto odd = raw(uuid(), "{\n\t\"event_type\":\"purchase\",\r\n\"note\":\"tab\\there, back\\\\slash, \\\"q\\\", "
                           "line\\nbreak, \\u00e9 \xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\",\"n\":3}");
    odd.type = "type\\with\ttab \"quoted\"";
    odd.pipeline = big ? "odd-copy" : "odd-insert";
    odd.correlation_id = "c\\1\t2\n3\r4 \xc3\xbc \\. \"{,}\"";
    // A time before 2000 (PostgreSQL's epoch) and one after, to the millisecond.
    odd.received_at = SystemTime(std::chrono::milliseconds(915'148'800'123));   // 1999-01-01T00:00:00.123Z
    auto plain = raw(uuid());
    plain.pipeline = odd.pipeline;
    plain.correlation_id.clear();
    plain.received_at = SystemTime(std::chrono::milliseconds(1'795'000'000'456));  // 2026-11-18, .456
    auto rows = big ? padded({odd, plain}) : std::vector<store::RawEvent>{odd, plain};
    auto r = store_->commit(rows, {});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ((*r)[0], store::InsertStatus::inserted);
    EXPECT_EQ((*r)[1], store::InsertStatus::inserted);
    auto unfinished = store_->unfinished();
    ASSERT_TRUE(unfinished) << unfinished.error().message;
    int seen = 0;
    for (const auto& e : *unfinished) {
      if (e.pipeline != odd.pipeline) continue;
      ++seen;
      const auto& sent = e.id == odd.id ? odd : plain;
      EXPECT_EQ(e.type, sent.type);
      EXPECT_EQ(e.correlation_id, sent.correlation_id);
      EXPECT_EQ(e.received_at, sent.received_at);
      EXPECT_EQ(nlohmann::json::parse(e.payload), nlohmann::json::parse(sent.payload));
    }
    EXPECT_EQ(seen, 2);
    // A correlation id straight from a header need not be UTF-8; the batch is
    // still recorded.
    auto header = raw(uuid());
    header.correlation_id = "bad \xff\xfe utf-8";
    auto more = big ? padded({header, raw(uuid())}) : std::vector<store::RawEvent>{header, raw(uuid())};
    auto m = store_->commit(more, {});
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ((*m)[0], store::InsertStatus::inserted);
    EXPECT_EQ((*m)[1], store::InsertStatus::inserted);
  }
  EXPECT_EQ((*store_->counts())["purchases"].received, 4u);
}

TEST_P(StoreContract, AnUppercaseIdIsReportedInserted) {
  // isUuid takes either case; PostgreSQL's uuid column answers in lowercase.
  auto upper = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  };
  const auto a = uuid(), up = upper(uuid()), alone = upper(uuid());
  std::vector<store::RawEvent> first{raw(a)};
  ASSERT_TRUE(store_->commit(first, {}));
  std::vector<store::RawEvent> second{raw(up), raw(a)};
  auto r = store_->commit(second, {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)[0], store::InsertStatus::inserted);
  EXPECT_EQ((*r)[1], store::InsertStatus::duplicate);
  std::vector<store::RawEvent> third{raw(alone), raw(up)};
  auto t = store_->commit(third, {});
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ((*t)[0], store::InsertStatus::inserted);
  EXPECT_EQ((*t)[1], store::InsertStatus::duplicate);
}

TEST_P(StoreContract, TransitionsReachTerminalStatesOnceAndDeadLettersCarryTheReason) {
  const auto done = uuid(), dead = uuid(), waiting = uuid();
  std::vector<store::RawEvent> rows{raw(done), raw(dead), raw(waiting)};
  ASSERT_TRUE(store_->commit(rows, {}));
  std::vector<store::Transition> t{
      {.kind = store::Transition::Kind::done, .id = done, .attempts = 70000},  // attempts past two bytes
      {.kind = store::Transition::Kind::dead, .id = dead, .attempts = 3, .error_type = "validation",
       .error_message = "amount must be > 0", .stage = "validator json-schema", .plugin = "json-schema"},
      {.kind = store::Transition::Kind::retrying, .id = waiting, .attempts = 1, .error_type = "transient",
       .error_message = "sink down", .stage = "sink postgres", .plugin = "postgres"}};
  ASSERT_TRUE(store_->commit({}, t));
  // A terminal event never moves again, not even to dead.
  std::vector<store::Transition> late{
      {.kind = store::Transition::Kind::dead, .id = done, .attempts = 2, .error_type = "poison", .error_message = "late"},
      {.kind = store::Transition::Kind::retrying, .id = dead, .attempts = 4, .error_type = "x", .error_message = "y"}};
  ASSERT_TRUE(store_->commit({}, late));

  const auto j = journey(dead);
  EXPECT_EQ(j["state"], "dead");
  EXPECT_EQ(j["dead_letter"]["error_type"], "validation");
  EXPECT_EQ(j["dead_letter"]["plugin"], "json-schema");
  EXPECT_EQ(j["dead_letter"]["attempts"], 3);
  EXPECT_EQ(j["event"]["n"], 1);
  EXPECT_EQ((journey(done))["state"], "done");
  EXPECT_EQ((journey(done))["attempts"], 70000);
  EXPECT_FALSE(journey(done).contains("dead_letter"));
  const auto w = journey(waiting);
  EXPECT_EQ(w["state"], "retrying");
  EXPECT_EQ(w["last_error"], "transient: sink down");
  EXPECT_TRUE(journey(uuid()).is_null());

  auto counts = store_->counts();
  EXPECT_EQ((*counts)["purchases"].processed, 1u);
  EXPECT_EQ((*counts)["purchases"].dead, 1u);
  EXPECT_EQ((*counts)["purchases"].in_flight, 1u);
  auto unfinished = store_->unfinished();
  ASSERT_TRUE(unfinished);
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ(unfinished->front().id, waiting);
  EXPECT_EQ(unfinished->front().attempts, 1u);
}

// avg_processing_time_ms: the terminal changes' processing times, summed per
// pipeline over events finished within the window; unknown ones (-1) and
// unfinished ones left out.
TEST_P(StoreContract, CountsSumTheRecentProcessingTimesOfFinishedEvents) {
  const auto a = uuid(), b = uuid(), c = uuid(), d = uuid(), e = uuid();
  std::vector<store::RawEvent> rows{raw(a), raw(b), raw(c), raw(d), raw(e)};
  ASSERT_TRUE(store_->commit(rows, {}));
  std::vector<store::Transition> t{
      {.kind = store::Transition::Kind::done, .id = a, .attempts = 1, .processing_us = 40'000},
      {.kind = store::Transition::Kind::done, .id = b, .attempts = 1, .processing_us = 20'500},
      {.kind = store::Transition::Kind::dead, .id = c, .attempts = 2, .error_type = "validation",
       .error_message = "no", .processing_us = 300'000},
      {.kind = store::Transition::Kind::done, .id = d, .attempts = 1},  // not known
      {.kind = store::Transition::Kind::retrying, .id = e, .attempts = 1, .error_type = "transient",
       .error_message = "later"}};
  ASSERT_TRUE(store_->commit({}, t));
  auto counts = store_->counts();
  ASSERT_TRUE(counts) << counts.error().message;
  const auto& p = (*counts)["purchases"];
  EXPECT_EQ(p.finished_recently, 3u);
  EXPECT_DOUBLE_EQ(p.processing_ms_sum, 360.5);
  // A retrying event that then finishes counts with the time it was given.
  ASSERT_TRUE(store_->commit({}, std::vector<store::Transition>{
                                     {.kind = store::Transition::Kind::done, .id = e, .attempts = 2, .processing_us = 639'500}}));
  counts = store_->counts();
  EXPECT_EQ((*counts)["purchases"].finished_recently, 4u);
  EXPECT_DOUBLE_EQ((*counts)["purchases"].processing_ms_sum, 1000.0);
}

TEST_P(StoreContract, StaleClaimsOldUnfinishedEventsOnce) {
  const auto id = uuid();
  std::vector<store::RawEvent> rows{raw(id)};
  ASSERT_TRUE(store_->commit(rows, {}));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto first = store_->stale(std::chrono::milliseconds(1000), 10);
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ(first->front().id, id);
  EXPECT_EQ(first->front().type, "purchase");
  EXPECT_EQ(first->front().pipeline, "purchases");
  EXPECT_EQ(first->front().correlation_id, "corr-1");
  // The document as stored (PostgreSQL's jsonb may respace it).
  EXPECT_EQ(nlohmann::json::parse(first->front().payload), nlohmann::json::parse(R"({"event_type":"purchase","n":1})"));
  auto second = store_->stale(std::chrono::milliseconds(1000), 10);
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->empty()) << "a claimed event is not handed out again at once";
}

TEST_P(StoreContract, GroupCommitterCollapsesTransitionsAndAnswersEveryWaiter) {
  store::GroupCommitter committer(*store_);
  const auto id = uuid();
  auto inserted = committer.insert({raw(id)}).get();
  ASSERT_TRUE(inserted);
  auto a = committer.transitions(
      {{.kind = store::Transition::Kind::retrying, .id = id, .attempts = 1, .error_type = "t", .error_message = "m"}});
  auto b = committer.transitions({{.kind = store::Transition::Kind::done, .id = id, .attempts = 2}});
  EXPECT_TRUE(a.get());
  EXPECT_TRUE(b.get());
  committer.stop();
  EXPECT_EQ((journey(id))["state"], "done");
}

// Role all: one group commit carries new rows and the workers' changes. On
// PostgreSQL they go as one statement, and a repeated id takes the
// transaction with the INSERT that answers each row.
TEST_P(StoreContract, NewRowsAndStateChangesCommitTogether) {
  const auto done = uuid(), dead = uuid(), fresh = uuid(), again = uuid();
  std::vector<store::RawEvent> first{raw(done), raw(dead)};
  ASSERT_TRUE(store_->commit(first, {}));
  std::vector<store::RawEvent> rows{raw(fresh)};
  std::vector<store::Transition> t{
      {.kind = store::Transition::Kind::done, .id = done, .attempts = 1, .processing_us = 5'000},
      {.kind = store::Transition::Kind::dead, .id = dead, .attempts = 2, .error_type = "validation",
       .error_message = "amount must be > 0", .stage = "validator json-schema", .plugin = "json-schema"}};
  auto both = store_->commit(rows, t);
  ASSERT_TRUE(both) << both.error().message;
  ASSERT_EQ(both->size(), 1u);
  EXPECT_EQ((*both)[0], store::InsertStatus::inserted);
  EXPECT_EQ((journey(fresh))["state"], "queued");
  EXPECT_EQ((journey(done))["state"], "done");
  EXPECT_EQ((journey(dead))["state"], "dead");
  EXPECT_EQ((journey(dead))["dead_letter"]["error_type"], "validation");
  EXPECT_EQ((journey(dead))["dead_letter"]["plugin"], "json-schema");

  // A client's retry (same id, same body) next to a new id, with changes.
  std::vector<store::RawEvent> retried{raw(fresh), raw(again)};
  std::vector<store::Transition> later{
      {.kind = store::Transition::Kind::retrying, .id = fresh, .attempts = 1, .error_type = "transient",
       .error_message = "sink down"}};
  auto mixed = store_->commit(retried, later);
  ASSERT_TRUE(mixed) << mixed.error().message;
  ASSERT_EQ(mixed->size(), 2u);
  EXPECT_EQ((*mixed)[0], store::InsertStatus::duplicate);
  EXPECT_EQ((*mixed)[1], store::InsertStatus::inserted);
  EXPECT_EQ((journey(fresh))["state"], "retrying");
  EXPECT_EQ((journey(fresh))["last_error"], "transient: sink down");
  EXPECT_EQ((journey(again))["state"], "queued");
  auto counts = store_->counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ((*counts)["purchases"].received, 4u);
  EXPECT_EQ((*counts)["purchases"].processed, 1u);
  EXPECT_EQ((*counts)["purchases"].dead, 1u);
}

INSTANTIATE_TEST_SUITE_P(Engines, StoreContract, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& param_info) { return param_info.param; });

namespace {
class PostgresStore : public StoreTest {
 protected:
  PostgresStore() : StoreTest("pgstore") {}

  // What a server restart does to the store's connections, without the restart.
  // Client backends only: an autovacuum worker also connects to this fresh
  // database after the inserts (seen once under load: 0, then 1 a moment later).
  void dropConnections() {
    const std::string others =
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'";
    ASSERT_GT(pgCount(url_, "SELECT count(pg_terminate_backend(pid)) " + others), 0);
    // A terminated backend may take seconds to go on a loaded machine. The
    // last count decides: a fresh query could see the previous count's own
    // connection, still closing, as another client.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    long long left = -1;
    while (std::chrono::steady_clock::now() < deadline && (left = pgCount(url_, "SELECT count(*) " + others)) > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(left, 0);
  }
};
}  // namespace

TEST_P(PostgresStore, CommitsRunAgainOnANewSessionAfterTheOldOneDropped) {
  const auto a = uuid(), b = uuid();
  dropConnections();
  auto first = padded({raw(a), raw(b)});
  auto r1 = store_->commit(first, {});  // COPY
  ASSERT_TRUE(r1) << r1.error().message;
  EXPECT_EQ((*r1)[0], store::InsertStatus::inserted);
  EXPECT_EQ((*r1)[1], store::InsertStatus::inserted);
  dropConnections();
  const auto c = uuid();
  auto second = padded({raw(c), raw(a)});
  auto r2 = store_->commit(second, {});  // COPY, then INSERT ... ON CONFLICT
  ASSERT_TRUE(r2) << r2.error().message;
  EXPECT_EQ((*r2)[0], store::InsertStatus::inserted);
  EXPECT_EQ((*r2)[1], store::InsertStatus::duplicate);
  dropConnections();
  const auto d = uuid();
  std::vector<store::RawEvent> third{raw(d)};
  auto r3 = store_->commit(third, {});  // a small batch: the prepared INSERT, prepared again
  ASSERT_TRUE(r3) << r3.error().message;
  EXPECT_EQ((*r3)[0], store::InsertStatus::inserted);
  dropConnections();
  std::vector<store::Transition> t{{.kind = store::Transition::Kind::done, .id = c, .attempts = 1}};
  ASSERT_TRUE(store_->commit({}, t));
  EXPECT_EQ((journey(c))["state"], "done");
  EXPECT_EQ(pgCount(url_, "SELECT count(*) FROM raw_events WHERE pipeline = 'purchases'"), 4);
}

// The state changes are prepared statements whose generic plan PostgreSQL
// caches after five runs. Planned while raw_events was small (and analysed
// so), such a plan scanned the whole table once it had grown; the store's
// committers keep to the primary key instead. Counted, not timed: the
// table's sequential scans do not grow however many changes commit.
TEST_P(PostgresStore, StateChangesKeepToThePrimaryKeyAfterTheTableGrows) {
  // The migrations' CREATE INDEX scanned the table too, and a session
  // reports its counts when it idles or ends: the store starts again, on a
  // migrated schema, once the migrating sessions have ended.
  store_.reset();
  const std::string others = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                             "AND pid <> pg_backend_pid() AND backend_type = 'client backend'";
  for (int i = 0; i < 250 && pgCount(url_, others) > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(pgCount(url_, others), 0);
  auto reopened = store::openStore(url_);
  ASSERT_TRUE(reopened) << reopened.error().message;
  store_ = std::move(*reopened);
  std::vector<std::string> ids;
  std::vector<store::RawEvent> rows;
  for (int i = 0; i < 12; ++i) {
    ids.push_back(uuid());
    rows.push_back(raw(ids.back()));
  }
  ASSERT_TRUE(store_->commit(rows, {}));
  pgCount(url_, "ANALYZE raw_events; SELECT 1");
  const auto scans = [&](const char* column) {
    return pgCount(url_, std::string("SELECT ") + column + " FROM pg_stat_user_tables WHERE relname = 'raw_events'");
  };
  const long long seq_before = scans("COALESCE(seq_scan, 0)"), idx_before = scans("COALESCE(idx_scan, 0)");
  const auto change = [&](std::size_t i) {
    std::vector<store::Transition> t{{.kind = store::Transition::Kind::retrying, .id = ids[i], .attempts = 1,
                                      .error_type = "transient", .error_message = "later"}};
    auto r = store_->commit({}, t);
    ASSERT_TRUE(r) << r.error().message;
  };
  for (std::size_t i = 0; i < 8; ++i) change(i);  // past the five custom plans
  pgCount(url_, "WITH a AS (INSERT INTO raw_events (event_id, event_type, pipeline, payload, payload_sha256, "
                "received_at, state, attempts, updated_at) SELECT gen_random_uuid(), 'purchase', 'filler', '{}', 'x', "
                "now(), 'queued', 0, now() FROM generate_series(1, 20000) RETURNING 1) SELECT count(*) FROM a");
  for (std::size_t i = 8; i < 12; ++i) change(i);
  // The committer's counts reach the statistics when its session idles
  // (at most about 10 s later in PostgreSQL 15).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (scans("COALESCE(idx_scan, 0)") < idx_before + 12 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_GE(scans("COALESCE(idx_scan, 0)"), idx_before + 12);
  EXPECT_EQ(scans("COALESCE(seq_scan, 0)"), seq_before);
  EXPECT_EQ((journey(ids[11]))["state"], "retrying");
}

// The state changes' cached plan joins a batch's arrays to raw_events. Once
// statistics said nearly every row was finished, PostgreSQL's generic plan
// was a nested loop rescanning the arrays for each row, quadratic in the
// batch (1.9 s for 2,000 changes; half a mixed run's throughput from the
// first automatic ANALYZE on). The committers' session joins it hashed.
// The plans are read, not timed; the changes then commit through the store.
TEST_P(PostgresStore, StateChangesJoinTheirBatchHashedOnceMostRowsAreFinished) {
  ASSERT_EQ(pgCount(url_, "WITH a AS (INSERT INTO raw_events (event_id, event_type, pipeline, payload, payload_sha256, "
                          "received_at, state, attempts, updated_at) SELECT gen_random_uuid(), 'purchase', 'filler', "
                          "'{}', 'x', now(), 'done', 1, now() FROM generate_series(1, 20000) RETURNING 1) "
                          "SELECT count(*) FROM a"),
            20000);
  std::vector<std::string> ids;
  std::vector<store::RawEvent> rows;
  for (int i = 0; i < 2000; ++i) {
    ids.push_back(uuid());
    rows.push_back(raw(ids.back()));
  }
  ASSERT_TRUE(store_->commit(rows, {}));
  pgCount(url_, "ANALYZE raw_events; SELECT 1");

  const auto array = [&](const std::function<std::string(std::size_t)>& item) {
    std::string out = "'{";
    for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + item(i);
    return out + "}'";
  };
  const std::string empty = array([](std::size_t) { return std::string("\"\""); });
  const std::string args = array([&](std::size_t i) { return ids[i]; }) + ", " +
                           array([](std::size_t) { return std::string("1"); }) + ", " +
                           array([](std::size_t) { return std::string("-1"); }) + ", " +
                           array([](std::size_t) { return std::string("done"); }) + ", " + empty + ", " + empty +
                           ", " + empty + ", " + empty + ", " + empty;
  const auto plan = [&](const char* session) {
    auto info = pg::parseConnInfo(url_, "url");
    EXPECT_TRUE(info);
    auto conn = pg::Connection::open(*info, nullptr, session);
    EXPECT_TRUE(conn) << conn.error().message;
    if (!conn) return std::string();
    EXPECT_TRUE((*conn)->exec("SET plan_cache_mode = force_generic_plan"));
    auto prepared = (*conn)->exec("PREPARE changes AS " + store::postgres::transitionsStatement());
    EXPECT_TRUE(prepared) << prepared.error().message;
    auto r = (*conn)->exec("EXPLAIN (COSTS OFF) EXECUTE changes(" + args + ")");
    EXPECT_TRUE(r) << r.error().message;
    std::string text;
    for (int i = 0; r && i < PQntuples(r->get()); ++i) text += pg::text(*r, i, 0) + "\n";
    return text;
  };
  // Without the session's settings this setup leads the planner to the
  // nested loop; were it not to, the check below would prove nothing.
  const std::string plain = plan("");
  EXPECT_NE(plain.find("Nested Loop"), std::string::npos) << plain;
  const std::string committer = plan(store::postgres::kCommitterSession);
  EXPECT_EQ(committer.find("Nested Loop"), std::string::npos) << committer;
  EXPECT_NE(committer.find("raw_events_pkey"), std::string::npos) << committer;

  std::vector<store::Transition> done;
  for (const auto& id : ids) done.push_back({.kind = store::Transition::Kind::done, .id = id, .attempts = 1});
  for (int i = 0; i < 7; ++i) {  // past the five custom plans, the last ones on the cached plan
    const std::size_t from = i * 250, to = i == 6 ? done.size() : from + 250;
    auto r = store_->commit({}, std::span(done).subspan(from, to - from));
    ASSERT_TRUE(r) << r.error().message;
  }
  EXPECT_EQ(pgCount(url_, "SELECT count(*) FROM raw_events WHERE pipeline = 'purchases' AND state = 'done'"), 2000);
}

INSTANTIATE_TEST_SUITE_P(Engines, PostgresStore, ::testing::Values("postgresql"),
                         [](const auto& param_info) { return param_info.param; });

// A session's setup and its prepared statements belong to one server
// process: after the connection is dropped (a server restart, a killed
// backend) the next statement runs on a new session, set up and prepared
// again.
TEST(PgConnection, SetupAndPreparedStatementsFollowANewSession) {
  const std::string url = freshDatabase("pgconn");
  ASSERT_FALSE(url.empty());
  auto info = pg::parseConnInfo(url, "url");
  ASSERT_TRUE(info);
  auto conn = pg::Connection::open(*info, nullptr, "SET enable_seqscan = off");
  ASSERT_TRUE(conn) << conn.error().message;
  const auto show = [&] {
    auto r = (*conn)->exec("SHOW enable_seqscan");
    EXPECT_TRUE(r) << r.error().message;
    return r ? pg::text(*r, 0, 0) : std::string();
  };
  const auto twice = [&](const std::string& n) {
    auto r = (*conn)->prepared("twice", "SELECT $1::integer * 2", {n});
    EXPECT_TRUE(r) << r.error().message;
    return r ? pg::text(*r, 0, 0) : std::string();
  };
  EXPECT_EQ(show(), "off");
  EXPECT_EQ(twice("21"), "42");
  const int first = PQbackendPID((*conn)->raw());
  ASSERT_EQ(pgCount(url, "SELECT count(pg_terminate_backend(" + std::to_string(first) + "))"), 1);
  for (int i = 0; i < 100 && pgCount(url, "SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(first)) > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(twice("5"), "10");  // a statement outside a transaction runs again on the new session
  EXPECT_NE(PQbackendPID((*conn)->raw()), first);
  EXPECT_EQ(show(), "off");
  // A statement the server forgot (DISCARD ALL behind a pooler) fails once,
  // then is prepared again.
  ASSERT_TRUE((*conn)->exec("DEALLOCATE ALL"));
  EXPECT_FALSE((*conn)->prepared("twice", "SELECT $1::integer * 2", {"1"}));
  EXPECT_EQ(twice("8"), "16");
}

TEST(StoreCollapse, FirstTerminalWinsElseLatest) {
  using TK = store::Transition::Kind;
  std::vector<store::Transition> t{{.kind = TK::retrying, .id = "a", .attempts = 1},
                                   {.kind = TK::done, .id = "a", .attempts = 2},
                                   {.kind = TK::retrying, .id = "a", .attempts = 3},
                                   {.kind = TK::retrying, .id = "b", .attempts = 1},
                                   {.kind = TK::retrying, .id = "b", .attempts = 2}};
  store::collapse(t);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].kind, store::Transition::Kind::done);
  EXPECT_EQ(t[0].attempts, 2u);
  EXPECT_EQ(t[1].attempts, 2u);
}

namespace {

queue::RedisOptions redisOptions(std::chrono::milliseconds claim_idle = std::chrono::milliseconds(30000)) {
  queue::RedisOptions o;
  o.url = redisUrl();
  o.prefix = "eftest:" + std::to_string(::getpid()) + ":" + uuid() + ":";
  o.claim_idle = claim_idle;
  return o;
}

// The Redis queue's depth and pending count are what its refresher counted
// last (every 100 ms, for pipelines someone asked about): ask until the
// count says `want`, or 2 s.
std::size_t settled(const std::function<std::size_t()>& count, std::size_t want) {
  std::size_t n = count();
  for (int i = 0; i < 40 && n != want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    n = count();
  }
  return n;
}

std::size_t depthSettled(queue::Queue& q, const std::string& pipeline, std::size_t want) {
  return settled([&] { return q.depth(pipeline); }, want);
}

std::size_t pendingSettled(queue::Queue& q, const std::string& pipeline, std::size_t want) {
  return settled([&] { return q.pending(pipeline); }, want);
}

queue::Message message(const std::string& id) {
  return {.id = id,
          .type = "purchase",
          .pipeline = "purchases",
          .payload = R"({"event_type":"purchase"})",
          .correlation_id = "corr",
          .received_at = std::chrono::system_clock::now(),
          .attempts = 2};
}

}  // namespace

TEST(RedisQueue, PublishTakeAckRoundTrip) {
  auto q = queue::makeRedisQueue(redisOptions(), {"purchases"});
  ASSERT_TRUE(q->ping());
  std::vector<queue::Message> out;
  for (int i = 0; i < 5; ++i) out.push_back(message(uuid()));
  const std::string first_id = out.front().id;
  ASSERT_TRUE(q->publish("purchases", out));
  EXPECT_EQ(depthSettled(*q, "purchases", 5), 5u);
  auto got = q->take("purchases", 0, 10, std::chrono::milliseconds(500));
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0].id, first_id);
  EXPECT_EQ(got[0].attempts, 2u);
  EXPECT_EQ(got[0].correlation_id, "corr");
  EXPECT_EQ(got[0].payload, R"({"event_type":"purchase"})");
  EXPECT_FALSE(got[0].token.empty());
  EXPECT_EQ(got[0].deliveries, 1u);
  // Nothing new for another consumer, and nothing lost before the ack.
  EXPECT_TRUE(q->take("purchases", 1, 10, std::chrono::milliseconds(100)).empty());
  std::vector<std::string> tokens;
  for (const auto& m : got) tokens.push_back(m.token);
  EXPECT_EQ(depthSettled(*q, "purchases", 5), 5u) << "taken but unacknowledged entries stay counted";
  q->ack("purchases", tokens);
  EXPECT_EQ(depthSettled(*q, "purchases", 0), 0u) << "acknowledged entries are deleted, unacknowledged ones never";
}

// Each transport in turn, the Redis queue and the embedded one, with four
// messages just published to "purchases".
void forBothQueues(const std::function<void(queue::Queue&)>& check) {
  auto redis = queue::makeRedisQueue(redisOptions(), {"purchases"});
  queue::EmbeddedQueue embedded({"purchases"});
  for (queue::Queue* q : {static_cast<queue::Queue*>(redis.get()), static_cast<queue::Queue*>(&embedded)}) {
    SCOPED_TRACE(q->kind());
    std::vector<queue::Message> out;
    for (int i = 0; i < 4; ++i) out.push_back(message(uuid()));
    ASSERT_TRUE(q->publish("purchases", out));
    check(*q);
  }
}

TEST(QueuePending, CountsWhatWorkersHoldUntilItIsAcknowledgedOrRedelivered) {
  forBothQueues([](queue::Queue& q) {
    EXPECT_EQ(depthSettled(q, "purchases", 4), 4u);
    EXPECT_EQ(pendingSettled(q, "purchases", 0), 0u) << "published, not yet handed out";
    auto got = q.take("purchases", 0, 3, std::chrono::milliseconds(500));
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(pendingSettled(q, "purchases", 3), 3u);
    q.ack("purchases", {got[0].token, got[1].token});
    EXPECT_EQ(pendingSettled(q, "purchases", 1), 1u);
    if (q.kind() == "embedded") {
      // A retry back in the queue waits to be taken again: not pending.
      q.redeliver("purchases", got[2]);
      EXPECT_EQ(q.pending("purchases"), 0u);
      EXPECT_EQ(q.depth("purchases"), 2u);
    }
    auto rest = q.take("purchases", 0, 10, std::chrono::milliseconds(500));
    std::vector<std::string> tokens;
    for (const auto& m : rest) tokens.push_back(m.token);
    if (q.kind() == "redis") tokens.push_back(got[2].token);
    q.ack("purchases", tokens);
    EXPECT_EQ(pendingSettled(q, "purchases", 0), 0u);
    EXPECT_EQ(depthSettled(q, "purchases", 0), 0u);
  });
}

TEST(QueueDepth, CountsEverythingNotYetAcknowledgedWithPendingAPartOfIt) {
  // Queue::depth is what is published and not yet acknowledged; pending, of
  // those, what workers hold (docs/operations.md). Both transports agree,
  // and a retry handed back is counted once.
  forBothQueues([](queue::Queue& q) {
    auto got = q.take("purchases", 0, 3, std::chrono::milliseconds(500));
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(pendingSettled(q, "purchases", 3), 3u);
    EXPECT_EQ(depthSettled(q, "purchases", 4), 4u) << "three held by a worker, one waiting: none acknowledged";
    q.ack("purchases", {got[0].token, got[1].token});
    EXPECT_EQ(depthSettled(q, "purchases", 2), 2u);
    q.redeliver("purchases", got[2]);  // a retry whose backoff has passed
    // One more message: a count made after the redelivery reads 3, and 4 if
    // the retry were counted twice.
    ASSERT_TRUE(q.publish("purchases", {message(uuid())}));
    EXPECT_EQ(depthSettled(q, "purchases", 3), 3u) << "the retry is counted once";
    std::vector<std::string> tokens;
    for (int i = 0; i < 5 && tokens.size() < 3; ++i)
      for (const auto& m : q.take("purchases", 0, 10, std::chrono::milliseconds(200))) tokens.push_back(m.token);
    ASSERT_EQ(tokens.size(), 3u);
    q.ack("purchases", tokens);
    EXPECT_EQ(depthSettled(q, "purchases", 0), 0u);
    EXPECT_EQ(pendingSettled(q, "purchases", 0), 0u);
  });
}

TEST(RedisQueue, EntriesNoEventFlowWroteAreDroppedNotHandedOut) {
  // One would fail every group commit its state change joined.
  auto q = queue::makeRedisQueue(redisOptions(), {"purchases"});
  std::vector<queue::Message> out{message("not-a-uuid"), message(uuid())};
  ASSERT_TRUE(q->publish("purchases", out));
  auto got = q->take("purchases", 0, 10, std::chrono::milliseconds(500));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, out[1].id);
  q->ack("purchases", {got[0].token});
  EXPECT_EQ(depthSettled(*q, "purchases", 0), 0u) << "the foreign entry is acknowledged and deleted too";
}

TEST(RedisQueue, DepthNeverWaitsOnAnUnansweringRedis) {
  // Ingest reads the depth on the HTTP event loop: a Redis that accepts the
  // connection and never answers must not hold it.
  Poco::Net::ServerSocket silent(Poco::Net::SocketAddress("127.0.0.1", 0));
  auto options = redisOptions();
  options.url = "redis://127.0.0.1:" + std::to_string(silent.address().port());
  auto q = queue::makeRedisQueue(options, {"purchases"});
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(q->depth("purchases"), 0u);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(RedisQueue, APublishToARedisThatStopsReadingFailsInsteadOfHanging) {
  // The connection is accepted (by the kernel's backlog) and never read: once
  // the socket buffers are full, the write waits for its send timeout and
  // the publish fails; the events stay in the store for the relay.
  Poco::Net::ServerSocket silent(Poco::Net::SocketAddress("127.0.0.1", 0));
  auto options = redisOptions();
  options.url = "redis://127.0.0.1:" + std::to_string(silent.address().port());
  options.send_timeout = std::chrono::milliseconds(500);
  auto q = queue::makeRedisQueue(options, {"purchases"});
  std::vector<queue::Message> big;
  for (int i = 0; i < 64; ++i) {
    queue::Message m;
    m.id = uuid();
    m.type = "purchase";
    m.pipeline = "purchases";
    m.payload = std::string(1 << 20, 'x');
    m.received_at = std::chrono::system_clock::now();
    big.push_back(std::move(m));
  }
  auto sent = std::async(std::launch::async, [&] { return q->publish("purchases", std::move(big)); });
  const auto status = sent.wait_for(std::chrono::seconds(15));
  silent.close();  // resets the connection: a write without a timeout returns, and the suite goes on
  ASSERT_EQ(status, std::future_status::ready) << "publish still blocked after 15 s";
  EXPECT_FALSE(sent.get());
}

// What a take() by `worker` gets once claim_idle has passed (asked for 3 s).
std::vector<queue::Message> takeClaimed(queue::Queue& q, unsigned worker) {
  std::vector<queue::Message> got;
  for (int i = 0; i < 30 && got.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    got = q.take("purchases", worker, 10, std::chrono::milliseconds(100));
  }
  return got;
}

TEST(RedisQueue, EntriesOfAStoppedConsumerAreClaimedWithTheirDeliveryCount) {
  const auto options = redisOptions(std::chrono::milliseconds(200));
  auto crashed = queue::makeRedisQueue(options, {"purchases"});
  ASSERT_TRUE(crashed->publish("purchases", {message(uuid())}));
  auto taken = crashed->take("purchases", 0, 10, std::chrono::milliseconds(500));
  ASSERT_EQ(taken.size(), 1u);
  crashed.reset();  // never acks: as if the process died

  auto survivor = queue::makeRedisQueue(options, {"purchases"});
  const auto claimed = takeClaimed(*survivor, 0);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].id, taken[0].id);
  EXPECT_EQ(claimed[0].deliveries, 2u);
}

TEST(RedisQueue, ClaimedEntriesRunOneAtATimeSoACrashBlamesOnlyOne) {
  // Two entries were in flight when a consumer died; either may be what
  // killed it. The survivor hands the second out only once the first is
  // acknowledged: had both run at once, the poison one's next crash would
  // count a delivery against the innocent one as well.
  const auto options = redisOptions(std::chrono::milliseconds(200));
  auto crashed = queue::makeRedisQueue(options, {"purchases"});
  ASSERT_TRUE(crashed->publish("purchases", {message(uuid()), message(uuid())}));
  ASSERT_EQ(crashed->take("purchases", 0, 10, std::chrono::milliseconds(500)).size(), 2u);
  crashed.reset();  // never acks: as if the process died

  auto survivor = queue::makeRedisQueue(options, {"purchases"});
  const auto first = takeClaimed(*survivor, 0);
  ASSERT_EQ(first.size(), 1u) << "one claimed entry at a time";
  EXPECT_EQ(first[0].deliveries, 2u);
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(survivor->take("purchases", 1, 10, std::chrono::milliseconds(50)).empty())
        << "the second claimed entry waits while the first runs";
  }
  survivor->ack("purchases", {first[0].token});
  const auto second = takeClaimed(*survivor, 1);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(second[0].id, first[0].id);
  EXPECT_EQ(second[0].deliveries, 2u);
}

TEST(RedisQueue, OnlyTheBatchInHandAtACrashRunsOneAtATime) {
  // A worker reads its next batch only after the chain ran over the last:
  // the first batch, still unacknowledged (waiting for its commit), cannot
  // have crashed the process; the second, in hand, may have.
  const auto options = redisOptions(std::chrono::milliseconds(200));
  auto crashed = queue::makeRedisQueue(options, {"purchases"});
  ASSERT_TRUE(crashed->publish("purchases", {message(uuid()), message(uuid())}));
  const auto through = crashed->take("purchases", 0, 2, std::chrono::milliseconds(500));
  ASSERT_EQ(through.size(), 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(crashed->publish("purchases", {message(uuid()), message(uuid())}));
  const auto in_hand = crashed->take("purchases", 0, 2, std::chrono::milliseconds(500));
  ASSERT_EQ(in_hand.size(), 2u);
  crashed.reset();  // never acks: as if the process died

  auto survivor = queue::makeRedisQueue(options, {"purchases"});
  const auto batch = takeClaimed(*survivor, 0);
  ASSERT_EQ(batch.size(), 2u) << "the entries that had been through the chain come back together";
  std::set<std::string> ids{batch[0].id, batch[1].id};
  EXPECT_EQ(ids, (std::set<std::string>{through[0].id, through[1].id}));
  EXPECT_EQ(batch[0].deliveries, 1u) << "claimed without counting a delivery";
  survivor->ack("purchases", {batch[0].token, batch[1].token});
  const auto first = takeClaimed(*survivor, 1);
  ASSERT_EQ(first.size(), 1u) << "the batch in hand runs one at a time";
  EXPECT_EQ(first[0].deliveries, 2u);
  EXPECT_TRUE(first[0].id == in_hand[0].id || first[0].id == in_hand[1].id);
}

TEST(RedisQueue, HandedBackEntriesGoToTheNextConsumerAtOnceWithTheirState) {
  const auto options = redisOptions();  // claim_idle 30 s: nothing may wait for it
  auto stopping = queue::makeRedisQueue(options, {"purchases"});
  ASSERT_TRUE(stopping->publish("purchases", {message(uuid())}));
  auto taken = stopping->take("purchases", 0, 10, std::chrono::milliseconds(500));
  ASSERT_EQ(taken.size(), 1u);
  taken[0].attempts = 3;
  taken[0].sinks_done = 1;
  const auto due = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now()) +
                   std::chrono::seconds(5);
  taken[0].not_before = due;
  stopping->handBack("purchases", taken);
  stopping->close();
  EXPECT_EQ(pendingSettled(*stopping, "purchases", 0), 0u) << "nothing left pending under the stopped consumer";
  stopping.reset();

  auto next = queue::makeRedisQueue(options, {"purchases"});
  const auto got = next->take("purchases", 0, 10, std::chrono::milliseconds(500));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, taken[0].id);
  EXPECT_NE(got[0].token, taken[0].token);
  EXPECT_EQ(got[0].deliveries, 1u);
  EXPECT_EQ(got[0].attempts, 3u);
  EXPECT_EQ(got[0].sinks_done, 1u);
  EXPECT_EQ(got[0].not_before, due);
  EXPECT_EQ(depthSettled(*next, "purchases", 1), 1u) << "the old entry is gone, the new one is the only one";
}

TEST(RedisQueue, RedeliveredRetryKeepsItsToken) {
  auto q = queue::makeRedisQueue(redisOptions(), {"purchases"});
  ASSERT_TRUE(q->publish("purchases", {message(uuid())}));
  auto got = q->take("purchases", 0, 10, std::chrono::milliseconds(500));
  ASSERT_EQ(got.size(), 1u);
  got[0].attempts = 3;
  q->redeliver("purchases", got[0]);
  auto again = q->take("purchases", 0, 10, std::chrono::milliseconds(100));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].token, got[0].token);
  EXPECT_EQ(again[0].attempts, 3u);
}

TEST(RedisQueue, ARedisRestartedEmptyIsUsableAgain) {
  const auto options = redisOptions();
  auto q = queue::makeRedisQueue(options, {"purchases"});
  ASSERT_TRUE(q->publish("purchases", {message(uuid())}));
  ASSERT_EQ(q->take("purchases", 0, 10, std::chrono::milliseconds(500)).size(), 1u);
  // Losing the stream and its group is what an empty restart looks like.
  ASSERT_EQ(std::system(("redis-cli -u " + redisUrl() + " DEL '" + options.prefix + "purchases' > /dev/null").c_str()), 0);
  const std::string id = uuid();
  std::vector<queue::Message> got;
  for (int i = 0; i < 10 && got.empty(); ++i) {
    (void)q->publish("purchases", {message(id)});
    got = q->take("purchases", 0, 10, std::chrono::milliseconds(200));
  }
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().id, id);
}

TEST(RedisQueue, PublishAllReachesEveryPipelineAndValuesComeBackByteForByte) {
  // The replies the parser must take apart exactly: CRLF and RESP markers
  // inside values, control bytes, UTF-8, empty values, a 1 MiB payload that
  // spans many socket reads, and an error reply amid a pipelined write.
  const auto options = redisOptions();
  auto q = queue::makeRedisQueue(options, {"alpha", "beta"});
  std::string odd = "line\r\nbreak $-1\r\n*2\r\n:5\r\n-ERR no\r\n+OK\r\n$3\r\n";
  for (int c = 0; c < 0x20; ++c) odd += static_cast<char>(c);
  odd += " \xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \r";
  std::string big;
  for (int i = 0; big.size() < (1u << 20); ++i) big += odd + std::to_string(i);
  big.resize(1u << 20);

  auto make = [&](const std::string& pipeline, std::string type, std::string cid, std::string payload) {
    auto m = message(uuid());
    m.pipeline = pipeline;
    m.type = std::move(type);
    m.correlation_id = std::move(cid);
    m.payload = std::move(payload);
    return m;
  };
  const std::vector<queue::Message> alpha{make("alpha", "t\r\n1", odd, odd), make("alpha", "big", "", big),
                                          make("alpha", "", "c", "")};
  const std::vector<queue::Message> beta{make("beta", "b", "\r\n", big.substr(0, 70000) + odd),
                                         make("beta", "plain", "corr", R"({"event_type":"purchase"})")};
  ASSERT_TRUE(q->publishAll({{"alpha", alpha}, {"beta", beta}}));

  std::vector<std::string> alpha_tokens, beta_tokens;
  for (const auto& [pipeline, sent] : {std::pair{"alpha", &alpha}, std::pair{"beta", &beta}}) {
    SCOPED_TRACE(pipeline);
    auto got = q->take(pipeline, 0, 10, std::chrono::milliseconds(500));
    ASSERT_EQ(got.size(), sent->size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      const auto& want = (*sent)[i];
      EXPECT_EQ(got[i].id, want.id);
      EXPECT_EQ(got[i].pipeline, pipeline);
      EXPECT_EQ(got[i].type, want.type);
      EXPECT_EQ(got[i].correlation_id, want.correlation_id);
      EXPECT_EQ(got[i].attempts, want.attempts);
      EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(got[i].received_at.time_since_epoch()),
                std::chrono::duration_cast<std::chrono::milliseconds>(want.received_at.time_since_epoch()));
      EXPECT_EQ(got[i].payload.size(), want.payload.size());
      EXPECT_TRUE(got[i].payload == want.payload) << "payload " << i << " differs";
      (pipeline == std::string("alpha") ? alpha_tokens : beta_tokens).push_back(got[i].token);
    }
  }

  // A stream key holding a string: its XADD answers WRONGTYPE, first of the
  // pipelined replies; the next pipeline's XADD still goes out and is read.
  ASSERT_EQ(std::system(("redis-cli -u " + redisUrl() + " SET '" + options.prefix + "a-broken' x > /dev/null").c_str()), 0);
  const std::vector<queue::Message> later{make("beta", "later", "c", odd)};
  auto sent = q->publishAll({{"a-broken", {make("a-broken", "x", "c", "p")}}, {"beta", later}});
  ASSERT_FALSE(sent);
  EXPECT_NE(sent.error().message.find("WRONGTYPE"), std::string::npos) << sent.error().message;
  auto got = q->take("beta", 0, 10, std::chrono::milliseconds(500));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, later[0].id);
  EXPECT_TRUE(got[0].payload == odd);
  beta_tokens.push_back(got[0].token);

  // The shared connections are still in step with Redis after all that.
  q->ack("alpha", alpha_tokens);
  q->ack("beta", beta_tokens);
  EXPECT_EQ(depthSettled(*q, "alpha", 0), 0u);
  EXPECT_EQ(depthSettled(*q, "beta", 0), 0u);
  EXPECT_TRUE(q->ping());
}

// A store opened while another connection holds the database's lock waits
// for it instead of failing at once with "database is locked" (issue 10).
// Poco's SQLite session already sets a busy timeout when it opens; the store
// sets its own first, so that no statement of open() runs without one.
TEST(SqliteStore, OpensWhileAnotherConnectionHoldsTheLock) {
  const auto dir = std::filesystem::temp_directory_path() / ("eventflow-sqlite-locked-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = (dir / "eventflow.db").string();
  Poco::Data::SQLite::Connector::registerConnector();
  Poco::Data::Session holder("SQLite", db);  // a rollback-journal file, as before the store first ran
  holder << "CREATE TABLE t (x INTEGER)", Poco::Data::Keywords::now;
  holder << "BEGIN EXCLUSIVE", Poco::Data::Keywords::now;
  holder << "INSERT INTO t VALUES (1)", Poco::Data::Keywords::now;
  auto release = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the lock is held this long, on purpose
    holder << "COMMIT", Poco::Data::Keywords::now;
  });
  auto opened = store::openStore("sqlite://" + db);
  release.wait();
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_TRUE((*opened)->ping());
  std::filesystem::remove_all(dir);
}

namespace {

class SqliteWriter : public StoreTest {
 protected:
  SqliteWriter() : StoreTest("sqlite-writer") {}
  std::string dbPath() const { return url_.substr(9); }
};

}  // namespace

// The group commit's statements are prepared once and reused: a commit that
// fails (here a trigger refuses one row) rolls back all of it, and the next
// commit on the same statements records its rows and transitions.
TEST_P(SqliteWriter, AFailedCommitRollsBackAndTheNextCommitsOnTheSameStatements) {
  Poco::Data::SQLite::Connector::registerConnector();
  Poco::Data::Session other("SQLite", dbPath());
  const auto a = uuid();
  std::vector<store::RawEvent> first{raw(a)};
  ASSERT_TRUE(store_->commit(first, {}));  // the statements exist now
  other << "CREATE TRIGGER refuse BEFORE INSERT ON raw_events WHEN NEW.event_type = 'boom' "
           "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
      Poco::Data::Keywords::now;
  const auto b = uuid(), c = uuid();
  auto bad = raw(c);
  bad.type = "boom";
  std::vector<store::RawEvent> second{raw(b), bad};
  std::vector<store::Transition> done{{.kind = store::Transition::Kind::done, .id = a, .attempts = 1}};
  auto failed = store_->commit(second, done);
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("refused by the test"), std::string::npos) << failed.error().message;
  EXPECT_EQ(journey(b), nullptr);  // rolled back with the row that failed
  EXPECT_EQ(journey(a)["state"], "queued");

  const auto d = uuid();
  std::vector<store::RawEvent> third{raw(b), raw(d), raw(d)};
  auto ok = store_->commit(third, done);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ((*ok)[0], store::InsertStatus::inserted);
  EXPECT_EQ((*ok)[1], store::InsertStatus::inserted);
  EXPECT_EQ((*ok)[2], store::InsertStatus::duplicate);
  EXPECT_EQ(journey(a)["state"], "done");
  EXPECT_EQ(journey(d)["state"], "queued");
}

// Another connection of the file (the sqlite sink's) holding the write lock
// delays a group commit; the commit goes through once the lock is released,
// rather than failing with "database is locked".
TEST_P(SqliteWriter, ACommitWaitsForAnotherWritersTransaction) {
  Poco::Data::SQLite::Connector::registerConnector();
  Poco::Data::Session other("SQLite", dbPath());
  other << "BEGIN IMMEDIATE", Poco::Data::Keywords::now;
  const auto a = uuid();
  auto committed = std::async(std::launch::async, [&] {
    std::vector<store::RawEvent> rows{raw(a)};
    return store_->commit(rows, {});
  });
  // While the other transaction is open the commit cannot finish (it is
  // still waiting after 300 ms); this bounds nothing about its speed.
  EXPECT_EQ(committed.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  other << "COMMIT", Poco::Data::Keywords::now;
  auto result = committed.get();
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ((*result)[0], store::InsertStatus::inserted);
}

INSTANTIATE_TEST_SUITE_P(Engines, SqliteWriter, ::testing::Values("sqlite"),
                         [](const auto& param_info) { return param_info.param; });

// The short-sleep busy handler gives up with SQLITE_BUSY once its limit
// has passed, as busy_timeout would.
TEST(SqliteBusyWait, GivesUpAfterItsLimit) {
  const auto dir = std::filesystem::temp_directory_path() / ("eventflow-busy-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = (dir / "busy.db").string();
  sqlite3* holder = nullptr;
  sqlite3* waiter = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &holder), SQLITE_OK);
  ASSERT_EQ(sqlite3_open(db.c_str(), &waiter), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(holder, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); BEGIN IMMEDIATE; INSERT INTO t VALUES(1)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite::BusyWait busy(std::chrono::milliseconds(200));
  busy.install(waiter);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(sqlite3_exec(waiter, "INSERT INTO t VALUES(2)", nullptr, nullptr, nullptr), SQLITE_BUSY);
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(200));
  ASSERT_EQ(sqlite3_exec(holder, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(waiter, "INSERT INTO t VALUES(2)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(holder);
  sqlite3_close(waiter);
  std::filesystem::remove_all(dir);
}
