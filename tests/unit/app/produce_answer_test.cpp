// produce reads the per-item status codes of a batch answer to count what
// the host took (issue 13). Hostile and odd answers fall back to an empty
// list, which makes produce count the request as a whole.

#include <gtest/gtest.h>

#include <string>

#include "app/produce_load.hpp"

using eventflow::app::batchItemStatuses;

TEST(BatchItemStatuses, ReadsEachItemsCodeInOrder) {
  const std::string body =
      R"({"accepted":2,"rejected":1,"results":[{"event_id":"a","status":"accepted","status_code":202},)"
      R"({"error":"queue full","status_code":503},{"event_id":"b","status":"duplicate","status_code":200}]})";
  EXPECT_EQ(batchItemStatuses(body), (std::vector<int>{202, 503, 200}));
}

TEST(BatchItemStatuses, AKeyQuotedInsideAMessageIsNotAnItem) {
  // The host escapes the quotes of any text it echoes.
  const std::string body =
      R"({"accepted":0,"rejected":1,"results":[{"error":"bad field \"status_code\":500","status_code":422}]})";
  EXPECT_EQ(batchItemStatuses(body), (std::vector<int>{422}));
}

TEST(BatchItemStatuses, AnythingElseIsEmpty) {
  for (const std::string& body : {std::string(), std::string("not json"), std::string(R"({"status_code":202})"),
                                 std::string(R"({"results":[{"status_code":)"),
                                 std::string(R"({"results":[{"status_code":x}]})"),
                                 std::string(R"({"results":[{"status_code":99999999999999999999}]})"),
                                 std::string(R"({"results":[]})"), std::string(1 << 16, '\0')})
    EXPECT_TRUE(batchItemStatuses(body).empty()) << body.substr(0, 60);
}
