// Plugin isolation (issue 14): an enricher run with `isolation: process`
// that segfaults, leaks or hangs costs the one event it was running — dead
// at once as plugin_crashed, or after max_attempts as plugin_timeout — while
// the host, its /health and every other event carry on; and its children
// neither outlive a killed host nor leak fds or zombies across restarts.
// The mixed load and kill -9 run in both queue modes: embedded (SQLite, the
// in-process queue) and Redis Streams + PostgreSQL (the test services, role all).

#include <gtest/gtest.h>

#include <Poco/UUIDGenerator.h>
#include <dirent.h>

#include <atomic>
#include <fstream>
#include <regex>
#include <set>

#include "backends.hpp"
#include "host_process.hpp"

using namespace eventflow::testing;

namespace {

fs::path writePipeline(const std::string& name, const std::string& yaml) {
  const fs::path dir = fs::temp_directory_path() / ("eventflow-isolation-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / (name + ".yaml")) << yaml;
  return dir;
}

std::string pipelineYaml(unsigned concurrency, const std::string& limits, const std::string& sink = "sqlite") {
  return "pipeline: iso\nmatch: { event_types: [custom] }\nconcurrency: " + std::to_string(concurrency) +
         "\nretry: { max_attempts: 3, initial_backoff: 10ms, max_backoff: 50ms }\n"
         "stages:\n  - enricher: misbehave\n    isolation: process\n    limits: " + limits + "\n  - sink: " + sink + "\n";
}

enum class Mode { embedded, redis };

// A host in either queue mode over the pipeline folder `pipelines`: embedded
// as HostProcess makes it, or its store on a fresh PostgreSQL database and
// its queue on the test Redis (a stream prefix of its own). count() asks
// whichever store it has.
class ModeHost : public HostProcess {
 public:
  ModeHost(const std::string& name, Mode mode, const fs::path& pipelines)
      : HostProcess(name + (mode == Mode::redis ? "-redis" : "-embedded"), pipelines.string(), {},
                    {EVENTFLOW_FAULT_FIXTURE_DIR}) {
    if (mode == Mode::embedded) return;
    pg_ = freshDatabase("isolation");
    std::ifstream in(config());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string cfg = std::regex_replace(ss.str(), std::regex("store: \\{ url: \"sqlite://[^\"]*\" \\}"),
                                               "store: { url: \"" + pg_ + "\" }");
    std::ofstream(config()) << cfg << "queue: { type: redis, url: \"" << redisUrl() << "\", stream_prefix: \"iso-"
                            << name << "-" << ::getpid() << ":\", claim_idle: 5s }\n";
  }
  bool redis() const { return !pg_.empty(); }
  /// The host's start line says it runs on the store and queue of its mode.
  void expectMode() const {
    const std::string log = readLog();
    EXPECT_NE(log.find(redis() ? "\"queue\":\"redis\"" : "\"queue\":\"embedded\""), std::string::npos) << log;
    EXPECT_NE(log.find(redis() ? "\"store\":\"postgres" : "\"store\":\"sqlite"), std::string::npos) << log;
  }
  long long count(const std::string& sql) const { return redis() ? pgCount(pg_, sql) : HostProcess::count(sql); }
  /// A JSON column as text, in either store's SQL.
  std::string text(const std::string& column) const { return redis() ? column + "::text" : column; }

 private:
  std::string pg_;
};

class Isolation : public ::testing::TestWithParam<Mode> {
 protected:
  std::string sink() const { return GetParam() == Mode::redis ? "postgres" : "sqlite"; }
};

nlohmann::json event(const std::string& id, const char* misbehaviour = nullptr) {
  nlohmann::json e{{"event_id", id}, {"event_type", "custom"}, {"properties", nlohmann::json::object()}};
  if (misbehaviour) e["properties"][misbehaviour] = true;
  return e;
}

// The field after `)` in /proc/<pid>/stat: state, then ppid.
bool procStat(pid_t pid, char& state, pid_t& ppid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const auto close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(text.substr(close + 1));
  return static_cast<bool>(rest >> state >> ppid);
}

// Children of `parent`, with their states.
std::vector<std::pair<pid_t, char>> childrenOf(pid_t parent) {
  std::vector<std::pair<pid_t, char>> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    char state = 0;
    pid_t ppid = 0;
    if (procStat(std::stoi(name), state, ppid) && ppid == parent) out.emplace_back(std::stoi(name), state);
  }
  return out;
}

std::size_t openFds(pid_t pid) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec); !ec && it != fs::directory_iterator(); ++it) ++n;
  return n;
}

