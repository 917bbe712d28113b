// Hot reload (issue 16) against a real host: POST /admin/reload, SIGHUP and
// `eventflow reload` re-read the host file and the pipeline files, refuse a
// broken set whole, swap a changed pipeline under load without losing,
// repeating or mixing an event, and load a rebuilt plugin as a new version.
// Both queue modes: embedded, and Redis Streams (the test Redis).

#include <gtest/gtest.h>

#include <Poco/UUIDGenerator.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "backends.hpp"
#include "command.hpp"
#include "host_process.hpp"

using namespace eventflow::testing;

namespace {

void writeFile(const fs::path& path, const std::string& text) {
  // A new file renamed into place, as an editor or a deploy does.
  const fs::path tmp = path.string() + ".tmp";
  std::ofstream(tmp) << text;
  fs::rename(tmp, path);
}

std::string readText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The series' value in a Prometheus exposition, or -1.
double metric(const std::string& body, const std::string& series) {
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}

template <class F>
bool waitUntil(F&& condition, std::chrono::seconds within = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

// A pipeline of one event type: `stages` (YAML list items) then an sqlite sink.
std::string pipelineFile(const std::string& name, const std::string& type, const std::string& stages,
                         int concurrency = 2) {
  return "pipeline: " + name + "\nmatch: { event_types: [" + type + "] }\nconcurrency: " + std::to_string(concurrency) +
         "\nretry: { max_attempts: 5, initial_backoff: 50ms, multiplier: 2.0, max_backoff: 1s, jitter: full }\nstages:\n" +
         stages + "  - sink: sqlite\n    config: { table: processed_events }\n";
}

nlohmann::json event(const std::string& type, const std::string& id = uuid()) {
  return {{"event_id", id}, {"event_type", type}, {"user_id", "u1"}, {"timestamp", "2026-01-01T00:00:00Z"},
          {"properties", {{"n", 1}}}};
}

enum class Mode { embedded, redis };

// A host whose pipeline folder is its own copy, so a test may edit it.
class ReloadHost : public HostProcess {
 public:
  ReloadHost(const std::string& name, Mode mode, std::vector<std::string> plugin_paths = {})
      : HostProcess(name, "PLACEHOLDER", {}, std::move(plugin_paths)) {
    fs::create_directories(pipelines());
    fs::copy(fs::path(EVENTFLOW_PIPELINES_DIR) / "schemas", pipelines() / "schemas", fs::copy_options::recursive);
    for (const char* f : {"purchases.yaml", "signups.yaml", "activity.yaml"})
      fs::copy_file(fs::path(EVENTFLOW_PIPELINES_DIR) / f, pipelines() / f);
    std::string cfg = readText(config());
    cfg.replace(cfg.find("PLACEHOLDER"), 11, pipelines().string());
    if (mode == Mode::redis)
      cfg += "queue: { type: redis, url: \"" + redisUrl() + "\", stream_prefix: \"reload-" + name + "-" +
             std::to_string(::getpid()) + ":\", claim_idle: 5s }\n";
    writeFile(config(), cfg);
  }
  fs::path pipelines() const { return dir() / "pipelines"; }
  HttpReply reload() const { return http(port(), "POST", "/admin/reload", "", ""); }
  std::string metrics() const { return http(port(), "GET", "/metrics").body; }
  nlohmann::json pipelinesJson() const { return http(port(), "GET", "/pipelines").json(); }
  // The entry of GET /pipelines for `name`, or null.
  nlohmann::json pipeline(const std::string& name) const {
    const auto all = pipelinesJson();
    for (const auto& p : all["pipelines"])
      if (p["name"] == name) return p;
    return nullptr;
  }
  bool processed(const std::string& id) const {
    return count("SELECT COUNT(*) FROM raw_events WHERE state = 'done' AND event_id = '" + id + "'") == 1;
  }
};

class Reload : public ::testing::TestWithParam<Mode> {
 protected:
  std::string tag(const std::string& name) const { return name + (GetParam() == Mode::redis ? "-redis" : "-embedded"); }
};

}  // namespace

TEST_P(Reload, NewPipelineFileIsServedAndRemovedOneStops) {
  ReloadHost host(tag("new"), GetParam());
  ASSERT_TRUE(host.start()) << host.readLog();
  EXPECT_EQ(metric(host.metrics(), "eventflow_config_generation"), 1);
  EXPECT_EQ(host.post(event("order_placed").dump()).status, 422);  // no pipeline for it yet

  writeFile(host.pipelines() / "orders.yaml",
            pipelineFile("orders", "order_placed", "  - enricher: add-fields\n    config: { fields: { via: orders } }\n"));
  fs::remove(host.pipelines() / "activity.yaml");
  auto r = host.reload();
  ASSERT_EQ(r.status, 200) << r.body << host.readLog();
  const auto report = r.json();
  EXPECT_EQ(report["status"], "reloaded");
  EXPECT_EQ(report["generation"], 2);
  EXPECT_EQ(report["pipelines"]["added"], nlohmann::json::array({"orders"})) << report.dump();
  EXPECT_EQ(report["pipelines"]["removed"], nlohmann::json::array({"activity"})) << report.dump();
  EXPECT_EQ(report["pipelines"]["unchanged"], nlohmann::json::array({"purchases", "signups"})) << report.dump();
  EXPECT_TRUE(report["pipelines"]["changed"].empty()) << report.dump();
  EXPECT_TRUE(report["needs_restart"].empty()) << report.dump();

  const std::string id = uuid();
  ASSERT_EQ(host.post(event("order_placed", id).dump()).status, 202);
  EXPECT_TRUE(waitUntil([&] { return host.processed(id); })) << host.readLog();
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + id +
                       "' AND json_extract(enriched_data, '$.via') = 'orders'"),
            1);
  EXPECT_EQ(host.post(event("page_view").dump()).status, 422) << "activity was removed";

  // GET /pipelines stamps each pipeline with the generation that loaded it.
  const auto orders = host.pipeline("orders");
  ASSERT_FALSE(orders.is_null());
  EXPECT_EQ(orders["generation"], 2);
  EXPECT_EQ(orders["config_hash"].get<std::string>().size(), 64u);
  EXPECT_FALSE(orders["loaded_at"].get<std::string>().empty());
  EXPECT_EQ(host.pipeline("purchases")["generation"], 1);
  EXPECT_TRUE(host.pipeline("activity").is_null());
  EXPECT_EQ(host.pipelinesJson()["generation"], 2);

  // Nothing changed on disk: a second reload swaps nothing.
  r = host.reload();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["status"], "unchanged");
  EXPECT_EQ(r.json()["generation"], 2);

  const auto m = host.metrics();
  EXPECT_EQ(metric(m, "eventflow_config_generation"), 2);
  EXPECT_EQ(metric(m, "eventflow_reloads_total{result=\"ok\"}"), 2);
  EXPECT_EQ(metric(m, "eventflow_reloads_total{result=\"failed\"}"), 0);
  EXPECT_EQ(host.terminate(std::chrono::seconds(30)), 0) << host.readLog();
}

