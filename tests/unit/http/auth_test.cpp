// authorize (host/http/auth.cpp): which keys may use which scope, and how a
// key is read from a request.

#include <gtest/gtest.h>

#include "base/ids.hpp"
#include "http/auth.hpp"

using namespace eventflow;
using namespace eventflow::http;

namespace {

std::vector<config::ApiKey> keys() {
  return {{"ci", sha256Hex("ingest-key"), {"ingest"}, std::nullopt},
          {"ops", sha256Hex("admin-key"), {"admin"}, std::nullopt},
          {"prom", sha256Hex("metrics-key"), {"metrics"}, std::nullopt}};
}

Request withHeader(const std::string& name, const std::string& value) {
  Request req;
  if (!name.empty()) req.set(name, value);
  return req;
}

int statusOf(const std::optional<Reply>& r) { return r ? r->status : 0; }

}  // namespace

TEST(Authorize, WithoutKeysConfiguredEveryoneMay) {
  EXPECT_FALSE(authorize({}, withHeader("", ""), "admin"));
}

TEST(Authorize, AnOpenRouteNeedsNoKey) {
  EXPECT_FALSE(authorize(keys(), withHeader("", ""), ""));
}

TEST(Authorize, TheKeyComesAsBearerInAnyCaseOrAsXApiKey) {
  EXPECT_FALSE(authorize(keys(), withHeader("Authorization", "Bearer ingest-key"), "ingest"));
  EXPECT_FALSE(authorize(keys(), withHeader("Authorization", "bearer ingest-key"), "ingest"));
  EXPECT_FALSE(authorize(keys(), withHeader("Authorization", "BEARER  ingest-key"), "ingest"));
  EXPECT_FALSE(authorize(keys(), withHeader("X-API-Key", "ingest-key"), "ingest"));
  // Another scheme is no key at all.
  EXPECT_EQ(statusOf(authorize(keys(), withHeader("Authorization", "Basic aW5nZXN0LWtleQ=="), "ingest")), 401);
}

TEST(Authorize, MissingOrUnknownKeyIs401WrongScopeIs403) {
  const auto missing = authorize(keys(), withHeader("", ""), "ingest");
  ASSERT_EQ(statusOf(missing), 401);
  EXPECT_NE(missing->body.find("an API key is required"), std::string::npos) << missing->body;
  const auto unknown = authorize(keys(), withHeader("X-API-Key", "guess"), "ingest");
  ASSERT_EQ(statusOf(unknown), 401);
  EXPECT_NE(unknown->body.find("unknown API key"), std::string::npos);
  const auto forbidden = authorize(keys(), withHeader("X-API-Key", "ingest-key"), "admin");
  ASSERT_EQ(statusOf(forbidden), 403);
  EXPECT_NE(forbidden->body.find("key 'ci' lacks the 'admin' scope"), std::string::npos) << forbidden->body;
}

TEST(Authorize, AdminAlsoReadsMetricsButMetricsIsNotAdmin) {
  EXPECT_FALSE(authorize(keys(), withHeader("X-API-Key", "admin-key"), "metrics"));
  EXPECT_FALSE(authorize(keys(), withHeader("X-API-Key", "metrics-key"), "metrics"));
  EXPECT_EQ(statusOf(authorize(keys(), withHeader("X-API-Key", "metrics-key"), "admin")), 403);
  EXPECT_EQ(statusOf(authorize(keys(), withHeader("X-API-Key", "admin-key"), "ingest")), 403);
  EXPECT_EQ(statusOf(authorize(keys(), withHeader("X-API-Key", "ingest-key"), "metrics")), 403);
}

TEST(Authorize, TellsWhichKeyMatchedSoItsRateLimitApplies) {
  std::size_t matched = 99;
  EXPECT_FALSE(authorize(keys(), withHeader("X-API-Key", "admin-key"), "admin", &matched));
  EXPECT_EQ(matched, 1u);
  EXPECT_FALSE(authorize(keys(), withHeader("Authorization", "Bearer ingest-key"), "ingest", &matched));
  EXPECT_EQ(matched, 0u);
  matched = 99;
  EXPECT_EQ(statusOf(authorize(keys(), withHeader("X-API-Key", "ingest-key"), "admin", &matched)), 403);
  EXPECT_EQ(matched, 99u) << "a refused key is no match";
  EXPECT_FALSE(authorize({}, withHeader("", ""), "ingest", &matched));
  EXPECT_EQ(matched, 99u) << "no keys configured: nothing to match";
}