// Sum of a counter's series whose labels contain `labels`.
double metric(std::uint16_t port, const std::string& name, const std::string& labels) {
  const std::string text = http(port, "GET", "/metrics").body;
  std::istringstream in(text);
  double sum = 0;
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name + "{", 0) == 0 && line.find(labels) != std::string::npos)
      sum += std::stod(line.substr(line.rfind(' ') + 1));
  return sum;
}

template <class F>
bool waitUntil(F&& done, std::chrono::seconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

std::string idList(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "'" : ",'") + id + "'";
  return out;
}

}  // namespace

TEST_P(Isolation, CrashLeakAndHangCostOneEventEach) {
  // A leak event must reach the memory limit before call_timeout: the
  // fixture takes 256 MiB of address space a MiB at a time, touching one
  // page of each (every page took over 2 s with both cores loaded).
  const auto pipelines = writePipeline("mixed", pipelineYaml(2, "{ memory: 256MiB, call_timeout: 2s }", sink()));
  ModeHost host("isolation-mixed", GetParam(), pipelines);
  ASSERT_TRUE(host.start()) << host.readLog();
  host.expectMode();
  const pid_t host_pid = host.pid();
  EXPECT_EQ(childrenOf(host_pid).size(), 2u) << "one child per worker of the isolated stage";

  std::atomic<bool> stop_health{false};
  std::atomic<int> health_ok{0}, health_bad{0};
  std::thread health([&] {
    while (!stop_health) {
      (http(host.port(), "GET", "/health").status == 200 ? health_ok : health_bad)++;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });

  // 1,000 normal events with 5 crash, 5 leak and 5 hang events spread among them.
  std::vector<std::string> normal, crash, leak, hang;
  nlohmann::json all = nlohmann::json::array();
  for (int i = 0; i < 1000; ++i) {
    if (i % 66 == 33) {
      const int k = i / 66;  // 0..14
      const char* what = k % 3 == 0 ? "crash" : k % 3 == 1 ? "leak" : "hang";
      auto& list = k % 3 == 0 ? crash : k % 3 == 1 ? leak : hang;
      list.push_back(uuid());
      all.push_back(event(list.back(), what));
    }
    normal.push_back(uuid());
    all.push_back(event(normal.back()));
  }
  ASSERT_EQ(crash.size() + leak.size() + hang.size(), 15u);
  for (std::size_t i = 0; i < all.size(); i += 50) {
    nlohmann::json chunk(all.begin() + static_cast<std::ptrdiff_t>(i),
                         all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), i + 50)));
    ASSERT_EQ(host.post(chunk.dump(), "/events/batch").status, 202);
  }
  const auto summary = host.waitIdle(std::chrono::seconds(240));
  stop_health = true;
  health.join();

  EXPECT_TRUE(host.running()) << "the host must survive its plugin";
  EXPECT_EQ(host.pid(), host_pid);
  EXPECT_EQ(health_bad, 0) << "/health answered other than 200 " << health_bad << " times";
  EXPECT_GT(health_ok, 0);
  ASSERT_EQ(summary["events_in_flight"], 0) << summary.dump();
  EXPECT_EQ(summary["events_received"], 1015);
  EXPECT_EQ(summary["events_processed"], 1000);
  EXPECT_EQ(summary["events_failed"], 15);
  EXPECT_EQ(summary["events_received"].get<long long>(),
            summary["events_processed"].get<long long>() + summary["events_failed"].get<long long>() +
                summary["events_discarded"].get<long long>() + summary["events_in_flight"].get<long long>())
      << summary.dump();

  // The 1,000 processed exactly once: one row each, first attempt, enriched in the child.
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id IN (" + idList(normal) + ")"), 1000);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events"), 1000);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'done' AND attempts = 1 AND event_id IN (" +
                       idList(normal) + ")"), 1000);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE " + host.text("enriched_data") +
                       " LIKE '%\"misbehave\":%\"ok\"%'"), 1000)
      << "the child's changes to the event reach the sink";

  // Crash and leak: dead at their first attempt, plugin and stage named.
  const std::string named = " AND error_type = 'plugin_crashed' AND attempts = 1 AND plugin = 'misbehave' AND "
                            "stage = 'enricher misbehave'";
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events WHERE event_id IN (" + idList(crash) + ")" + named +
                       " AND error_message LIKE '%SIGSEGV%'"), 5) << host.readLog();
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events WHERE event_id IN (" + idList(leak) + ")" + named +
                       " AND error_message LIKE '%limits.memory%'"), 5) << host.readLog();
  // Hang: retried as plugin_timeout, dead after max_attempts.
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events WHERE event_id IN (" + idList(hang) +
                       ") AND error_type = 'plugin_timeout' AND attempts = 3 AND plugin = 'misbehave'"), 5)
      << host.readLog();
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events"), 15);

  // The journey says what killed it.
  const auto journey = http(host.port(), "GET", "/events/" + crash[0]).body;
  EXPECT_NE(journey.find("plugin_crashed"), std::string::npos) << journey;
  EXPECT_NE(journey.find("SIGSEGV"), std::string::npos) << journey;

  // Every death counted by reason; the children are back.
  EXPECT_EQ(metric(host.port(), "eventflow_plugin_restarts_total", "reason=\"signal\""), 5);
  EXPECT_EQ(metric(host.port(), "eventflow_plugin_restarts_total", "reason=\"memory\""), 5);
  EXPECT_EQ(metric(host.port(), "eventflow_plugin_restarts_total", "reason=\"timeout\""), 15);
  EXPECT_EQ(metric(host.port(), "eventflow_events_failed_total", "error_type=\"plugin_crashed\""), 10);
  EXPECT_GT(metric(host.port(), "eventflow_plugin_process_resident_memory_bytes", "stage=\"enricher misbehave\""), 0);
  EXPECT_GE(metric(host.port(), "eventflow_plugin_misbehave_calls_total", "pipeline=\"iso\""), 1000)
      << "what the plugin counts in its child reaches the host's metrics";
  EXPECT_TRUE(waitUntil([&] { return childrenOf(host_pid).size() == 2; }, std::chrono::seconds(30)));
  fs::remove_all(pipelines);
}

