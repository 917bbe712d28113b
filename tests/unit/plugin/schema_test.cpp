#include <gtest/gtest.h>

#include "plugin/schema.hpp"

using eventflow::plugin::JsonSchema;

TEST(JsonSchema, AcceptsValidAndNamesThePathOfInvalid) {
  auto schema = JsonSchema::parseText(R"({"type":"object","required":["fields"],"additionalProperties":false,
    "properties":{"fields":{"type":"array","items":{"type":"string"}}}})");
  ASSERT_TRUE(schema) << schema.error().message;
  EXPECT_TRUE(schema->validate({{"fields", {"a", "b"}}}));
  auto bad = schema->validate({{"fields", {"a", 3}}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("fields.1"), std::string::npos) << bad.error().message;
  auto extra = schema->validate({{"fields", {"a"}}, {"other", 1}});
  EXPECT_FALSE(extra);
}

TEST(JsonSchema, RefusesASchemaThatIsNotJson) {
  auto schema = JsonSchema::parseText("{not json");
  ASSERT_FALSE(schema);
  EXPECT_NE(schema.error().message.find("not valid JSON"), std::string::npos);
}
