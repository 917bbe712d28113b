// The DLQ operations of the store against the real engines, SQLite and
// PostgreSQL: listing with filters, replay, discard, purge, and the journey's
// history across a replay.

#include <gtest/gtest.h>

#include <Poco/UUIDGenerator.h>

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "backends.hpp"
#include "store_test.hpp"
#include "config/config.hpp"
#include "pipeline/live_router.hpp"
#include "plugin/loader.hpp"
#include "queue/queue.hpp"
#include "runtime/dlq.hpp"
#include "store/store.hpp"

using namespace eventflow;
using namespace eventflow::testing;
using TK = store::Transition::Kind;

namespace {

std::string uuid() { return Poco::UUIDGenerator::defaultGenerator().createRandom().toString(); }

class DlqStore : public StoreTest {
 protected:
  DlqStore() : StoreTest("dlq") {}

  // Records an event of `type` in `pipeline` and lets it die with `error_type`.
  std::string dead(const std::string& pipeline, const std::string& type, const std::string& error_type,
                   unsigned attempts = 1) {
    const std::string id = uuid();
    const std::string body = R"({"event_type":")" + type + R"(","event_id":")" + id + R"(","n":7})";
    std::vector<store::RawEvent> rows{{id, type, pipeline, body, "sha-" + id, "corr-" + id, std::chrono::system_clock::now()}};
    EXPECT_TRUE(store_->commit(rows, {}));
    std::vector<store::Transition> t{{.kind = TK::dead, .id = id, .attempts = attempts, .error_type = error_type,
                                      .error_message = "it failed: " + error_type, .stage = "validator x", .plugin = "x"}};
    EXPECT_TRUE(store_->commit({}, t));
    return id;
  }

  void transition(const store::Transition& t) {
    std::vector<store::Transition> one{t};
    ASSERT_TRUE(store_->commit({}, one));
  }

  std::vector<std::string> ids(const store::DeadFilter& f) {
    auto page = store_->listDead(f);
    EXPECT_TRUE(page) << page.error().message;
    std::vector<std::string> out;
    if (page)
      for (const auto& e : page->items) out.push_back(e.event_id);
    return out;
  }

  // Failures in one millisecond would tie on failed_at; the tests want an order.
  static void tick() { std::this_thread::sleep_for(std::chrono::milliseconds(5)); }
};

}  // namespace

