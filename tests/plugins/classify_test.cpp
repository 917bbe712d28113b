#include <gtest/gtest.h>

#include "classify.hpp"
#include <eventflow/testing.hpp>

namespace eventflow::plugins {
namespace {

using eventflow::testing::FakeContext;
using eventflow::testing::makeEvent;

nlohmann::json rule(const char* field, const char* op, nlohmann::json operand, nlohmann::json value) {
  return {{"when", {{"field", field}, {"op", op}, {"value", std::move(operand)}}}, {"value", std::move(value)}};
}

nlohmann::json classifyOnce(const nlohmann::json& config, nlohmann::json body) {
  FakeContext context;
  ClassifyEnricher enricher(config, context);
  Event event = makeEvent(std::move(body));
  const Result result = enricher.enrich(event);
  EXPECT_TRUE(result.isOk()) << result.reason();
  return event.body;
}

nlohmann::json amount(nlohmann::json value) {
  return {{"event_type", "purchase"}, {"properties", {{"amount", std::move(value)}}}};
}

// The purchases pipeline's rule.
const nlohmann::json kPurchases = {{"field", "category"},
                                   {"rules", {rule("properties.amount", "gt", 1000, "high_value")}},
                                   {"default", "standard"}};

TEST(Classify, MatchingRuleSetsItsValue) {
  EXPECT_EQ(classifyOnce(kPurchases, amount(1500.5))["category"], "high_value");
}

TEST(Classify, NoMatchSetsDefault) {
  EXPECT_EQ(classifyOnce(kPurchases, amount(1000))["category"], "standard");
  EXPECT_EQ(classifyOnce(kPurchases, nlohmann::json{{"event_type", "purchase"}})["category"], "standard");
}

TEST(Classify, NonNumberNeverMatchesNumericComparison) {
  EXPECT_EQ(classifyOnce(kPurchases, amount("5000"))["category"], "standard");
}

TEST(Classify, FirstMatchingRuleWins) {
  const nlohmann::json config = {{"field", "tier"},
                                 {"rules",
                                  {rule("properties.amount", "lt", 0, "refund"),
                                   rule("properties.amount", "gte", 100, "medium"),
                                   rule("properties.amount", "gte", 1000, "large")}}};
  EXPECT_EQ(classifyOnce(config, amount(5000))["tier"], "medium");
  EXPECT_EQ(classifyOnce(config, amount(-3))["tier"], "refund");
}

TEST(Classify, NoMatchAndNoDefaultLeavesFieldUnset) {
  const nlohmann::json config = {{"field", "tier"}, {"rules", {rule("properties.amount", "gt", 10, "big")}}};
  EXPECT_FALSE(classifyOnce(config, amount(1)).contains("tier"));
}

TEST(Classify, SupportsEveryOperator) {
  const nlohmann::json config = {
      {"field", "labels.kind"},
      {"rules",
       {rule("country", "in", {"DE", "FR"}, "eu"), rule("email", "matches", "@example\\.com$", "internal"),
        rule("plan", "eq", "pro", "pro"), rule("score", "lte", 0.5, "low"), rule("plan", "ne", "free", "paid"),
        {{"when", {{"field", "referrer"}, {"op", "exists"}}}, {"value", "referred"}},
        rule("user_id", "exists", false, "anonymous")}},
      {"default", "other"}};
  const auto kind = [&](nlohmann::json body) { return classifyOnce(config, std::move(body))["labels"]["kind"]; };
  EXPECT_EQ(kind({{"country", "FR"}}), "eu");
  EXPECT_EQ(kind({{"email", "ana@example.com"}}), "internal");
  EXPECT_EQ(kind({{"email", "ana@example.org"}, {"user_id", "u"}}), "other");
  EXPECT_EQ(kind({{"plan", "pro"}}), "pro");
  EXPECT_EQ(kind({{"score", 0.5}, {"plan", "free"}}), "low");
  EXPECT_EQ(kind({{"plan", "team"}}), "paid");
  EXPECT_EQ(kind({{"referrer", "news"}, {"user_id", "u"}}), "referred");
  EXPECT_EQ(kind({{"event_type", "x"}}), "anonymous");
  EXPECT_EQ(kind({{"user_id", nullptr}}), "anonymous");
}

TEST(Classify, RejectsWhenTargetParentIsNotAnObject) {
  FakeContext context;
  ClassifyEnricher enricher({{"field", "labels.kind"}, {"rules", nlohmann::json::array()}, {"default", "x"}},
                            context);
  Event event = makeEvent({{"labels", 7}});
  const Result result = enricher.enrich(event);
  EXPECT_EQ(result.status(), Result::Status::reject);
  EXPECT_EQ(result.errorType(), "enrichment");
}

TEST(ClassifyConfig, RefusesUnusableConfig) {
  FakeContext context;
  const auto with = [](nlohmann::json r) { return nlohmann::json{{"field", "f"}, {"rules", {std::move(r)}}}; };
  EXPECT_THROW(ClassifyEnricher(with(rule("a", "between", 1, "x")), context), std::invalid_argument);
  EXPECT_THROW(ClassifyEnricher(with(rule("a", "gt", "1000", "x")), context), std::invalid_argument);
  EXPECT_THROW(ClassifyEnricher(with(rule("a", "in", "DE", "x")), context), std::invalid_argument);
  EXPECT_THROW(ClassifyEnricher(with(rule("a", "matches", "([", "x")), context), std::invalid_argument);
  EXPECT_THROW(ClassifyEnricher(with({{"when", {{"field", "a"}, {"op", "eq"}}}}), context), std::invalid_argument);
  EXPECT_THROW(ClassifyEnricher({{"rules", nlohmann::json::array()}}, context), std::invalid_argument);
}

}  // namespace
}  // namespace eventflow::plugins
