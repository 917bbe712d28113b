#include <gtest/gtest.h>

#include "plugin_test.hpp"
#include "rename_drop.hpp"
#include "schema_check.hpp"

namespace eventflow::plugins {
namespace {

using test::FakeContext;
using test::makeEvent;

nlohmann::json run(const nlohmann::json& config, nlohmann::json body, Result* result = nullptr) {
  FakeContext context;
  RenameDropEnricher enricher(config, context);
  Event event = makeEvent(std::move(body));
  const Result r = enricher.enrich(event);
  if (result) *result = r;
  else EXPECT_TRUE(r.isOk()) << r.reason();
  event.body.erase("event_id");
  return event.body;
}

TEST(RenameDrop, RenamesAndDropsDottedPathsCreatingParents) {
  const nlohmann::json config = {{"rename", {{"userId", "user_id"}, {"properties.mail", "contact.email"}}},
                                 {"drop", {"properties.password", "debug"}}};
  const auto body = run(config, {{"event_type", "signup"},
                                 {"userId", "u1"},
                                 {"debug", true},
                                 {"properties", {{"mail", "a@b.c"}, {"password", "hunter2"}, {"plan", "pro"}}}});
  EXPECT_EQ(body, nlohmann::json({{"event_type", "signup"},
                                  {"user_id", "u1"},
                                  {"contact", {{"email", "a@b.c"}}},
                                  {"properties", {{"plan", "pro"}}}}));
}

TEST(RenameDrop, MissingPathsAreSkipped) {
  const nlohmann::json config = {{"rename", {{"a.b", "c"}}}, {"drop", {"x.y", "z"}}};
  const nlohmann::json body = {{"event_type", "t"}, {"a", 5}, {"x", "not an object"}};
  EXPECT_EQ(run(config, body), body);
}

TEST(RenameDrop, RenamingReplacesAnExistingTargetAndMovesObjectsWhole) {
  EXPECT_EQ(run({{"rename", {{"new", "old"}}}}, {{"event_type", "t"}, {"new", {{"k", 1}}}, {"old", 0}}),
            nlohmann::json({{"event_type", "t"}, {"old", {{"k", 1}}}}));
  // A target inside its own source: the value is taken out first.
  EXPECT_EQ(run({{"rename", {{"user", "user.name"}}}}, {{"event_type", "t"}, {"user", "ann"}}),
            nlohmann::json({{"event_type", "t"}, {"user", {{"name", "ann"}}}}));
}

TEST(RenameDrop, ATargetUnderANonObjectRejectsTheEventAndKeepsTheSource) {
  Result result = Result::ok();
  FakeContext context;
  RenameDropEnricher enricher({{"rename", {{"a", "b.c"}}}}, context);
  Event event = makeEvent({{"event_type", "t"}, {"a", 1}, {"b", "text"}});
  result = enricher.enrich(event);
  EXPECT_EQ(result.status(), Result::Status::reject);
  EXPECT_EQ(result.errorType(), "enrichment");
  EXPECT_NE(result.reason().find("cannot rename 'a' to 'b.c'"), std::string::npos) << result.reason();
  EXPECT_EQ(event.body["a"], 1);
}

TEST(RenameDrop, RefusesConfigsWhoseResultWouldDependOnOrderOrBreakTheEnvelope) {
  FakeContext context;
  const auto refused = [&](const nlohmann::json& config) {
    try {
      RenameDropEnricher enricher(config, context);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(refused({{"rename", {{"a", "b"}, {"b", "c"}}}}).find("which is itself renamed"), std::string::npos);
  EXPECT_NE(refused({{"rename", {{"a", "x"}, {"b", "x"}}}}).find("both target 'x'"), std::string::npos);
  EXPECT_NE(refused({{"rename", {{"a", "a"}}}}).find("names itself"), std::string::npos);
  EXPECT_NE(refused({{"rename", {{"a", "b"}}}, {"drop", {"b"}}}).find("both a rename target and dropped"),
            std::string::npos);
  EXPECT_NE(refused({{"drop", {"event_id"}}}).find("'event_id' is not allowed"), std::string::npos);
  EXPECT_NE(refused({{"rename", {{"event_type", "kind"}}}}).find("'event_type' is not allowed"), std::string::npos);
  EXPECT_NE(refused({{"drop", {"a..b"}}}).find("empty segment"), std::string::npos);
  EXPECT_NE(refused(nlohmann::json::object()).find("give 'rename'"), std::string::npos);
}

TEST(RenameDrop, SchemaRefusesBadShapes) {
  const test::SchemaCheck schema(kRenameDropConfigSchema);
  EXPECT_TRUE(schema.valid({{"rename", {{"a.b", "c"}}}}));
  EXPECT_TRUE(schema.valid({{"drop", {"a"}}}));
  EXPECT_FALSE(schema.valid(nlohmann::json::object()));
  EXPECT_FALSE(schema.valid({{"rename", {{"a", 1}}}}));
  EXPECT_FALSE(schema.valid({{"rename", {{"a", "b..c"}}}}));
  EXPECT_FALSE(schema.valid({{"drop", "a"}}));
  EXPECT_FALSE(schema.valid({{"drop", nlohmann::json::array()}}));
  EXPECT_NE(schema.errors({{"drop", {"a"}}, {"rnaem", {{"a", "b"}}}}).find("rnaem"), std::string::npos);
}

}  // namespace
}  // namespace eventflow::plugins
