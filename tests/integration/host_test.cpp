// End-to-end tests of a real host: HTTP → SQLite (raw_events) → embedded
// queue → .so plugins → processed_events / failed_events.

#include <gtest/gtest.h>

#include <Poco/UUIDGenerator.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <set>
#include <thread>

#include "host_process.hpp"

using namespace eventflow::testing;

namespace {

// Posts `n` valid events from `threads` connections; returns the ids that got 202.
std::vector<std::string> postMany(const HostProcess& host, int n, int threads, std::atomic<bool>* stop = nullptr) {
  std::mutex m;
  std::vector<std::string> accepted;
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = next++; i < n; i = next++) {
        if (stop && *stop) return;
        const std::string id = uuid();
        auto r = host.post(validEvent(i, id).dump());
        if (r.status == 202) {
          std::lock_guard lock(m);
          accepted.push_back(id);
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  return accepted;
}

}  // namespace

TEST(Host, ThousandEventsAllReachProcessedEvents) {
  HostProcess host("thousand");
  ASSERT_TRUE(host.start()) << host.readLog();
  const auto accepted = postMany(host, 1000, 8);
  ASSERT_EQ(accepted.size(), 1000u);
  const auto summary = host.waitIdle(std::chrono::seconds(60));
  EXPECT_EQ(summary["events_in_flight"], 0) << summary.dump();
  EXPECT_EQ(summary["events_received"], 1000);
  EXPECT_EQ(summary["events_processed"], 1000);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events"), 1000);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'done'"), 1000);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM failed_events"), 0);
  // every accepted id, not just the right number of rows
  for (std::size_t i = 0; i < accepted.size(); i += 97)
    EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + accepted[i] + "'"), 1);
  // the pipelines' enrichment landed
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE json_extract(enriched_data, '$.processed_by') IS NULL"), 0);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_type = 'purchase' AND "
                       "json_extract(enriched_data, '$.category') IN ('standard', 'high_value')"),
            250);
  auto metrics = http(host.port(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("eventflow_events_received_total{"), std::string::npos);
  EXPECT_NE(metrics.body.find("eventflow_events_processed_total{"), std::string::npos);
  EXPECT_NE(metrics.body.find("eventflow_event_processing_duration_seconds_bucket{"), std::string::npos);
  // Everything is processed, and then acknowledged: the queue's gauges come
  // to 0 at scrape time. A worker acknowledges its events once their outcome
  // is fsynced, which can be a moment after the summary (which reads the
  // committed rows) shows them processed; on a loaded machine 11 were still
  // pending at the first scrape.
  const auto drained = [&] {
    return metrics.body.find("eventflow_queue_depth{pipeline=\"purchases\"} 0") != std::string::npos &&
           metrics.body.find("eventflow_queue_pending{pipeline=\"purchases\"} 0") != std::string::npos;
  };
  for (const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
       !drained() && std::chrono::steady_clock::now() < until;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    metrics = http(host.port(), "GET", "/metrics");
  }
  EXPECT_TRUE(drained()) << metrics.body;
  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0);
}

TEST(Host, KillNineLosesNothingThatGotA202) {
  HostProcess host("kill9");
  ASSERT_TRUE(host.start()) << host.readLog();
  std::atomic<bool> stop{false};
  std::vector<std::string> accepted;
  std::thread poster([&] { accepted = postMany(host, 3000, 16, &stop); });
  // Kill while posts and processing are both under way.
  for (int i = 0; i < 400; ++i) {
    if (host.count("SELECT COUNT(*) FROM raw_events") >= 800) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  host.kill9();
  stop = true;
  poster.join();
  ASSERT_GT(accepted.size(), 0u);
  const Poco::Int64 unfinished = host.count("SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead')");
  ASSERT_TRUE(host.start()) << host.readLog();
  const auto summary = host.waitIdle(std::chrono::seconds(60));
  EXPECT_EQ(summary["events_in_flight"], 0) << summary.dump();
  for (const auto& id : accepted)
    ASSERT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + id + "'"), 1) << id;
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state <> 'done'"), 0);
  // raw rows may exceed the 202s (committed, but the answer was lost in the kill): all are processed once
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events"), host.count("SELECT COUNT(*) FROM raw_events"));
  if (unfinished > 0) EXPECT_NE(host.readLog().find("recovered unfinished events"), std::string::npos);
}

