#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/StreamCopier.h>
#include <Poco/Timespan.h>
#include <Poco/Timestamp.h>
#include <gtest/gtest.h>

#include <eventflow/testing.hpp>
#include "http.hpp"
#include "schema_check.hpp"

namespace eventflow::plugins {
namespace {

using namespace std::chrono_literals;
using eventflow::testing::FakeContext;
using eventflow::testing::makeEvent;

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' is not in '" << text << "'";
}

std::string lower(std::string text) {
  for (char& c : text)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return text;
}

// What the test server answers to one request.
struct Answer {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds delay{0};
};

Answer answer(int status, std::string body = {}, std::vector<std::pair<std::string, std::string>> headers = {},
              std::chrono::milliseconds delay = 0ms) {
  return Answer{status, std::move(body), std::move(headers), delay};
}

// One request as the test server received it.
struct Seen {
  std::string method;
  std::string uri;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::uint16_t client_port = 0;
};

// The requests seen and the answers still to give, shared by the server's
// handler threads and the test. Without a scripted answer the server says 200.
class Script {
 public:
  void add(Answer answer) {
    const std::lock_guard lock(mutex_);
    answers_.push_back(std::move(answer));
  }

  Answer next(Seen seen) {
    const std::lock_guard lock(mutex_);
    seen_.push_back(std::move(seen));
    if (answers_.empty()) return {};
    Answer answer = std::move(answers_.front());
    answers_.pop_front();
    return answer;
  }

  std::vector<Seen> seen() const {
    const std::lock_guard lock(mutex_);
    return seen_;
  }

  // Sleeps for `delay`, or until the test ends.
  void pause(std::chrono::milliseconds delay) {
    std::unique_lock lock(mutex_);
    stopped_.wait_for(lock, delay, [&] { return stopping_; });
  }

  void stop() {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
    stopped_.notify_all();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable stopped_;
  std::deque<Answer> answers_;
  std::vector<Seen> seen_;
  bool stopping_ = false;
};

class ScriptedHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit ScriptedHandler(Script& script) : script_(script) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) override {
    Seen seen;
    seen.method = request.getMethod();
    seen.uri = request.getURI();
    for (const auto& [name, value] : request) seen.headers[lower(name)] = value;
    Poco::StreamCopier::copyToString(request.stream(), seen.body);
    seen.client_port = request.clientAddress().port();
    const Answer reply = script_.next(std::move(seen));
    if (reply.delay > 0ms) script_.pause(reply.delay);
    response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(reply.status));
    for (const auto& [name, value] : reply.headers) response.set(name, value);
    response.setContentLength(static_cast<std::streamsize>(reply.body.size()));
    response.send() << reply.body;
  }

 private:
  Script& script_;
};

class ScriptedFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit ScriptedFactory(Script& script) : script_(script) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new ScriptedHandler(script_);
  }

 private:
  Script& script_;
};

std::string uuid(int n) {
  const std::string digits = std::to_string(n);
  return "00000000-0000-4000-8000-" + std::string(12 - digits.size(), '0') + digits;
}

Event purchase(int n) {
  Event event = makeEvent({{"event_type", "purchase"}, {"properties", {{"amount", 100 * n}}}}, uuid(n));
  event.correlation_id = "corr-" + std::to_string(n);
  return event;
}

std::vector<Event> purchases(int count) {
  std::vector<Event> events;
  for (int n = 1; n <= count; ++n) events.push_back(purchase(n));
  return events;
}

std::vector<Result> writeAll(HttpSink& sink, std::vector<Event>& events) {
  std::vector<Event*> pointers;
  for (auto& event : events) pointers.push_back(&event);
  return sink.write(pointers);
}

class HttpSinkTest : public ::testing::Test {
 protected:
  // As in the host: a write to a connection the peer closed must fail, not
  // kill the process (the server side writes to such connections too).
  static void SetUpTestSuite() { std::signal(SIGPIPE, SIG_IGN); }

  void SetUp() override { startServer(Poco::Timespan(10, 0)); }

  void TearDown() override {
    script_.stop();
    if (server_) server_->stopAll(true);
  }

  void startServer(Poco::Timespan keep_alive) {
    if (server_) server_->stopAll(true);
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
    params->setKeepAliveTimeout(keep_alive);
    params->setMaxThreads(4);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new ScriptedFactory(script_), socket, params);
    server_->start();
    port_ = socket.address().port();
  }

  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  nlohmann::json config(nlohmann::json extra = nlohmann::json::object()) const {
    if (!extra.contains("url")) extra["url"] = url();
    return extra;
  }

  Script script_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  std::uint16_t port_ = 0;
  FakeContext context_;
};

