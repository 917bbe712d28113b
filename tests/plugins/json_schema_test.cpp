#include <gtest/gtest.h>

#include <eventflow/testing.hpp>
#include "json_schema.hpp"

namespace eventflow::plugins {
namespace {

using eventflow::testing::FakeContext;
using eventflow::testing::makeEvent;

nlohmann::json purchase(nlohmann::json properties) {
  return {{"event_type", "purchase"}, {"user_id", "u1"}, {"properties", std::move(properties)}};
}

class JsonSchemaTest : public ::testing::Test {
 protected:
  FakeContext context_{EVENTFLOW_TEST_FIXTURES};
  JsonSchemaValidator validator_{{{"schema", "order.schema.json"}}, context_};
};

TEST_F(JsonSchemaTest, AcceptsPositiveAmount) {
  const Result result = validator_.check(makeEvent(purchase({{"amount", 19.99}})));
  EXPECT_TRUE(result.isOk()) << result.reason();
}

TEST_F(JsonSchemaTest, RejectsNegativeAmountNamingItsPath) {
  const Result result = validator_.check(makeEvent(purchase({{"amount", -5}})));
  EXPECT_EQ(result.status(), Result::Status::reject);
  EXPECT_EQ(result.errorType(), "validation");
  EXPECT_EQ(result.reason().rfind("properties.amount: ", 0), 0u) << result.reason();
  EXPECT_NE(result.reason().find("greater than"), std::string::npos) << result.reason();
}

TEST_F(JsonSchemaTest, RejectsZeroAmountSinceTheMinimumIsExclusive) {
  EXPECT_EQ(validator_.check(makeEvent(purchase({{"amount", 0}}))).status(), Result::Status::reject);
}

TEST_F(JsonSchemaTest, NamesArrayIndexInPath) {
  const auto items = nlohmann::json::array({{{"sku", "ABC-1"}}, {{"sku", "nope"}}});
  const Result result = validator_.check(makeEvent(purchase({{"amount", 1}, {"items", items}})));
  EXPECT_EQ(result.status(), Result::Status::reject);
  EXPECT_EQ(result.reason().rfind("properties.items[1].sku: ", 0), 0u) << result.reason();
}

TEST_F(JsonSchemaTest, ReportsMissingRequiredProperty) {
  const Result result = validator_.check(makeEvent({{"event_type", "purchase"}}));
  EXPECT_EQ(result.status(), Result::Status::reject);
  EXPECT_NE(result.reason().find("properties"), std::string::npos) << result.reason();
}

TEST(JsonSchemaConfig, NamesUnreadableOrInvalidSchemaFile) {
  FakeContext context(EVENTFLOW_TEST_FIXTURES);
  for (const char* file : {"no-such.schema.json", "truncated.schema.json"}) {
    try {
      JsonSchemaValidator validator({{"schema", file}}, context);
      ADD_FAILURE() << "constructed from " << file;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  }
}

// The schemas shipped with the example pipelines carry the original business rules.
TEST(ShippedSchemas, PurchaseNeedsPositiveAmount) {
  FakeContext context(EVENTFLOW_PIPELINES_DIR);
  JsonSchemaValidator validator({{"schema", "schemas/purchase.schema.json"}}, context);
  EXPECT_TRUE(validator.check(makeEvent(purchase({{"amount", 1500}}))).isOk());
  EXPECT_EQ(validator.check(makeEvent(purchase({{"amount", -1}}))).status(), Result::Status::reject);
  EXPECT_EQ(validator.check(makeEvent(purchase({{"amount", "12"}}))).status(), Result::Status::reject);
  EXPECT_EQ(validator.check(makeEvent({{"event_type", "purchase"}})).status(), Result::Status::reject);
}

TEST(ShippedSchemas, SignupNeedsUserId) {
  FakeContext context(EVENTFLOW_PIPELINES_DIR);
  JsonSchemaValidator validator({{"schema", "schemas/user_signup.schema.json"}}, context);
  EXPECT_TRUE(validator.check(makeEvent({{"event_type", "user_signup"}, {"user_id", "u1"}})).isOk());
  EXPECT_TRUE(validator.check(makeEvent({{"event_type", "user_signup"}, {"user_id", 42}})).isOk());
  EXPECT_EQ(validator.check(makeEvent({{"event_type", "user_signup"}, {"user_id", ""}})).status(),
            Result::Status::reject);
  EXPECT_EQ(validator.check(makeEvent({{"event_type", "user_signup"}})).status(), Result::Status::reject);
}

}  // namespace
}  // namespace eventflow::plugins
