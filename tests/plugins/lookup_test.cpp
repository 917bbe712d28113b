#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "plugin_test.hpp"
#include "lookup.hpp"
#include "schema_check.hpp"
#include "temp_dir.hpp"

namespace eventflow::plugins {
namespace {

using test::FakeContext;
using test::makeEvent;
namespace fs = std::filesystem;

constexpr const char* kUsers =
    "user_id,plan,region,note\n"
    "u1,pro,eu-west,\"said \"\"hi\"\", then left\"\n"
    "u2,free,us-east,\"two\nlines\"\n"
    "42,team,ap-south,\n";

class LookupTest : public ::testing::Test {
 protected:
  nlohmann::json config(nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json c = {{"file", "users.csv"}, {"key", "user_id"}, {"fields", {"plan", "region"}}};
    c.update(extra);
    return c;
  }
  nlohmann::json enrich(LookupEnricher& enricher, nlohmann::json body, Result* result = nullptr) {
    Event event = makeEvent(std::move(body));
    const Result r = enricher.enrich(event);
    if (result) *result = r;
    else EXPECT_TRUE(r.isOk()) << r.reason();
    return event.body;
  }
  std::string refused(const nlohmann::json& c) { return test::refusal<LookupEnricher>(c, context_); }
  // Polls `enricher` with `body` until `check` holds; the table is looked at
  // again once a second, so this waits a second or two, never on a sleep alone.
  template <class Check>
  bool eventually(LookupEnricher& enricher, const nlohmann::json& body, Check check) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      Event event = makeEvent(body);
      enricher.enrich(event);
      if (check(event.body)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // Writes a new version beside the file and renames it into place, as the
  // docs tell users to.
  void replace(const std::string& name, const std::string& text) {
    dir_.write(name + ".tmp", text);
    fs::rename(dir_ / (name + ".tmp"), dir_ / name);
  }

  test::TempDir dir_;
  FakeContext context_{dir_.path()};
};

TEST_F(LookupTest, AddsTheFieldsOfTheMatchingCsvRow) {
  dir_.write("users.csv", kUsers);
  LookupEnricher enricher(config(), context_);
  const auto body = enrich(enricher, {{"event_type", "t"}, {"user_id", "u1"}});
  EXPECT_EQ(body["plan"], "pro");
  EXPECT_EQ(body["region"], "eu-west");
  EXPECT_FALSE(body.contains("note")) << "only the configured fields";
  EXPECT_EQ(enrich(enricher, {{"event_type", "t"}, {"user_id", 42}})["plan"], "team") << "an integer key as its text";

  LookupEnricher quoted(config({{"fields", {"note"}}, {"into", "profile"}}), context_);
  EXPECT_EQ(enrich(quoted, {{"event_type", "t"}, {"user_id", "u1"}})["profile"]["note"], "said \"hi\", then left");
  EXPECT_EQ(enrich(quoted, {{"event_type", "t"}, {"user_id", "u2"}})["profile"]["note"], "two\nlines");
}

TEST_F(LookupTest, AJsonFileKeepsValueTypesAndMayBeAnArrayOfRecords) {
  dir_.write("users.json", R"({"u1": {"plan": "pro", "seats": 5, "tags": ["a"]}, "u2": {"plan": "free"}})");
  LookupEnricher object(config({{"file", "users.json"}, {"fields", {"plan", "seats", "tags"}}}), context_);
  auto body = enrich(object, {{"event_type", "t"}, {"user_id", "u1"}});
  EXPECT_EQ(body["seats"], 5);
  EXPECT_EQ(body["tags"], nlohmann::json::array({"a"}));
  body = enrich(object, {{"event_type", "t"}, {"user_id", "u2"}});
  EXPECT_EQ(body["plan"], "free");
  EXPECT_FALSE(body.contains("seats")) << "a field the record lacks is not set";

  dir_.write("accounts.json", R"([{"id": 7, "tier": "gold"}, {"id": "x", "tier": "tin"}])");
  LookupEnricher array({{"file", "accounts.json"}, {"key", "account.id"}, {"fields", {"tier"}}}, context_);
  EXPECT_EQ(enrich(array, {{"event_type", "t"}, {"account", {{"id", 7}}}})["tier"], "gold");
  EXPECT_EQ(enrich(array, {{"event_type", "t"}, {"account", {{"id", "x"}}}})["tier"], "tin");
}

TEST_F(LookupTest, OnMissSkipsRejectsOrSetsDefaults) {
  dir_.write("users.csv", kUsers);
  LookupEnricher skip(config(), context_);
  const nlohmann::json unknown = {{"event_type", "t"}, {"user_id", "nobody"}};
  EXPECT_FALSE(enrich(skip, unknown).contains("plan"));

  LookupEnricher reject(config({{"on_miss", "reject"}}), context_);
  Result result = Result::ok();
  enrich(reject, unknown, &result);
  EXPECT_EQ(result.status(), Result::Status::reject);
  EXPECT_EQ(result.errorType(), "lookup_miss");
  EXPECT_NE(result.reason().find("no row for user_id \"nobody\" in users.csv"), std::string::npos) << result.reason();
  enrich(reject, {{"event_type", "t"}}, &result);
  EXPECT_NE(result.reason().find("the event has no user_id"), std::string::npos) << result.reason();
  enrich(reject, {{"event_type", "t"}, {"user_id", 1.5}}, &result);
  EXPECT_NE(result.reason().find("user_id is 1.5, not a string or integer"), std::string::npos) << result.reason();

  LookupEnricher fill(config({{"on_miss", "default"}, {"default", {{"plan", "unknown"}}}}), context_);
  EXPECT_EQ(enrich(fill, unknown)["plan"], "unknown");
  EXPECT_EQ(context_.counts["lookup_misses"], 5);
}

TEST_F(LookupTest, RefusesABrokenFileAtStartNamingTheLine) {
  dir_.write("users.csv", "user_id,plan,region\nu1,pro\n");
  EXPECT_NE(refused(config()).find("users.csv: line 2 has 2 fields, the first line 3"), std::string::npos);
  dir_.write("users.csv", "user_id,plan\nu1,pro\n");
  EXPECT_NE(refused(config()).find("has no column 'region'"), std::string::npos);
  dir_.write("users.csv", "user_id,plan,region\nu1,pro,eu\nu1,free,us\n");
  EXPECT_NE(refused(config()).find("key 'u1' is on more than one row"), std::string::npos);
  dir_.write("users.csv", "user_id,plan,region\nu1,\"pro,eu\n");
  EXPECT_NE(refused(config()).find("a quoted field is not closed"), std::string::npos);
  dir_.write("users.json", R"({"u1": {"plan": )");
  EXPECT_NE(refused(config({{"file", "users.json"}})).find("is not valid JSON"), std::string::npos);
  EXPECT_NE(refused(config({{"file", "missing.csv"}})).find("missing.csv: cannot open"), std::string::npos);
  EXPECT_NE(refused(config({{"file", "users.txt"}})).find("format: csv"), std::string::npos);
  EXPECT_NE(refused(config({{"on_miss", "default"}})).find("needs default"), std::string::npos);
}

TEST_F(LookupTest, AFileRenamedIntoPlaceIsReloadedForEveryInstance) {
  dir_.write("users.csv", kUsers);
  LookupEnricher first(config(), context_);
  LookupEnricher second(config(), context_);
  const nlohmann::json u1 = {{"event_type", "t"}, {"user_id", "u1"}};
  replace("users.csv", "user_id,plan,region\nu1,enterprise,eu-north\n");
  EXPECT_TRUE(eventually(first, u1, [](const nlohmann::json& b) { return b.value("plan", "") == "enterprise"; }));
  // The other instance shares the table: it sees the new rows without
  // reading the file itself.
  EXPECT_EQ(enrich(second, u1)["plan"], "enterprise");
  EXPECT_EQ(context_.counts["lookup_reloads"], 1);
}

TEST_F(LookupTest, ABrokenNewVersionKeepsTheOldTableAndIsLoggedOnce) {
  dir_.write("users.csv", kUsers);
  LookupEnricher enricher(config(), context_);
  const nlohmann::json u1 = {{"event_type", "t"}, {"user_id", "u1"}};
  // As a writer caught halfway: the last line is cut short.
  replace("users.csv", "user_id,plan,region\nu1,enterprise,eu-north\nu2,fr");
  const auto logged = [&] {
    for (const auto& [level, message] : context_.logs)
      if (level == LogLevel::error && message.find("line 3 has 2 fields") != std::string::npos &&
          message.find("keeping the table of 3 rows") != std::string::npos)
        return true;
    return false;
  };
  EXPECT_TRUE(eventually(enricher, u1, [&](const nlohmann::json&) { return logged(); }));
  EXPECT_EQ(enrich(enricher, u1)["plan"], "pro") << "the old table stays";
  EXPECT_EQ(context_.counts["lookup_reload_failures"], 1);

  // Written whole, it is taken.
  replace("users.csv", "user_id,plan,region\nu1,enterprise,eu-north\nu2,free,us\n");
  EXPECT_TRUE(eventually(enricher, u1, [](const nlohmann::json& b) { return b.value("plan", "") == "enterprise"; }));
  EXPECT_EQ(context_.counts["lookup_reload_failures"], 1) << "the broken version was reported once";
}

TEST_F(LookupTest, ManyThreadsLookUpWhileTheFileIsReplaced) {
  dir_.write("users.csv", "user_id,plan,region\nu1,v0,r\n");
  std::vector<std::unique_ptr<LookupEnricher>> instances;
  for (int i = 0; i < 4; ++i) instances.push_back(std::make_unique<LookupEnricher>(config(), context_));
  LookupEnricher watcher(config(), context_);  // the main thread's own instance
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (auto& instance : instances)
    threads.emplace_back([&, e = instance.get()] {
      while (!stop) {
        Event event = makeEvent({{"event_type", "t"}, {"user_id", "u1"}});
        if (!e->enrich(event).isOk() || !event.body.value("plan", "").starts_with("v")) ++bad;
      }
    });
  for (int version = 1; version <= 3; ++version) {
    replace("users.csv", "user_id,plan,region\nu1,v" + std::to_string(version) + ",r\n");
    const std::string want = "v" + std::to_string(version);
    EXPECT_TRUE(eventually(watcher, {{"event_type", "t"}, {"user_id", "u1"}},
                           [&](const nlohmann::json& b) { return b.value("plan", "") == want; }));
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad, 0);
}

TEST_F(LookupTest, SchemaRefusesBadShapes) {
  const test::SchemaCheck schema(kLookupConfigSchema);
  EXPECT_TRUE(schema.valid(config()));
  EXPECT_TRUE(schema.valid(config({{"on_miss", "default"}, {"default", {{"plan", "free"}}}})));
  EXPECT_FALSE(schema.valid(config({{"on_miss", "default"}})));
  EXPECT_FALSE(schema.valid(config({{"on_miss", "ignore"}})));
  EXPECT_FALSE(schema.valid(config({{"fields", "plan"}})));
  EXPECT_FALSE(schema.valid({{"file", "users.csv"}, {"fields", {"plan"}}}));
  EXPECT_FALSE(schema.valid(config({{"format", "xml"}})));
}

}  // namespace
}  // namespace eventflow::plugins
