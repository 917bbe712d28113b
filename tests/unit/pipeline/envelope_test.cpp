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

// What the original EventFlow's producer sends: datetime.utcnow().isoformat().
TEST(Envelope, NaiveTimestampIsTakenAsUtc) {
  for (const auto& [sent, stored] : std::vector<std::pair<std::string, std::string>>{
           {"2026-12-04T23:55:14.898123", "2026-12-04T23:55:14.898Z"},
           {"2026-12-04T23:55:14", "2026-12-04T23:55:14.000Z"},
           {"2026-12-04T23:55:14.123456789", "2026-12-04T23:55:14.123Z"},
           {"2026-12-04 23:55:14.5", "2026-12-04T23:55:14.500Z"}}) {
    auto doc = nlohmann::json{{"event_type", "purchase"}, {"timestamp", sent}};
    Envelope env;
    ASSERT_FALSE(check(doc, env)) << sent;
    EXPECT_EQ(doc["timestamp"], stored) << sent;
    EXPECT_TRUE(env.rewritten);
  }
}

TEST(Envelope, ZonedTimestampIsKeptAsSent) {
  auto doc = nlohmann::json{{"event_type", "x"}, {"event_id", "0b6b1a5e-4c0d-4f7e-9a51-3e2f3f1c2d4e"},
                            {"timestamp", "2026-12-04T23:55:14.898123Z"}};
  Envelope env;
  ASSERT_FALSE(check(doc, env));
  EXPECT_EQ(doc["timestamp"], "2026-12-04T23:55:14.898123Z");
  EXPECT_FALSE(env.rewritten);
}

TEST(Envelope, NaiveTimestampRefusedWhenConfiguredToReject) {
  auto doc = nlohmann::json{{"event_type", "x"}, {"timestamp", "2026-12-04T23:55:14.898123"}};
  Envelope env;
  auto err = checkEnvelope(doc, kNow, "c", env, {.naive_timestamps_utc = false});
  ASSERT_TRUE(err);
  EXPECT_EQ(err->field, "timestamp");
  EXPECT_NE(err->message.find("naive_timestamps"), std::string::npos) << err->message;
}

TEST(Envelope, NaiveTimestampShapesThatAreStillRefused) {
  for (const char* bad : {"2026-12-04T23:55:14.", "2026-12-04T23:55:14.1234567890", "2026-12-04T23:55",
                          "2026-12-04", "2026-13-04T23:55:14", "2026-12-04T23:55:14.12a", "2026-12-04T23:55:14 "}) {
    auto doc = nlohmann::json{{"event_type", "x"}, {"timestamp", bad}};
    Envelope env;
    auto err = check(doc, env);
    ASSERT_TRUE(err) << bad;
    EXPECT_EQ(err->field, "timestamp") << bad;
  }
}

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