TEST(Host, SigtermDrainsAndExitsCleanly) {
  HostProcess host("sigterm");
  ASSERT_TRUE(host.start()) << host.readLog();
  const auto accepted = postMany(host, 400, 8);
  ASSERT_EQ(accepted.size(), 400u);
  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'done'"), 400);
  const auto log = host.readLog();
  EXPECT_NE(log.find("\"message\":\"shutting down\""), std::string::npos);
  EXPECT_NE(log.find("\"message\":\"eventflow stopped\""), std::string::npos);
  // every log line is one JSON object with timestamp, level and message
  std::istringstream lines(log);
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_TRUE(j.contains("timestamp") && j.contains("level") && j.contains("message")) << line;
  }
  EXPECT_GT(n, 2);
  EXPECT_LT(n, 20) << "info logs must not be per event";
}

TEST(Host, RejectedEventIsDeadLetteredWithReasonAndPlugin) {
  HostProcess host("dead");
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::string id = uuid();
  auto r = host.post(nlohmann::json{{"event_id", id}, {"event_type", "purchase"}, {"user_id", "u1"},
                                    {"properties", {{"amount", -5}}}}.dump(),
                     "/events");
  ASSERT_EQ(r.status, 202) << r.body;
  host.waitIdle(std::chrono::seconds(20));
  auto journey = http(host.port(), "GET", "/events/" + id).json();
  EXPECT_EQ(journey["state"], "dead") << journey.dump();
  EXPECT_EQ(journey["dead_letter"]["plugin"], "json-schema") << journey.dump();
  EXPECT_EQ(journey["dead_letter"]["error_type"], "validation");
  EXPECT_EQ(journey["dead_letter"]["attempts"], 1);
  EXPECT_NE(journey["dead_letter"]["error_message"].get<std::string>().find("amount"), std::string::npos) << journey.dump();
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events"), 0);

  // A signup without user_id and a purchase in the future are dead too.
  const std::string signup = uuid(), future = uuid();
  ASSERT_EQ(host.post(nlohmann::json{{"event_id", signup}, {"event_type", "user_signup"}}.dump()).status, 202);
  ASSERT_EQ(host.post(nlohmann::json{{"event_id", future}, {"event_type", "purchase"}, {"timestamp", "2999-01-01T00:00:00Z"},
                                     {"properties", {{"amount", 3}}}}.dump()).status,
            202);
  host.waitIdle(std::chrono::seconds(20));
  EXPECT_EQ(http(host.port(), "GET", "/events/" + signup).json()["state"], "dead");
  auto fut = http(host.port(), "GET", "/events/" + future).json();
  EXPECT_EQ(fut["state"], "dead");
  EXPECT_EQ(fut["dead_letter"]["plugin"], "time-window") << fut.dump();
}