TEST_P(Reload, BrokenFileIsRefusedWholeNamingFileAndLineAndTheOldSetServes) {
  ReloadHost host(tag("broken"), GetParam());
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::string hash_before = host.pipeline("purchases")["config_hash"];

  // One good new pipeline, one changed one and one broken one: none of them may land.
  writeFile(host.pipelines() / "orders.yaml", pipelineFile("orders", "order_placed", ""));
  std::string purchases = readText(host.pipelines() / "purchases.yaml");
  purchases.replace(purchases.find("processed_by: eventflow"), 23, "processed_by: changed");
  writeFile(host.pipelines() / "purchases.yaml", purchases);
  writeFile(host.pipelines() / "broken.yaml",
            pipelineFile("broken", "broken_type", "  - enricher: add-feilds\n    config: { fields: { a: b } }\n"));
  auto r = host.reload();
  ASSERT_EQ(r.status, 422) << r.body;
  auto body = r.json();
  EXPECT_EQ(body["error"]["code"], "invalid_config");
  ASSERT_FALSE(body["error"]["problems"].empty()) << r.body;
  const std::string problem = body["error"]["problems"][0];
  // file:line:col of the stage, and a hint at the plugin meant.
  EXPECT_NE(problem.find((host.pipelines() / "broken.yaml").string() + ":6:5: pipeline 'broken', stage 1"),
            std::string::npos)
      << problem;
  EXPECT_NE(problem.find("add-fields"), std::string::npos) << problem;
  const std::string log = host.readLog();
  EXPECT_NE(log.find("reload refused"), std::string::npos) << log;
  EXPECT_NE(log.find("broken.yaml:6:5:"), std::string::npos) << log;

  // A YAML error in the host file: refused too, naming that file and line.
  const std::string cfg = readText(host.config());
  writeFile(host.config(), cfg + "logging: [unclosed\n");
  r = host.reload();
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_NE(r.json()["error"]["problems"][0].get<std::string>().find(host.config() + ":"), std::string::npos) << r.body;
  writeFile(host.config(), cfg);

  // The old set still serves, unchanged.
  EXPECT_EQ(host.post(event("order_placed").dump()).status, 422);
  EXPECT_TRUE(host.pipeline("orders").is_null());
  EXPECT_EQ(host.pipeline("purchases")["config_hash"], hash_before);
  EXPECT_EQ(host.pipeline("purchases")["generation"], 1);
  const std::string id = uuid();
  auto purchase = validEvent(0, id);
  ASSERT_EQ(host.post(purchase.dump()).status, 202);
  EXPECT_TRUE(waitUntil([&] { return host.processed(id); })) << host.readLog();
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + id +
                       "' AND json_extract(enriched_data, '$.processed_by') = 'eventflow'"),
            1);
  const auto m = host.metrics();
  EXPECT_EQ(metric(m, "eventflow_reloads_total{result=\"failed\"}"), 2);
  EXPECT_EQ(metric(m, "eventflow_config_generation"), 1);

  // Fixed: now everything lands at once.
  fs::remove(host.pipelines() / "broken.yaml");
  r = host.reload();
  ASSERT_EQ(r.status, 200) << r.body;
  body = r.json();
  EXPECT_EQ(body["pipelines"]["added"], nlohmann::json::array({"orders"}));
  ASSERT_EQ(body["pipelines"]["changed"].size(), 1u) << r.body;
  EXPECT_EQ(body["pipelines"]["changed"][0]["name"], "purchases");
  EXPECT_EQ(body["pipelines"]["changed"][0]["stages"],
            nlohmann::json::parse(R"([{"index":3,"stage":"enricher add-fields","change":"config"}])"))
      << r.body;
  EXPECT_EQ(host.terminate(std::chrono::seconds(30)), 0) << host.readLog();
}

