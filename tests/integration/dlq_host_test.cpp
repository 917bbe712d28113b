// The DLQ end to end: a real host (embedded queue and SQLite; Redis and
// PostgreSQL for the CLI's direct replay), its HTTP routes under API keys,
// and `eventflow dlq` against the host's config.

#include <gtest/gtest.h>

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>
#include <Poco/UUIDGenerator.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "backends.hpp"
#include "command.hpp"
#include "host_process.hpp"

using namespace eventflow::testing;

namespace {

const std::string kAdminKey = "admin-key-" + uuid();
const std::string kIngestKey = "ingest-key-" + uuid();

std::string apiKeys() {
  return "api_keys: [{ name: ops, sha256: \"" + sha256(kAdminKey) + "\", scopes: [ingest, admin] }, "
         "{ name: producer, sha256: \"" + sha256(kIngestKey) + "\", scopes: [ingest] }]";
}

std::map<std::string, std::string> as(const std::string& key) { return {{"X-API-Key", key}}; }

HttpReply get(const HostProcess& host, const std::string& path, const std::string& key = kAdminKey) {
  return http(host.port(), "GET", path, {}, {}, as(key));
}
HttpReply post(const HostProcess& host, const std::string& path, const nlohmann::json& body,
               const std::string& key = kAdminKey) {
  return http(host.port(), "POST", path, body.dump(), "application/json", as(key));
}

// A purchase the shipped pipeline rejects at once (json-schema: amount must be > 0).
std::string postBadPurchase(const HostProcess& host, int n) {
  const std::string id = uuid();
  auto r = post(host, "/events",
                {{"event_id", id}, {"event_type", "purchase"}, {"user_id", "u" + std::to_string(n)},
                 {"timestamp", "2026-01-01T00:00:00Z"}, {"properties", {{"amount", -n}, {"currency", "USD"}}}},
                kIngestKey);
  EXPECT_EQ(r.status, 202) << r.body;
  return id;
}

bool eventually(const std::function<bool()>& done, std::chrono::seconds within = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// The value of one series in a Prometheus exposition ("name{labels}"), or -1 when absent.
double metricValue(const std::string& exposition, const std::string& series) {
  const auto at = exposition.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(exposition.substr(at + series.size() + 2));
}

std::vector<std::string> listedIds(const nlohmann::json& page) {
  std::vector<std::string> out;
  for (const auto& item : page["items"]) out.push_back(item["event_id"]);
  return out;
}

}  // namespace

TEST(DlqHost, ListFilterReplayDiscardOverHttpWithAdminScope) {
  HostProcess host("dlq-http", EVENTFLOW_PIPELINES_DIR, apiKeys());
  ASSERT_TRUE(host.start()) << host.readLog();
  std::vector<std::string> purchases;
  for (int n = 1; n <= 5; ++n) purchases.push_back(postBadPurchase(host, n));
  std::vector<std::string> signups;
  for (int n = 0; n < 2; ++n) {
    signups.push_back(uuid());
    ASSERT_EQ(post(host, "/events", {{"event_id", signups.back()}, {"event_type", "user_signup"}}, kIngestKey).status, 202);
  }
  const std::string good = uuid();
  ASSERT_EQ(post(host, "/events", validEvent(0, good), kIngestKey).status, 202);
  ASSERT_EQ(host.waitIdle(std::chrono::seconds(20), as(kAdminKey))["events_in_flight"], 0);

  // Admin scope: no key, an ingest-only key, the admin key.
  EXPECT_EQ(http(host.port(), "GET", "/dlq").status, 401);
  auto forbidden = get(host, "/dlq", kIngestKey);
  EXPECT_EQ(forbidden.status, 403) << forbidden.body;
  EXPECT_EQ(forbidden.json()["error"]["code"], "forbidden");
  EXPECT_EQ(post(host, "/dlq/replay", {{"dry_run", true}}, kIngestKey).status, 403);
  EXPECT_EQ(http(host.port(), "DELETE", "/dlq/" + purchases[0], {}, {}, as(kIngestKey)).status, 403);

  auto all = get(host, "/dlq");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(all.json()["total"], 7);
  auto only = get(host, "/dlq?pipeline=purchases");
  ASSERT_EQ(only.status, 200);
  EXPECT_EQ(only.json()["total"], 5);
  EXPECT_EQ(std::set<std::string>(purchases.begin(), purchases.end()),
            [&] { auto v = listedIds(only.json()); return std::set<std::string>(v.begin(), v.end()); }());
  const auto item = only.json()["items"][0];
  EXPECT_EQ(item["event_type"], "purchase");
  EXPECT_EQ(item["error_type"], "validation");
  EXPECT_EQ(item["plugin"], "json-schema");
  EXPECT_EQ(item["attempts"], 1);
  EXPECT_EQ(item["replay_count"], 0);
  EXPECT_LT(item["event"]["properties"]["amount"].get<int>(), 0) << item.dump();
  EXPECT_FALSE(item["failed_at"].get<std::string>().empty());

  // A page: limit and offset over the same order, the total of every match.
  auto page = get(host, "/dlq?pipeline=purchases&error_type=validation&limit=2&offset=1");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.json()["total"], 5);
  const auto full = listedIds(only.json());
  EXPECT_EQ(listedIds(page.json()), (std::vector<std::string>{full[1], full[2]}));
  EXPECT_EQ(get(host, "/dlq?error_type=transient").json()["total"], 0);
  EXPECT_EQ(get(host, "/dlq?since=2999-01-01T00:00:00Z").json()["total"], 0);
  EXPECT_EQ(get(host, "/dlq?until=2999-01-01T00:00:00Z").json()["total"], 7);
  for (const auto& [query, field] : std::vector<std::pair<std::string, std::string>>{
           {"limit=0", "limit"}, {"limit=1001", "limit"}, {"offset=-1", "offset"}, {"since=yesterday", "since"},
           {"until=2026-13-01T00:00:00Z", "until"}, {"colour=blue", "colour"}}) {
    auto bad = get(host, "/dlq?" + query);
    EXPECT_EQ(bad.status, 400) << query << ": " << bad.body;
    EXPECT_EQ(bad.json()["error"]["field"], field) << query;
  }

