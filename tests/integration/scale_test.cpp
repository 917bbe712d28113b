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
#include "child_process.hpp"
#include "host_process.hpp"

using namespace eventflow::testing;
namespace fs = std::filesystem;

namespace {

// The shipped pipelines, writing to PostgreSQL instead of SQLite.
fs::path postgresPipelines(const fs::path& dir) {
  const fs::path out = dir / "pipelines";
  fs::create_directories(out);
  fs::copy(fs::path(EVENTFLOW_PIPELINES_DIR) / "schemas", out / "schemas", fs::copy_options::recursive);
  for (const auto& entry : fs::directory_iterator(EVENTFLOW_PIPELINES_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    std::ofstream(out / entry.path().filename()) << std::regex_replace(ss.str(), std::regex("sink: sqlite"), "sink: postgres");
  }
  return out;
}

class Cluster {
 public:
  Cluster(const std::string& name, const std::string& pg, const std::string& redis)
      : dir_(fs::temp_directory_path() / ("eventflow-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    pipelines_ = postgresPipelines(dir_);
    pg_ = pg;
    redis_ = redis;
    prefix_ = "ef" + std::to_string(::getpid()) + ":";
  }
  ~Cluster() {
    processes_.clear();
    if (!::testing::Test::HasFailure()) fs::remove_all(dir_);
  }

  /// Starts one process of `role`; returns its port.
  std::uint16_t add(const std::string& role) {
    const auto port = freePort();
    const std::string id = role + std::to_string(processes_.size());
    const auto config = dir_ / (id + ".yaml");
    std::ofstream(config) << "server: { listen: \"127.0.0.1:" << port << "\" }\n"
                          << "store: { url: \"" << pg_ << "\" }\n"
                          << "queue: { type: redis, url: \"" << redis_ << "\", stream_prefix: \"" << prefix_
                          << "\", claim_idle: 5s }\n"
                          << "plugins: { paths: [" << EVENTFLOW_PLUGIN_DIR << "] }\n"
                          << "pipelines: { paths: [" << pipelines_.string() << "] }\n"
                          << "relay: { republish_after: 10s }\n"
                          << "shutdown_timeout: 10s\n";
    auto p = std::make_unique<ChildProcess>(
        std::vector<std::string>{EVENTFLOW_BINARY, "serve", "--role", role, "--config", config.string()},
        (dir_ / (id + ".log")).string());
    EXPECT_TRUE(p->start());
    for (int i = 0; i < 200 && http(port, "GET", "/health/ready").status != 200; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(http(port, "GET", "/health/ready").status, 200) << p->output();
    processes_.push_back(std::move(p));
    return port;
  }

  std::vector<std::unique_ptr<ChildProcess>>& processes() { return processes_; }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_, pipelines_;
  std::string pg_, redis_, prefix_;
  std::vector<std::unique_ptr<ChildProcess>> processes_;
};

}  // namespace

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
