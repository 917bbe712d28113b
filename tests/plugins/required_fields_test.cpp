#include <gtest/gtest.h>

#include <eventflow/testing.hpp>
#include "required_fields.hpp"

namespace eventflow::plugins {
namespace {

using eventflow::testing::FakeContext;
using eventflow::testing::makeEvent;

class RequiredFieldsTest : public ::testing::Test {
 protected:
  FakeContext context_;
  RequiredFieldsValidator validator_{{{"fields", {"user_id", "properties.amount"}}}, context_};
};

TEST_F(RequiredFieldsTest, AcceptsEventWithEveryField) {
  const Event event = makeEvent({{"user_id", "u1"}, {"properties", {{"amount", 0}}}});
  EXPECT_TRUE(validator_.check(event).isOk());
}

TEST_F(RequiredFieldsTest, RejectsMissingNestedFieldByName) {
  const Event event = makeEvent({{"user_id", "u1"}, {"properties", {{"currency", "EUR"}}}});
  const Result result = validator_.check(event);
  EXPECT_EQ(result.status(), Result::Status::reject);
  EXPECT_EQ(result.errorType(), "validation");
  EXPECT_NE(result.reason().find("'properties.amount'"), std::string::npos) << result.reason();
}

TEST_F(RequiredFieldsTest, NamesTheFirstMissingField) {
  const Result result = validator_.check(makeEvent({{"event_type", "purchase"}}));
  EXPECT_EQ(result.status(), Result::Status::reject);
  EXPECT_NE(result.reason().find("'user_id'"), std::string::npos) << result.reason();
}

TEST_F(RequiredFieldsTest, TreatsNullAsMissing) {
  const Result result = validator_.check(makeEvent({{"user_id", nullptr}, {"properties", {{"amount", 5}}}}));
  EXPECT_EQ(result.status(), Result::Status::reject);
  EXPECT_NE(result.reason().find("'user_id'"), std::string::npos) << result.reason();
}

TEST_F(RequiredFieldsTest, ParentThatIsNotAnObjectMeansMissing) {
  const Result result = validator_.check(makeEvent({{"user_id", "u1"}, {"properties", "amount"}}));
  EXPECT_EQ(result.status(), Result::Status::reject);
}

TEST(RequiredFieldsConfig, RefusesUnusableConfig) {
  FakeContext context;
  EXPECT_THROW(RequiredFieldsValidator(nlohmann::json::object(), context), std::invalid_argument);
  EXPECT_THROW(RequiredFieldsValidator({{"fields", nlohmann::json::array()}}, context), std::invalid_argument);
  EXPECT_THROW(RequiredFieldsValidator({{"fields", {42}}}, context), std::invalid_argument);
  EXPECT_THROW(RequiredFieldsValidator({{"fields", {"properties..amount"}}}, context), std::invalid_argument);
}

}  // namespace
}  // namespace eventflow::plugins