TEST_P(Isolation, KillNineOfTheHostLeavesNoChildBehind) {
  const auto pipelines = writePipeline("orphans", pipelineYaml(3, "{ memory: 256MiB, call_timeout: 5s }", sink()));
  ModeHost host("isolation-orphans", GetParam(), pipelines);
  ASSERT_TRUE(host.start()) << host.readLog();
  host.expectMode();
  const auto children = childrenOf(host.pid());
  ASSERT_EQ(children.size(), 3u);
  host.kill9();
  // PR_SET_PDEATHSIG kills each one; whoever adopts it reaps it (a zombie
  // left by an init that does not reap runs no code either).
  for (const auto& [pid, state] : children)
    EXPECT_TRUE(waitUntil(
        [pid = pid] {
          char s = 0;
          pid_t ppid = 0;
          return !procStat(pid, s, ppid) || s == 'Z';
        },
        std::chrono::seconds(30)))
        << "child " << pid << " outlived its host";
  fs::remove_all(pipelines);
}

// The `Seccomp:` line of /proc/<pid>/status: 0 none, 2 a filter.
int seccompMode(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("Seccomp:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

TEST_P(Isolation, SeccompStrictKillsAForbiddenSystemCallAndCostsThatEventOnly) {
  const auto pipelines = writePipeline(
      "seccomp", "pipeline: iso\nmatch: { event_types: [custom] }\nconcurrency: 2\n"
                 "retry: { max_attempts: 3, initial_backoff: 10ms, max_backoff: 50ms }\n"
                 "stages:\n  - enricher: misbehave\n    isolation: { mode: process, seccomp: strict }\n"
                 "    limits: { memory: 256MiB, call_timeout: 2s }\n  - sink: " + sink() + "\n");
  ModeHost host("isolation-seccomp", GetParam(), pipelines);
  ASSERT_TRUE(host.start()) << host.readLog();
  host.expectMode();
  const auto children = childrenOf(host.pid());
  ASSERT_EQ(children.size(), 2u);
  for (const auto& [pid, state] : children) EXPECT_EQ(seccompMode(pid), 2) << "child " << pid << " runs under a filter";

  // 200 normal events with a socket(), an execve(), an abort() and a leak among them.
  std::vector<std::string> normal;
  const std::string socket_id = uuid(), exec_id = uuid(), abort_id = uuid(), leak_id = uuid();
  nlohmann::json all = nlohmann::json::array();
  for (int i = 0; i < 200; ++i) {
    if (i == 50) all.push_back(event(socket_id, "socket"));
    if (i == 100) all.push_back(event(exec_id, "exec"));
    if (i == 150) all.push_back(event(abort_id, "abort"));
    if (i == 175) all.push_back(event(leak_id, "leak"));
    normal.push_back(uuid());
    all.push_back(event(normal.back()));
  }
  ASSERT_EQ(host.post(all.dump(), "/events/batch").status, 202);
  const auto summary = host.waitIdle(std::chrono::seconds(120));
  ASSERT_EQ(summary["events_in_flight"], 0) << summary.dump();
  EXPECT_TRUE(host.running());
  EXPECT_EQ(summary["events_processed"], 200);
  EXPECT_EQ(summary["events_failed"], 4);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id IN (" + idList(normal) + ") AND " +
                       host.text("enriched_data") + " LIKE '%\"misbehave\":%\"ok\"%'"), 200);

  // The forbidden calls: dead at their first attempt, the signal and seccomp named.
  const std::string crashed = " AND error_type = 'plugin_crashed' AND attempts = 1 AND plugin = 'misbehave' AND "
                              "stage = 'enricher misbehave' AND error_message LIKE '%SIGSYS%' AND "
                              "error_message LIKE '%seccomp%'";
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events WHERE event_id IN ('" + socket_id + "','" + exec_id + "')" +
                       crashed), 2) << host.readLog();
  // abort() signals itself, which the filter allows: an ordinary crash.
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events WHERE event_id = '" + abort_id +
                       "' AND error_type = 'plugin_crashed' AND error_message LIKE '%SIGABRT%' AND "
                       "error_message NOT LIKE '%seccomp%'"), 1) << host.readLog();
  // The memory limit still ends in a failed allocation, not in a forbidden call.
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events WHERE event_id = '" + leak_id +
                       "' AND error_type = 'plugin_crashed' AND error_message LIKE '%limits.memory%'"), 1)
      << host.readLog();
  const auto journey = http(host.port(), "GET", "/events/" + socket_id).body;
  EXPECT_NE(journey.find("SIGSYS"), std::string::npos) << journey;
  EXPECT_EQ(metric(host.port(), "eventflow_plugin_restarts_total", "reason=\"seccomp\""), 2);
  EXPECT_EQ(metric(host.port(), "eventflow_plugin_restarts_total", "reason=\"signal\""), 1);
  EXPECT_EQ(metric(host.port(), "eventflow_plugin_restarts_total", "reason=\"memory\""), 1);
  // The restarted children run under the filter too.
  ASSERT_TRUE(waitUntil([&] { return childrenOf(host.pid()).size() == 2; }, std::chrono::seconds(30)));
  for (const auto& [pid, state] : childrenOf(host.pid())) EXPECT_EQ(seccompMode(pid), 2) << "child " << pid;
  fs::remove_all(pipelines);
}