TEST(Host, HttpErrorsAreClearAndDuplicatesAreAbsorbed) {
  HostProcess host("http", EVENTFLOW_PIPELINES_DIR, "max_body_bytes: 4096");
  ASSERT_TRUE(host.start()) << host.readLog();
  auto error_code = [](const HttpReply& r) { return r.json()["error"]["code"]; };

  auto malformed = host.post("{\"event_type\": ");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(error_code(malformed), "malformed_json");

  auto media = http(host.port(), "POST", "/events", "{}", "text/plain");
  EXPECT_EQ(media.status, 415);

  auto big = host.post("{\"event_type\":\"custom\",\"pad\":\"" + std::string(5000, 'x') + "\"}");
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(error_code(big), "payload_too_large");

  auto no_type = host.post("{\"user_id\":\"u\"}");
  EXPECT_EQ(no_type.status, 422);
  EXPECT_EQ(no_type.json()["error"]["field"], "event_type");

  auto no_pipeline = host.post("{\"event_type\":\"refund\"}");
  EXPECT_EQ(no_pipeline.status, 422);
  EXPECT_EQ(error_code(no_pipeline), "no_pipeline");

  // U+0000, which PostgreSQL's jsonb cannot keep, is refused alone; a literal
  // backslash before "u0000" is ordinary text.
  auto nul = validEvent(3, uuid());
  nul["properties"]["note"] = std::string("a\0b", 3);
  auto with_nul = host.post(nul.dump());
  EXPECT_EQ(with_nul.status, 422);
  EXPECT_EQ(error_code(with_nul), "invalid_character");
  auto text = validEvent(3, uuid());
  text["properties"]["note"] = "\\u0000";
  EXPECT_EQ(host.post(text.dump()).status, 202);

  const std::string id = uuid();
  const std::string body = validEvent(2, id).dump();
  auto first = http(host.port(), "POST", "/events", body, "application/json", {{"X-Correlation-ID", "corr-42"}});
  EXPECT_EQ(first.status, 202);
  EXPECT_EQ(first.json()["status"], "accepted");
  EXPECT_EQ(first.json()["event_id"], id);
  EXPECT_EQ(first.json()["pipeline"], "activity");
  EXPECT_EQ(first.json()["received_at"].get<std::string>().size(), std::string("2026-01-01T00:00:00.000Z").size());
  EXPECT_EQ(first.headers["X-Correlation-ID"], "corr-42");
  auto again = host.post(body);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json()["status"], "duplicate");
  auto other = host.post(validEvent(6, id).dump());
  EXPECT_EQ(other.status, 409);
  EXPECT_EQ(error_code(other), "conflict");

  host.waitIdle(std::chrono::seconds(20));
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + id + "'"), 1);
  auto journey = http(host.port(), "GET", "/events/" + id).json();
  EXPECT_EQ(journey["state"], "done");
  EXPECT_EQ(journey["correlation_id"], "corr-42");
  EXPECT_EQ(http(host.port(), "GET", "/events/" + uuid()).status, 404);

  auto batch = host.post("[" + validEvent(1, uuid()).dump() + ",{\"event_type\":5}]", "/events/batch");
  EXPECT_EQ(batch.status, 202);
  EXPECT_EQ(batch.json()["results"][0]["status"], "accepted");
  EXPECT_EQ(batch.json()["results"][1]["status_code"], 422);
  EXPECT_EQ(batch.json()["results"][0]["status_code"], 202);
  EXPECT_EQ(batch.json()["accepted"], 1);
  EXPECT_EQ(batch.json()["rejected"], 1);
  auto lines = http(host.port(), "POST", "/events/batch", validEvent(1, uuid()).dump() + "\n{oops\n", "application/x-ndjson");
  EXPECT_EQ(lines.status, 202);
  EXPECT_EQ(lines.json()["results"][0]["status"], "accepted");
  EXPECT_EQ(lines.json()["results"][1]["status_code"], 400);
  EXPECT_EQ(lines.json()["results"][1]["error"]["code"], "malformed_json");

  auto health = http(host.port(), "GET", "/health").json();
  EXPECT_EQ(health["status"], "healthy");
  EXPECT_EQ(health["services"]["database"], "healthy");
  EXPECT_TRUE(health.contains("version") && health.contains("timestamp"));
  EXPECT_EQ(http(host.port(), "GET", "/health/live").status, 200);
  EXPECT_EQ(http(host.port(), "GET", "/nope").status, 404);
}

TEST(Host, ConfigErrorNamesFileLineColumnAndExitsNonZero) {
  HostProcess host("badconfig");
  { std::ofstream(host.config()) << "server:\n  listen: \"127.0.0.1:1\"\n  colour: blue\n"; }
  EXPECT_FALSE(host.start());
  const auto log = host.readLog();
  EXPECT_NE(log.find(host.config() + ":3:3: unknown key 'colour'"), std::string::npos) << log;
}

