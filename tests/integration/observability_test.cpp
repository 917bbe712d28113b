// The observability kit (packaging/observability) against a real Prometheus
// (Debian's) scraping a live host: the rules load and their unit tests pass,
// the dashboard is well formed, and every panel's query returns data.

#include <gtest/gtest.h>

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>
#include <Poco/URI.h>
#include <Poco/UUIDGenerator.h>

#include <cstring>
#include <regex>
#include <set>

#include "child_process.hpp"
#include "host_process.hpp"

using namespace eventflow::testing;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kKit = EVENTFLOW_OBSERVABILITY_DIR;
const char* const kPromtool = "/usr/bin/promtool";
const char* const kPrometheus = "/usr/bin/prometheus";

const std::string kScrapeKey = "prometheus-" + uuid();
const std::string kLoadKey = "loader-" + uuid();
const std::string kAdminKey = "ops-" + uuid();

std::map<std::string, std::string> as(const std::string& key) { return {{"X-API-Key", key}}; }

// Runs `argv` to its end; its exit status and output.
std::pair<int, std::string> run(const std::vector<std::string>& argv, const fs::path& log) {
  ChildProcess child(argv, log.string());
  if (!child.start()) return {-1, "cannot start " + argv[0]};
  const int rc = child.wait(std::chrono::seconds(60));
  return {rc, child.output()};
}

nlohmann::json readJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, false);
}

// Every panel, rows' nested ones included.
void collectPanels(const nlohmann::json& list, std::vector<nlohmann::json>& out) {
  for (const auto& p : list) {
    if (p.contains("panels")) collectPanels(p["panels"], out);
    out.push_back(p);
  }
}

std::vector<std::string> variablesIn(const std::string& text) {
  static const std::regex kVar(R"(\$\{?([A-Za-z_][A-Za-z0-9_]*))");
  std::vector<std::string> out;
  for (std::sregex_iterator it(text.begin(), text.end(), kVar), end; it != end; ++it) out.push_back((*it)[1]);
  return out;
}

// The dashboard's problems: panels without a datasource or query, variables
// used and not defined, ids twice.
std::vector<std::string> dashboardProblems(const nlohmann::json& dash) {
  std::vector<std::string> problems;
  if (!dash.is_object() || !dash.contains("panels") || !dash["panels"].is_array()) return {"no panels list"};
  std::set<std::string> defined;
  for (const auto& v : dash["templating"]["list"]) defined.insert(v["name"].get<std::string>());
  const std::set<std::string> builtins{"__interval", "__rate_interval", "__range", "__interval_ms", "__range_s"};
  auto check = [&](const std::string& where, const std::string& text) {
    for (const auto& v : variablesIn(text))
      if (!defined.contains(v) && !builtins.contains(v)) problems.push_back(where + ": undefined variable $" + v);
  };
  for (const auto& v : dash["templating"]["list"])
    if (v["type"] == "query") {
      check("variable " + v["name"].get<std::string>(), v["query"]["query"].get<std::string>());
      check("variable " + v["name"].get<std::string>(), v["datasource"]["uid"].get<std::string>());
    }
  std::vector<nlohmann::json> panels;
  collectPanels(dash["panels"], panels);
  std::set<int> ids;
  for (const auto& p : panels) {
    const std::string title = p.value("title", "(untitled)");
    if (!p.contains("id") || !ids.insert(p["id"].get<int>()).second) problems.push_back(title + ": missing or repeated id");
    if (!p.contains("gridPos")) problems.push_back(title + ": no gridPos");
    if (p["type"] == "row") continue;
    if (!p.contains("datasource") || !p["datasource"].contains("uid") || p["datasource"]["type"] != "prometheus") {
      problems.push_back(title + ": no prometheus datasource");
      continue;
    }
    check(title + " datasource", p["datasource"]["uid"].get<std::string>());
    if (!p.contains("targets") || p["targets"].empty()) problems.push_back(title + ": no query");
    for (const auto& t : p.value("targets", nlohmann::json::array())) {
      if (!t.contains("expr") || t["expr"].get<std::string>().empty()) problems.push_back(title + ": a target without expr");
      if (!t.contains("datasource")) problems.push_back(title + ": a target without datasource");
      check(title, t.value("expr", ""));
      check(title + " legend", t.value("legendFormat", ""));
    }
  }
  return problems;
}

// As Grafana would send it with "All" chosen for every variable.
std::string substitute(std::string expr) {
  for (const char* v : {"$pipeline", "$job"}) {
    for (auto at = expr.find(v); at != std::string::npos; at = expr.find(v)) expr.replace(at, std::strlen(v), ".*");
  }
  return expr;
}