  // One dead event; a processed one and an unknown one are not in the DLQ.
  auto one = get(host, "/dlq/" + purchases[0]);
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.json()["event_id"], purchases[0]);
  EXPECT_EQ(get(host, "/dlq/" + good).status, 404);
  EXPECT_EQ(get(host, "/dlq/" + uuid()).status, 404);

  // Dry run: counts, sends nothing.
  auto dry = post(host, "/dlq/replay", {{"pipeline", "purchases"}, {"dry_run", true}});
  ASSERT_EQ(dry.status, 200) << dry.body;
  EXPECT_EQ(dry.json(), (nlohmann::json{{"count", 5}}));
  EXPECT_EQ(post(host, "/dlq/replay", {{"dry_run", true}, {"limit", 2}}).json()["count"], 2);
  EXPECT_EQ(post(host, "/dlq/replay", {{"error_type", "poison"}, {"dry_run", true}}).json()["count"], 0);
  EXPECT_EQ(post(host, "/dlq/replay", {{"dry_run", "yes"}}).json()["error"]["field"], "dry_run");
  EXPECT_EQ(post(host, "/dlq/replay", {{"pipelines", "x"}}).status, 400);
  EXPECT_EQ(get(host, "/dlq").json()["total"], 7);

  // Replay one: it runs again, fails again (the body is still invalid) and is
  // back in the DLQ with attempts reset and replay_count counting.
  const std::string again = purchases[1];
  for (int round = 1; round <= 2; ++round) {
    auto r = post(host, "/dlq/" + again + "/replay", nlohmann::json::object());
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.json(), (nlohmann::json{{"event_id", again}, {"status", "replayed"}}));
    ASSERT_TRUE(eventually([&] {
      auto j = get(host, "/events/" + again).json();
      return j["state"] == "dead" && j["dead_letter"]["replay_count"] == round;
    })) << get(host, "/events/" + again).body;
  }
  auto back = get(host, "/dlq/" + again).json();
  EXPECT_EQ(back["replay_count"], 2);
  EXPECT_EQ(back["attempts"], 1) << "attempts start again at each replay";
  EXPECT_EQ(back["error_type"], "validation");
  auto journey = get(host, "/events/" + again).json();
  EXPECT_EQ(journey["attempts"], 1);
  const auto& history = journey["history"];
  ASSERT_EQ(history.size(), 4u) << journey.dump();
  EXPECT_EQ(history[0]["event"], "received");
  EXPECT_EQ(history[1]["event"], "dead_lettered");
  EXPECT_EQ(history[1]["at"], back["first_failed_at"]);
  EXPECT_EQ(history[2], (nlohmann::json{{"event", "replayed"}, {"times", 2}}));
  EXPECT_EQ(history[3]["event"], "dead_lettered");
  EXPECT_EQ(history[3]["plugin"], "json-schema");
  EXPECT_NE(back["failed_at"], back["first_failed_at"]);
  // Not dead, unknown: 409 and 404.
  auto not_dead = post(host, "/dlq/" + good + "/replay", nlohmann::json::object());
  EXPECT_EQ(not_dead.status, 409) << not_dead.body;
  EXPECT_EQ(not_dead.json()["error"]["code"], "not_dead");
  EXPECT_EQ(post(host, "/dlq/" + uuid() + "/replay", nlohmann::json::object()).status, 404);

  // Discard: leaves the listing, stays in raw_events as discarded.
  const std::string gone = purchases[2];
  auto d = http(host.port(), "DELETE", "/dlq/" + gone, {}, {}, as(kAdminKey));
  ASSERT_EQ(d.status, 200) << d.body;
  EXPECT_EQ(d.json(), (nlohmann::json{{"event_id", gone}, {"status", "discarded"}}));
  auto after = get(host, "/dlq?pipeline=purchases").json();
  EXPECT_EQ(after["total"], 4);
  const auto left = listedIds(after);
  EXPECT_EQ(std::find(left.begin(), left.end(), gone), left.end());
  EXPECT_EQ(get(host, "/events/" + gone).json()["state"], "discarded");
  EXPECT_EQ(http(host.port(), "DELETE", "/dlq/" + gone, {}, {}, as(kAdminKey)).status, 409);
  EXPECT_EQ(http(host.port(), "DELETE", "/dlq/" + uuid(), {}, {}, as(kAdminKey)).status, 404);
  EXPECT_EQ(http(host.port(), "PUT", "/dlq/" + gone, {}, {}, as(kAdminKey)).status, 405);

  // Bulk replay by filter: both signups run again and are dead again, once each.
  auto bulk = post(host, "/dlq/replay", {{"pipeline", "signups"}});
  ASSERT_EQ(bulk.status, 202) << bulk.body;
  EXPECT_EQ(bulk.json()["replayed"], 2);
  ASSERT_TRUE(eventually([&] {
    auto j = get(host, "/dlq?pipeline=signups").json();
    return j["total"] == 2 && j["items"][0]["replay_count"] == 1 && j["items"][1]["replay_count"] == 1;
  })) << get(host, "/dlq?pipeline=signups").body;

  // The books: 8 received = 1 processed + 6 dead + 1 discarded.
  auto summary = host.waitIdle(std::chrono::seconds(20), as(kAdminKey));
  EXPECT_EQ(summary["events_received"], 8) << summary.dump();
  EXPECT_EQ(summary["events_processed"], 1);
  EXPECT_EQ(summary["events_failed"], 6);
  EXPECT_EQ(summary["events_discarded"], 1);
  EXPECT_EQ(summary["pipelines"]["purchases"]["events_discarded"], 1);
  EXPECT_NE(http(host.port(), "GET", "/metrics", {}, {}, as(kAdminKey)).body.find("route=\"/dlq/{id}/replay\""),
            std::string::npos);
  // Replays and discards are counted by the pipeline the event died in:
  // purchases[1] twice, both signups once in bulk, purchases[2] discarded.
  const auto exposition = http(host.port(), "GET", "/metrics", {}, {}, as(kAdminKey)).body;
  EXPECT_EQ(metricValue(exposition, "eventflow_dlq_replayed_total{pipeline=\"purchases\"}"), 2) << exposition;
  EXPECT_EQ(metricValue(exposition, "eventflow_dlq_replayed_total{pipeline=\"signups\"}"), 2);
  EXPECT_EQ(metricValue(exposition, "eventflow_dlq_discarded_total{pipeline=\"purchases\"}"), 1);
  EXPECT_EQ(metricValue(exposition, "eventflow_dlq_discarded_total{pipeline=\"signups\"}"), 0)
      << "declared at 0 with the pipeline";
  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0);
}

