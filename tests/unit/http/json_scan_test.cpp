// The checks run on raw request bodies before they are parsed (issue 11).

#include <gtest/gtest.h>

#include <string>

#include "http/json_scan.hpp"

using namespace eventflow::http;

namespace {
std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }
}  // namespace

TEST(JsonScan, DepthCountsArraysAndObjectsOutsideStrings) {
  EXPECT_TRUE(nestsWithin("", 1));
  EXPECT_TRUE(nestsWithin("42", 0));
  EXPECT_TRUE(nestsWithin(R"({"a":[1,{"b":2}]})", 3));
  EXPECT_FALSE(nestsWithin(R"({"a":[1,{"b":2}]})", 2));
  // Brackets inside strings, escaped quotes included, are text.
  EXPECT_TRUE(nestsWithin(R"({"a":"[[[{{{","b":"\"[[[","c":"\\"})", 1));
  EXPECT_FALSE(nestsWithin(R"({"a":"\\","b":[]})", 1));
  EXPECT_TRUE(nestsWithin(nested(64), 64));
  EXPECT_FALSE(nestsWithin(nested(65), 64));
  // Siblings do not add up.
  EXPECT_TRUE(nestsWithin("[[],[],[[]],[]]", 3));
  // Bounded by the text, not its depth: a million levels is one pass.
  EXPECT_FALSE(nestsWithin(nested(1'000'000), 64));
}

TEST(JsonScan, PathTooDeepNamesWhereTheLimitIsPassed) {
  EXPECT_EQ(pathTooDeep(R"({"event_type":"x","properties":{"x":[[1]]}})", 3), "properties.x[0]");
  EXPECT_EQ(pathTooDeep(R"([{"a":1},{"b":{"c":{}}}])", 3), "[1].b.c");
  EXPECT_EQ(pathTooDeep(R"({"k\"[":{"z":[]}})", 2), "k\\\"[.z");
  const auto long_path = pathTooDeep(nested(100'000), 64);
  EXPECT_LE(long_path.size(), kMaxPathLength + 3);
  EXPECT_EQ(long_path.substr(0, 6), "[0][0]");
  EXPECT_EQ(pathTooDeep("[[]]", 5), "");
}

TEST(JsonScan, HugeNumbersAreFoundByPath) {
  EXPECT_EQ(pathOfHugeNumber(R"({"properties":{"n":1e400}})"), "properties.n");
  EXPECT_EQ(pathOfHugeNumber(R"({"a":[1,2,-1E+400]})"), "a[2]");
  EXPECT_EQ(pathOfHugeNumber("{\"big\":" + std::string(400, '9') + "}"), "big");
  // Within range, or merely tiny, or inside a string: nothing.
  EXPECT_EQ(pathOfHugeNumber(R"({"a":1e308,"b":1e-400,"c":"1e400","d":18446744073709551616})"), std::nullopt);
}

TEST(JsonScan, ArrayElementsAreSplitAtTheTopLevelOnly) {
  const auto items = arrayElements(R"( [ {"a":[1,2]} , "x,]" ,3 ] )");
  ASSERT_TRUE(items);
  ASSERT_EQ(items->size(), 3u);
  EXPECT_EQ((*items)[0], R"({"a":[1,2]})");
  EXPECT_EQ((*items)[1], R"("x,]")");
  EXPECT_EQ((*items)[2], "3");
  EXPECT_EQ(arrayElements("[]")->size(), 0u);
  EXPECT_FALSE(arrayElements(R"({"a":1})"));
  EXPECT_FALSE(arrayElements("[1,2"));
  EXPECT_FALSE(arrayElements("[1] 2"));
}
