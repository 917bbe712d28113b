// The lua enricher in a running host (issue 17): the shipped lua example
// pipelines enrich as their classify versions do, and hostile scripts cost
// only their own event while the same instance goes on serving.

#include <gtest/gtest.h>

#include <Poco/UUIDGenerator.h>

#include <fstream>

#include "host_process.hpp"

using namespace eventflow::testing;

namespace {

// Waits until every event the host took is done or dead; false on timeout.
bool waitTerminal(const HostProcess& host, std::chrono::seconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (host.count("SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead')") == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace

TEST(LuaHost, TheExamplePipelinesEnrichAsTheShippedOnesDo) {
  HostProcess host("lua-examples", std::string(EVENTFLOW_PIPELINES_DIR) + "/examples");
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::string big = uuid(), small = uuid(), signup = uuid();
  for (const auto& [id, body] : {std::pair{big, nlohmann::json{{"event_type", "purchase"}, {"user_id", "u1"},
                                                               {"properties", {{"amount", 1500}, {"currency", "USD"}}}}},
                                 std::pair{small, nlohmann::json{{"event_type", "purchase"}, {"user_id", "u1"},
                                                                 {"properties", {{"amount", 20}, {"currency", "USD"}}}}},
                                 std::pair{signup, nlohmann::json{{"event_type", "user_signup"}, {"user_id", "u2"}}}}) {
    auto event = body;
    event["event_id"] = id;
    ASSERT_EQ(host.post(event.dump()).status, 202);
  }
  ASSERT_TRUE(waitTerminal(host, std::chrono::seconds(30)));
  const auto field = [&](const std::string& id, const std::string& path) {
    return host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + id +
                      "' AND json_extract(enriched_data, '$." + path + "')");
  };
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + big +
                       "' AND json_extract(enriched_data, '$.category') = 'high_value'"),
            1);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + small +
                       "' AND json_extract(enriched_data, '$.category') = 'standard'"),
            1);
  EXPECT_EQ(field(signup, "session_start"), 1);
  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0);
}

TEST(LuaHost, HostileScriptsKillOnlyTheirOwnEvent) {
  const auto dir = fs::temp_directory_path() / ("eventflow-lua-hostile-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // concurrency 1: one instance, one Lua state, sees every event in turn.
  std::ofstream(dir / "probe.yaml") << R"(pipeline: probe
match: { event_types: [probe] }
concurrency: 1
stages:
  - enricher: lua
    config:
      max_instructions: 20000000
      max_memory: 4MiB
      script: |
        function process(event)
          local mode = event.mode
          if mode == "spin" then while true do end end
          if mode == "grow" then local t = {} while true do t[#t + 1] = {} end end
          if mode == "shell" then os.execute("id") end
          if mode == "recurse" then local function f() return f() + 1 end f() end
          event.handled = true
        end
  - sink: sqlite
)";
  HostProcess host("lua-hostile", dir.string());
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::map<std::string, std::string> hostile{
      {"spin", "script_budget"}, {"grow", "script_budget"}, {"shell", "script_error"}, {"recurse", ""}};
  std::map<std::string, std::string> ids;
  std::vector<std::string> fine;
  for (const auto& [mode, type] : hostile) {
    ids[mode] = uuid();
    ASSERT_EQ(host.post(nlohmann::json{{"event_id", ids[mode]}, {"event_type", "probe"}, {"mode", mode}}.dump()).status,
              202);
    fine.push_back(uuid());
    ASSERT_EQ(host.post(nlohmann::json{{"event_id", fine.back()}, {"event_type", "probe"}, {"mode", "fine"}}.dump())
                  .status,
              202);
  }
  ASSERT_TRUE(waitTerminal(host, std::chrono::seconds(60))) << host.readLog();
  for (const auto& [mode, type] : hostile) {
    SCOPED_TRACE(mode);
    EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'dead' AND event_id = '" + ids[mode] + "'"), 1);
    const std::string where = "FROM failed_events WHERE event_id = '" + ids[mode] + "' AND plugin = 'lua'";
    if (!type.empty()) EXPECT_EQ(host.count("SELECT COUNT(*) " + where + " AND error_type = '" + type + "'"), 1);
    else EXPECT_EQ(host.count("SELECT COUNT(*) " + where), 1);
  }
  for (const auto& id : fine)
    EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + id +
                         "' AND json_extract(enriched_data, '$.handled') = 1"),
              1);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events WHERE error_type = 'script_error' AND error_message "
                       "LIKE '%script:5: attempt to index a nil value (global ''os'')%'"),
            1);
  EXPECT_EQ(http(host.port(), "GET", "/health/ready").status, 200);
  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0);
  fs::remove_all(dir);
}