TEST_F(HttpSinkTest, PostsTheBodyWithIdempotencyCorrelationAndConfiguredHeaders) {
  HttpSink sink(config({{"url", url("/hook?source=eventflow")},
                        {"headers", {{"Authorization", "Bearer s3cret"}, {"X-Tenant", "acme"}}}}),
                context_);
  std::vector<Event> events{purchase(7)};
  const auto results = writeAll(sink, events);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].isOk()) << results[0].reason();

  const auto seen = script_.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].uri, "/hook?source=eventflow");
  EXPECT_EQ(nlohmann::json::parse(seen[0].body), events[0].body);
  EXPECT_EQ(seen[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(seen[0].headers.at("idempotency-key"), uuid(7));
  EXPECT_EQ(seen[0].headers.at("x-correlation-id"), "corr-7");
  EXPECT_EQ(seen[0].headers.at("authorization"), "Bearer s3cret");
  EXPECT_EQ(seen[0].headers.at("x-tenant"), "acme");
}

TEST_F(HttpSinkTest, PutWithConfiguredContentType) {
  HttpSink sink(config({{"method", "PUT"}, {"headers", {{"Content-Type", "application/cloudevents+json"}}}}),
                context_);
  std::vector<Event> events{purchase(1)};
  EXPECT_TRUE(writeAll(sink, events).at(0).isOk());
  const auto seen = script_.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "PUT");
  EXPECT_EQ(seen[0].headers.at("content-type"), "application/cloudevents+json");
  EXPECT_EQ(seen[0].headers.at("idempotency-key"), uuid(1));
}

TEST_F(HttpSinkTest, SendsOneRequestPerEventOverOneConnection) {
  HttpSink sink(config(), context_);
  std::vector<Event> events = purchases(3);
  script_.add(answer(201));
  script_.add(answer(204));
  for (const auto& result : writeAll(sink, events)) EXPECT_TRUE(result.isOk()) << result.reason();
  std::vector<Event> more{purchase(4)};
  EXPECT_TRUE(writeAll(sink, more).at(0).isOk());

  const auto seen = script_.seen();
  ASSERT_EQ(seen.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(seen[i].headers.at("idempotency-key"), uuid(i + 1));
    EXPECT_EQ(seen[i].client_port, seen[0].client_port) << "request " << i << " came on a new connection";
  }
}

TEST_F(HttpSinkTest, ServerErrorIsRetryAndTheRestOfTheBatchIsNotSent) {
  HttpSink sink(config(), context_);
  script_.add(answer(500, "database down"));
  std::vector<Event> events = purchases(3);
  const auto results = writeAll(sink, events);
  ASSERT_EQ(results.size(), 3u);
  for (const auto& result : results) {
    EXPECT_EQ(result.status(), Result::Status::retry);
    EXPECT_EQ(result.errorType(), "http_status_500");
  }
  EXPECT_TRUE(contains(results[0].reason(), "HTTP 500 Internal Server Error"));
  EXPECT_TRUE(contains(results[0].reason(), "POST http://127.0.0.1:" + std::to_string(port_)));
  EXPECT_TRUE(contains(results[2].reason(), "not sent"));
  EXPECT_TRUE(contains(results[2].reason(), "HTTP 500"));
  EXPECT_EQ(script_.seen().size(), 1u);
}

TEST_F(HttpSinkTest, ClassifiesStatuses) {
  HttpSink sink(config(), context_);
  for (const int status : {408, 429, 502, 503, 504}) {
    script_.add(answer(status));
    std::vector<Event> events{purchase(status)};
    const auto results = writeAll(sink, events);
    EXPECT_EQ(results.at(0).status(), Result::Status::retry) << status;
    EXPECT_EQ(results.at(0).errorType(), "http_status_" + std::to_string(status));
  }
  for (const int status : {301, 401, 404, 409, 422}) {
    script_.add(answer(status));
    std::vector<Event> events{purchase(status)};
    const auto results = writeAll(sink, events);
    EXPECT_EQ(results.at(0).status(), Result::Status::reject) << status;
    EXPECT_EQ(results.at(0).errorType(), "http_status_" + std::to_string(status));
  }
  EXPECT_EQ(script_.seen().size(), 10u);
}

