// How ingest outcomes become answers (host/http/ingest_reply.cpp): the single
// post's status and body, and the batch's per-item results in order.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "http/ingest_reply.hpp"

using namespace eventflow;
using namespace eventflow::http;
using runtime::IngestOutcome;

namespace {

runtime::IngestResult result(IngestOutcome outcome) {
  runtime::IngestResult r;
  r.outcome = outcome;
  r.event_id = "0190a0e0-0000-7000-8000-000000000001";
  r.pipeline = "activity";
  r.event_type = "page_view";
  return r;
}

nlohmann::json parsed(const Reply& r) { return nlohmann::json::parse(r.body); }

}  // namespace

TEST(IngestReply, EachOutcomeHasItsStatusAndBody) {
  const std::string at = "2026-12-06T00:00:00.000Z";
  auto accepted = singleReply(result(IngestOutcome::accepted), at);
  EXPECT_EQ(accepted.status, 202);
  EXPECT_EQ(parsed(accepted), (nlohmann::json{{"event_id", "0190a0e0-0000-7000-8000-000000000001"},
                                              {"pipeline", "activity"},
                                              {"received_at", at},
                                              {"status", "accepted"}}));
  auto duplicate = singleReply(result(IngestOutcome::duplicate), at);
  EXPECT_EQ(duplicate.status, 200);
  EXPECT_EQ(parsed(duplicate)["status"], "duplicate");
  auto conflict = singleReply(result(IngestOutcome::conflict), at);
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(parsed(conflict)["error"]["field"], "event_id");
  auto invalid = result(IngestOutcome::invalid);
  invalid.invalid = {"invalid_envelope", "event_type is required", "event_type"};
  EXPECT_EQ(singleReply(invalid, at).status, 422);
  EXPECT_EQ(parsed(singleReply(invalid, at))["error"]["message"], "event_type is required");
  auto no_pipeline = singleReply(result(IngestOutcome::no_pipeline), at);
  EXPECT_EQ(no_pipeline.status, 422);
  EXPECT_EQ(parsed(no_pipeline)["error"]["message"], "no pipeline matches event_type 'page_view'");
  for (auto outcome : {IngestOutcome::overloaded, IngestOutcome::unavailable}) {
    auto busy = singleReply(result(outcome), at);
    EXPECT_EQ(busy.status, 503);
    EXPECT_EQ(busy.retry_after, "1");
  }
  EXPECT_TRUE(accepted.retry_after.empty());
}

TEST(IngestReply, AcceptedAnswersEscapeWhatTheyQuote) {
  auto r = result(IngestOutcome::accepted);
  r.pipeline = "a\"b\\c\x01\xff";  // a pipeline name is whatever its YAML held
  const auto reply = singleReply(r, "t");
  const auto j = nlohmann::json::parse(reply.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << reply.body;
  EXPECT_EQ(j["pipeline"].get<std::string>().substr(0, 6), "a\"b\\c\x01");
}

TEST(IngestReply, ABatchAnswersEveryItemInOrderWithItsStatusCode) {
  runtime::IngestAnswer answer{{result(IngestOutcome::accepted), result(IngestOutcome::no_pipeline)}, "t"};
  // Items 0 and 2 reached ingest; item 1 did not parse.
  std::vector<std::optional<Reply>> refused(3);
  refused[1] = error(400, "malformed_json", "item 1 is not valid JSON");
  const auto reply = batchReply(answer, {0, 2}, refused, 3);
  EXPECT_EQ(reply.status, 202);
  const auto j = parsed(reply);
  EXPECT_EQ(j["accepted"], 1);
  EXPECT_EQ(j["rejected"], 2);
  ASSERT_EQ(j["results"].size(), 3u);
  EXPECT_EQ(j["results"][0]["status_code"], 202);
  EXPECT_EQ(j["results"][0]["status"], "accepted");
  EXPECT_EQ(j["results"][1]["status_code"], 400);
  EXPECT_EQ(j["results"][1]["error"]["code"], "malformed_json");
  EXPECT_EQ(j["results"][2]["status_code"], 422);
  EXPECT_EQ(j["results"][2]["error"]["code"], "no_pipeline");
}

TEST(IngestReply, ABatchIs503OnlyWhenNothingWasAcceptedAndTheStoreWasDown) {
  runtime::IngestAnswer down{{result(IngestOutcome::unavailable), result(IngestOutcome::unavailable)}, "t"};
  const auto all_down = batchReply(down, {0, 1}, std::vector<std::optional<Reply>>(2), 2);
  EXPECT_EQ(all_down.status, 503);
  EXPECT_EQ(all_down.retry_after, "1");
  runtime::IngestAnswer some{{result(IngestOutcome::duplicate), result(IngestOutcome::unavailable)}, "t"};
  const auto partly = batchReply(some, {0, 1}, std::vector<std::optional<Reply>>(2), 2);
  EXPECT_EQ(partly.status, 202);
  EXPECT_EQ(partly.retry_after, "1");
  runtime::IngestAnswer invalid{{result(IngestOutcome::no_pipeline)}, "t"};
  EXPECT_EQ(batchReply(invalid, {0}, std::vector<std::optional<Reply>>(1), 1).status, 202);
}