TEST_P(DlqStore, ListsOnlyDeadEventsInFailureOrderWithFiltersAndPages) {
  const auto a = dead("purchases", "purchase", "validation");
  tick();
  const auto b = dead("purchases", "purchase", "transient", 5);
  tick();
  const auto c = dead("signups", "user_signup", "validation");
  tick();
  const auto d = dead("purchases", "purchase", "validation");
  // Not dead: one done, one retrying.
  const auto done = uuid(), waiting = uuid();
  std::vector<store::RawEvent> rows{{done, "purchase", "purchases", "{}", "s1", "", std::chrono::system_clock::now()},
                                    {waiting, "purchase", "purchases", "{}", "s2", "", std::chrono::system_clock::now()}};
  ASSERT_TRUE(store_->commit(rows, {}));
  transition({.kind = TK::done, .id = done, .attempts = 1});
  transition({.kind = TK::retrying, .id = waiting, .attempts = 1, .error_type = "transient", .error_message = "down"});

  store::DeadFilter all;
  auto page = store_->listDead(all);
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_EQ(page->total, 4u);
  EXPECT_EQ(ids(all), (std::vector<std::string>{a, b, c, d}));
  const auto& first = page->items.front();
  EXPECT_EQ(first.pipeline, "purchases");
  EXPECT_EQ(first.event_type, "purchase");
  EXPECT_EQ(first.error_type, "validation");
  EXPECT_EQ(first.error_message, "it failed: validation");
  EXPECT_EQ(first.plugin, "x");
  EXPECT_EQ(first.stage, "validator x");
  EXPECT_EQ(first.attempts, 1u);
  EXPECT_EQ(first.replay_count, 0u);
  EXPECT_EQ(first.correlation_id, "corr-" + a);
  EXPECT_EQ(first.first_failed_at, first.failed_at);
  EXPECT_TRUE(parseRfc3339(first.failed_at)) << first.failed_at;
  EXPECT_TRUE(parseRfc3339(first.received_at)) << first.received_at;
  EXPECT_EQ(nlohmann::json::parse(first.payload)["n"], 7);
  EXPECT_EQ(page->items[1].attempts, 5u);

  store::DeadFilter f;
  f.pipeline = "purchases";
  EXPECT_EQ(ids(f), (std::vector<std::string>{a, b, d}));
  f.error_type = "validation";
  EXPECT_EQ(ids(f), (std::vector<std::string>{a, d}));
  store::DeadFilter by_type;
  by_type.error_type = "transient";
  EXPECT_EQ(ids(by_type), (std::vector<std::string>{b}));

  // Pages: limit and offset, with the total of every match.
  store::DeadFilter paged;
  paged.limit = 2;
  paged.offset = 1;
  auto p2 = store_->listDead(paged);
  ASSERT_TRUE(p2);
  EXPECT_EQ(p2->total, 4u);
  ASSERT_EQ(p2->items.size(), 2u);
  EXPECT_EQ(p2->items[0].event_id, b);
  EXPECT_EQ(p2->items[1].event_id, c);
  paged.limit = 0;
  auto counted = store_->listDead(paged);
  ASSERT_TRUE(counted);
  EXPECT_EQ(counted->total, 4u);
  EXPECT_TRUE(counted->items.empty());

  // Time range on failed_at, inclusive at both ends, to the millisecond shown.
  auto times = store_->listDead(all);
  const auto b_at = *parseRfc3339(times->items[1].failed_at);
  const auto c_at = *parseRfc3339(times->items[2].failed_at);
  store::DeadFilter range;
  range.since = b_at;
  range.until = c_at;
  EXPECT_EQ(ids(range), (std::vector<std::string>{b, c}));
  range.since = c_at + std::chrono::milliseconds(1);
  range.until.reset();
  EXPECT_EQ(ids(range), (std::vector<std::string>{d}));

  // getDead: only what is dead now.
  auto got = store_->getDead(c);
  ASSERT_TRUE(got);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->pipeline, "signups");
  EXPECT_FALSE(store_->getDead(done)->has_value());
  EXPECT_FALSE(store_->getDead(uuid())->has_value());
  EXPECT_FALSE(store_->getDead("not-a-uuid")->has_value());
}

TEST_P(DlqStore, ReplayQueuesDeadEventsOnceAndAReplayedEventThatSucceedsKeepsItsHistory) {
  const auto id = dead("purchases", "purchase", "transient", 5);
  const auto other = dead("purchases", "purchase", "validation");
  const auto never = uuid();

  const std::vector<std::string> ask{id, never};
  auto r = store_->replay(ask);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->replayed.size(), 1u);
  const auto& e = r->replayed.front();
  EXPECT_EQ(e.id, id);
  EXPECT_EQ(e.type, "purchase");
  EXPECT_EQ(e.pipeline, "purchases");
  EXPECT_EQ(e.attempts, 0u);
  EXPECT_EQ(e.correlation_id, "corr-" + id);
  EXPECT_EQ(nlohmann::json::parse(e.payload)["event_id"], id);
  EXPECT_EQ(r->skipped, std::vector<std::string>{never});

  auto j = journey(id);
  EXPECT_EQ(j["state"], "queued");
  EXPECT_EQ(j["attempts"], 0);
  EXPECT_TRUE(j["last_error"].is_null()) << j.dump();
  EXPECT_EQ(j["dead_letter"]["replay_count"], 1);
  EXPECT_EQ(j["dead_letter"]["attempts"], 5) << "the failed_events row is history and stays as it was";
  // It left the DLQ listing and counts as in flight; the other is still dead.
  EXPECT_EQ(ids({}), std::vector<std::string>{other});
  EXPECT_FALSE(store_->getDead(id)->has_value());
  auto counts = (*store_->counts())["purchases"];
  EXPECT_EQ(counts.dead, 1u);
  EXPECT_EQ(counts.in_flight, 1u);
  // It is unfinished, so recovery at start or the relay would pick it up too.
  auto unfinished = store_->unfinished();
  ASSERT_TRUE(unfinished);
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ(unfinished->front().id, id);

  // A second replay of the same id finds nothing dead: no double publish.
  const std::vector<std::string> again{id};
  auto r2 = store_->replay(again);
  ASSERT_TRUE(r2);
  EXPECT_TRUE(r2->replayed.empty());
  EXPECT_EQ(r2->skipped, again);
  EXPECT_EQ((journey(id))["dead_letter"]["replay_count"], 1);

  // The worker now processes it: done, and the journey still shows the DLQ visit.
  transition({.kind = TK::done, .id = id, .attempts = 1});
  j = journey(id);
  EXPECT_EQ(j["state"], "done");
  EXPECT_EQ(j["attempts"], 1);
  EXPECT_EQ(j["dead_letter"]["replay_count"], 1);
  EXPECT_EQ(j["dead_letter"]["error_type"], "transient");
  const auto& h = j["history"];
  ASSERT_EQ(h.size(), 4u) << h.dump();
  EXPECT_EQ(h[0]["event"], "received");
  EXPECT_EQ(h[0]["at"], j["received_at"]);
  EXPECT_EQ(h[1]["event"], "dead_lettered");
  EXPECT_EQ(h[1]["error_type"], "transient");
  EXPECT_EQ(h[1]["attempts"], 5);
  EXPECT_EQ(h[2]["event"], "replayed");
  EXPECT_EQ(h[2]["times"], 1);
  EXPECT_EQ(h[3]["event"], "processed");
  EXPECT_EQ((*store_->counts())["purchases"].processed, 1u);
}