TEST_F(HttpSinkTest, ClientErrorIsRejectWithTheBodyAndTheBatchGoesOn) {
  HttpSink sink(config(), context_);
  const std::string body = "{\"error\":\n\"user_id is required\"," + std::string(300, 'x') + "}";
  script_.add(answer(400, body));
  std::vector<Event> events = purchases(2);
  const auto results = writeAll(sink, events);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status(), Result::Status::reject);
  EXPECT_EQ(results[0].errorType(), "http_status_400");
  EXPECT_TRUE(contains(results[0].reason(), "HTTP 400 Bad Request: {\"error\": \"user_id is required\","));
  // The first 200 bytes: 32 before the x's.
  EXPECT_TRUE(contains(results[0].reason(), std::string(168, 'x')));
  EXPECT_FALSE(contains(results[0].reason(), std::string(169, 'x')));
  EXPECT_TRUE(results[1].isOk()) << results[1].reason();

  const auto seen = script_.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].headers.at("idempotency-key"), uuid(2));
}

TEST_F(HttpSinkTest, ShortRetryAfterIsWaitedOutAndTheEventSentAgain) {
  HttpSink sink(config(), context_);
  script_.add(answer(429, "", {{"Retry-After", "1"}}));
  std::vector<Event> events{purchase(1)};
  const auto start = std::chrono::steady_clock::now();
  const auto results = writeAll(sink, events);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(results.at(0).isOk()) << results.at(0).reason();
  EXPECT_GE(waited, 950ms);

  const auto seen = script_.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].headers.at("idempotency-key"), uuid(1));
  EXPECT_EQ(seen[1].headers.at("idempotency-key"), uuid(1));
}

TEST_F(HttpSinkTest, RetryAfterIsHonouredOnceThenLeftToTheHost) {
  HttpSink sink(config(), context_);
  script_.add(answer(429, "", {{"Retry-After", "1"}}));
  script_.add(answer(429, "", {{"Retry-After", "1"}}));
  std::vector<Event> events = purchases(2);
  const auto results = writeAll(sink, events);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status(), Result::Status::retry);
  EXPECT_EQ(results[0].errorType(), "http_status_429");
  EXPECT_TRUE(contains(results[0].reason(), "HTTP 429 Too Many Requests, retry after 1s"));
  EXPECT_EQ(results[1].status(), Result::Status::retry);
  EXPECT_EQ(script_.seen().size(), 2u);
}

TEST_F(HttpSinkTest, LongRetryAfterIsNamedNotWaited) {
  HttpSink sink(config(), context_);
  const std::string in_a_minute = Poco::DateTimeFormatter::format(Poco::Timestamp() + 60 * Poco::Timespan::SECONDS,
                                                                  Poco::DateTimeFormat::HTTP_FORMAT);
  script_.add(answer(503, "", {{"Retry-After", "120"}}));
  script_.add(answer(503, "", {{"Retry-After", in_a_minute}}));
  const auto start = std::chrono::steady_clock::now();
  std::vector<Event> first{purchase(1)};
  const auto seconds = writeAll(sink, first);
  std::vector<Event> second{purchase(2)};
  const auto date = writeAll(sink, second);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);

  EXPECT_EQ(seconds.at(0).errorType(), "http_status_503");
  EXPECT_TRUE(contains(seconds.at(0).reason(), "HTTP 503 Service Unavailable, retry after 120s"));
  EXPECT_EQ(date.at(0).status(), Result::Status::retry);
  EXPECT_TRUE(contains(date.at(0).reason(), "retry after 60s") || contains(date.at(0).reason(), "retry after 59s"))
      << date.at(0).reason();
  EXPECT_EQ(script_.seen().size(), 2u);
}

TEST_F(HttpSinkTest, SlowServerIsRetryWithinTheTimeout) {
  HttpSink sink(config({{"timeout", "300ms"}}), context_);
  script_.add(answer(200, "late", {}, 5s));
  std::vector<Event> events = purchases(2);
  const auto start = std::chrono::steady_clock::now();
  const auto results = writeAll(sink, events);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(results.size(), 2u);
  for (const auto& result : results) {
    EXPECT_EQ(result.status(), Result::Status::retry);
    EXPECT_EQ(result.errorType(), "sink_unavailable");
  }
  EXPECT_TRUE(contains(results[0].reason(), "no answer within 300ms"));
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 1500ms);
  EXPECT_EQ(script_.seen().size(), 1u);

  // The late answer is never taken for the next request's.
  std::vector<Event> next{purchase(3)};
  EXPECT_TRUE(writeAll(sink, next).at(0).isOk());
  EXPECT_EQ(script_.seen().size(), 2u);
}

TEST_F(HttpSinkTest, UnreachableEndpointIsRetrySinkUnavailable) {
  std::uint16_t closed_port = 0;
  {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    closed_port = socket.address().port();
  }
  HttpSink sink(config({{"url", "http://127.0.0.1:" + std::to_string(closed_port) + "/hook"}}), context_);
  std::vector<Event> events = purchases(2);
  const auto results = writeAll(sink, events);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& result : results) {
    EXPECT_EQ(result.status(), Result::Status::retry);
    EXPECT_EQ(result.errorType(), "sink_unavailable");
  }
  EXPECT_TRUE(contains(results[0].reason(), "Connection refused"));
  EXPECT_TRUE(contains(results[1].reason(), "not sent"));
}

