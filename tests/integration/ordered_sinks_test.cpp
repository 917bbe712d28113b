// Sinks run in the order written (G2, issue 10): a webhook sink before the
// store's sink. The store's processed_events row appears only once the
// webhook took the event, carries the attempt that completed it, and never
// appears for an event that ends dead at the webhook. In both modes.

#include <gtest/gtest.h>

#include <Poco/UUIDGenerator.h>

#include "backends.hpp"
#include "cluster.hpp"
#include "host_process.hpp"
#include "webhook_stub.hpp"

using namespace eventflow::testing;

namespace {

// Two pipelines, one per event, so the two are never in one batch: the http
// sink holds back the rest of a batch after a retry, which would spend an
// attempt of the other without a delivery.
fs::path webhookPipelines(const fs::path& dir, const std::string& url, const std::string& store_sink) {
  fs::create_directories(dir);
  for (const std::string type : {"custom", "page_view"})
    std::ofstream(dir / (type + ".yaml"))
        << "pipeline: " << type << "\nmatch: { event_types: [" << type << "] }\nconcurrency: 1\n"
        << "retry: { max_attempts: 3, initial_backoff: 100ms, multiplier: 1.0, jitter: none }\n"
        << "stages:\n"
        << "  - sink: http\n    config: { url: \"" << url << "\", timeout: 5s }\n"
        << "  - sink: " << store_sink << "\n";
  return dir;
}

// `fail_times` -1 (never recovers) goes to the page_view pipeline.
nlohmann::json event(const std::string& id, int fail_times) {
  return {{"event_id", id}, {"event_type", fail_times < 0 ? "page_view" : "custom"}, {"user_id", "user_7"},
          {"fail_times", fail_times}};
}

// What both modes must show, given a way to count rows and read a number.
template <class Query>
void expectOrdered(const WebhookStub& hook, const std::string& recovers, const std::string& never, Query query) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline &&
         query("SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead')") != 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(query("SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead')"), 0);