TEST(Host, QueueOverItsBoundAnswers503WithRetryAfter) {
  HostProcess host("bound");
  std::ofstream(host.config(), std::ios::app) << "queue: { max_depth: 5 }\n";
  ASSERT_TRUE(host.start()) << host.readLog();
  nlohmann::json batch = nlohmann::json::array();
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(uuid());
    batch.push_back(validEvent(i, ids.back()));
  }
  auto r = host.post(batch.dump(), "/events/batch");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.headers["Retry-After"], "1");
  const auto results = r.json()["results"];
  int accepted = 0, refused = 0;
  for (const auto& item : results) {
    if (item["status_code"] == 202) ++accepted;
    if (item["status_code"] == 503) {
      ++refused;
      EXPECT_EQ(item["error"]["code"], "overloaded");
    }
  }
  // Every pipeline admits at most max_depth events at once; nothing refused is recorded.
  EXPECT_LE(accepted, 3 * 5);
  EXPECT_GE(refused, 5);
  EXPECT_EQ(accepted + refused, 20);
  host.waitIdle(std::chrono::seconds(20));
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events"), accepted);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events"), accepted);
}

// The embedded queue's default bound is the memory its waiting events hold
// (queue.max_bytes), not their count: here 16 KiB a pipeline, and events of
// about 2.4 KB each.
TEST(Host, EmbeddedQueueOverItsByteBoundAnswers503AndLosesNothingAccepted) {
  HostProcess host("bytebound");
  std::ofstream(host.config(), std::ios::app) << "queue: { type: embedded, max_bytes: 16KiB }\n";
  ASSERT_TRUE(host.start()) << host.readLog();
  nlohmann::json batch = nlohmann::json::array();
  for (int i = 0; i < 60; ++i) {
    auto e = validEvent(3, uuid());  // custom: pipeline activity
    e["properties"]["pad"] = std::string(2000, 'x');
    batch.push_back(e);
  }
  auto r = host.post(batch.dump(), "/events/batch");
  ASSERT_EQ(r.status, 202) << r.body;
  const auto results = r.json()["results"];  // kept: the loop below would outlive a temporary
  int accepted = 0, refused = 0;
  for (const auto& item : results) {
    if (item["status_code"] == 202) ++accepted;
    if (item["status_code"] == 503) {
      ++refused;
      EXPECT_EQ(item["error"]["code"], "overloaded") << item.dump();
    }
  }
  // 16 KiB holds six or seven such events; one request is admitted against
  // what was waiting when it came, plus its own events.
  EXPECT_GE(accepted, 5);
  EXPECT_LE(accepted, 8) << "the byte bound did not hold";
  EXPECT_EQ(accepted + refused, 60);
  // Small events are not refused by count: 300 of them in one request.
  nlohmann::json small = nlohmann::json::array();
  for (int i = 0; i < 300; ++i) small.push_back(validEvent(1, uuid()));  // user_signup: pipeline signups
  auto s = host.post(small.dump(), "/events/batch");
  ASSERT_EQ(s.status, 202) << s.body;
  const auto small_results = s.json()["results"];
  int small_accepted = 0;
  for (const auto& item : small_results)
    if (item["status_code"] == 202) ++small_accepted;
  EXPECT_GE(small_accepted, 16 * 1024 / 600) << "small events fill the same bytes with more of them";
  host.waitIdle(std::chrono::seconds(30));
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events"), accepted + small_accepted);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events"), accepted + small_accepted);
}

namespace {

// A folder with one catch-all pipeline, kaeufe.yaml, whose name is `yaml_name`
// as written in YAML (quotes included).
fs::path namedPipelineDir(const std::string& tag, const std::string& yaml_name) {
  const auto dir = fs::temp_directory_path() / ("eventflow-it-" + tag + "-pipelines-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "kaeufe.yaml") << "pipeline: " << yaml_name << "\nmatch: \"*\"\nconcurrency: 1\n"
                                        "stages:\n  - sink: sqlite\n    config: { table: processed_events }\n";
  return dir;
}

}  // namespace

TEST(Host, IngestAnswersAreValidJsonWhateverAPipelineIsNamed) {
  // Quotes and non-ASCII text in a pipeline's name: every answer names it as
  // JSON must.
  const auto dir = namedPipelineDir("odd", "\"k\xc3\xa4ufe \\\"q\\\"\"");
  HostProcess host("oddname", dir.string());
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::string name = "k\xc3\xa4ufe \"q\"";

  const std::string id = uuid();
  const std::string body = nlohmann::json{{"event_id", id}, {"event_type", "x"}}.dump();
  auto single = host.post(body);
  ASSERT_EQ(single.status, 202) << single.body;
  ASSERT_FALSE(single.json().is_discarded()) << "not JSON: " << single.body;
  EXPECT_EQ(single.json()["pipeline"], name);
  EXPECT_EQ(single.json()["event_id"], id);

  auto batch = host.post("[" + nlohmann::json{{"event_type", "x"}}.dump() + "]", "/events/batch");
  ASSERT_EQ(batch.status, 202) << batch.body;
  ASSERT_FALSE(batch.json().is_discarded()) << "not JSON: " << batch.body;
  EXPECT_EQ(batch.json()["results"][0]["pipeline"], name);
  EXPECT_EQ(batch.json()["results"][0]["status_code"], 202);

  auto again = host.post(body);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json()["pipeline"], name);
  fs::remove_all(dir);
}