// Under steady load the "gens" pipeline's two enrichers are changed from
// stamping 1 to stamping 2. Every accepted event is processed exactly once
// (the file sink, before the table's, would show a second run as a second
// line), and none carries a mix: a_gen and b_gen agree on every row.
TEST_P(Reload, ChangedStageUnderLoadLosesRepeatsAndMixesNothing) {
  ReloadHost host(tag("load"), GetParam());
  const std::string out = (host.dir() / "gens.ndjson").string();
  auto gens = [&](int g) {
    const std::string v = std::to_string(g);
    return "pipeline: gens\nmatch: { event_types: [gen_test] }\nconcurrency: 3\n"
           "retry: { max_attempts: 5, initial_backoff: 50ms, multiplier: 2.0, max_backoff: 1s, jitter: full }\n"
           "stages:\n"
           "  - enricher: add-fields\n    config: { fields: { a_gen: \"" + v + "\" } }\n"
           "  - enricher: add-fields\n    config: { fields: { b_gen: \"" + v + "\" } }\n"
           "  - sink: file\n    config: { path: " + out + " }\n"
           "  - sink: sqlite\n    config: { table: processed_events }\n";
  };
  writeFile(host.pipelines() / "gens.yaml", gens(1));
  ASSERT_TRUE(host.start()) << host.readLog();

  std::atomic<bool> stop{false};
  std::atomic<int> after_reload{0};
  std::atomic<bool> reloaded{false};
  std::mutex m;
  std::vector<std::string> accepted;
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t)
    load.emplace_back([&] {
      while (!stop) {
        const std::string id = uuid();
        if (host.post(event("gen_test", id).dump()).status != 202) continue;
        std::lock_guard lock(m);
        accepted.push_back(id);
        if (reloaded) ++after_reload;
      }
    });
  ASSERT_TRUE(waitUntil([&] {
    std::lock_guard lock(m);
    return accepted.size() >= 300;
  }));
  writeFile(host.pipelines() / "gens.yaml", gens(2));
  auto r = host.reload();
  reloaded = true;
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(waitUntil([&] { return after_reload >= 300; }));
  stop = true;
  for (auto& t : load) t.join();

  const auto summary = host.waitIdle(std::chrono::seconds(120));
  EXPECT_EQ(summary["events_in_flight"], 0) << summary.dump();
  const auto n = static_cast<Poco::Int64>(accepted.size());
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE pipeline = 'gens' AND state = 'done'"), n);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE pipeline = 'gens'"), n);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events"), 0);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE pipeline = 'gens' AND "
                       "json_extract(enriched_data, '$.a_gen') IS NOT json_extract(enriched_data, '$.b_gen')"),
            0);
  EXPECT_GT(host.count("SELECT COUNT(*) FROM processed_events WHERE json_extract(enriched_data, '$.a_gen') = '1'"), 0);
  EXPECT_GT(host.count("SELECT COUNT(*) FROM processed_events WHERE json_extract(enriched_data, '$.a_gen') = '2'"), 0);
  // The file sink saw each event once, with one generation's stamps.
  std::map<std::string, int> lines;
  std::ifstream in(out);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    EXPECT_EQ(j.value("a_gen", "?"), j.value("b_gen", "!")) << line;
    ++lines[j.value("event_id", "")];
  }
  EXPECT_EQ(lines.size(), accepted.size());
  for (const auto& [id, times] : lines) EXPECT_EQ(times, 1) << id;
  EXPECT_EQ(host.terminate(std::chrono::seconds(30)), 0) << host.readLog();
}