TEST(IsolationEmbedded, AHundredRestartsLeaveNoFdOrZombieBehind) {
  const auto pipelines = writePipeline("restarts", pipelineYaml(1, "{ memory: 256MiB, call_timeout: 5s }"));
  HostProcess host("isolation-restarts", pipelines.string(), {}, {EVENTFLOW_FAULT_FIXTURE_DIR});
  ASSERT_TRUE(host.start()) << host.readLog();
  const pid_t pid = host.pid();
  // Warm: the first batch opens whatever the store and sink keep open.
  nlohmann::json warm = nlohmann::json::array();
  for (int i = 0; i < 20; ++i) warm.push_back(event(uuid()));
  ASSERT_EQ(host.post(warm.dump(), "/events/batch").status, 202);
  ASSERT_EQ(host.waitIdle(std::chrono::seconds(60))["events_in_flight"], 0);
  const std::size_t fds_before = openFds(pid);

  nlohmann::json crashes = nlohmann::json::array();
  for (int i = 0; i < 100; ++i) crashes.push_back(event(uuid(), "crash"));
  ASSERT_EQ(host.post(crashes.dump(), "/events/batch").status, 202);
  const auto summary = host.waitIdle(std::chrono::seconds(240));
  ASSERT_EQ(summary["events_in_flight"], 0) << summary.dump();
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events WHERE error_type = 'plugin_crashed' AND attempts = 1"), 100);
  EXPECT_EQ(metric(host.port(), "eventflow_plugin_restarts_total", "reason=\"signal\""), 100);

  const auto children = childrenOf(pid);
  EXPECT_EQ(children.size(), 1u) << "one live child, no zombies of the 100 dead ones";
  for (const auto& [child, state] : children) EXPECT_NE(state, 'Z') << child;
  // The HTTP server's own connections come and go: a little slack, far below 100.
  EXPECT_LE(openFds(pid), fds_before + 4) << "fds before " << fds_before;
  fs::remove_all(pipelines);
}