nlohmann::json promQuery(std::uint16_t port, const std::string& expr) {
  std::string encoded;
  Poco::URI::encode(expr, "&+=?#%;/ ", encoded);
  auto answer = http(port, "GET", "/api/v1/query?query=" + encoded).json();
  // Not up yet, or not JSON: an answer without data.
  if (!answer.is_object()) return {{"status", "no answer"}};
  return answer;
}

bool eventually(const std::function<bool()>& done, Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return done();
}

}  // namespace

TEST(Observability, RulesAndTheirUnitTestsPassPromtool) {
  ASSERT_TRUE(fs::exists(kPromtool)) << "promtool is missing: apt-get install prometheus (scripts/bootstrap)";
  const auto log = fs::temp_directory_path() / ("eventflow-promtool-" + std::to_string(::getpid()) + ".log");
  const auto [checked, check_out] =
      run({kPromtool, "check", "rules", kKit + "/eventflow-recording.yml", kKit + "/eventflow-alerts.yml"}, log);
  EXPECT_EQ(checked, 0) << check_out;
  fs::remove(log);
  const auto [tested, test_out] = run({kPromtool, "test", "rules", kKit + "/eventflow-alerts.test.yml"}, log);
  EXPECT_EQ(tested, 0) << test_out;
  EXPECT_NE(test_out.find("SUCCESS"), std::string::npos) << test_out;
  fs::remove(log);
}

TEST(Observability, EveryAlertHasARunbookAndAUnitTest) {
  // Each alert's name appears in the unit tests and carries summary and runbook.
  std::ifstream rules_in(kKit + "/eventflow-alerts.yml"), tests_in(kKit + "/eventflow-alerts.test.yml");
  std::stringstream rules, tests;
  rules << rules_in.rdbuf();
  tests << tests_in.rdbuf();
  const std::string text = rules.str();
  static const std::regex kAlert(R"(- alert: (\w+))");
  std::size_t alerts = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), kAlert), end; it != end; ++it) {
    ++alerts;
    const std::string name = (*it)[1];
    EXPECT_NE(tests.str().find("alertname: " + name + "\n"), std::string::npos) << name << " has no unit test";
    const auto next = text.find("- alert:", static_cast<std::size_t>(it->position()) + 1);
    const std::string body = text.substr(static_cast<std::size_t>(it->position()), next - static_cast<std::size_t>(it->position()));
    EXPECT_NE(body.find("runbook:"), std::string::npos) << name << " has no runbook";
    EXPECT_NE(body.find("summary:"), std::string::npos) << name << " has no summary";
  }
  EXPECT_GE(alerts, 10u);
}

TEST(Observability, DashboardIsWellFormed) {
  const auto dash = readJson(kKit + "/eventflow-dashboard.json");
  ASSERT_FALSE(dash.is_discarded()) << "not JSON";
  const auto problems = dashboardProblems(dash);
  for (const auto& p : problems) ADD_FAILURE() << p;
  // The check itself: a panel without a query and a dangling variable are caught.
  auto broken = dash;
  broken["panels"][1].erase("targets");
  broken["panels"][2]["targets"][0]["expr"] = "rate(x{pipeline=~\"$nowhere\"}[1m])";
  EXPECT_EQ(dashboardProblems(broken).size(), 2u);
}

