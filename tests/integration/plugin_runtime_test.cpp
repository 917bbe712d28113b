// Runtime safety of the plugin seam against a real host: one instance per
// worker thread under load, an exception from a plugin retried as
// plugin_exception while everything else flows, plugin metrics on /metrics.

#include <gtest/gtest.h>

#include <Poco/UUIDGenerator.h>

#include <atomic>
#include <mutex>
#include <regex>

#include "host_process.hpp"

using namespace eventflow::testing;

namespace {

// The value of one sample on /metrics, or -1 when the series is absent.
double sample(const std::string& metrics, const std::string& name, const std::string& plugin, const std::string& pipeline) {
  std::istringstream lines(metrics);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + "{", 0) != 0) continue;
    if (line.find("plugin=\"" + plugin + "\"") == std::string::npos) continue;
    if (line.find("pipeline=\"" + pipeline + "\"") == std::string::npos) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

}  // namespace

TEST(PluginRuntime, InstancesAreNeverSharedExceptionsRetryAndPluginMetricsShow) {
  const fs::path pipelines = fs::temp_directory_path() / ("eventflow-it-safety-pipelines-" + std::to_string(::getpid()));
  fs::create_directories(pipelines);
  std::ofstream(pipelines / "safety.yaml") << R"(pipeline: safety
match: { event_types: [probe] }
concurrency: 4
retry: { max_attempts: 2, initial_backoff: 50ms, multiplier: 2.0, max_backoff: 200ms, jitter: full }
stages:
  - validator: concurrency-probe
    config: { hold_us: 300 }
  - validator: explode
  - sink: sqlite
    config: { table: processed_events }
)";
  HostProcess host("safety", pipelines.string(), {}, {EVENTFLOW_FIXTURE_PLUGIN_DIR});
  ASSERT_TRUE(host.start()) << host.readLog();

  const std::string bomb = uuid();
  ASSERT_EQ(host.post(nlohmann::json{{"event_id", bomb}, {"event_type", "probe"}, {"explode", true}}.dump()).status, 202);

  constexpr int kEvents = 2000;
  std::mutex m;
  std::vector<std::string> accepted;
  std::atomic<int> next{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < 16; ++t) {
    posters.emplace_back([&] {
      for (int i = next++; i < kEvents; i = next++) {
        const std::string id = uuid();
        if (host.post(nlohmann::json{{"event_id", id}, {"event_type", "probe"}, {"n", i}}.dump()).status == 202) {
          std::lock_guard lock(m);
          accepted.push_back(id);
        }
      }
    });
  }
  for (auto& t : posters) t.join();
  ASSERT_EQ(accepted.size(), static_cast<std::size_t>(kEvents));

  const auto summary = host.waitIdle(std::chrono::seconds(120));
  ASSERT_EQ(summary["events_in_flight"], 0) << summary.dump();

  // Never two threads in one instance...
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events WHERE error_type = 'concurrent_entry'"), 0);
  // ...and everything else flowed past the exploding event.
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events"), kEvents);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'done'"), kEvents);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events"), 1);

  // The exception was a retry, not an immediate dead letter: it used both attempts.
  const auto journey = http(host.port(), "GET", "/events/" + bomb).json();
  EXPECT_EQ(journey["state"], "dead") << journey.dump();
  EXPECT_EQ(journey["attempts"], 2) << journey.dump();
  EXPECT_EQ(journey["dead_letter"]["error_type"], "plugin_exception") << journey.dump();
  EXPECT_EQ(journey["dead_letter"]["plugin"], "explode") << journey.dump();
  EXPECT_EQ(journey["dead_letter"]["attempts"], 2) << journey.dump();
  EXPECT_NE(journey["dead_letter"]["error_message"].get<std::string>().find("boom"), std::string::npos) << journey.dump();
  EXPECT_EQ(http(host.port(), "GET", "/health/ready").status, 200);

  // context.count("checks") from every instance lands on one labelled series.
  const std::string metrics = http(host.port(), "GET", "/metrics").body;
  EXPECT_GE(sample(metrics, "eventflow_plugin_checks_total", "concurrency-probe", "safety"), kEvents + 2)
      << "each event passes the probe once, the exploding one twice";
  // Without parallel checks across instances, "no concurrent entry" would prove nothing.
  EXPECT_GT(sample(metrics, "eventflow_plugin_parallel_checks_total", "concurrency-probe", "safety"), 0);

  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0);
  fs::remove_all(pipelines);
}

TEST(PluginRuntime, LargeEventsTakenAfterSmallOnesReachTheSinkInPartsOfAboutEightMebibytes) {
  // A worker sizes its batches by what it saw: after small events it takes
  // up to 512 at once. Thirty events of 700 KB then arrive in one commit
  // (one batch post), so one take holds 21 MB; the sink must get them in
  // parts of about 8 MiB, never all at once.
  const fs::path pipelines = fs::temp_directory_path() / ("eventflow-it-bulky-pipelines-" + std::to_string(::getpid()));
  fs::create_directories(pipelines);
  const fs::path log = pipelines / "batches.log";
  std::ofstream(pipelines / "bulky.yaml") << "pipeline: bulky\nmatch: { event_types: [bulky] }\nconcurrency: 1\n"
                                          << "stages:\n  - sink: batch-probe\n    config: { log: " << log.string() << " }\n";
  HostProcess host("bulky", pipelines.string(), "max_body_bytes: 33554432", {EVENTFLOW_FIXTURE_PLUGIN_DIR});
  ASSERT_TRUE(host.start()) << host.readLog();

  constexpr int kSmall = 500, kLarge = 30;
  for (int b = 0; b < kSmall / 100; ++b) {
    nlohmann::json batch = nlohmann::json::array();
    for (int i = 0; i < 100; ++i) batch.push_back({{"event_type", "bulky"}, {"n", b * 100 + i}});
    ASSERT_EQ(host.post(batch.dump(), "/events/batch").status, 202);
  }
  ASSERT_EQ(host.waitIdle(std::chrono::seconds(60))["events_in_flight"], 0);

  nlohmann::json large = nlohmann::json::array();
  for (int i = 0; i < kLarge; ++i) large.push_back({{"event_type", "bulky"}, {"blob", std::string(700'000, 'a' + i % 26)}});
  const auto answer = host.post(large.dump(), "/events/batch");
  ASSERT_EQ(answer.status, 202) << answer.body.substr(0, 300);
  ASSERT_EQ(answer.json()["accepted"], kLarge) << answer.body.substr(0, 300);
  ASSERT_EQ(host.waitIdle(std::chrono::seconds(60))["events_in_flight"], 0);

  std::ifstream in(log);
  long events = 0, large_calls = 0, largest = 0;
  for (long n = 0, bytes = 0; in >> n >> bytes;) {
    events += n;
    largest = std::max(largest, bytes);
    if (bytes >= 1'000'000) ++large_calls;
  }
  EXPECT_EQ(events, kSmall + kLarge) << "each event reaches the sink once";
  EXPECT_LE(largest, 8L * 1024 * 1024) << "one sink call was given more than about 8 MiB";
  EXPECT_GE(large_calls, 3) << "21 MB in parts of at most 8 MiB takes three calls at least";
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'done'"), kSmall + kLarge);

  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0);
  fs::remove_all(pipelines);
}