// A rebuilt plugin installed over the old file (by rename) is loaded as a new
// version: GET /pipelines shows it, and the new code is what runs (glibc's
// dlopen would hand back the old library for the same path name).
TEST_P(Reload, RebuiltPluginIsLoadedAsANewVersion) {
  const fs::path plugins = fs::temp_directory_path() / ("eventflow-reload-plugins-" + std::to_string(::getpid()) +
                                                        (GetParam() == Mode::redis ? "-r" : "-e"));
  fs::remove_all(plugins);
  fs::create_directories(plugins);
  const fs::path v1 = fs::path(EVENTFLOW_RELOAD_FIXTURE_DIR) / "versioned-v1.so";
  const fs::path v2 = fs::path(EVENTFLOW_RELOAD_FIXTURE_DIR) / "versioned-v2.so";
  fs::copy_file(v1, plugins / "versioned.so");
  ReloadHost host(tag("plugin"), GetParam(), {plugins.string()});
  writeFile(host.pipelines() / "stamped.yaml", pipelineFile("stamped", "stamp", "  - enricher: versioned\n"));
  ASSERT_TRUE(host.start()) << host.readLog();
  auto stage = [&] { return host.pipeline("stamped")["stages"][0]; };
  EXPECT_EQ(stage()["version"], "1.0.0");
  const std::string first = uuid();
  ASSERT_EQ(host.post(event("stamp", first).dump()).status, 202);
  ASSERT_TRUE(waitUntil([&] { return host.processed(first); })) << host.readLog();

  fs::copy_file(v2, plugins / "versioned.so.new");
  fs::rename(plugins / "versioned.so.new", plugins / "versioned.so");
  auto r = host.reload();
  ASSERT_EQ(r.status, 200) << r.body << host.readLog();
  const auto report = r.json();
  EXPECT_EQ(report["plugins"]["loaded"],
            nlohmann::json::parse(R"([{"name":"versioned","version":"2.0.0","previous_version":"1.0.0","file":")" +
                                  (plugins / "versioned.so").string() + "\"}]"))
      << r.body;
  EXPECT_EQ(report["plugins"]["unloading"][0]["version"], "1.0.0") << r.body;
  ASSERT_EQ(report["pipelines"]["changed"].size(), 1u) << r.body;
  EXPECT_EQ(report["pipelines"]["changed"][0]["stages"][0]["change"], "plugin") << r.body;
  EXPECT_EQ(report["pipelines"]["changed"][0]["stages"][0]["to_version"], "2.0.0") << r.body;
  EXPECT_EQ(stage()["version"], "2.0.0");
  EXPECT_EQ(host.pipeline("stamped")["generation"], 2);

  const std::string second = uuid();
  ASSERT_EQ(host.post(event("stamp", second).dump()).status, 202);
  ASSERT_TRUE(waitUntil([&] { return host.processed(second); })) << host.readLog();
  auto version_of = [&](const std::string& id) {
    return host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + id +
                      "' AND json_extract(enriched_data, '$.plugin_version') = '2.0.0'");
  };
  EXPECT_EQ(version_of(first), 0);
  EXPECT_EQ(version_of(second), 1) << "the new build's code ran";
  EXPECT_EQ(host.terminate(std::chrono::seconds(30)), 0) << host.readLog();
  fs::remove_all(plugins);
}

