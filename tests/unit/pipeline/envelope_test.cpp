#include <gtest/gtest.h>

#include "pipeline/envelope.hpp"

using namespace eventflow;
using pipeline::checkEnvelope;
using pipeline::Envelope;

namespace {
const auto kNow = *parseRfc3339("2026-11-25T10:00:00Z");

std::optional<pipeline::EnvelopeError> check(nlohmann::json& doc, Envelope& env) {
  return checkEnvelope(doc, kNow, "corr-from-header", env);
}
}  // namespace

TEST(Envelope, FillsEventIdTimestampAndCorrelation) {
  auto doc = nlohmann::json{{"event_type", "purchase"}, {"properties", {{"amount", 5}}}};
  Envelope env;
  ASSERT_FALSE(check(doc, env));
  EXPECT_EQ(env.type, "purchase");
  EXPECT_EQ(env.id.size(), 36u);
  EXPECT_EQ(doc["event_id"], env.id);
  EXPECT_EQ(doc["timestamp"], "2026-11-25T10:00:00.000Z");
  EXPECT_EQ(env.correlation_id, "corr-from-header");
}

TEST(Envelope, KeepsClientValues) {
  auto doc = nlohmann::json{{"event_type", "x"},
                            {"event_id", "0b6b1a5e-4c0d-4f7e-9a51-3e2f3f1c2d4e"},
                            {"timestamp", "2026-01-01T00:00:00+02:00"},
                            {"correlation_id", "abc"},
                            {"extra", {1, 2}}};
  Envelope env;
  ASSERT_FALSE(check(doc, env));
  EXPECT_EQ(env.id, "0b6b1a5e-4c0d-4f7e-9a51-3e2f3f1c2d4e");
  EXPECT_EQ(doc["timestamp"], "2026-01-01T00:00:00+02:00");
  EXPECT_EQ(env.correlation_id, "abc");
  EXPECT_EQ(doc["extra"], nlohmann::json({1, 2}));
}

struct BadCase {
  const char* json;
  const char* field;
};

class EnvelopeRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(EnvelopeRejects, NamesTheField) {
  auto doc = nlohmann::json::parse(GetParam().json);
  Envelope env;
  auto err = check(doc, env);
  ASSERT_TRUE(err) << GetParam().json;
  EXPECT_EQ(err->code, "invalid_envelope");
  EXPECT_EQ(err->field, GetParam().field);
  EXPECT_FALSE(err->message.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, EnvelopeRejects,
    ::testing::Values(BadCase{R"([1,2])", ""}, BadCase{R"({"user_id":"u"})", "event_type"},
                      BadCase{R"({"event_type":7})", "event_type"}, BadCase{R"({"event_type":""})", "event_type"},
                      BadCase{R"({"event_type":"x","event_id":"not-a-uuid"})", "event_id"},
                      BadCase{R"({"event_type":"x","event_id":12})", "event_id"},
                      BadCase{R"({"event_type":"x","timestamp":"yesterday"})", "timestamp"},
                      BadCase{R"({"event_type":"x","timestamp":1700000000})", "timestamp"},
                      BadCase{R"({"event_type":"x","user_id":{"a":1}})", "user_id"},
                      BadCase{R"({"event_type":"x","properties":[1]})", "properties"},
                      BadCase{R"({"event_type":"x","correlation_id":5})", "correlation_id"}));

// One UUID in either case is one event (issue 11): kept in lower case.
TEST(Envelope, EventIdIsKeptInLowerCase) {
  auto doc = nlohmann::json{{"event_type", "x"}, {"event_id", "0B6B1A5E-4C0D-4F7E-9A51-3E2F3F1C2D4E"}};
  Envelope env;
  ASSERT_FALSE(check(doc, env));
  EXPECT_EQ(env.id, "0b6b1a5e-4c0d-4f7e-9a51-3e2f3f1c2d4e");
  EXPECT_EQ(doc["event_id"], env.id);
  EXPECT_FALSE(pipeline::canonicaliseEventId(doc));
  auto not_uuid = nlohmann::json{{"event_type", "x"}, {"event_id", "ABC"}};
  EXPECT_FALSE(pipeline::canonicaliseEventId(not_uuid));
  EXPECT_EQ(not_uuid["event_id"], "ABC");
}
