// Hostile input against a real host (issue 11): bodies nested to blow the
// stack, numbers beyond a double, framing a proxy would read otherwise,
// event ids in upper case, wrong methods and HEAD, more connections than
// allowed, and metrics behind a key. After each, the host still answers a
// normal POST /events with 202 within a second.

#include <gtest/gtest.h>

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>
#include <Poco/UUIDGenerator.h>
#include <libpq-fe.h>
#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <memory>
#include <set>

#include "backends.hpp"
#include "cluster.hpp"
#include "host_process.hpp"
#include "raw_http.hpp"

using namespace eventflow::testing;

namespace {

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

std::string testName() {
  std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::replace(name.begin(), name.end(), '/', '-');
  return name;
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

// The acceptance of issue 11: whatever came before, a normal event is
// accepted within a second.
void expectStillAccepts(HostProcess& host, const std::map<std::string, std::string>& headers = {}) {
  ASSERT_TRUE(host.running()) << host.readLog();
  HttpReply last;
  EXPECT_TRUE(eventually(
      [&] {
        last = http(host.port(), "POST", "/events", validEvent(1, uuid()).dump(), "application/json", headers);
        return last.status == 202;
      },
      std::chrono::seconds(1)))
      << last.status << " " << last.body << "\n" << host.readLog();
}

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST(Hardening, BodiesNestedPastMaxJsonDepthAre400BeforeAnythingRecursiveRuns) {
  HostProcess host(testName());
  ASSERT_TRUE(host.start()) << host.readLog();

  // ~200 KB of '[': parsed and dumped, it overflowed an io thread's stack.
  auto r = host.post(nested(100'000));
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "too_deep") << r.body;
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("server.max_json_depth (64)"), std::string::npos);

  // Accepted, it crashed the worker (the sqlite sink) on every restart.
  const std::string deep_props = R"({"event_type":"page_view","properties":{"x":)" + nested(60'000) + "}}";
  r = host.post(deep_props);
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "too_deep");
  EXPECT_EQ(r.json()["error"]["field"], "properties.x");

  // The limit itself: object, properties, then 62 arrays is 64 levels.
  auto at = [&](std::size_t arrays) {
    nlohmann::json e = validEvent(2, uuid());
    std::string body = e.dump();
    body.insert(body.rfind('}'), ",\"deep\":" + nested(arrays));
    return body;
  };
  r = host.post(at(63));
  EXPECT_EQ(r.status, 202) << r.body;
  r = host.post(at(64));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.json()["error"]["field"], "deep");

  // A JSON-array batch: its array is one level more; a too-deep item
  // refuses only itself, like an NDJSON line.
  r = host.post("[" + at(63) + "]", "/events/batch");
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json()["accepted"], 1);
  const std::string first = uuid();
  r = host.post("[" + validEvent(1, first).dump() + "," + nested(100'000) + "," + at(64) + "]", "/events/batch");
  ASSERT_EQ(r.status, 202) << r.body;
  auto items = r.json();
  EXPECT_EQ(items["accepted"], 1) << r.body;
  EXPECT_EQ(items["rejected"], 2) << r.body;
  EXPECT_EQ(items["results"][0]["event_id"], first);
  EXPECT_EQ(items["results"][1]["status_code"], 400);
  EXPECT_EQ(items["results"][1]["error"]["code"], "too_deep");
  EXPECT_NE(items["results"][1]["error"]["message"].get<std::string>().find("item 1 nests"), std::string::npos) << r.body;
  EXPECT_NE(items["results"][1]["error"]["message"].get<std::string>().find("max_json_depth (64) at '[0][0]"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(items["results"][2]["error"]["code"], "too_deep");
  EXPECT_EQ(items["results"][2]["error"]["field"], "deep");
  // A batch body that is not an array at all is refused whole.
  r = host.post(R"({"a":)" + nested(100'000) + "}", "/events/batch");
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "too_deep");

  // NDJSON: only the deep line is refused.
  const std::string good = uuid();
  r = http(host.port(), "POST", "/events/batch",
           nested(100'000) + "\n" + validEvent(1, good).dump() + "\n" + deep_props + "\n", "application/x-ndjson");
  ASSERT_EQ(r.status, 202) << r.body;
  const auto j = r.json();
  EXPECT_EQ(j["accepted"], 1) << r.body;
  EXPECT_EQ(j["results"][0]["status_code"], 400);
  EXPECT_EQ(j["results"][0]["error"]["code"], "too_deep");
  EXPECT_NE(j["results"][0]["error"]["message"].get<std::string>().find("line 1"), std::string::npos);
  EXPECT_EQ(j["results"][1]["status_code"], 202);
  EXPECT_EQ(j["results"][1]["event_id"], good);
  EXPECT_EQ(j["results"][2]["error"]["field"], "properties.x");

  // The bulk replay's body is held to the same limit.
  r = http(host.port(), "POST", "/dlq/replay", R"({"pipeline":)" + nested(100'000) + "}");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "too_deep");

  expectStillAccepts(host);
  EXPECT_EQ(host.count("SELECT count(*) FROM raw_events"), 5);
}

TEST(Hardening, MaxJsonDepthIsConfigurable) {
  HostProcess host(testName(), EVENTFLOW_PIPELINES_DIR, "max_json_depth: 3");
  ASSERT_TRUE(host.start()) << host.readLog();
  nlohmann::json e = validEvent(1, uuid());
  e["properties"] = {{"a", {1}}};  // object, properties, array: 3
  EXPECT_EQ(host.post(e.dump()).status, 202);
  e["properties"] = {{"a", {{1}}}};
  const auto r = host.post(e.dump());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.json()["error"]["field"], "properties.a");
}

TEST(Hardening, TransferEncodingOtherThanChunkedIs400AndWhatFollowsIsNeverAnswered) {
  HostProcess host(testName());
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::string smuggled = "GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n";
  const std::string head = "POST /events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n";
  for (const std::string framing :
       {"Transfer-Encoding: gzip\r\n", "Transfer-Encoding: chunked, gzip\r\n", "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: gzip, chunked\r\n", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: identity\r\nContent-Length: 2\r\n", "Content-Length: 2\r\nTransfer-Encoding: gzip\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"}) {
    SCOPED_TRACE(framing);
    Connection c(host.port());
    ASSERT_TRUE(c.send(head + framing + "\r\n{}" + smuggled));
    const auto r = c.read();
    ASSERT_EQ(r.status, 400) << r.body;
    EXPECT_TRUE(r.json()["error"]["message"].is_string()) << r.body;
    EXPECT_EQ(r.header("connection"), "close");
    // Nothing more is sent: the request after the head is not answered.
    EXPECT_TRUE(c.closedByPeer()) << "the request after the head was answered";
  }
  // Exactly chunked, in any case, still works.
  Connection c(host.port());
  const std::string body = validEvent(1, uuid()).dump();
  std::ostringstream chunked;
  chunked << head << "Transfer-Encoding: Chunked\r\n\r\n" << std::hex << body.size() << "\r\n" << body << "\r\n0\r\n\r\n";
  ASSERT_TRUE(c.send(chunked.str()));
  EXPECT_EQ(c.read().status, 202);
  expectStillAccepts(host);
}

TEST(Hardening, NumbersBeyondADoubleAre400NamingTheFieldAndRefuseOnlyTheirItem) {
  HostProcess host(testName());
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::string digits(400, '7');
  for (const std::string& n : {std::string("1e400"), std::string("-1e400"), digits}) {
    SCOPED_TRACE(n.substr(0, 10));
    const std::string bad = R"({"event_type":"page_view","properties":{"n":)" + n + "}}";
    auto r = host.post(bad);
    ASSERT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.json()["error"]["code"], "number_out_of_range") << r.body;
    EXPECT_EQ(r.json()["error"]["field"], "properties.n") << r.body;

    // A JSON-array batch: only that item.
    const std::string good = uuid();
    r = host.post("[" + validEvent(1, good).dump() + "," + bad + "]", "/events/batch");
    ASSERT_EQ(r.status, 202) << r.body;
    auto j = r.json();
    EXPECT_EQ(j["accepted"], 1) << r.body;
    EXPECT_EQ(j["results"][0]["event_id"], good);
    EXPECT_EQ(j["results"][1]["status_code"], 400);
    EXPECT_EQ(j["results"][1]["error"]["field"], "properties.n");

    // NDJSON: only that line.
    const std::string other = uuid();
    r = http(host.port(), "POST", "/events/batch", bad + "\n" + validEvent(2, other).dump() + "\n", "application/x-ndjson");
    ASSERT_EQ(r.status, 202) << r.body;
    j = r.json();
    EXPECT_EQ(j["results"][0]["error"]["code"], "number_out_of_range") << r.body;
    EXPECT_EQ(j["results"][0]["error"]["field"], "properties.n");
    EXPECT_EQ(j["results"][1]["event_id"], other);
  }
  // No other route answers 500 to such a body.
  auto r = http(host.port(), "POST", "/dlq/replay", R"({"limit":1e400})");
  EXPECT_EQ(r.status, 400) << r.body;
  r = http(host.port(), "GET", "/dlq?limit=" + digits);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(host.readLog().find("request failed"), std::string::npos) << host.readLog();
  expectStillAccepts(host);
}

class HardeningStores : public ::testing::TestWithParam<std::string> {};

// The same UUID in upper and lower case is one event: one row, the second
// post a duplicate, and every route finds it by either spelling.
TEST_P(HardeningStores, AnEventIdInUpperCaseIsTheSameEvent) {
  HostProcess host(testName());
  std::string pg;
  if (GetParam() == "postgresql") {
    pg = freshDatabase("hardening");
    ASSERT_FALSE(pg.empty());
    std::ofstream(host.config()) << "server: { listen: \"127.0.0.1:" << host.port() << "\" }\n"
                                 << "store: { url: \"" << pg << "\" }\n"
                                 << "plugins: { paths: [" << EVENTFLOW_PLUGIN_DIR << "] }\n"
                                 << "pipelines: { paths: [" << postgresPipelines(host.dir()).string() << "] }\n"
                                 << "shutdown_timeout: 10s\n";
  }
  ASSERT_TRUE(host.start()) << host.readLog();
  auto rows = [&](const std::string& sql) -> long long {
    if (pg.empty()) return host.count(sql);
    PGconn* conn = PQconnectdb(pg.c_str());
    PGresult* res = PQexec(conn, sql.c_str());
    const long long n = PQresultStatus(res) == PGRES_TUPLES_OK ? std::atoll(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    PQfinish(conn);
    return n;
  };

  const std::string id = uuid();
  nlohmann::json e = validEvent(1, upper(id));
  auto r = host.post(e.dump());
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json()["event_id"], id) << "kept in lower case";
  e["event_id"] = id;
  r = host.post(e.dump());
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["status"], "duplicate");
  e["event_id"] = upper(id);
  r = host.post("[" + e.dump() + "]", "/events/batch");
  EXPECT_EQ(r.json()["results"][0]["status"], "duplicate") << r.body;
  EXPECT_EQ(http(host.port(), "GET", "/events/" + upper(id)).status, 200);
  EXPECT_EQ(rows("SELECT count(*) FROM raw_events WHERE lower(CAST(event_id AS TEXT)) = '" + id + "'"), 1);

  // A purchase the shipped pipeline sends to the DLQ (amount must be > 0).
  const std::string dead = uuid();
  r = host.post(nlohmann::json{{"event_id", upper(dead)}, {"event_type", "purchase"}, {"user_id", "u"},
                               {"properties", {{"amount", -1}, {"currency", "USD"}}}}
                    .dump());
  ASSERT_EQ(r.status, 202) << r.body;
  ASSERT_TRUE(eventually([&] { return http(host.port(), "GET", "/dlq/" + upper(dead)).status == 200; },
                         std::chrono::seconds(20)))
      << host.readLog();
  EXPECT_EQ(http(host.port(), "GET", "/dlq/" + upper(dead)).json()["event_id"], dead);
  r = http(host.port(), "DELETE", "/dlq/" + upper(dead));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(http(host.port(), "GET", "/events/" + upper(dead)).json()["state"], "discarded");
  expectStillAccepts(host);
}

INSTANTIATE_TEST_SUITE_P(BothStores, HardeningStores, ::testing::Values("sqlite", "postgresql"));

TEST(Hardening, AWrongMethodIs405WithAllowAndHeadHasNoBody) {
  HostProcess host(testName());
  ASSERT_TRUE(host.start()) << host.readLog();
  // The Allow header of every route the API document names is the methods
  // it documents (HEAD wherever GET): the route table and the document agree.
  const auto spec = http(host.port(), "GET", "/openapi.json").json();
  ASSERT_TRUE(spec.is_object());
  int checked = 0;
  for (const auto& [path, ops] : spec["paths"].items()) {
    std::string target = path;
    if (auto at = target.find("{id}"); at != std::string::npos) target.replace(at, 4, uuid());
    std::set<std::string> documented;
    for (const auto& [method, op] : ops.items()) {
      documented.insert(upper(method));
      if (method == "get") documented.insert("HEAD");
    }
    for (const std::string method : {"GET", "POST", "PUT", "DELETE", "PATCH"}) {
      if (documented.count(method)) continue;
      SCOPED_TRACE(method + " " + path);
      auto r = http(host.port(), method, target);
      ASSERT_EQ(r.status, 405) << r.body;
      EXPECT_EQ(r.json()["error"]["code"], "method_not_allowed");
      std::set<std::string> allowed;
      std::stringstream allow(r.headers["Allow"]);
      for (std::string m; std::getline(allow, m, ',');) allowed.insert(m.substr(m.find_first_not_of(' ')));
      EXPECT_EQ(allowed, documented) << r.headers["Allow"];
      ++checked;
    }
  }
  EXPECT_GE(checked, 50);

  // HEAD answers the GET's head, no body, and the connection goes on.
  Connection c(host.port());
  for (const std::string path : {"/health", "/metrics", "/openapi.json"}) {
    ASSERT_TRUE(c.send("HEAD " + path + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    const auto head = c.read(true);
    ASSERT_EQ(head.status, 200) << path;
    EXPECT_GT(std::stoul(head.header("content-length")), 0u) << path;
    ASSERT_TRUE(c.send(get("/health/live")));
    const auto live = c.read();
    ASSERT_EQ(live.status, 200) << "after HEAD " << path << ": " << live.body;
    EXPECT_EQ(live.json()["status"], "alive") << live.body;
  }
  ASSERT_TRUE(c.send("HEAD /pipelines HTTP/1.1\r\nHost: t\r\n\r\n" + post("/events", validEvent(1, uuid()).dump())));
  EXPECT_EQ(c.read(true).status, 200);
  EXPECT_EQ(c.read().status, 202);
  expectStillAccepts(host);
}

TEST(Hardening, PastMaxConnectionsANewConnectionIsClosedAtOnce) {
  // Started with a low soft descriptor limit, which the host raises to the hard one.
  rlimit mine{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &mine), 0);
  const bool can_lower = mine.rlim_max > 1024;
  if (can_lower) {
    const rlimit low{1024, mine.rlim_max};
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  }
  HostProcess host(testName(), EVENTFLOW_PIPELINES_DIR, "max_connections: 50");
  const bool started = host.start();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &mine), 0);
  ASSERT_TRUE(started) << host.readLog();
  if (can_lower) {
    EXPECT_NE(host.readLog().find("raised the open-file limit"), std::string::npos) << host.readLog();
  }

  std::vector<std::unique_ptr<Connection>> idle;
  for (int i = 0; i < 60; ++i) idle.push_back(std::make_unique<Connection>(host.port()));
  Connection over(host.port());
  EXPECT_TRUE(over.closedByPeer(Poco::Timespan(2, 0))) << "the 61st connection was kept";
  EXPECT_EQ(idle.front()->end(Poco::Timespan(0, 200'000)), Connection::End::open);
  std::size_t closed = 0;
  for (auto& c : idle)
    if (c->end(Poco::Timespan(0, 10'000)) != Connection::End::open) ++closed;
  EXPECT_GE(closed, 10u);
  EXPECT_LE(closed, 11u);  // at most one more: the answer to /health/ready may not be closed yet

  idle.clear();
  expectStillAccepts(host);
}

TEST(Hardening, MetricsNeedAMetricsOrAdminKeyAndTheSchemeIsCaseInsensitive) {
  const std::string ingest = "ingest-" + uuid(), metrics = "metrics-" + uuid(), admin = "admin-" + uuid();
  HostProcess host(testName(), EVENTFLOW_PIPELINES_DIR,
                   "api_keys: [{ name: producer, sha256: \"" + sha256(ingest) + "\", scopes: [ingest] }, "
                   "{ name: prometheus, sha256: \"" + sha256(metrics) + "\", scopes: [metrics] }, "
                   "{ name: ops, sha256: \"" + sha256(admin) + "\", scopes: [admin] }]");
  ASSERT_TRUE(host.start()) << host.readLog();
  auto bearer = [](const std::string& scheme, const std::string& key) {
    return std::map<std::string, std::string>{{"Authorization", scheme + " " + key}};
  };
  for (const std::string path : {"/metrics", "/metrics/summary"}) {
    SCOPED_TRACE(path);
    EXPECT_EQ(http(host.port(), "GET", path).status, 401);
    const auto wrong = http(host.port(), "GET", path, {}, {}, bearer("Bearer", ingest));
    EXPECT_EQ(wrong.status, 403);
    EXPECT_NE(wrong.json()["error"]["message"].get<std::string>().find("'metrics' scope"), std::string::npos);
    EXPECT_EQ(http(host.port(), "GET", path, {}, {}, bearer("Bearer", metrics)).status, 200);
    EXPECT_EQ(http(host.port(), "GET", path, {}, {}, bearer("bearer", metrics)).status, 200);
    EXPECT_EQ(http(host.port(), "GET", path, {}, {}, bearer("BEARER", admin)).status, 200);
    EXPECT_EQ(http(host.port(), "GET", path, {}, {}, {{"X-API-Key", admin}}).status, 200);
  }
  // A metrics key is only that.
  EXPECT_EQ(http(host.port(), "GET", "/pipelines", {}, {}, bearer("Bearer", metrics)).status, 403);
  EXPECT_EQ(http(host.port(), "POST", "/events", validEvent(1, uuid()).dump(), "application/json",
                 bearer("Bearer", metrics)).status,
            403);
  for (const std::string path : {"/health/live", "/health/ready", "/health"})
    EXPECT_EQ(http(host.port(), "GET", path).status, 200) << path;
  expectStillAccepts(host, bearer("bearer", ingest));
}

namespace {

// `n` purchases the shipped pipeline sends to the DLQ at once (amount must
// be > 0), each padded with `pad` bytes; returns their ids.
std::vector<std::string> postDeadPurchases(HostProcess& host, int n, std::size_t pad = 0) {
  std::vector<std::string> ids;
  nlohmann::json batch = nlohmann::json::array();
  for (int i = 0; i < n; ++i) {
    ids.push_back(uuid());
    nlohmann::json e = validEvent(0, ids.back());
    e["properties"]["amount"] = -1 - i;
    if (pad) e["pad"] = std::string(pad, 'p');
    batch.push_back(e);
  }
  const auto r = host.post(batch.dump(), "/events/batch");
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json()["accepted"], n) << r.body;
  EXPECT_TRUE(eventually([&] { return http(host.port(), "GET", "/dlq?limit=1").json()["total"] == n; },
                         std::chrono::seconds(30)))
      << http(host.port(), "GET", "/dlq?limit=1").body;
  return ids;
}

}  // namespace

// Eight bulk replays at once ran at 2.7 times dlq.replay_rate together and
// held every blocking thread: /health/live took 7 s.
TEST(Hardening, OneBulkReplayAtATimeAndHealthAndMetricsNeverWaitForIt) {
  HostProcess host(testName());
  std::ofstream(host.config(), std::ios::app) << "dlq: { replay_rate: 10 }\n";
  ASSERT_TRUE(host.start()) << host.readLog();
  postDeadPurchases(host, 40);

  std::vector<HttpReply> replies(8);
  std::vector<std::thread> replays;
  const auto started = std::chrono::steady_clock::now();
  for (auto& reply : replies) replays.emplace_back([&] { reply = http(host.port(), "POST", "/dlq/replay", "{}"); });
  // While the replay runs (40 events at 10/s), probes answer at once.
  double slowest = 0;
  for (int i = 0; i < 10; ++i) {
    for (const char* path : {"/health/live", "/health/ready", "/metrics", "/metrics/summary"}) {
      const auto t0 = std::chrono::steady_clock::now();
      EXPECT_EQ(http(host.port(), "GET", path).status, 200) << path;
      slowest = std::max(slowest, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& t : replays) t.join();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_LT(slowest, 1.0) << "a probe waited behind the replays";

  int ran = 0, refused = 0;
  for (const auto& r : replies) {
    if (r.status == 202) {
      ++ran;
      EXPECT_EQ(r.json()["replayed"], 40) << r.body;
    } else {
      EXPECT_EQ(r.status, 409) << r.body;
      EXPECT_EQ(r.json()["error"]["code"], "replay_running") << r.body;
      EXPECT_FALSE(r.headers.count("Retry-After") == 0) << r.body;
      ++refused;
    }
  }
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(refused, 7);
  // One budget: 40 events at 10/s, whoever asked.
  EXPECT_GE(took, 3.0);
  expectStillAccepts(host);
}

// Six GET /dlq?limit=100 over dead events of 1 MB took the host to 1.45 GB.
TEST(Hardening, DlqPagesAreBoundedInBytesAndSayWhereTheNextStarts) {
  HostProcess host(testName());
  std::ofstream(host.config(), std::ios::app) << "dlq: { max_page_bytes: 65536 }\n";
  ASSERT_TRUE(host.start()) << host.readLog();
  const auto ids = postDeadPurchases(host, 10, 20'000);

  std::set<std::string> seen;
  std::size_t offset = 0, pages = 0;
  for (;;) {
    const auto page = http(host.port(), "GET", "/dlq?limit=100&offset=" + std::to_string(offset)).json();
    ASSERT_TRUE(page.is_object());
    EXPECT_EQ(page["total"], 10);
    ASSERT_GE(page["items"].size(), 1u);
    EXPECT_LE(page["items"].dump().size(), 65536u + 20'000u) << "page " << pages;
    for (const auto& item : page["items"]) seen.insert(item["event_id"]);
    ++pages;
    if (!page.contains("next_offset")) {
      EXPECT_EQ(offset + page["items"].size(), 10u);
      break;
    }
    EXPECT_EQ(page["next_offset"], offset + page["items"].size());
    offset = page["next_offset"];
    ASSERT_LT(pages, 10u);
  }
  EXPECT_EQ(seen, std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_GE(pages, 3u);
  // Cut by `limit` instead, it says where the next page starts all the same.
  const auto small = http(host.port(), "GET", "/dlq?limit=2").json();
  EXPECT_EQ(small["items"].size(), 2u);
  EXPECT_EQ(small["next_offset"], 2);
  expectStillAccepts(host);
}
