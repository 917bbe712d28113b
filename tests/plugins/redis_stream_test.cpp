// Against the real Redis that scripts/test starts (EVENTFLOW_TEST_REDIS_URL).

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include <Poco/Net/ServerSocket.h>
#include <Poco/Redis/Array.h>
#include <Poco/Redis/Client.h>
#include <Poco/URI.h>

#include "plugin_test.hpp"
#include "redis_stream.hpp"
#include "schema_check.hpp"

namespace eventflow::plugins {
namespace {

using test::FakeContext;
using test::eventId;
using test::makeEvent;
using test::writeBatch;
using Poco::Redis::Array;

std::vector<Event> events(int first, int count) {
  std::vector<Event> out;
  for (int n = first; n < first + count; ++n) {
    out.push_back(makeEvent({{"event_type", "purchase"}, {"n", n}}, eventId(n)));
    out.back().pipeline = "purchases";
  }
  return out;
}

class RedisStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("EVENTFLOW_TEST_REDIS_URL");
    ASSERT_TRUE(url != nullptr && *url != '\0')
        << "EVENTFLOW_TEST_REDIS_URL is not set: this test needs a real Redis. Run it through scripts/test, which "
           "starts one (or scripts/start-services DIR; source DIR/env).";
    url_ = url;
    const Poco::URI uri(url_);
    admin_.connect(uri.getHost(), uri.getPort());
    stream_ = "eventflow-test:" + std::to_string(::getpid()) + ":" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
    cleanup();
  }
  void TearDown() override {
    if (admin_.isConnected()) cleanup();
  }
  void cleanup() {
    Array keys;
    keys << "KEYS" << stream_ + "*";
    const auto found = admin_.execute<Array>(keys);
    for (std::size_t i = 0; !found.isNull() && i < found.size(); ++i) {
      Array del;
      del << "DEL" << found.get<Poco::Redis::BulkString>(i).value();
      admin_.execute<Poco::Int64>(del);
    }
  }
  nlohmann::json config(nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json c = {{"url", url_}, {"stream", stream_}};
    c.update(extra);
    return c;
  }
  Poco::Int64 length() {
    Array xlen;
    xlen << "XLEN" << stream_;
    return admin_.execute<Poco::Int64>(xlen);
  }
  std::string refused(const nlohmann::json& c) { return test::refusal<RedisStreamSink>(c, context_); }

  std::string url_;
  std::string stream_;
  Poco::Redis::Client admin_;
  FakeContext context_;
};

TEST_F(RedisStreamTest, AddsEachEventWithItsIdTypePipelineAndBody) {
  RedisStreamSink sink(config(), context_);
  auto batch = events(0, 3);
  for (const auto& r : writeBatch(sink, batch)) EXPECT_TRUE(r.isOk()) << r.reason();
  Array range;
  range << "XRANGE" << stream_ << "-" << "+";
  const auto entries = admin_.execute<Array>(range);
  ASSERT_EQ(entries.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto fields = entries.get<Array>(i).get<Array>(1);
    ASSERT_EQ(fields.size(), 8u);
    std::map<std::string, std::string> got;
    for (std::size_t k = 0; k < 8; k += 2)
      got[fields.get<Poco::Redis::BulkString>(k).value()] = fields.get<Poco::Redis::BulkString>(k + 1).value();
    EXPECT_EQ(got["event_id"], eventId(static_cast<int>(i)));
    EXPECT_EQ(got["event_type"], "purchase");
    EXPECT_EQ(got["pipeline"], "purchases");
    EXPECT_EQ(nlohmann::json::parse(got["body"]), batch[i].body);
  }
}

TEST_F(RedisStreamTest, ARedeliveredEventIsNotAddedAgainWithinTheWindow) {
  RedisStreamSink first(config({{"dedupe_window", "10m"}}), context_);
  RedisStreamSink second(config({{"dedupe_window", "10m"}}), context_);  // another worker
  auto batch = events(0, 5);
  for (const auto& r : writeBatch(first, batch)) EXPECT_TRUE(r.isOk());
  auto again = events(3, 4);  // 3 and 4 again, 5 and 6 new
  for (const auto& r : writeBatch(second, again)) EXPECT_TRUE(r.isOk());
  EXPECT_EQ(length(), 7);
  EXPECT_EQ(context_.counts["redis_stream_duplicates"], 2);
  Array ttl;
  ttl << "TTL" << stream_ + ":dedupe:" + eventId(3);
  const auto seconds = admin_.execute<Poco::Int64>(ttl);
  EXPECT_GT(seconds, 590);
  EXPECT_LE(seconds, 600);
}

TEST_F(RedisStreamTest, MaxlenTrimsAboutOrExactly) {
  RedisStreamSink about(config({{"maxlen", 100}}), context_);
  auto batch = events(0, 1000);
  for (const auto& r : writeBatch(about, batch)) ASSERT_TRUE(r.isOk());
  EXPECT_GE(length(), 100);
  EXPECT_LT(length(), 1000);
  RedisStreamSink exact(config({{"maxlen", 100}, {"exact_maxlen", true}}), context_);
  auto more = events(1000, 10);
  for (const auto& r : writeBatch(exact, more)) ASSERT_TRUE(r.isOk());
  EXPECT_EQ(length(), 100);
}