// SIGHUP and `eventflow reload` do what the route does; the command prints
// what changed, and a refusal with every problem.
TEST_P(Reload, SighupAndTheCommandDoWhatTheRouteDoes) {
  ReloadHost host(tag("cli"), GetParam());
  ASSERT_TRUE(host.start()) << host.readLog();

  writeFile(host.pipelines() / "hup.yaml", pipelineFile("hup", "hup_type", ""));
  ASSERT_TRUE(host.signal(SIGHUP));
  ASSERT_TRUE(waitUntil([&] { return !host.pipeline("hup").is_null(); })) << host.readLog();
  EXPECT_EQ(host.pipeline("hup")["generation"], 2);
  const std::string id = uuid();
  ASSERT_EQ(host.post(event("hup_type", id).dump()).status, 202);
  EXPECT_TRUE(waitUntil([&] { return host.processed(id); })) << host.readLog();

  writeFile(host.pipelines() / "cli.yaml", pipelineFile("cli", "cli_type", ""));
  auto res = runCommand({EVENTFLOW_BINARY, "reload", "--config", host.config()});
  EXPECT_EQ(res.exit_code, 0) << res.describe();
  EXPECT_NE(res.out.find("reloaded: generation 3"), std::string::npos) << res.describe();
  EXPECT_NE(res.out.find("pipelines added:     cli"), std::string::npos) << res.describe();
  EXPECT_EQ(host.pipeline("cli")["generation"], 3);

  res = runCommand({EVENTFLOW_BINARY, "reload", "--url", "http://127.0.0.1:" + std::to_string(host.port()), "--json"});
  EXPECT_EQ(res.exit_code, 0) << res.describe();
  EXPECT_EQ(nlohmann::json::parse(res.out, nullptr, false).value("status", ""), "unchanged") << res.describe();

  writeFile(host.pipelines() / "bad.yaml", "pipeline: bad\nmatch: { event_types: [x] }\nstages: 7\n");
  res = runCommand({EVENTFLOW_BINARY, "reload", "--config", host.config()});
  EXPECT_EQ(res.exit_code, 1) << res.describe();
  EXPECT_NE(res.err.find("nothing changed"), std::string::npos) << res.describe();
  EXPECT_NE(res.err.find((host.pipelines() / "bad.yaml").string() + ":3:"), std::string::npos) << res.describe();
  ASSERT_TRUE(host.signal(SIGHUP));
  EXPECT_TRUE(waitUntil([&] {
    return metric(host.metrics(), "eventflow_reloads_total{result=\"failed\"}") == 2;
  })) << host.metrics();
  EXPECT_EQ(metric(host.metrics(), "eventflow_config_generation"), 3);

  // Usage errors and an unreachable host.
  EXPECT_EQ(runCommand({EVENTFLOW_BINARY, "reload", "--bogus"}).exit_code, 2);
  EXPECT_EQ(runCommand({EVENTFLOW_BINARY, "reload", "--url", "ftp://x"}).exit_code, 2);
  res = runCommand({EVENTFLOW_BINARY, "reload", "--url", "http://127.0.0.1:" + std::to_string(freePort())});
  EXPECT_EQ(res.exit_code, 1) << res.describe();
  EXPECT_NE(res.err.find("cannot reach"), std::string::npos) << res.describe();
  EXPECT_EQ(http(host.port(), "GET", "/admin/reload").status, 405);
  EXPECT_EQ(host.terminate(std::chrono::seconds(30)), 0) << host.readLog();
}