TEST(IsolationEmbedded, AStageThatCannotStartFailsTheHostStartNamingIt) {
  // Below what the runner itself needs to load the plugin: the start fails, naming the stage.
  const auto pipelines = writePipeline("tiny", pipelineYaml(1, "{ memory: 16MiB, call_timeout: 1s }"));
  HostProcess host("isolation-tiny", pipelines.string(), {}, {EVENTFLOW_FAULT_FIXTURE_DIR});
  EXPECT_FALSE(host.start());
  const std::string log = host.readLog();
  EXPECT_NE(log.find("enricher misbehave"), std::string::npos) << log;
  EXPECT_NE(log.find("isolation: process"), std::string::npos) << log;
  fs::remove_all(pipelines);
}

TEST(IsolationEmbedded, SigtermDrainsTheWorkersThenStopsEveryChild) {
  const auto pipelines = writePipeline("sigterm", pipelineYaml(2, "{ memory: 256MiB, call_timeout: 5s }"));
  HostProcess host("isolation-sigterm", pipelines.string(), {}, {EVENTFLOW_FAULT_FIXTURE_DIR});
  ASSERT_TRUE(host.start()) << host.readLog();
  const auto children = childrenOf(host.pid());
  ASSERT_EQ(children.size(), 2u);
  nlohmann::json batch = nlohmann::json::array();
  for (int i = 0; i < 200; ++i) batch.push_back(event(uuid()));
  ASSERT_EQ(host.post(batch.dump(), "/events/batch").status, 202);
  EXPECT_EQ(host.terminate(std::chrono::seconds(30)), 0) << host.readLog();
  // Stopped with their workers: none is left running.
  for (const auto& [pid, state] : children) {
    char s = 0;
    pid_t ppid = 0;
    EXPECT_FALSE(procStat(pid, s, ppid) && s != 'Z') << "child " << pid << " still running";
  }
  // Nothing lost: what was not finished is still recorded, and finishes after a restart.
  ASSERT_TRUE(host.start()) << host.readLog();
  EXPECT_EQ(host.waitIdle(std::chrono::seconds(120))["events_in_flight"], 0);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events"), 200);
  fs::remove_all(pipelines);
}

TEST(IsolationEmbedded, EventflowTestRunsFixturesThroughTheChild) {
  const auto pipelines = writePipeline("fixtures", pipelineYaml(1, "{ memory: 256MiB, call_timeout: 2s }"));
  fs::create_directories(pipelines / "tests");
  std::ofstream(pipelines / "tests" / "iso.yaml")
      << "pipeline: iso\ncases:\n"
         "  - name: a normal event is enriched in the child\n"
         "    event: { event_type: custom, properties: {} }\n"
         "    expect:\n      output: { misbehave: ok }\n"
         "  - name: a crashing event is plugin_crashed\n"
         "    event: { event_type: custom, properties: { crash: true } }\n"
         "    expect:\n      dead: { error_type: plugin_crashed, stage: enricher misbehave, message: SIGSEGV }\n";
  HostProcess host("isolation-fixtures", pipelines.string(), {}, {EVENTFLOW_FAULT_FIXTURE_DIR});
  const std::string command = std::string(EVENTFLOW_BINARY) + " test --config " + host.config() + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int status = ::pclose(pipe);
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_NE(out.find("2 passed, 0 failed"), std::string::npos) << out;
  fs::remove_all(pipelines);
}

INSTANTIATE_TEST_SUITE_P(Queues, Isolation, ::testing::Values(Mode::embedded, Mode::redis),
                         [](const auto& p) { return p.param == Mode::redis ? "redis" : "embedded"; });