TEST(Host, APipelineNameThatIsNotUtf8IsAConfigError) {
  // A pipeline file saved in Latin-1: PostgreSQL would keep its name as
  // U+FFFD, which no longer matches the pipeline. The host refuses to start.
  const auto dir = namedPipelineDir("latin1", "\"k\xe4ufe\"");
  HostProcess host("latin1", dir.string());
  EXPECT_FALSE(host.start());
  const auto log = host.readLog();
  EXPECT_NE(log.find((dir / "kaeufe.yaml").string() + ":1:11: 'pipeline' must be UTF-8 text"), std::string::npos) << log;
  fs::remove_all(dir);
}

TEST(Host, OpenApiDescribesRoutesThisHostServesAndDocsShowsIt) {
  HostProcess host("openapi");
  ASSERT_TRUE(host.start()) << host.readLog();
  auto doc = http(host.port(), "GET", "/openapi.json");
  ASSERT_EQ(doc.status, 200);
  EXPECT_EQ(doc.headers["Content-Type"], "application/json");
  const auto spec = doc.json();
  ASSERT_TRUE(spec.is_object()) << doc.body;
  EXPECT_EQ(spec["openapi"], "3.0.3");
  EXPECT_EQ(spec["info"]["version"], http(host.port(), "GET", "/health").json()["version"]);
  for (const char* path : {"/events", "/events/batch", "/events/{id}", "/health", "/health/ready", "/metrics",
                           "/metrics/summary", "/pipelines", "/dlq", "/dlq/{id}", "/dlq/{id}/replay", "/dlq/replay"})
    EXPECT_TRUE(spec["paths"].contains(path)) << path;
  // Every path it names is one this host routes: a GET reaches it (a
  // POST-only route answers 405), never 404.
  int checked = 0;
  for (const auto& [path, ops] : spec["paths"].items()) {
    if (path.find('{') != std::string::npos) continue;
    const auto r = http(host.port(), "GET", path);
    EXPECT_NE(r.status, 404) << path << ": " << r.body;
    EXPECT_EQ(r.status, ops.contains("get") ? 200 : 405) << path << ": " << r.body;
    ++checked;
  }
  EXPECT_GE(checked, 10);
  auto page = http(host.port(), "GET", "/docs");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.headers["Content-Type"], "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("fetch(\"/openapi.json\")"), std::string::npos);
}