// Reloads at once from many clients: one runs at a time, the others answer
// 409 (never a 500, never a torn state); and a reload racing a SIGTERM is
// answered or refused while the host still stops cleanly.
TEST_P(Reload, ConcurrentReloadsAreSerialisedAndShutdownRefusesThem) {
  ReloadHost host(tag("race"), GetParam());
  ASSERT_TRUE(host.start()) << host.readLog();
  std::vector<std::thread> clients;
  std::mutex m;
  std::map<int, int> codes;
  for (int round = 0; round < 3; ++round) {
    writeFile(host.pipelines() / "churn.yaml",
              pipelineFile("churn", "churn_type",
                           "  - enricher: add-fields\n    config: { fields: { round: \"" + std::to_string(round) + "\" } }\n"));
    for (int c = 0; c < 6; ++c)
      clients.emplace_back([&] {
        const int code = host.reload().status;
        std::lock_guard lock(m);
        ++codes[code];
      });
    for (auto& t : clients) t.join();
    clients.clear();
  }
  for (const auto& [code, n] : codes) EXPECT_TRUE(code == 200 || code == 409) << code << " x" << n;
  EXPECT_GE(codes[200], 3);
  const std::string id = uuid();
  ASSERT_EQ(host.post(event("churn_type", id).dump()).status, 202);
  EXPECT_TRUE(waitUntil([&] { return host.processed(id); }));
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + id +
                       "' AND json_extract(enriched_data, '$.round') = '2'"),
            1);

  // SIGTERM while reloads keep coming: each is answered 200, 409 or 503, or
  // finds the port closed; the stop is clean.
  std::atomic<bool> stop{false};
  for (int c = 0; c < 3; ++c)
    clients.emplace_back([&] {
      while (!stop) {
        const int code = host.reload().status;
        std::lock_guard lock(m);
        ++codes[code];
        if (code == 0) return;
      }
    });
  auto answered = [&] {
    std::lock_guard lock(m);
    int n = 0;
    for (const auto& [code, k] : codes) n += k;
    return n;
  };
  const int before = answered();
  EXPECT_TRUE(waitUntil([&] { return answered() >= before + 3; }));
  EXPECT_EQ(host.terminate(std::chrono::seconds(30)), 0) << host.readLog();
  stop = true;
  for (auto& t : clients) t.join();
  for (const auto& [code, n] : codes)
    EXPECT_TRUE(code == 200 || code == 409 || code == 503 || code == 0) << code << " x" << n;
}

INSTANTIATE_TEST_SUITE_P(Queues, Reload, ::testing::Values(Mode::embedded, Mode::redis),
                         [](const auto& p) { return p.param == Mode::embedded ? "embedded" : "redis"; });