TEST_P(DlqStore, AReplayedEventThatFailsAgainIsBackWithItsFirstFailureKept) {
  const auto id = dead("purchases", "purchase", "validation");
  const auto first = *store_->getDead(id);
  ASSERT_TRUE(first);
  const std::vector<std::string> ask{id};
  ASSERT_EQ(store_->replay(ask)->replayed.size(), 1u);
  tick();
  transition({.kind = TK::dead, .id = id, .attempts = 1, .error_type = "rejected", .error_message = "still wrong",
              .stage = "sink s", .plugin = "s"});
  auto back = *store_->getDead(id);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->replay_count, 1u);
  EXPECT_EQ(back->attempts, 1u);
  EXPECT_EQ(back->error_type, "rejected");
  EXPECT_EQ(back->first_failed_at, first->first_failed_at);
  EXPECT_GT(back->failed_at, first->failed_at);
  ASSERT_EQ(store_->replay(ask)->replayed.size(), 1u);
  tick();
  transition({.kind = TK::dead, .id = id, .attempts = 1, .error_type = "rejected", .error_message = "still wrong",
              .stage = "sink s", .plugin = "s"});
  EXPECT_EQ((*store_->getDead(id))->replay_count, 2u);

  auto j = journey(id);
  EXPECT_EQ(j["state"], "dead");
  const auto& h = j["history"];
  ASSERT_EQ(h.size(), 4u) << h.dump();
  EXPECT_EQ(h[1]["event"], "dead_lettered");
  EXPECT_EQ(h[1]["at"], first->first_failed_at);
  EXPECT_EQ(h[2]["event"], "replayed");
  EXPECT_EQ(h[2]["times"], 2);
  EXPECT_EQ(h[3]["event"], "dead_lettered");
  EXPECT_EQ(h[3]["error_type"], "rejected");
  EXPECT_EQ(h[3]["at"], j["dead_letter"]["failed_at"]);
}