// The original EventFlow's scripts/producer.py and load_test.py: no event_id,
// a naive `datetime.utcnow().isoformat()` timestamp, user_id "user_N", and
// properties as they build them; one keep-alive connection. Every post is
// accepted and every event ends processed, its timestamp kept as that instant.
TEST(Host, TheOriginalProducersPostsAreAcceptedAndProcessed) {
  HostProcess host("original-producer");
  ASSERT_TRUE(host.start()) << host.readLog();
  Poco::Net::HTTPClientSession session("127.0.0.1", host.port());
  session.setKeepAlive(true);
  session.setTimeout(Poco::Timespan(30, 0));
  static const char* kTypes[] = {"purchase", "user_signup", "page_view", "custom"};
  std::vector<std::pair<std::string, std::string>> accepted;  // event_id, the instant as stored
  for (int i = 0; i < 40; ++i) {
    // utcnow() a few seconds ago, with microseconds (isoformat drops the
    // fraction when it is zero: i % 10 == 0 sends none).
    const auto t = std::chrono::system_clock::now() - std::chrono::seconds(5) + std::chrono::microseconds(i * 1001);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char ts[64];
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    std::string timestamp = ts;
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(us % 1'000'000));
    if (i % 10 != 0) timestamp += frac;
    const std::string type = kTypes[i % 4];
    nlohmann::json properties;
    if (type == "purchase") properties = {{"amount", 10.0 + i * 37.5}, {"currency", "USD"}, {"product_id", "prod_" + std::to_string(i)}};
    else if (type == "user_signup") properties = {{"email", "user" + std::to_string(i) + "@example.com"}, {"source", "organic"}};
    else if (type == "page_view") properties = {{"page", "/products/" + std::to_string(i)}, {"referrer", "google"}};
    else properties = {{"action", "button_click"}, {"value", i}};
    const std::string body = nlohmann::json{{"event_type", type}, {"user_id", "user_" + std::to_string(100 + i)},
                                            {"timestamp", timestamp}, {"properties", properties}}
                                 .dump();
    Poco::Net::HTTPRequest req("POST", "/events", Poco::Net::HTTPMessage::HTTP_1_1);
    req.setContentType("application/json");
    req.setContentLength(static_cast<std::streamsize>(body.size()));
    req.setKeepAlive(true);
    session.sendRequest(req) << body;
    Poco::Net::HTTPResponse res;
    std::stringstream answer;
    answer << session.receiveResponse(res).rdbuf();
    ASSERT_EQ(res.getStatus(), 202) << timestamp << ": " << answer.str();
    const auto reply = nlohmann::json::parse(answer.str());
    char millis[8];
    std::snprintf(millis, sizeof millis, ".%03lldZ", i % 10 != 0 ? static_cast<long long>(us % 1'000'000 / 1000) : 0LL);
    accepted.emplace_back(reply["event_id"].get<std::string>(), std::string(ts) + millis);
  }
  const auto summary = host.waitIdle(std::chrono::seconds(60));
  EXPECT_EQ(summary["events_processed"], 40) << summary.dump();
  for (const auto& [id, instant] : accepted) {
    EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'done' AND event_id = '" + id + "'"), 1) << id;
    EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + id + "' AND timestamp = '" +
                         instant + "'"),
              1)
        << id << " should be stored at " << instant;
  }
}

TEST(Host, NaiveTimestampsAreRefusedWhenConfiguredToReject) {
  HostProcess host("naive-reject");
  { std::ofstream(host.config(), std::ios::app) << "ingest: { naive_timestamps: reject }\n"; }
  ASSERT_TRUE(host.start()) << host.readLog();
  auto r = host.post(R"({"event_type":"custom","timestamp":"2026-12-04T23:55:14.898123"})");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.json()["error"]["field"], "timestamp");
  EXPECT_EQ(host.post(R"({"event_type":"custom","timestamp":"2026-12-04T23:55:14.898123Z"})").status, 202);
}

// Every per-pipeline series exists at 0 from the start, so increase() and
// rate() see a pipeline's first burst (issue 10).
TEST(Host, PerPipelineMetricsExistAtZeroFromTheStart) {
  HostProcess host("metrics-at-zero");
  ASSERT_TRUE(host.start()) << host.readLog();
  const auto body = http(host.port(), "GET", "/metrics").body;
  for (const std::string series : {
           R"(eventflow_events_received_total{event_type="purchase",pipeline="purchases"} 0)",
           R"(eventflow_events_processed_total{event_type="user_signup",pipeline="signups"} 0)",
           R"(eventflow_events_processed_total{event_type="page_view",pipeline="activity"} 0)",
           R"(eventflow_events_failed_total{error_type="validation",pipeline="purchases"} 0)",
           R"(eventflow_events_failed_total{error_type="transient",pipeline="activity"} 0)",
           R"(eventflow_events_retried_total{pipeline="signups"} 0)",
           R"(eventflow_events_dead_lettered_total{pipeline="purchases"} 0)",
           R"(eventflow_events_duplicate_total{pipeline="activity"} 0)",
           R"(eventflow_event_processing_duration_seconds_count{pipeline="signups"} 0)",
           R"(eventflow_stage_duration_seconds_count{pipeline="purchases",plugin="classify",stage="enricher classify"} 0)",
           R"(eventflow_queue_depth{pipeline="activity"} 0)"})
    EXPECT_NE(body.find(series), std::string::npos) << series;
}