TEST_F(RedisStreamTest, RedisDownIsARetryNamingTheServer) {
  int port = 0;
  {
    Poco::Net::ServerSocket probe(0);  // a port nothing listens on once closed
    port = probe.address().port();
  }
  RedisStreamSink sink(config({{"url", "redis://:secret@127.0.0.1:" + std::to_string(port)}, {"timeout", "1s"}}),
                       context_);
  auto batch = events(0, 2);
  const auto results = writeBatch(sink, batch);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.status(), Result::Status::retry);
    EXPECT_EQ(r.errorType(), "sink_unavailable");
    EXPECT_NE(r.reason().find("redis://127.0.0.1:" + std::to_string(port) + ": "), std::string::npos) << r.reason();
    EXPECT_EQ(r.reason().find("secret"), std::string::npos) << "no password in reasons";
  }
}

TEST_F(RedisStreamTest, ADroppedConnectionOrAFlushedScriptIsRecoveredWithinTheWrite) {
  // The sink logs in as a user of its own, so killing that user's
  // connections drops this sink's and no other test's: ctest runs other
  // programs against the same Redis at the same time.
  const std::string user = "eftest-" + std::to_string(::getpid());
  Array create;
  create << "ACL" << "SETUSER" << user << "reset" << "on" << ">pw" << "~*" << "&*" << "+@all";
  ASSERT_EQ(admin_.execute<std::string>(create), "OK");
  struct DropUser {
    Poco::Redis::Client& admin;
    std::string user;
    ~DropUser() {
      Array drop;
      drop << "ACL" << "DELUSER" << user;
      if (admin.isConnected()) admin.execute<Poco::Int64>(drop);
    }
  } dropUser{admin_, user};
  const Poco::URI uri(url_);
  RedisStreamSink sink(config({{"url", "redis://" + user + ":pw@" + uri.getHost() + ":" + std::to_string(uri.getPort())}}),
                       context_);
  auto batch = events(0, 2);
  for (const auto& r : writeBatch(sink, batch)) ASSERT_TRUE(r.isOk()) << r.reason();
  Array kill;
  kill << "CLIENT" << "KILL" << "USER" << user;
  ASSERT_EQ(admin_.execute<Poco::Int64>(kill), 1) << "the sink's one connection";
  auto next = events(2, 2);
  for (const auto& r : writeBatch(sink, next)) EXPECT_TRUE(r.isOk()) << r.reason();
  // Other programs' sinks get NOSCRIPT too, and recover the same way.
  Array flush;
  flush << "SCRIPT" << "FLUSH";
  admin_.execute<std::string>(flush);
  auto last = events(3, 2);  // 3 again, and 4
  for (const auto& r : writeBatch(sink, last)) EXPECT_TRUE(r.isOk()) << r.reason();
  EXPECT_EQ(length(), 5);
}

TEST_F(RedisStreamTest, AnErrorReplyIsARetryOfItsEvent) {
  Array set;
  set << "SET" << stream_ << "not a stream";
  admin_.execute<std::string>(set);
  RedisStreamSink sink(config(), context_);
  auto batch = events(0, 1);
  const auto results = writeBatch(sink, batch);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status(), Result::Status::retry);
  EXPECT_EQ(results[0].errorType(), "sink_error");
  EXPECT_NE(results[0].reason().find("WRONGTYPE"), std::string::npos) << results[0].reason();
}

TEST_F(RedisStreamTest, RefusesBadConfigsWithoutConnecting) {
  EXPECT_NE(refused(config({{"url", "http://x"}})).find("url must be redis://"), std::string::npos);
  EXPECT_NE(refused(config({{"url", "redis://x/abc"}})).find("/abc is not a database number"), std::string::npos);
  EXPECT_NE(refused(config({{"dedupe_window", "0s"}})).find("dedupe_window \"0s\" is not a duration from 1s"),
            std::string::npos);
  EXPECT_NE(refused(config({{"maxlen", -5}})).find("maxlen must be 0 or more"), std::string::npos);
  EXPECT_NE(refused({{"url", url_}}).find("stream is required"), std::string::npos);
  // A server that does not exist is no config error: connecting waits for
  // the first write.
  EXPECT_EQ(refused(config({{"url", "redis://no-such-host.invalid:1"}})), "accepted");

  const test::SchemaCheck schema(kRedisStreamConfigSchema);
  EXPECT_TRUE(schema.valid(config({{"maxlen", 100000}, {"dedupe_window", "1h"}, {"timeout", "2s"}})));
  EXPECT_FALSE(schema.valid({{"url", url_}}));
  EXPECT_FALSE(schema.valid(config({{"url", "rediss://x"}})));
  EXPECT_FALSE(schema.valid(config({{"maxlen", "~1000"}})));
  EXPECT_FALSE(schema.valid(config({{"dedupe_window", 60}})));
}

}  // namespace
}  // namespace eventflow::plugins