TEST(DlqHost, CliListsShowsReplaysThroughTheHostAndPurges) {
  HostProcess host("dlq-cli", EVENTFLOW_PIPELINES_DIR, apiKeys());
  ASSERT_TRUE(host.start()) << host.readLog();
  std::vector<std::string> ids;
  for (int n = 1; n <= 4; ++n) ids.push_back(postBadPurchase(host, n));
  ASSERT_EQ(host.waitIdle(std::chrono::seconds(20), as(kAdminKey))["events_in_flight"], 0);
  auto eventflow = [&](std::vector<std::string> args) {
    args.insert(args.begin(), EVENTFLOW_BINARY);
    args.push_back("--config");
    args.push_back(host.config());
    return runCommand(args);
  };

  auto list = eventflow({"dlq", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.describe();
  auto listed = nlohmann::json::parse(list.out, nullptr, false);
  ASSERT_TRUE(listed.is_object()) << list.describe();
  EXPECT_EQ(listed["total"], 4);
  auto got = listedIds(listed);
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_EQ(listed["items"][0]["error_type"], "validation");
  auto paged = nlohmann::json::parse(eventflow({"dlq", "list", "--json", "--limit", "1", "--offset", "3"}).out);
  EXPECT_EQ(listedIds(paged), std::vector<std::string>{got[3]});
  EXPECT_EQ(nlohmann::json::parse(eventflow({"dlq", "list", "--json", "--pipeline", "signups"}).out)["total"], 0);
  auto text = eventflow({"dlq", "list", "--error-type", "validation"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find(ids[0] + "\tpurchases\tpurchase\tvalidation\t"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("of 4 dead events"), std::string::npos) << text.out;

  auto show = eventflow({"dlq", "show", ids[0], "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.describe();
  EXPECT_EQ(nlohmann::json::parse(show.out)["event"]["event_id"], ids[0]);
  auto missing = eventflow({"dlq", "show", uuid()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no event"), std::string::npos) << missing.describe();

  auto dry = eventflow({"dlq", "purge", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.describe();
  EXPECT_EQ(dry.out, "would discard 4 events\n");
  auto dry_replay = eventflow({"dlq", "replay", "--all", "--dry-run", "--limit", "3"});
  EXPECT_EQ(dry_replay.out, "would replay 3 events\n") << dry_replay.describe();
  // FILTERS alone choose what a replay sends, as they do for purge.
  auto dry_filtered = eventflow({"dlq", "replay", "--pipeline", "purchases", "--dry-run"});
  EXPECT_EQ(dry_filtered.exit_code, 0) << dry_filtered.describe();
  EXPECT_EQ(dry_filtered.out, "would replay 4 events (pipeline=purchases)\n") << dry_filtered.describe();
  EXPECT_EQ(eventflow({"dlq", "replay", "--pipeline", "signups", "--dry-run"}).out,
            "would replay 0 events (pipeline=signups)\n");

  // Embedded queue: the replay goes through the running host's API, which wants the admin key.
  auto no_key = eventflow({"dlq", "replay", ids[0]});
  EXPECT_EQ(no_key.exit_code, 1) << no_key.describe();
  EXPECT_NE(no_key.err.find("--api-key"), std::string::npos) << no_key.describe();
  auto replayed = eventflow({"dlq", "replay", ids[0], "--api-key", kAdminKey});
  ASSERT_EQ(replayed.exit_code, 0) << replayed.describe();
  EXPECT_EQ(replayed.out, "replayed " + ids[0] + "\n");
  ASSERT_TRUE(eventually([&] {
    auto j = get(host, "/events/" + ids[0]).json();
    return j["state"] == "dead" && j["dead_letter"]["replay_count"] == 1;
  }));
  ::setenv("EVENTFLOW_API_KEY", kAdminKey.c_str(), 1);
  auto all = eventflow({"dlq", "replay", "--pipeline", "purchases"});
  ::unsetenv("EVENTFLOW_API_KEY");
  ASSERT_EQ(all.exit_code, 0) << all.describe();
  EXPECT_EQ(all.out, "replayed 4 events\n");
  ASSERT_TRUE(eventually([&] {
    auto j = get(host, "/dlq").json();
    if (j["total"] != 4) return false;
    for (const auto& item : j["items"])
      if (item["replay_count"] < 1) return false;
    return true;
  })) << get(host, "/dlq").body;

  // Purge needs a filter or --all; then the DLQ is empty and the events are discarded.
  auto refused = eventflow({"dlq", "purge"});
  EXPECT_EQ(refused.exit_code, 2) << refused.describe();
  auto purged = eventflow({"dlq", "purge", "--error-type", "validation"});
  ASSERT_EQ(purged.exit_code, 0) << purged.describe();
  EXPECT_EQ(purged.out, "discarded 4 events (error_type=validation)\n");
  EXPECT_EQ(get(host, "/dlq").json()["total"], 0);
  EXPECT_EQ(get(host, "/events/" + ids[3]).json()["state"], "discarded");
  EXPECT_EQ(host.waitIdle(std::chrono::seconds(10), as(kAdminKey))["events_discarded"], 4);

  // Usage errors are 2; a stopped host is a failure that says what to do.
  EXPECT_EQ(eventflow({"dlq", "replay"}).exit_code, 2);
  EXPECT_EQ(eventflow({"dlq", "replay", "--dry-run"}).exit_code, 2) << "no id, no filters, no --all";
  EXPECT_EQ(eventflow({"dlq", "replay", ids[0], "--pipeline", "purchases"}).exit_code, 2);
  EXPECT_EQ(eventflow({"dlq", "replay", ids[0], "--all"}).exit_code, 2);
  EXPECT_EQ(eventflow({"dlq", "list", "--limit", "0"}).exit_code, 2);
  EXPECT_EQ(eventflow({"dlq", "list", "--since", "monday"}).exit_code, 2);
  EXPECT_EQ(eventflow({"dlq", "show", ids[0], "--all"}).exit_code, 2);
  EXPECT_EQ(eventflow({"dlq", "frobnicate"}).exit_code, 2);
  auto help = eventflow({"dlq", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("eventflow dlq replay (--all | FILTERS)"), std::string::npos);
  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0);
  auto down = eventflow({"dlq", "replay", ids[0], "--api-key", kAdminKey});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.err.find("cannot reach the running host"), std::string::npos) << down.describe();
}

// With queue.type redis the CLI publishes to the streams itself: the host may
// even be down, and picks the events up from Redis when it starts.
TEST(DlqHost, CliReplayWithRedisPublishesToTheStreamsDirectly) {
  const std::string pg = freshDatabase("dlqcli");
  const std::string redis = redisUrl();
  ASSERT_FALSE(pg.empty() || redis.empty());
  HostProcess host("dlq-redis");
  const std::string prefix = "eftest:" + uuid() + ":";
  // The shipped pipelines write with the sqlite sink; this store is PostgreSQL.
  std::filesystem::create_directories(host.dir() / "pipelines");
  std::ofstream(host.dir() / "pipelines" / "purchases.yaml")
      << "pipeline: purchases\nmatch: { event_types: [purchase] }\nstages:\n"
      << "  - validator: json-schema\n    config: { schema: " << EVENTFLOW_PIPELINES_DIR << "/schemas/purchase.schema.json }\n"
      << "  - sink: postgres\n";
  std::ofstream(host.config()) << "server: { listen: \"127.0.0.1:" << host.port() << "\" }\n"
                               << "store: { url: \"" << pg << "\" }\n"
                               << "queue: { type: redis, url: \"" << redis << "\", stream_prefix: \"" << prefix << "\" }\n"
                               << "plugins: { paths: [" << EVENTFLOW_PLUGIN_DIR << "] }\n"
                               << "pipelines: { paths: [" << (host.dir() / "pipelines").string() << "] }\n"
                               << "dlq: { replay_rate: 100 }\n"
                               << "shutdown_timeout: 10s\n";
  ASSERT_TRUE(host.start()) << host.readLog();
  std::vector<std::string> ids;
  for (int n = 1; n <= 3; ++n) ids.push_back(postBadPurchase(host, n));
  ASSERT_TRUE(eventually([&] { return get(host, "/dlq").json()["total"] == 3; })) << host.readLog();
  ASSERT_EQ(host.terminate(std::chrono::seconds(15)), 0);

  auto eventflow = [&](std::vector<std::string> args) {
    args.insert(args.begin(), EVENTFLOW_BINARY);
    args.push_back("--config");
    args.push_back(host.config());
    return runCommand(args);
  };
  auto replayed = eventflow({"dlq", "replay", "--all", "--pipeline", "purchases"});
  ASSERT_EQ(replayed.exit_code, 0) << replayed.describe();
  EXPECT_EQ(replayed.out, "replayed 3 events (pipeline=purchases)\n");
  EXPECT_EQ(nlohmann::json::parse(eventflow({"dlq", "list", "--json"}).out)["total"], 0) << "queued again, not dead";
  const auto xlen = runCommand({"/bin/sh", "-c", "redis-cli -u " + redis + " XLEN '" + prefix + "purchases'"});
  EXPECT_EQ(xlen.out, "3\n") << xlen.describe();

  // The host takes them from the stream when it starts; they fail again (same body).
  ASSERT_TRUE(host.start()) << host.readLog();
  ASSERT_TRUE(eventually([&] {
    auto j = get(host, "/dlq").json();
    if (j["total"] != 3) return false;
    for (const auto& item : j["items"])
      if (item["replay_count"] != 1 || item["attempts"] != 1) return false;
    return true;
  })) << get(host, "/dlq").body;
  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0);
}

TEST(DlqHost, OpenApiDocumentsEveryAnswerItsRoutesGiveUnderApiKeys) {
  HostProcess host("dlq-openapi", EVENTFLOW_PIPELINES_DIR, apiKeys());
  ASSERT_TRUE(host.start()) << host.readLog();
  const auto doc = http(host.port(), "GET", "/openapi.json");
  ASSERT_EQ(doc.status, 200) << doc.body;
  const auto spec = doc.json();
  ASSERT_TRUE(spec.is_object()) << doc.body;

  // A dead event as GET /dlq/{id} answers it: the fields DeadEvent names.
  const std::string dead = postBadPurchase(host, 1);
  ASSERT_TRUE(eventually([&] { return get(host, "/dlq/" + dead).status == 200; })) << host.readLog();
  std::set<std::string> answered, documented;
  const auto shown = get(host, "/dlq/" + dead).json();
  const auto& schema = spec["components"]["schemas"]["DeadEvent"]["properties"];
  for (auto it = shown.begin(); it != shown.end(); ++it) answered.insert(it.key());
  for (auto it = schema.begin(); it != schema.end(); ++it) documented.insert(it.key());
  EXPECT_EQ(answered, documented);

  // Every operation, without a key, with an ingest-only key and with an
  // admin key: each answer's status is one the document lists for it.
  int checked = 0;
  for (const auto& [path, ops] : spec["paths"].items()) {
    std::string target = path;
    if (auto at = target.find("{id}"); at != std::string::npos) target.replace(at, 4, uuid());
    for (const auto& [method, op] : ops.items()) {
      const std::string verb = method == "get" ? "GET" : method == "post" ? "POST" : "DELETE";
      for (const std::string& key : {std::string(), kIngestKey, kAdminKey}) {
        std::map<std::string, std::string> headers;
        if (!key.empty()) headers = as(key);
        const auto r = http(host.port(), verb, target, verb == "POST" ? "{}" : "", "application/json", headers);
        EXPECT_TRUE(op["responses"].contains(std::to_string(r.status)))
            << verb << " " << path << (key.empty() ? " without a key" : key == kIngestKey ? " as producer" : " as ops")
            << " answered " << r.status << ", which the document does not list: " << r.body;
        ++checked;
      }
      // A body the route cannot do without is a required one.
      if (verb == "POST" && op.contains("requestBody")) {
        const auto bare = http(host.port(), "POST", target, "", "", as(kAdminKey));
        if (bare.status == 400 || bare.status == 415) {
          EXPECT_TRUE(op["requestBody"].value("required", false)) << path << " refuses a request without a body";
        }
      }
    }
  }
  EXPECT_GE(checked, 45);
}