TEST_F(HttpSinkTest, ReconnectsOnceWhenTheServerClosedAnIdleConnection) {
  startServer(Poco::Timespan(0, 100'000));
  FakeContext context;
  HttpSink sink(config(), context);
  std::vector<Event> first{purchase(1)};
  ASSERT_TRUE(writeAll(sink, first).at(0).isOk());
  std::this_thread::sleep_for(300ms);  // the server closes the idle connection after 100ms

  std::vector<Event> second{purchase(2)};
  const auto results = writeAll(sink, second);
  EXPECT_TRUE(results.at(0).isOk()) << results.at(0).reason();
  const auto seen = script_.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_NE(seen[1].client_port, seen[0].client_port);
  ASSERT_EQ(context.logs.size(), 1u);
  EXPECT_TRUE(contains(context.logs[0].message, "reconnecting once"));
}

TEST_F(HttpSinkTest, RefusesUnusableConfig) {
  const auto refused = [&](const nlohmann::json& bad) {
    try {
      HttpSink sink(bad, context_);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    ADD_FAILURE() << "accepted " << bad.dump();
    return std::string();
  };
  EXPECT_TRUE(contains(refused(nlohmann::json::object()), "url is required"));
  EXPECT_TRUE(contains(refused({{"url", "ftp://example.com/x"}}), "not an http:// URL"));
  EXPECT_TRUE(contains(refused({{"url", "https://example.com/hook"}}), "is https, which this sink does not support"));
  EXPECT_TRUE(contains(refused({{"url", "http://user:pw@example.com/"}}), "credentials"));
  for (const char* timeout : {"soon", "0s", "1e3", "-1s", "5 s", "2h", ""})
    EXPECT_TRUE(contains(refused(config({{"timeout", timeout}})), "timeout")) << timeout;
  EXPECT_TRUE(contains(refused(config({{"method", "GET"}})), "method"));
  EXPECT_TRUE(contains(refused(config({{"headers", {{"Idempotency-Key", "x"}}}})), "set by the sink"));
  EXPECT_TRUE(contains(refused(config({{"headers", {{"X-A", 1}}}})), "X-A"));
  EXPECT_TRUE(contains(refused(config({{"headers", {{"X-A", "a\r\nX-B: b"}}}})), "one line"));
  EXPECT_TRUE(contains(refused(config({{"headers", {{"bad name", "x"}}}})), "not an HTTP token"));

  EXPECT_NO_THROW(HttpSink(config({{"timeout", "1.5s"}, {"method", "PUT"}, {"headers", {{"X-A", "b"}}}}), context_));
  EXPECT_NO_THROW(HttpSink({{"url", "http://localhost"}}, context_));
}

TEST(HttpSinkSchemaTest, AcceptsGoodConfigsAndRefusesBadOnes) {
  const test::SchemaCheck schema(kHttpSinkConfigSchema);
  const auto valid = [&](const nlohmann::json& config) { return schema.valid(config); };

  EXPECT_TRUE(valid({{"url", "http://hooks.example.com/events"}}));
  EXPECT_TRUE(valid({{"url", "http://127.0.0.1:8080"},
                     {"timeout", "250ms"},
                     {"method", "PUT"},
                     {"headers", {{"Authorization", "Bearer x"}}}}));
  EXPECT_FALSE(valid(nlohmann::json::object()));
  EXPECT_FALSE(valid({{"url", "ftp://example.com"}}));
  EXPECT_FALSE(valid({{"url", "http://"}}));
  EXPECT_FALSE(valid({{"url", "http://x"}, {"timeout", "soon"}}));
  EXPECT_FALSE(valid({{"url", "http://x"}, {"timeout", 5}}));
  EXPECT_FALSE(valid({{"url", "http://x"}, {"method", "GET"}}));
  EXPECT_FALSE(valid({{"url", "http://x"}, {"retries", 3}}));
  EXPECT_FALSE(valid({{"url", "http://x"}, {"headers", {{"X-A", 1}}}}));
  EXPECT_FALSE(valid({{"url", "http://x"}, {"headers", {{"bad name", "x"}}}}));
  EXPECT_FALSE(valid({{"url", "http://x"}, {"headers", {{"X-A", "a\nb"}}}}));
}

}  // namespace
}  // namespace eventflow::plugins
