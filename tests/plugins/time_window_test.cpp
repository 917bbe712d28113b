#include <chrono>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include <eventflow/time.hpp>

#include <eventflow/testing.hpp>
#include "time_window.hpp"

namespace eventflow::plugins {
namespace {

using namespace std::chrono_literals;
using eventflow::testing::FakeContext;
using eventflow::testing::makeEvent;

nlohmann::json at(std::chrono::system_clock::duration from_now) {
  return {{"event_type", "page_view"}, {"timestamp", formatRfc3339(std::chrono::system_clock::now() + from_now)}};
}

class TimeWindowTest : public ::testing::Test {
 protected:
  FakeContext context_;
  TimeWindowValidator validator_{{{"max_age", "7d"}, {"max_future", "0s"}}, context_};
};

TEST_F(TimeWindowTest, AcceptsRecentTimestamp) {
  const Result result = validator_.check(makeEvent(at(-1h)));
  EXPECT_TRUE(result.isOk()) << result.reason();
}

TEST_F(TimeWindowTest, RejectsFutureTimestamp) {
  const Result result = validator_.check(makeEvent(at(1h)));
  EXPECT_EQ(result.status(), Result::Status::reject);
  EXPECT_EQ(result.errorType(), "validation");
  EXPECT_NE(result.reason().find("max_future"), std::string::npos) << result.reason();
}

TEST_F(TimeWindowTest, RejectsTooOldTimestamp) {
  const Result result = validator_.check(makeEvent(at(-8 * 24h)));
  EXPECT_EQ(result.status(), Result::Status::reject);
  EXPECT_NE(result.reason().find("max_age"), std::string::npos) << result.reason();
  EXPECT_EQ(validator_.check(makeEvent({{"timestamp", "2000-01-01T00:00:00Z"}})).status(), Result::Status::reject);
}

// The instant now + from_now, written in local time at a UTC offset of `hours`.
std::string withOffset(std::chrono::system_clock::duration from_now, int hours) {
  std::string text = formatRfc3339(std::chrono::system_clock::now() + from_now + std::chrono::hours(hours));
  text.pop_back();
  text += (hours < 0 ? "-0" : "+0") + std::to_string(std::abs(hours)) + ":00";
  return text;
}

TEST_F(TimeWindowTest, HonoursUtcOffset) {
  const auto past = withOffset(-1h, 2);
  const auto future = withOffset(1h, -2);
  EXPECT_TRUE(validator_.check(makeEvent({{"timestamp", past}})).isOk()) << past;
  EXPECT_EQ(validator_.check(makeEvent({{"timestamp", future}})).status(), Result::Status::reject) << future;
}

TEST_F(TimeWindowTest, RejectsMissingOrMalformedTimestamp) {
  EXPECT_EQ(validator_.check(makeEvent({{"event_type", "x"}})).status(), Result::Status::reject);
  EXPECT_EQ(validator_.check(makeEvent({{"timestamp", 1700000000}})).status(), Result::Status::reject);
  const Result result = validator_.check(makeEvent({{"timestamp", "yesterday"}}));
  EXPECT_EQ(result.status(), Result::Status::reject);
  EXPECT_NE(result.reason().find("RFC 3339"), std::string::npos) << result.reason();
}

TEST_F(TimeWindowTest, MeasuresAgeFromReceiptSoReplaysAreNotTooOld) {
  const auto received = std::chrono::system_clock::now() - 30 * 24h;
  Event replayed = makeEvent({{"timestamp", formatRfc3339(received - 1h)}});
  replayed.received_at = received;
  const Result ok = validator_.check(replayed);
  EXPECT_TRUE(ok.isOk()) << ok.reason();

  Event stale = makeEvent({{"timestamp", formatRfc3339(received - 8 * 24h)}});
  stale.received_at = received;
  EXPECT_EQ(validator_.check(stale).status(), Result::Status::reject);
}

TEST(TimeWindowConfig, UnsetBoundsAreUnbounded) {
  FakeContext context;
  TimeWindowValidator validator(nlohmann::json::object(), context);
  EXPECT_TRUE(validator.check(makeEvent(at(24h * 365))).isOk());
  EXPECT_TRUE(validator.check(makeEvent({{"timestamp", "1990-01-01T00:00:00Z"}})).isOk());
}

TEST(TimeWindowConfig, ReadsConfiguredField) {
  FakeContext context;
  TimeWindowValidator validator({{"field", "meta.sent_at"}, {"max_future", "5m"}}, context);
  const auto soon = formatRfc3339(std::chrono::system_clock::now() + 1min);
  const auto later = formatRfc3339(std::chrono::system_clock::now() + 1h);
  EXPECT_TRUE(validator.check(makeEvent({{"meta", {{"sent_at", soon}}}})).isOk());
  EXPECT_EQ(validator.check(makeEvent({{"meta", {{"sent_at", later}}}})).status(), Result::Status::reject);
  EXPECT_EQ(validator.check(makeEvent({{"timestamp", soon}})).status(), Result::Status::reject);
}

TEST(TimeWindowConfig, RefusesBadDuration) {
  FakeContext context;
  EXPECT_THROW(TimeWindowValidator({{"max_age", "a week"}}, context), std::invalid_argument);
  EXPECT_THROW(TimeWindowValidator({{"max_future", 30}}, context), std::invalid_argument);
}

}  // namespace
}  // namespace eventflow::plugins