TEST(Observability, EveryPanelQueryReturnsDataFromARealPrometheusScrapingALiveHost) {
  ASSERT_TRUE(fs::exists(kPrometheus)) << "prometheus is missing: apt-get install prometheus (scripts/bootstrap)";
  const std::string keys = "api_keys: [{ name: prometheus, sha256: \"" + sha256(kScrapeKey) +
                           "\", scopes: [metrics] }, { name: loader, sha256: \"" + sha256(kLoadKey) +
                           "\", scopes: [ingest], rate: { events_per_second: 100000, burst: 100000 } }, "
                           "{ name: ops, sha256: \"" + sha256(kAdminKey) + "\", scopes: [admin] }]";
  HostProcess host("observability", EVENTFLOW_PIPELINES_DIR, keys);
  ASSERT_TRUE(host.start()) << host.readLog();

  // Prometheus on loopback, its own folder, scraping the host every second
  // and evaluating the kit's rules every second.
  const fs::path dir = host.dir() / "prometheus";
  fs::create_directories(dir / "data");
  const std::uint16_t prom_port = freePort();
  std::ofstream(dir / "prometheus.yml") << "global: { scrape_interval: 1s, evaluation_interval: 1s }\n"
                                        << "rule_files: [\"" << kKit << "/eventflow-recording.yml\", \"" << kKit
                                        << "/eventflow-alerts.yml\"]\n"
                                        << "scrape_configs:\n"
                                        << "  - job_name: eventflow\n"
                                        << "    authorization: { credentials: \"" << kScrapeKey << "\" }\n"
                                        << "    static_configs: [{ targets: [\"127.0.0.1:" << host.port() << "\"] }]\n";
  ChildProcess prometheus({kPrometheus, "--config.file=" + (dir / "prometheus.yml").string(),
                           "--storage.tsdb.path=" + (dir / "data").string(),
                           "--web.listen-address=127.0.0.1:" + std::to_string(prom_port), "--log.level=warn"},
                          (dir / "prometheus.log").string());
  ASSERT_TRUE(prometheus.start());
  const auto deadline = Clock::now() + std::chrono::seconds(90);
  ASSERT_TRUE(eventually(
      [&] {
        const auto up = promQuery(prom_port, "up{job=\"eventflow\"} == 1");
        return up.value("status", "") == "success" && !up["data"]["result"].empty();
      },
      deadline))
      << "Prometheus never scraped the host: " << prometheus.output();

  // Load with failures: valid events in batches, invalid purchases (dead at
  // once), then one replayed and one discarded.
  for (int b = 0; b < 5; ++b) {
    nlohmann::json batch = nlohmann::json::array();
    for (int i = 0; i < 40; ++i) batch.push_back(validEvent(b * 40 + i, uuid()));
    auto r = http(host.port(), "POST", "/events/batch", batch.dump(), "application/json", as(kLoadKey));
    ASSERT_EQ(r.status, 202) << r.body;
  }
  std::vector<std::string> dead;
  for (int n = 1; n <= 4; ++n) {
    dead.push_back(uuid());
    auto r = http(host.port(), "POST", "/events",
                  nlohmann::json{{"event_id", dead.back()}, {"event_type", "purchase"}, {"user_id", "u"},
                                 {"timestamp", "2026-01-01T00:00:00Z"},
                                 {"properties", {{"amount", -n}, {"currency", "USD"}}}}
                      .dump(),
                  "application/json", as(kLoadKey));
    ASSERT_EQ(r.status, 202) << r.body;
  }
  EXPECT_EQ(http(host.port(), "POST", "/events", "{not json", "application/json", as(kLoadKey)).status, 400);
  ASSERT_EQ(host.waitIdle(std::chrono::seconds(30), as(kAdminKey))["events_failed"], 4);
  ASSERT_EQ(http(host.port(), "POST", "/dlq/" + dead[0] + "/replay", "{}", "application/json", as(kAdminKey)).status, 202);
  ASSERT_EQ(http(host.port(), "DELETE", "/dlq/" + dead[1], {}, {}, as(kAdminKey)).status, 200);

  // Which metrics this host exports: the reload ones come with hot reload.
  const std::string exposition = http(host.port(), "GET", "/metrics", {}, {}, as(kScrapeKey)).body;
  const auto exported = [&](const std::string& expr) {
    for (const char* name : {"eventflow_config_generation", "eventflow_reloads_total"})
      if (expr.find(name) != std::string::npos && exposition.find(std::string("\n") + name) == std::string::npos)
        return false;
    return true;
  };

  const auto dash = readJson(kKit + "/eventflow-dashboard.json");
  std::vector<nlohmann::json> panels;
  collectPanels(dash["panels"], panels);
  std::size_t queries = 0;
  for (const auto& p : panels) {
    for (const auto& t : p.value("targets", nlohmann::json::array())) {
      const std::string expr = substitute(t["expr"]);
      ++queries;
      nlohmann::json last;
      const bool has_data = eventually(
          [&] {
            last = promQuery(prom_port, expr);
            return last.value("status", "") == "success" && !last["data"]["result"].empty();
          },
          exported(expr) ? deadline : Clock::now());
      if (!exported(expr)) {
        EXPECT_EQ(last.value("status", ""), "success") << expr << ": " << last.dump();
        std::cout << "[ note ] '" << p["title"].get<std::string>() << "': " << expr
                  << " has no data: the host does not export its metric yet (hot reload)\n";
        continue;
      }
      EXPECT_TRUE(has_data) << "panel '" << p["title"].get<std::string>() << "': " << expr << " -> " << last.dump();
    }
  }
  EXPECT_GE(queries, 30u);

  // Every rule evaluates without error against the live data.
  const auto rules = http(prom_port, "GET", "/api/v1/rules").json();
  std::size_t rule_count = 0;
  for (const auto& group : rules["data"]["groups"])
    for (const auto& rule : group["rules"]) {
      ++rule_count;
      EXPECT_EQ(rule["health"], "ok") << rule.dump();
    }
  EXPECT_EQ(rule_count, 24u) << rules.dump();
  // The counters the load drove, as Prometheus has them.
  EXPECT_TRUE(eventually(
      [&] {
        const auto r = promQuery(prom_port, "eventflow:dlq_size:max{pipeline=\"purchases\"} == 3");
        return !r["data"]["result"].empty();
      },
      deadline))
      << "the DLQ holds 3 after one discard (the replayed one died again)";
  prometheus.kill(SIGTERM);
  EXPECT_GE(prometheus.wait(std::chrono::seconds(20)), 0);
}