  const auto recovered = hook.deliveries(recovers);
  ASSERT_EQ(recovered.size(), 3u);
  EXPECT_EQ(recovered[0].status, 503);
  EXPECT_EQ(recovered[1].status, 503);
  EXPECT_EQ(recovered[2].status, 200);
  EXPECT_EQ(query("SELECT COUNT(*) FROM raw_events WHERE state = 'done' AND event_id = '" + recovers + "'"), 1);
  EXPECT_EQ(query("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + recovers + "'"), 1);
  EXPECT_EQ(query("SELECT attempts FROM processed_events WHERE event_id = '" + recovers + "'"), 3)
      << "the row is written by the attempt that completed the event";

  EXPECT_EQ(hook.deliveries(never).size(), 3u);
  EXPECT_EQ(query("SELECT COUNT(*) FROM raw_events WHERE state = 'dead' AND event_id = '" + never + "'"), 1);
  EXPECT_EQ(query("SELECT COUNT(*) FROM failed_events WHERE event_id = '" + never + "' AND plugin = 'http'"), 1);
  EXPECT_EQ(query("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + never + "'"), 0)
      << "an event dead at the webhook never reaches the sink after it";
}

// The "<id> <attempt>" lines the flaky fixture sink wrote for `id`.
long long linesFor(const fs::path& file, const std::string& id) {
  std::ifstream in(file);
  long long n = 0;
  for (std::string line; std::getline(in, line);)
    if (line.rfind(id + " ", 0) == 0) ++n;
  return n;
}

}  // namespace

// The done mask through the embedded queue's retry (Redis's is covered by
// Fault.TransientSinkFailureRetriesOnlyThatSinkOnceDoneAndHoldsNothingUp):
// one event of a batch fails at the second sink twice. The first sink, which
// took it, never sees it again; its batch-mates, done at once, are not retried.
TEST(OrderedSinks, EmbeddedRetryResumesAtTheSinkNotDoneAndRetriesOnlyTheRefusedEvent) {
  const auto dir = fs::temp_directory_path() / ("eventflow-ordered-mask-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "pipelines");
  std::ofstream(dir / "pipelines" / "custom.yaml")
      << "pipeline: custom\nmatch: { event_types: [custom] }\nconcurrency: 1\n"
      << "retry: { max_attempts: 5, initial_backoff: 100ms, multiplier: 1.0, jitter: none }\n"
      << "stages:\n"
      << "  - sink: flaky\n    config: { log: " << (dir / "steady.log").string() << " }\n"
      << "  - sink: flaky\n    config: { log: " << (dir / "flaky.log").string() << ", fail: true }\n"
      << "  - sink: sqlite\n";
  HostProcess host("ordered-mask", (dir / "pipelines").string(), {}, {EVENTFLOW_FAULT_FIXTURE_DIR});
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::string flaky = uuid();
  nlohmann::json batch = nlohmann::json::array();
  batch.push_back({{"event_id", flaky}, {"event_type", "custom"}, {"fail_times", 2}});
  std::vector<std::string> others;
  for (int i = 0; i < 20; ++i) {
    others.push_back(uuid());
    batch.push_back({{"event_id", others.back()}, {"event_type", "custom"}});
  }
  const auto posted = host.post(batch.dump(), "/events/batch");
  ASSERT_EQ(posted.status, 202) << posted.body;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline &&
         host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'done'") != 21)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'done'"), 21) << host.readLog();

  EXPECT_EQ(host.count("SELECT attempts FROM raw_events WHERE event_id = '" + flaky + "'"), 3);
  EXPECT_EQ(linesFor(dir / "flaky.log", flaky), 3) << "the refusing sink is retried until it takes the event";
  EXPECT_EQ(linesFor(dir / "steady.log", flaky), 1) << "the sink that took it is not run again";
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + flaky + "'"), 1);
  for (const auto& id : others) {
    EXPECT_EQ(linesFor(dir / "steady.log", id), 1) << id << ": done at once, never retried";
    EXPECT_EQ(linesFor(dir / "flaky.log", id), 1) << id;
    EXPECT_EQ(host.count("SELECT attempts FROM raw_events WHERE event_id = '" + id + "'"), 1) << id;
  }
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events"), 21);
  fs::remove_all(dir);
}

TEST(OrderedSinks, EmbeddedStoreRowOnlyAfterTheWebhookTookTheEvent) {
  WebhookStub hook;
  const auto dir = fs::temp_directory_path() / ("eventflow-ordered-" + std::to_string(::getpid()));
  HostProcess host("ordered", webhookPipelines(dir, hook.url(), "sqlite").string());
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::string recovers = uuid(), never = uuid();
  ASSERT_EQ(host.post(event(recovers, 2).dump()).status, 202);
  ASSERT_EQ(host.post(event(never, -1).dump()).status, 202);
  // While the webhook has not taken it, the store's sink has not seen it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline && hook.deliveries(recovers).size() < 2)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GE(hook.deliveries(recovers).size(), 2u);
  if (hook.deliveries(recovers).size() == 2) {
    EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + recovers + "'"), 0);
  }
  expectOrdered(hook, recovers, never, [&](const std::string& sql) { return static_cast<long long>(host.count(sql)); });
  fs::remove_all(dir);
}

TEST(OrderedSinks, RedisPostgresStoreRowOnlyAfterTheWebhookTookTheEvent) {
  WebhookStub hook;
  const std::string pg = freshDatabase("ordered_sinks");
  ASSERT_FALSE(pg.empty());
  Cluster cluster("ordered", pg, redisUrl());
  cluster.use(webhookPipelines(cluster.dir() / "hooks", hook.url(), "postgres"));
  const auto api = cluster.add("api");
  cluster.add("worker");
  const std::string recovers = uuid(), never = uuid();
  ASSERT_EQ(http(api, "POST", "/events", event(recovers, 2).dump()).status, 202);
  ASSERT_EQ(http(api, "POST", "/events", event(never, -1).dump()).status, 202);
  expectOrdered(hook, recovers, never, [&](const std::string& sql) { return pgCount(pg, sql); });
}