TEST_P(DlqStore, DiscardAndPurgeOnlyTouchDeadEventsAndKeepTheirRows) {
  const auto a = dead("purchases", "purchase", "validation");
  const auto b = dead("purchases", "purchase", "transient");
  const auto c = dead("signups", "user_signup", "validation");
  tick();  // the listing below is in failed_at order
  const auto d = dead("signups", "user_signup", "poison");

  auto discarded = store_->discard(a);
  ASSERT_TRUE(discarded) << discarded.error().message;
  EXPECT_TRUE(*discarded);
  EXPECT_FALSE(*store_->discard(a)) << "only from dead";
  EXPECT_FALSE(*store_->discard(uuid()));
  EXPECT_FALSE(*store_->discard("not-a-uuid"));
  auto j = journey(a);
  EXPECT_EQ(j["state"], "discarded");
  EXPECT_TRUE(j.contains("dead_letter")) << "the failed_events row stays";
  EXPECT_EQ(j["history"].back()["event"], "discarded");
  EXPECT_FALSE(store_->getDead(a)->has_value());
  // A discarded event is not replayed.
  const std::vector<std::string> ask{a};
  EXPECT_TRUE(store_->replay(ask)->replayed.empty());

  store::DeadFilter validation;
  validation.error_type = "validation";
  auto purged = store_->purge(validation);
  ASSERT_TRUE(purged) << purged.error().message;
  EXPECT_EQ(*purged, 1u) << "a is already discarded; c is the one left";
  EXPECT_EQ((journey(c))["state"], "discarded");
  EXPECT_EQ(ids({}), (std::vector<std::string>{b, d}));

  auto everything = store_->purge({});
  ASSERT_TRUE(everything);
  EXPECT_EQ(*everything, 2u);
  EXPECT_EQ(store_->listDead({})->total, 0u);
  auto counts = *store_->counts();
  EXPECT_EQ(counts["purchases"].discarded, 2u);
  EXPECT_EQ(counts["signups"].discarded, 2u);
  EXPECT_EQ(counts["purchases"].dead + counts["signups"].dead, 0u);
}

// The service over the store and a real in-process queue: a bulk replay takes
// what is dead when it starts, pages, respects the rate, and publishes each
// event to its pipeline.
TEST_P(DlqStore, BulkReplayPublishesEveryMatchOnceAtTheConfiguredRate) {
  std::vector<std::string> purchases;
  for (int i = 0; i < 12; ++i) purchases.push_back(dead("purchases", "purchase", "transient"));
  const auto signup = dead("signups", "user_signup", "transient");
  const auto orphan = dead("gone", "refund", "transient");  // no pipeline takes refund any more

  config::PipelineSpec spec;
  spec.name = "purchases";
  spec.event_types = {"purchase"};
  config::PipelineSpec other;
  other.name = "signups";
  other.event_types = {"user_signup"};
  auto registry = plugin::Registry::scan({});
  ASSERT_TRUE(registry) << registry.error().message;
  auto p1 = pipeline::Pipeline::build(spec, *registry);
  auto p2 = pipeline::Pipeline::build(other, *registry);
  ASSERT_TRUE(p1 && p2);
  pipeline::LiveRouter router(std::vector<pipeline::PipelinePtr>{*p1, *p2});
  queue::EmbeddedQueue queue({"purchases", "signups"});
  runtime::Dlq dlq(*store_, &queue, &router, /*replay_rate=*/5, /*max_depth=*/1000);

  store::DeadFilter f;
  f.error_type = "transient";
  EXPECT_EQ(*dlq.count(f), 14u);
  EXPECT_EQ(*dlq.count(f, 3), 3u);
  store::DeadFilter only_purchases;
  only_purchases.pipeline = "purchases";
  tick();  // a bulk replay takes what died before its millisecond
  const auto started = std::chrono::steady_clock::now();
  auto done = dlq.replayAll(only_purchases);
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->replayed, 12u);
  EXPECT_FALSE(done->interrupted);
  // 12 events at 5/s: pages of 5, the third page waits until 2 s have passed.
  EXPECT_GE(took, std::chrono::milliseconds(1900));
  EXPECT_EQ(queue.depth("purchases"), 12u);
  EXPECT_EQ(queue.depth("signups"), 0u);
  auto taken = queue.take("purchases", 0, 100, std::chrono::milliseconds(10));
  ASSERT_EQ(taken.size(), 12u);
  for (const auto& m : taken) {
    EXPECT_EQ(m.attempts, 0u);
    EXPECT_EQ(m.pipeline, "purchases");
    EXPECT_NE(std::find(purchases.begin(), purchases.end(), m.id), purchases.end());
  }

  // The rest, with a limit: signups goes, the orphan stays dead and is counted as skipped.
  auto rest = dlq.replayAll({}, 10);
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->replayed, 1u);
  EXPECT_EQ(rest->skipped, 1u);
  EXPECT_EQ(queue.depth("signups"), 1u);
  EXPECT_EQ(ids({}), std::vector<std::string>{orphan});
  EXPECT_EQ((journey(signup))["dead_letter"]["replay_count"], 1);

  // One by one: the answer says why when it cannot.
  EXPECT_EQ(dlq.replay(signup)->status, runtime::DlqStatus::not_dead);
  EXPECT_EQ(dlq.replay(signup)->state, "queued");
  EXPECT_EQ(dlq.replay(uuid())->status, runtime::DlqStatus::not_found);
  EXPECT_EQ(dlq.replay(orphan)->status, runtime::DlqStatus::no_pipeline);
  EXPECT_EQ(dlq.discard(orphan)->status, runtime::DlqStatus::done);
  EXPECT_EQ(dlq.discard(orphan)->status, runtime::DlqStatus::not_dead);
}

