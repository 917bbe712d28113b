// Fault injection on the production backends (issue 5, G2/G3/G8): under a
// steady load, a process or a service is killed; afterwards every event that
// got a 202 is terminal exactly once and the books balance.

#include <gtest/gtest.h>

#include <Poco/UUIDGenerator.h>

#include <atomic>
#include <mutex>
#include <set>
#include <sstream>

#include "backends.hpp"
#include "cluster.hpp"

using namespace eventflow::testing;

namespace {

// Posts valid events to `port` from a few connections until stopped; keeps
// the ids that got a 202.
class Load {
 public:
  explicit Load(std::uint16_t port) {
    for (int t = 0; t < 4; ++t)
      threads_.emplace_back([this, port] {
        for (int i = 0; !stop_; ++i) {
          const std::string id = uuid();
          if (http(port, "POST", "/events", validEvent(i, id).dump()).status == 202) {
            std::lock_guard lock(mutex_);
            accepted_.push_back(id);
          }
        }
      });
  }
  std::vector<std::string> stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
    return accepted_;
  }
  std::size_t count() {
    std::lock_guard lock(mutex_);
    return accepted_.size();
  }
  ~Load() {
    if (!threads_.empty()) stop();
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::string> accepted_;
  std::vector<std::thread> threads_;
};

void waitFor(Load& load, std::size_t n) {
  for (int i = 0; i < 600 && load.count() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

// Every accepted id terminal exactly once, nothing else left in flight.
void expectAllTerminalOnce(const std::string& pg, const std::vector<std::string>& accepted, std::uint16_t api) {
  expectEveryIdDoneOnce(pg, accepted, std::chrono::seconds(90));
  if (::testing::Test::HasFatalFailure()) return;
  auto summary = http(api, "GET", "/metrics/summary").json();
  EXPECT_EQ(summary["events_received"].get<long long>(),
            summary["events_processed"].get<long long>() + summary["events_failed"].get<long long>() +
                summary["events_discarded"].get<long long>() + summary["events_in_flight"].get<long long>())
      << summary.dump();
  EXPECT_EQ(summary["events_in_flight"], 0);
}

}  // namespace

TEST(Fault, KillNineOneOfSeveralWorkersMidLoadThenRestartIt) {
  const std::string pg = freshDatabase("fault_worker");
  ASSERT_FALSE(pg.empty());
  Cluster cluster("fault-worker", pg, redisUrl(), "2s", "10s");
  const auto api = cluster.add("api");
  cluster.add("worker");
  const auto victim_port = cluster.add("worker");
  Load load(api);
  waitFor(load, 1500);
  // The victim dies with batches in hand: taken, maybe half written, unacknowledged.
  cluster.processes().back()->kill(SIGKILL);
  waitFor(load, 3000);
  cluster.add("worker", victim_port);
  waitFor(load, 4000);
  const auto accepted = load.stop();
  expectAllTerminalOnce(pg, accepted, api);
}

TEST(Fault, KillNineRedisAndStartItEmpty) {
  const std::string pg = freshDatabase("fault_redis");
  ASSERT_FALSE(pg.empty());
  // A Redis of this test's own, so killing it disturbs no other test.
  const auto port = freePort();
  const auto dir = fs::temp_directory_path() / ("eventflow-redis-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto start_redis = [&] {
    auto r = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", std::to_string(port), "--save",
                                 "", "--appendonly", "no", "--dir", dir.string()},
        (dir / "redis.log").string());
    EXPECT_TRUE(r->start());
    for (int i = 0; i < 100; ++i) {
      if (std::system(("redis-cli -p " + std::to_string(port) + " ping > /dev/null 2>&1").c_str()) == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return r;
  };
  auto redis = start_redis();
  Cluster cluster("fault-redis", pg, "redis://127.0.0.1:" + std::to_string(port), "2s", "3s");
  const auto api = cluster.add("api");
  cluster.add("worker");
  Load load(api);
  waitFor(load, 1500);
  redis->kill(SIGKILL);  // everything in the streams is gone
  std::this_thread::sleep_for(std::chrono::seconds(1));
  // While Redis is down a 202 still means durable in PostgreSQL (G1).
  redis = start_redis();
  waitFor(load, load.count() + 1000);
  const auto accepted = load.stop();
  expectAllTerminalOnce(pg, accepted, api);
  EXPECT_EQ(http(api, "GET", "/health").json()["services"]["redis"], "healthy");
  fs::remove_all(dir);
}

TEST(Fault, HealthAnswers503WhileRedisIsDown) {
  const std::string pg = freshDatabase("fault_health");
  ASSERT_FALSE(pg.empty());
  const auto port = freePort();
  Cluster cluster("fault-health", pg, "redis://127.0.0.1:" + std::to_string(port));
  auto redis = std::make_unique<ChildProcess>(std::vector<std::string>{"/usr/bin/redis-server", "--bind", "127.0.0.1",
                                                                      "--port", std::to_string(port), "--save", "",
                                                                      "--appendonly", "no"},
                                            (cluster.dir() / "redis.log").string());
  ASSERT_TRUE(redis->start());
  for (int i = 0; i < 100; ++i) {
    if (std::system(("redis-cli -p " + std::to_string(port) + " ping > /dev/null 2>&1").c_str()) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto host = cluster.add("api");
  EXPECT_EQ(http(host, "GET", "/health").status, 200);
  redis->kill(SIGKILL);
  auto health = http(host, "GET", "/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.json()["services"]["redis"], "unhealthy");
  EXPECT_EQ(health.json()["services"]["database"], "healthy");
  EXPECT_EQ(http(host, "GET", "/health/ready").status, 503);
}

namespace {

fs::path writePipeline(const fs::path& dir, const std::string& name, const std::string& yaml) {
  fs::create_directories(dir);
  std::ofstream(dir / (name + ".yaml")) << yaml;
  return dir;
}

long long lines(const fs::path& file, const std::string& id) {
  std::ifstream in(file);
  long long n = 0;
  for (std::string line; std::getline(in, line);) n += line.rfind(id + " ", 0) == 0;
  return n;
}

}  // namespace

TEST(Fault, PoisonEventIsDeadLetteredAfterMaxDeliveriesAndTheRestFlows) {
  const std::string pg = freshDatabase("fault_poison");
  ASSERT_FALSE(pg.empty());
  Cluster cluster("fault-poison", pg, redisUrl(), "1s", "60s");
  cluster.use(writePipeline(cluster.dir() / "poison-pipelines", "poison",
                            "pipeline: poison\nmatch: { event_types: [custom] }\nconcurrency: 2\nmax_deliveries: 2\n"
                            "stages:\n  - validator: abort-on-poison\n  - sink: postgres\n"),
              EVENTFLOW_FAULT_FIXTURE_DIR);
  const auto api = cluster.add("api");
  const auto worker_port = cluster.add("worker");
  const std::string poison = uuid();
  ASSERT_EQ(http(api, "POST", "/events", nlohmann::json{{"event_id", poison}, {"event_type", "custom"}, {"poison", true}}.dump()).status, 202);
  std::vector<std::string> others;
  for (int i = 0; i < 100; ++i) {
    others.push_back(uuid());
    ASSERT_EQ(http(api, "POST", "/events", nlohmann::json{{"event_id", others.back()}, {"event_type", "custom"}}.dump()).status, 202);
  }
  // Play supervisor: restart the worker whenever the poison event kills it.
  int crashes = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead')") == 0) break;
    if (cluster.processes().back()->wait(std::chrono::milliseconds(0)) != -1) {
      ++crashes;
      cluster.add("worker", worker_port);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(crashes, 2) << "the fixture should have killed the worker on each delivery";
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM failed_events WHERE event_id = '" + poison + "' AND error_type = 'poison'"), 1);
  // The restarted worker's crash note reached whichever worker dead-lettered it.
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM failed_events WHERE event_id = '" + poison +
                            "' AND stage = 'validator abort-on-poison' AND plugin = 'abort-on-poison'"),
            1)
      << "the poison record names the stage and plugin the worker crashed in";
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state = 'done'"), 100) << "batch-mates are not blamed";
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM processed_events"), 100);
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM failed_events"), 1);
}

TEST(Fault, TransientSinkFailureRetriesOnlyThatSinkOnceDoneAndHoldsNothingUp) {
  const std::string pg = freshDatabase("fault_flaky");
  ASSERT_FALSE(pg.empty());
  Cluster cluster("fault-flaky", pg, redisUrl());
  const fs::path logs = cluster.dir();
  cluster.use(writePipeline(cluster.dir() / "flaky-pipelines", "flaky",
                            "pipeline: flaky\nmatch: { event_types: [custom] }\nconcurrency: 2\n"
                            "retry: { max_attempts: 6, initial_backoff: 700ms, multiplier: 1.0, jitter: none }\n"
                            "stages:\n  - sink: flaky\n    config: { log: " + (logs / "steady.log").string() +
                                " }\n  - sink: flaky\n    config: { log: " + (logs / "flaky.log").string() +
                                ", fail: true }\n  - sink: postgres\n"),
              EVENTFLOW_FAULT_FIXTURE_DIR);
  const auto host = cluster.add("all");
  const std::string flaky = uuid();
  ASSERT_EQ(http(host, "POST", "/events",
                 nlohmann::json{{"event_id", flaky}, {"event_type", "custom"}, {"fail_times", 3}}.dump()).status,
            202);
  std::vector<std::string> others;
  for (int i = 0; i < 200; ++i) {
    others.push_back(uuid());
    ASSERT_EQ(http(host, "POST", "/events", nlohmann::json{{"event_id", others.back()}, {"event_type", "custom"}}.dump()).status, 202);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline &&
         pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead')") != 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state = 'done'"), 201);
  EXPECT_EQ(pgCount(pg, "SELECT attempts FROM raw_events WHERE event_id = '" + flaky + "'"), 4);
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM processed_events WHERE event_id = '" + flaky + "'"), 1);
  EXPECT_EQ(lines(logs / "flaky.log", flaky), 4) << "the failing sink is retried until it takes the event";
  EXPECT_EQ(lines(logs / "steady.log", flaky), 1) << "a sink that already took the event is not run again";
  // Nothing waited behind the retries (≥ 2.1 s of backoff): every other event was done before it.
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE event_id <> '" + flaky +
                            "' AND updated_at > (SELECT updated_at FROM raw_events WHERE event_id = '" + flaky + "')"),
            0);
}

TEST(Fault, KillNineAnApiBetweenCommitAndPublish) {
  const std::string pg = freshDatabase("fault_publish");
  ASSERT_FALSE(pg.empty());
  Cluster cluster("fault-publish", pg, redisUrl(), "2s", "2s");
  // The victim dies on its 40th group commit: rows committed, never published.
  ::setenv("EVENTFLOW_TEST_KILL_BEFORE_PUBLISH", "40", 1);
  const auto api = cluster.add("api");
  ::unsetenv("EVENTFLOW_TEST_KILL_BEFORE_PUBLISH");
  cluster.add("worker");
  Load load(api);
  auto& victim = *cluster.processes().front();
  for (int i = 0; i < 500 && victim.wait(std::chrono::milliseconds(0)) == -1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_FALSE(victim.running()) << "the hook did not fire";
  // Restarted without the hook; its relay publishes what the victim committed.
  cluster.add("api", api);
  waitFor(load, load.count() + 500);
  const auto accepted = load.stop();
  expectAllTerminalOnce(pg, accepted, api);
  // Rows whose 202 never left the dead process are processed too.
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state <> 'done'"), 0);
  EXPECT_GT(pgCount(pg, "SELECT COUNT(*) FROM raw_events"), static_cast<long long>(accepted.size()) - 1);
}

TEST(Fault, EmbeddedPoisonEventIsDeadLetteredAfterMaxDeliveries) {
  const fs::path pipelines = fs::temp_directory_path() / ("eventflow-embedded-poison-" + std::to_string(::getpid()));
  writePipeline(pipelines, "poison",
                "pipeline: poison\nmatch: { event_types: [custom] }\nconcurrency: 2\nmax_deliveries: 2\n"
                "stages:\n  - validator: abort-on-poison\n  - sink: sqlite\n");
  HostProcess host("embedded-poison", pipelines.string(), {}, {EVENTFLOW_FAULT_FIXTURE_DIR});
  ASSERT_TRUE(host.start()) << host.readLog();
  // One batch, so the poison event is taken together with its batch-mates.
  const std::string poison = uuid();
  nlohmann::json batch = nlohmann::json::array();
  for (int i = 0; i < 100; ++i) {
    if (i == 10) batch.push_back({{"event_id", poison}, {"event_type", "custom"}, {"poison", true}});
    batch.push_back({{"event_id", uuid()}, {"event_type", "custom"}});
  }
  // The worker may kill the host before the 202 leaves; the batch is committed before either.
  const auto posted = host.post(batch.dump(), "/events/batch").status;
  EXPECT_TRUE(posted == 202 || posted == 0) << posted;
  // Play supervisor: start the host again whenever the poison event kills it.
  int crashes = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!host.running()) {
      ++crashes;
      host.start();  // may die again before it is ready
      continue;
    }
    if (host.count("SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead')") == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(crashes, 2) << host.readLog();
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events"), 101);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events WHERE event_id = '" + poison + "' AND error_type = 'poison'"), 1)
      << host.readLog();
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'done'"), 100) << "the others are not blamed";
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events"), 100);
  fs::remove_all(pipelines);
}

// A plugin that segfaults: the host writes one JSON line naming the thread,
// pipeline, stage, plugin and event with a symbolised backtrace, dies of the
// signal (139), and the poison record that follows names the plugin and stage.
TEST(Fault, ASegfaultingPluginIsNamedInTheCrashLineAndOnThePoisonRecord) {
  const fs::path pipelines = fs::temp_directory_path() / ("eventflow-segfault-" + std::to_string(::getpid()));
  writePipeline(pipelines, "poison",
                "pipeline: poison\nmatch: { event_types: [custom] }\nconcurrency: 1\nmax_deliveries: 1\n"
                "stages:\n  - validator: abort-on-poison\n    config: { segfault: true }\n  - sink: sqlite\n");
  HostProcess host("segfault", pipelines.string(), {}, {EVENTFLOW_FAULT_FIXTURE_DIR});
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::string poison = uuid();
  const auto posted = host.post(nlohmann::json{{"event_id", poison}, {"event_type", "custom"}, {"poison", true}}.dump()).status;
  EXPECT_TRUE(posted == 202 || posted == 0) << posted;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (host.running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_FALSE(host.running()) << "the segfault did not take the host down";

  // The crash line: one JSON object, naming everything.
  nlohmann::json line;
  std::istringstream log(host.readLog());
  for (std::string text; std::getline(log, text);) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_object() && j.value("level", "") == "critical" && j.contains("signal")) line = j;
  }
  ASSERT_TRUE(line.is_object()) << host.readLog();
  EXPECT_EQ(line["signal"], "SIGSEGV");
  EXPECT_EQ(line["thread"], "ef-worker");
  EXPECT_EQ(line["pipeline"], "poison");
  EXPECT_EQ(line["stage"], "validator abort-on-poison");
  EXPECT_EQ(line["plugin"], "abort-on-poison");
  EXPECT_EQ(line["event_id"], poison);
  ASSERT_TRUE(line["backtrace"].is_array());
  ASSERT_FALSE(line["backtrace"].empty());
  EXPECT_NE(line["backtrace"].dump().find("abort_on_poison.cpp"), std::string::npos)
      << "the backtrace is symbolised down to the plugin's source: " << line["backtrace"].dump(2);

  // Restarted, the host dead-letters it as poison, naming plugin and stage.
  ASSERT_TRUE(host.start()) << host.readLog();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until &&
         host.count("SELECT COUNT(*) FROM failed_events WHERE event_id = '" + poison + "'") == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events WHERE event_id = '" + poison +
                       "' AND error_type = 'poison' AND plugin = 'abort-on-poison' AND stage = 'validator abort-on-poison'"),
            1)
      << host.readLog();
  fs::remove_all(pipelines);
}
