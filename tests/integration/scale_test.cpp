// Scale-out on the production backends: 2 api and 3 worker processes on one
// Redis and one PostgreSQL; 100,000 events posted across both APIs end in
// processed_events ∪ failed_events exactly once each.

#include <gtest/gtest.h>

#include <Poco/UUIDGenerator.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>

#include "backends.hpp"
#include "cluster.hpp"

using namespace eventflow::testing;
namespace fs = std::filesystem;

TEST(ScaleOut, TwoApisThreeWorkersHundredThousandEventsExactlyOnce) {
  const std::string pg = freshDatabase("scale");
  const std::string redis = redisUrl();
  ASSERT_FALSE(pg.empty());
  ASSERT_FALSE(redis.empty());
  Cluster cluster("scale", pg, redis);
  const auto api1 = cluster.add("api");
  const auto api2 = cluster.add("api");
  for (int i = 0; i < 3; ++i) cluster.add("worker");

  constexpr int kPerApi = 50000;
  std::vector<std::unique_ptr<ChildProcess>> producers;
  for (auto port : {api1, api2}) {
    producers.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{EVENTFLOW_BINARY, "produce", "--url", "http://127.0.0.1:" + std::to_string(port),
                                 "--count", std::to_string(kPerApi), "--batch", "100", "--concurrency", "4",
                                 "--invalid-every", "50"},
        (cluster.dir() / ("produce" + std::to_string(port) + ".log")).string()));
    ASSERT_TRUE(producers.back()->start());
  }
  for (auto& p : producers) EXPECT_EQ(p->wait(std::chrono::minutes(5)), 0) << p->output();

  const long long total = 2LL * kPerApi;
  long long terminal = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (std::chrono::steady_clock::now() < deadline) {
    terminal = pgCount(pg, "SELECT (SELECT COUNT(*) FROM processed_events) + (SELECT COUNT(*) FROM failed_events)");
    if (terminal >= total) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_EQ(terminal, total);
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM raw_events"), total);
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state IN ('done', 'dead')"), total);
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM processed_events p JOIN failed_events f USING (event_id)"), 0)
      << "an event is processed or dead, never both";
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM raw_events r WHERE state = 'done' AND NOT EXISTS "
                        "(SELECT 1 FROM processed_events p WHERE p.event_id = r.event_id)"),
            0);
  // produce makes every 50th event invalid for its pipeline
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM failed_events"), total / 50);
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM failed_events WHERE error_type <> 'validation'"), 0);

  // The books balance in the summary, whichever process answers.
  auto summary = http(api2, "GET", "/metrics/summary").json();
  EXPECT_EQ(summary["events_received"], total);
  EXPECT_EQ(summary["events_processed"].get<long long>() + summary["events_failed"].get<long long>(), total);
  EXPECT_EQ(summary["events_in_flight"], 0);

  for (auto& p : cluster.processes()) p->kill(SIGTERM);
  for (auto& p : cluster.processes()) EXPECT_EQ(p->wait(std::chrono::seconds(20)), 0) << p->output();
}

TEST(ScaleOut, WorkerRoleServesHealthButNotIngest) {
  const std::string pg = freshDatabase("roles");
  ASSERT_FALSE(pg.empty());
  Cluster cluster("roles", pg, redisUrl());
  const auto worker = cluster.add("worker");
  EXPECT_EQ(http(worker, "GET", "/health").json()["services"]["redis"], "healthy");
  EXPECT_EQ(http(worker, "GET", "/metrics").status, 200);
  EXPECT_EQ(http(worker, "POST", "/events", R"({"event_type":"custom"})").status, 404);
}
