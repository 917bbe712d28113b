// Per-key rate limits end to end (issue 16 part 3): a real host with one
// limited and one unlimited ingest key posting at the same time.

#include <gtest/gtest.h>

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>
#include <Poco/UUIDGenerator.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "host_process.hpp"

using namespace eventflow::testing;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kSlowKey = "slow-" + uuid();
const std::string kFastKey = "fast-" + uuid();
const std::string kAdminKey = "admin-" + uuid();

std::string apiKeys() {
  return "api_keys: [{ name: slow, sha256: \"" + sha256(kSlowKey) +
         "\", scopes: [ingest], rate: { events_per_second: 100, burst: 20 } }, "
         "{ name: fast, sha256: \"" + sha256(kFastKey) + "\", scopes: [ingest] }, "
         "{ name: ops, sha256: \"" + sha256(kAdminKey) + "\", scopes: [admin] }]";
}

std::map<std::string, std::string> as(const std::string& key) { return {{"X-API-Key", key}}; }

// What one sender saw.
struct Tally {
  std::mutex mutex;
  std::vector<std::string> accepted;  // event ids answered 202
  std::size_t limited = 0;            // 429s
  std::size_t other = 0;              // anything else
  std::vector<std::string> problems;  // a 429 without Retry-After or error body
};

// Posts single events with `key` over one kept-alive connection, `per_second`
// of them, until `until`.
void send(std::uint16_t port, const std::string& key, double per_second, Clock::time_point until, Tally& tally, int seed) {
  Poco::Net::HTTPClientSession session("127.0.0.1", port);
  session.setKeepAlive(true);
  session.setTimeout(Poco::Timespan(30, 0));
  const auto gap = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / per_second));
  auto next = Clock::now();
  for (int n = 0; Clock::now() < until; ++n) {
    std::this_thread::sleep_until(next);
    next += gap;
    const std::string id = uuid();
    const std::string body = validEvent(seed + n, id).dump();
    try {
      Poco::Net::HTTPRequest req("POST", "/events", Poco::Net::HTTPMessage::HTTP_1_1);
      req.setKeepAlive(true);
      req.set("X-API-Key", key);
      req.setContentType("application/json");
      req.setContentLength(static_cast<std::streamsize>(body.size()));
      session.sendRequest(req) << body;
      Poco::Net::HTTPResponse res;
      std::stringstream answer;
      answer << session.receiveResponse(res).rdbuf();
      std::lock_guard lock(tally.mutex);
      if (res.getStatus() == 202) {
        tally.accepted.push_back(id);
      } else if (res.getStatus() == 429) {
        ++tally.limited;
        const auto j = nlohmann::json::parse(answer.str(), nullptr, false);
        const std::string retry = res.get("Retry-After", "");
        if (retry.empty() || std::stoi(retry) < 1 || j.is_discarded() || j["error"]["code"] != "rate_limited")
          tally.problems.push_back("Retry-After '" + retry + "', body " + answer.str());
      } else {
        ++tally.other;
        tally.problems.push_back(std::to_string(res.getStatus()) + " " + answer.str());
      }
    } catch (const Poco::Exception& e) {
      std::lock_guard lock(tally.mutex);
      ++tally.other;
      tally.problems.push_back(e.displayText());
      session.reset();
    }
  }
}

double metricValue(const std::string& exposition, const std::string& series) {
  const auto at = exposition.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(exposition.substr(at + series.size() + 2));
}

}  // namespace

TEST(RateLimit, ALimitedKeyGets429WithRetryAfterAndAnotherKeyIsUnaffected) {
  HostProcess host("rate-limit", EVENTFLOW_PIPELINES_DIR, apiKeys());
  ASSERT_TRUE(host.start()) << host.readLog();

  // The slow key (100/s, burst 20) posts ~1,000/s over four connections;
  // the fast key, unlimited, 100/s at the same time.
  Tally slow, fast;
  const auto started = Clock::now();
  const auto until = started + std::chrono::seconds(3);
  std::vector<std::thread> senders;
  for (int c = 0; c < 4; ++c)
    senders.emplace_back([&, c] { send(host.port(), kSlowKey, 250, until, slow, c * 100000); });
  senders.emplace_back([&] { send(host.port(), kFastKey, 100, until, fast, 900000); });
  for (auto& t : senders) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();

  EXPECT_TRUE(slow.problems.empty()) << slow.problems.size() << " bad answers, first: " << slow.problems.front();
  EXPECT_TRUE(fast.problems.empty()) << fast.problems.size() << " bad answers, first: " << fast.problems.front();
  EXPECT_GT(slow.limited, 0u) << "the slow key was never limited";
  EXPECT_GT(slow.accepted.size(), 0u);
  // Never more than the burst and the refill over the run (one second's slack for the clocks).
  EXPECT_LE(static_cast<double>(slow.accepted.size()), 20 + 100 * (elapsed + 1)) << elapsed << " s";
  EXPECT_EQ(fast.limited, 0u) << "the other key was held back";
  EXPECT_GT(fast.accepted.size(), 0u);

  // A batch bigger than the key's burst can never pass: 413, not a 429 to retry.
  nlohmann::json batch = nlohmann::json::array();
  for (int i = 0; i < 21; ++i) batch.push_back(validEvent(i, uuid()));
  auto too_big = http(host.port(), "POST", "/events/batch", batch.dump(), "application/json", as(kSlowKey));
  EXPECT_EQ(too_big.status, 413) << too_big.body;
  EXPECT_EQ(too_big.json()["error"]["code"], "batch_too_large");
  EXPECT_NE(too_big.json()["error"]["message"].get<std::string>().find("at most 20 events at once"), std::string::npos)
      << too_big.body;

  // Every event the slow key got a 202 for is processed, as are the fast key's.
  const auto summary = host.waitIdle(std::chrono::seconds(60), as(kAdminKey));
  ASSERT_EQ(summary["events_in_flight"], 0) << summary.dump();
  const std::size_t accepted = slow.accepted.size() + fast.accepted.size();
  EXPECT_EQ(summary["events_received"], accepted) << summary.dump();
  EXPECT_EQ(summary["events_processed"], accepted) << summary.dump();
  for (const auto& id : slow.accepted) {
    const auto journey = http(host.port(), "GET", "/events/" + id, {}, {}, as(kSlowKey)).json();
    ASSERT_EQ(journey["state"], "done") << id << ": " << journey.dump();
  }

  // The refused events are counted by key; the unlimited key has no series.
  const auto exposition = http(host.port(), "GET", "/metrics", {}, {}, as(kAdminKey)).body;
  EXPECT_EQ(metricValue(exposition, "eventflow_rate_limited_total{key_name=\"slow\"}"),
            static_cast<double>(slow.limited)) << exposition;
  EXPECT_EQ(exposition.find("key_name=\"fast\""), std::string::npos);
  EXPECT_NE(exposition.find("eventflow_http_requests_total{code=\"429\",route=\"/events\"}"), std::string::npos);
  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0);
}
