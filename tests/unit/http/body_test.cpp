// parseBody (host/http/body.cpp): how POST /events and /events/batch read a
// body, single, JSON array or NDJSON, and which refusals stay per item.

#include <gtest/gtest.h>

#include <string>

#include "http/body.hpp"

using namespace eventflow::http;

namespace {

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }
const std::string kEvent = R"({"event_type":"page_view"})";

}  // namespace

TEST(Body, ASingleEventIsOneDocument) {
  const auto p = parseBody(kEvent, BodyFormat::single, 64);
  ASSERT_FALSE(p.refused);
  ASSERT_EQ(p.docs.size(), 1u);
  ASSERT_EQ(p.item_refused.size(), 1u);
  EXPECT_FALSE(p.item_refused[0]);
  EXPECT_EQ(p.docs[0]["event_type"], "page_view");
}

TEST(Body, ASingleBodyIsRefusedWhole) {
  EXPECT_EQ(parseBody("{", BodyFormat::single, 64).refused->code, "malformed_json");
  const auto deep = parseBody(R"({"p":)" + nested(100'000) + "}", BodyFormat::single, 64);
  ASSERT_TRUE(deep.refused);
  EXPECT_EQ(deep.refused->code, "too_deep");
  EXPECT_EQ(deep.refused->field, "p");
  EXPECT_NE(deep.refused->message.find("the body nests arrays and objects deeper than server.max_json_depth (64)"),
            std::string::npos)
      << deep.refused->message;
  const auto huge = parseBody(R"({"properties":{"n":1e400}})", BodyFormat::single, 64);
  ASSERT_TRUE(huge.refused);
  EXPECT_EQ(huge.refused->code, "number_out_of_range");
  EXPECT_EQ(huge.refused->field, "properties.n");
}

TEST(Body, InAJsonArrayATooDeepOrHugeItemRefusesOnlyItself) {
  const std::string body = "[" + kEvent + "," + R"({"x":)" + nested(100'000) + "}," + R"({"n":1e400})" + "," + kEvent + "]";
  const auto p = parseBody(body, BodyFormat::json_array, 64);
  ASSERT_FALSE(p.refused) << p.refused->message;
  ASSERT_EQ(p.docs.size(), 4u);
  ASSERT_EQ(p.item_refused.size(), 4u);
  EXPECT_FALSE(p.item_refused[0]);
  EXPECT_EQ(p.docs[0]["event_type"], "page_view");
  ASSERT_TRUE(p.item_refused[1]);
  EXPECT_EQ(p.item_refused[1]->code, "too_deep");
  EXPECT_EQ(p.item_refused[1]->field, "x");
  EXPECT_NE(p.item_refused[1]->message.find("item 1 nests"), std::string::npos) << p.item_refused[1]->message;
  ASSERT_TRUE(p.item_refused[2]);
  EXPECT_EQ(p.item_refused[2]->code, "number_out_of_range");
  EXPECT_EQ(p.item_refused[2]->field, "n");
  EXPECT_FALSE(p.item_refused[3]);
  EXPECT_EQ(p.docs[3]["event_type"], "page_view");
}

TEST(Body, TheBatchArrayIsOneLevelMoreThanItsEvents) {
  // An event at the limit, inside the batch's array: accepted.
  const std::string at_limit = R"({"a":)" + nested(2) + "}";  // 3 levels
  EXPECT_FALSE(parseBody("[" + at_limit + "]", BodyFormat::json_array, 3).item_refused[0]);
  const std::string over = R"({"a":)" + nested(3) + "}";
  const auto p = parseBody("[" + over + "]", BodyFormat::json_array, 3);
  ASSERT_FALSE(p.refused);
  ASSERT_TRUE(p.item_refused[0]);
  EXPECT_NE(p.item_refused[0]->message.find("server.max_json_depth (3)"), std::string::npos);
}

TEST(Body, ABatchThatIsNoArrayOrEmptyIsRefusedWhole) {
  EXPECT_EQ(parseBody(kEvent, BodyFormat::json_array, 64).refused->code, "invalid_batch");
  EXPECT_EQ(parseBody("[]", BodyFormat::json_array, 64).refused->code, "invalid_batch");
  EXPECT_EQ(parseBody("[1,", BodyFormat::json_array, 64).refused->code, "malformed_json");
  // Too deep and not an array whose items can be told apart.
  EXPECT_EQ(parseBody(R"({"a":)" + nested(1000) + "}", BodyFormat::json_array, 64).refused->code, "too_deep");
  EXPECT_EQ(parseBody("\n \n", BodyFormat::ndjson, 64).refused->code, "invalid_batch");
}

TEST(Body, NdjsonRefusesOnlyItsBadLinesAndSkipsBlankOnes) {
  const std::string body = kEvent + "\n\n" + nested(100) + "\r\n{oops\n" + R"({"n":-1e400})" + "\n" + kEvent;
  const auto p = parseBody(body, BodyFormat::ndjson, 64);
  ASSERT_FALSE(p.refused);
  ASSERT_EQ(p.docs.size(), 5u);
  EXPECT_FALSE(p.item_refused[0]);
  EXPECT_EQ(p.item_refused[1]->code, "too_deep");
  EXPECT_NE(p.item_refused[1]->message.find("line 3"), std::string::npos) << p.item_refused[1]->message;
  EXPECT_EQ(p.item_refused[2]->code, "malformed_json");
  EXPECT_NE(p.item_refused[2]->message.find("line 4"), std::string::npos);
  EXPECT_EQ(p.item_refused[3]->code, "number_out_of_range");
  EXPECT_FALSE(p.item_refused[4]);
  EXPECT_TRUE(p.docs[1].is_null());
}