// avg_processing_time_ms, overall and per pipeline: first delivery to
// terminal over the events finished in the last 5 minutes.
TEST(Host, SummaryReportsTheAverageProcessingTime) {
  HostProcess host("avg-processing");
  ASSERT_TRUE(host.start()) << host.readLog();
  auto before = http(host.port(), "GET", "/metrics/summary").json();
  EXPECT_EQ(before["avg_processing_time_ms"], 0) << before.dump();
  ASSERT_EQ(postMany(host, 40, 4).size(), 40u);
  const auto summary = host.waitIdle(std::chrono::seconds(60));
  ASSERT_EQ(summary["events_in_flight"], 0) << summary.dump();
  ASSERT_TRUE(summary["avg_processing_time_ms"].is_number()) << summary.dump();
  EXPECT_GT(summary["avg_processing_time_ms"].get<double>(), 0.0) << summary.dump();
  EXPECT_LT(summary["avg_processing_time_ms"].get<double>(), 60'000.0) << summary.dump();
  for (const char* p : {"purchases", "signups", "activity"}) {
    ASSERT_TRUE(summary["pipelines"][p]["avg_processing_time_ms"].is_number()) << p << summary.dump();
    EXPECT_GT(summary["pipelines"][p]["avg_processing_time_ms"].get<double>(), 0.0) << p << summary.dump();
  }
}

// limits.max_rss: over it the host leaves the rotation (/health/ready 503,
// naming the limit) and stays alive; /metrics carries the process_* metrics.
TEST(Host, ReadinessFailsOverMaxRssAndProcessMetricsAreExposed) {
  HostProcess host("max-rss");
  { std::ofstream(host.config(), std::ios::app) << "limits: { max_rss: 1MiB }\n"; }
  // /health/ready is what start() waits on, so wait on /health/live here.
  ASSERT_FALSE(host.start()) << "a host over max_rss never reports ready";
  ASSERT_TRUE(host.running()) << host.readLog();
  const auto ready = http(host.port(), "GET", "/health/ready");
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("limits.max_rss"), std::string::npos) << ready.body;
  EXPECT_EQ(http(host.port(), "GET", "/health/live").status, 200);
  EXPECT_EQ(host.post(validEvent(0, uuid()).dump()).status, 202) << "readiness is advice to a balancer, not a refusal";
  const auto metrics = http(host.port(), "GET", "/metrics").body;
  for (const char* name : {"process_resident_memory_bytes ", "process_open_fds ", "process_max_fds ",
                           "process_cpu_seconds_total ", "process_start_time_seconds "})
    EXPECT_NE(metrics.find(std::string("\n") + name), std::string::npos) << name;
}

// metrics.max_label_values: a catch-all pipeline and ever new event types
// grow no series past the bound; the rest count under "__other__".
TEST(Host, EventTypesPastMaxLabelValuesCountAsOther) {
  const auto dir = fs::temp_directory_path() / ("eventflow-label-cap-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "all.yaml") << "pipeline: all\nmatch: { event_types: \"*\" }\nstages:\n  - sink: sqlite\n";
  HostProcess host("label-cap", dir.string());
  { std::ofstream(host.config(), std::ios::app) << "metrics: { max_label_values: 5 }\n"; }
  ASSERT_TRUE(host.start()) << host.readLog();
  for (int i = 0; i < 30; ++i)
    ASSERT_EQ(host.post(nlohmann::json{{"event_type", "type_" + std::to_string(i)}}.dump()).status, 202);
  host.waitIdle(std::chrono::seconds(30));
  const auto metrics = http(host.port(), "GET", "/metrics").body;
  std::set<std::string> types;
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("eventflow_events_received_total{", 0) != 0) continue;
    const auto at = line.find("event_type=\"") + 12;
    types.insert(line.substr(at, line.find('"', at) - at));
  }
  EXPECT_LE(types.size(), 6u) << metrics;
  EXPECT_TRUE(types.contains("__other__")) << metrics;
  fs::remove_all(dir);
}
