// The file, stdout and redis-stream sinks in a real host, with the real Redis
// of scripts/start-services: every event reaches all three, standard output
// carries events only (the host logs to standard error), and a Redis that is
// down costs retries, not the host.

#include <gtest/gtest.h>

#include <set>

#include <Poco/Redis/Array.h>
#include <Poco/Redis/Client.h>
#include <Poco/URI.h>
#include <Poco/UUIDGenerator.h>

#include "backends.hpp"
#include "host_process.hpp"

using namespace eventflow::testing;

namespace {

std::vector<std::string> lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// A folder holding one pipeline file, for a host to serve.
class PipelineDir {
 public:
  PipelineDir(const std::string& name, const std::string& yaml)
      : path_(fs::temp_directory_path() / ("eventflow-it-" + name + "-pipelines-" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
    std::ofstream(path_ / "pipeline.yaml") << yaml;
  }
  ~PipelineDir() { fs::remove_all(path_); }
  std::string string() const { return path_.string(); }

 private:
  fs::path path_;
};

// Waits until `n` events are in a terminal state.
bool waitTerminal(const HostProcess& host, int n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (host.count("SELECT COUNT(*) FROM raw_events WHERE state IN ('done', 'dead')") == n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST(BuiltinSinks, EveryEventReachesStdoutTheFileAndTheRedisStream) {
  const std::string redis = redisUrl();
  ASSERT_FALSE(redis.empty());
  const std::string stream = "eventflow-it:" + std::to_string(::getpid()) + ":clicks";
  const PipelineDir pipelines("builtin-sinks", std::string()
      + "pipeline: clicks\nmatch: { event_types: [click] }\nconcurrency: 2\n"
      + "stages:\n"
      + "  - enricher: rename-drop\n    config: { drop: [properties.secret] }\n"
      + "  - sink: stdout\n"
      + "  - sink: file\n    config: { path: out/clicks.ndjson, max_bytes: 1000, keep: 3 }\n"
      + "  - sink: redis-stream\n    config: { url: \"" + redis + "\", stream: \"" + stream + "\" }\n"
      + "  - sink: sqlite\n");
  HostProcess host("builtin-sinks", pipelines.string());
  host.splitStdout();
  ASSERT_TRUE(host.start()) << host.readLog();

  std::set<std::string> ids;
  for (int i = 0; i < 30; ++i) {
    const std::string id = uuid();
    ids.insert(id);
    const auto r = host.post(nlohmann::json{{"event_id", id},
                                            {"event_type", "click"},
                                            {"user_id", "u" + std::to_string(i)},
                                            {"properties", {{"target", "buy"}, {"secret", "s3cr3t"}}}}
                                 .dump());
    ASSERT_EQ(r.status, 202) << r.body;
  }
  ASSERT_TRUE(waitTerminal(host, 30)) << host.readLog();
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events"), 30) << host.readLog();

  // Standard output: one event per line and nothing else.
  std::set<std::string> printed;
  for (const auto& line : lines(host.stdoutFile())) {
    const auto doc = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(doc.is_object()) << "not an event on stdout: " << line;
    EXPECT_EQ(doc["event_type"], "click") << line;
    EXPECT_FALSE(doc["properties"].contains("secret")) << line;
    printed.insert(doc["event_id"].get<std::string>());
  }
  EXPECT_EQ(printed, ids);
  EXPECT_NE(host.readLog().find("\"level\""), std::string::npos) << "the host's log lines go to standard error";

  // The file: rotated at 1,000 bytes (about 4,500 written), three rotated files kept, whole lines.
  std::size_t rotated = 0;
  std::set<std::string> filed;
  for (const auto& entry : fs::directory_iterator(fs::path(pipelines.string()) / "out")) {
    const std::string name = entry.path().filename().string();
    if (name != "clicks.ndjson") {
      ++rotated;
      EXPECT_TRUE(name.starts_with("clicks-") && name.ends_with(".ndjson")) << name;
      EXPECT_LE(fs::file_size(entry.path()), 1000u) << name;
    }
    for (const auto& line : lines(entry.path())) filed.insert(nlohmann::json::parse(line).at("event_id").get<std::string>());
  }
  EXPECT_EQ(rotated, 3u);
  EXPECT_GT(filed.size(), 0u);
  for (const auto& id : filed) EXPECT_EQ(ids.count(id), 1u) << id;

  // The stream: each event once.
  const Poco::URI uri(redis);
  Poco::Redis::Client client(uri.getHost(), uri.getPort());
  Poco::Redis::Array xlen;
  xlen << "XLEN" << stream;
  EXPECT_EQ(client.execute<Poco::Int64>(xlen), 30);
  Poco::Redis::Array del;
  del << "DEL" << stream;
  client.execute<Poco::Int64>(del);
  ASSERT_EQ(host.terminate(std::chrono::seconds(15)), 0) << host.readLog();
}

TEST(BuiltinSinks, ARedisThatIsDownIsRetriedThenDeadLetteredWithoutHarmingTheHost) {
  const auto port = freePort();  // nothing listens there
  const PipelineDir pipelines("builtin-redis-down", std::string()
      + "pipeline: clicks\nmatch: { event_types: [click] }\nconcurrency: 1\n"
      + "retry: { max_attempts: 3, initial_backoff: 100ms, multiplier: 1.0, jitter: none }\n"
      + "stages:\n"
      + "  - sink: redis-stream\n    config: { url: \"redis://127.0.0.1:" + std::to_string(port)
      + "\", stream: clicks, timeout: 1s }\n"
      + "  - sink: sqlite\n");
  HostProcess host("builtin-redis-down", pipelines.string());
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::string id = uuid();
  ASSERT_EQ(host.post(nlohmann::json{{"event_id", id}, {"event_type", "click"}}.dump()).status, 202);
  ASSERT_TRUE(waitTerminal(host, 1)) << host.readLog();
  const auto journey = http(host.port(), "GET", "/events/" + id);
  ASSERT_EQ(journey.status, 200);
  const auto doc = journey.json();
  EXPECT_EQ(doc["state"], "dead") << doc.dump();
  EXPECT_EQ(doc["attempts"], 3) << doc.dump();
  EXPECT_NE(doc.dump().find("redis://127.0.0.1:" + std::to_string(port)), std::string::npos) << doc.dump();
  EXPECT_NE(doc.dump().find("sink_unavailable"), std::string::npos) << doc.dump();
  EXPECT_TRUE(host.running());
  EXPECT_EQ(http(host.port(), "GET", "/health/live").status, 200);
}

}  // namespace
