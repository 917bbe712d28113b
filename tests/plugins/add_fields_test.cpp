#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>

#include <gtest/gtest.h>

#include <eventflow/time.hpp>

#include "add_fields.hpp"
#include <eventflow/testing.hpp>

namespace eventflow::plugins {
namespace {

using eventflow::testing::FakeContext;
using eventflow::testing::makeEvent;

TEST(AddFields, SetsStaticValuesOfAnyType) {
  FakeContext context;
  AddFieldsEnricher enricher({{"fields", {{"processed_by", "eventflow"}, {"version", 3}, {"tags", {"a", "b"}}}}},
                             context);
  Event event = makeEvent({{"event_type", "page_view"}, {"processed_by", "someone else"}});
  ASSERT_TRUE(enricher.enrich(event).isOk());
  EXPECT_EQ(event.body["processed_by"], "eventflow");
  EXPECT_EQ(event.body["version"], 3);
  EXPECT_EQ(event.body["tags"], nlohmann::json({"a", "b"}));
  EXPECT_EQ(event.body["event_type"], "page_view");
}

TEST(AddFields, ExpandsNowPerEvent) {
  FakeContext context;
  AddFieldsEnricher enricher({{"fields", {{"processing_timestamp", "${now}"}, {"note", "at ${now}!"}}}}, context);
  const auto before = std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
  Event event = makeEvent({{"event_type", "purchase"}});
  ASSERT_TRUE(enricher.enrich(event).isOk());
  const auto after = std::chrono::system_clock::now();

  const auto stamp = event.body["processing_timestamp"].get<std::string>();
  const auto parsed = parseRfc3339(stamp);
  ASSERT_TRUE(parsed.has_value()) << stamp;
  EXPECT_GE(*parsed, before);
  EXPECT_LE(*parsed, after);
  EXPECT_EQ(event.body["note"], "at " + stamp + "!");
}

TEST(AddFields, ExpandsHostAndEnvOnceAtConstruction) {
  ::setenv("EVENTFLOW_TEST_ADD_FIELDS", "blue", 1);
  ::unsetenv("EVENTFLOW_TEST_ADD_FIELDS_UNSET");
  ::setenv("EVENTFLOW_TEST_ADD_FIELDS_EMPTY", "", 1);
  FakeContext context;
  AddFieldsEnricher enricher({{"fields",
                               {{"host", "${host}"},
                                {"color", "${env:EVENTFLOW_TEST_ADD_FIELDS}/${host}"},
                                {"missing", "[${env:EVENTFLOW_TEST_ADD_FIELDS_UNSET:-none}]"},
                                {"empty", "[${env:EVENTFLOW_TEST_ADD_FIELDS_EMPTY}]"}}}},
                             context);
  ::setenv("EVENTFLOW_TEST_ADD_FIELDS", "red", 1);

  char host[HOST_NAME_MAX + 1] = {};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  Event event = makeEvent({{"event_type", "custom"}});
  ASSERT_TRUE(enricher.enrich(event).isOk());
  EXPECT_EQ(event.body["host"], host);
  EXPECT_EQ(event.body["color"], std::string("blue/") + host);
  EXPECT_EQ(event.body["missing"], "[none]");
  EXPECT_EQ(event.body["empty"], "[]") << "set but empty is the empty string";
  ::unsetenv("EVENTFLOW_TEST_ADD_FIELDS");
  ::unsetenv("EVENTFLOW_TEST_ADD_FIELDS_EMPTY");
}

TEST(AddFields, AnUnsetEnvVariableWithoutADefaultRefusesTheConfigNamingIt) {
  ::unsetenv("EVENTFLOW_TEST_ADD_FIELDS_SITE");
  FakeContext context;
  try {
    AddFieldsEnricher enricher({{"fields", {{"site", "${env:EVENTFLOW_TEST_ADD_FIELDS_SITE}"}}}}, context);
    FAIL() << "an unset variable was taken as \"\"";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("field 'site' uses ${env:EVENTFLOW_TEST_ADD_FIELDS_SITE}, but "
                                         "EVENTFLOW_TEST_ADD_FIELDS_SITE is not set"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("${env:EVENTFLOW_TEST_ADD_FIELDS_SITE:-default}"), std::string::npos)
        << e.what();
  }
}

TEST(AddFields, CreatesNestedPathsAndKeepsSiblings) {
  FakeContext context;
  AddFieldsEnricher enricher({{"fields", {{"properties.channel", "web"}, {"meta.source.name", "${now}"}}}}, context);
  Event event = makeEvent({{"event_type", "purchase"}, {"properties", {{"amount", 10}}}});
  ASSERT_TRUE(enricher.enrich(event).isOk());
  EXPECT_EQ(event.body["properties"]["channel"], "web");
  EXPECT_EQ(event.body["properties"]["amount"], 10);
  ASSERT_TRUE(event.body["meta"]["source"]["name"].is_string());
  EXPECT_TRUE(parseRfc3339(event.body["meta"]["source"]["name"].get<std::string>()).has_value());
}

TEST(AddFields, RejectsWhenParentIsNotAnObject) {
  FakeContext context;
  AddFieldsEnricher enricher({{"fields", {{"properties.channel", "web"}}}}, context);
  Event event = makeEvent({{"event_type", "purchase"}, {"properties", "flat"}});
  const Result result = enricher.enrich(event);
  EXPECT_EQ(result.status(), Result::Status::reject);
  EXPECT_EQ(result.errorType(), "enrichment");
  EXPECT_EQ(event.body["properties"], "flat");
}

TEST(AddFieldsConfig, RefusesUnusableConfig) {
  FakeContext context;
  EXPECT_THROW(AddFieldsEnricher({{"fields", nlohmann::json::object()}}, context), std::invalid_argument);
  EXPECT_THROW(AddFieldsEnricher({{"fields", {{"a", "${today}"}}}}, context), std::invalid_argument);
  EXPECT_THROW(AddFieldsEnricher({{"fields", {{"a", "${now"}}}}, context), std::invalid_argument);
  EXPECT_THROW(AddFieldsEnricher({{"fields", {{"a..b", 1}}}}, context), std::invalid_argument);
  EXPECT_THROW(AddFieldsEnricher({{"fields", {{"a", "x"}, {"a.b", 1}}}}, context), std::invalid_argument);
}

}  // namespace
}  // namespace eventflow::plugins