TEST_P(DlqStore, BulkReplayDoesNotTakeAnEventThatFailsAgainWhileItRuns) {
  for (int i = 0; i < 6; ++i) dead("purchases", "purchase", "validation");
  config::PipelineSpec spec;
  spec.name = "purchases";
  spec.event_types = {"purchase"};
  auto registry = plugin::Registry::scan({});
  auto p = pipeline::Pipeline::build(spec, *registry);
  ASSERT_TRUE(p);
  pipeline::LiveRouter router(std::vector<pipeline::PipelinePtr>{*p});
  queue::EmbeddedQueue queue({"purchases"});
  runtime::Dlq dlq(*store_, &queue, &router, /*replay_rate=*/3, 1000);
  tick();
  // A "worker" that fails everything it takes again at once.
  std::atomic<bool> stop{false};
  std::unique_ptr<store::Store> worker_store = std::move(*store::openStore(url_));
  std::thread worker([&] {
    while (!stop) {
      for (auto& m : queue.take("purchases", 0, 10, std::chrono::milliseconds(20))) {
        std::vector<store::Transition> t{
            {.kind = TK::dead, .id = m.id, .attempts = 1, .error_type = "validation", .error_message = "still invalid"}};
        ASSERT_TRUE(worker_store->commit({}, t));
      }
    }
  });
  // Taking re-failed events again would never end: a watchdog stops it.
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 150 && !finished; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    dlq.stop();
  });
  auto done = dlq.replayAll({});
  finished = true;
  watchdog.join();
  stop = true;
  worker.join();
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_FALSE(done->interrupted) << "the replay did not end by itself";
  EXPECT_EQ(done->replayed, 6u) << "each once, though each was dead again before the replay ended";
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto page = store_->listDead({});
  ASSERT_TRUE(page);
  for (const auto& e : page->items) EXPECT_EQ(e.replay_count, 1u) << e.event_id;
}

TEST_P(DlqStore, SchemaVersionTwoAddsTheFailedAtIndexOnce) {
  // Starting again applies nothing twice (the index would already exist).
  auto again = store::openStore(url_);
  ASSERT_TRUE(again);
  EXPECT_TRUE((*again)->migrate());
  if (GetParam() == "postgresql") {
    EXPECT_EQ(pgCount(url_, "SELECT COUNT(*) FROM schema_migrations WHERE version = 2"), 1);
    EXPECT_EQ(pgCount(url_, "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'failed_events_failed_at'"), 1);
  } else {
    Poco::Data::SQLite::Connector::registerConnector();
    Poco::Data::Session s("SQLite", (dir_ / "ef.db").string());
    Poco::Int64 version = 0, index = 0;
    s << "SELECT COUNT(*) FROM schema_migrations WHERE version = 2", Poco::Data::Keywords::into(version),
        Poco::Data::Keywords::now;
    s << "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'failed_events_failed_at'",
        Poco::Data::Keywords::into(index), Poco::Data::Keywords::now;
    EXPECT_EQ(version, 1);
    EXPECT_EQ(index, 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, DlqStore, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& param_info) { return param_info.param; });
