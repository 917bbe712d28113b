// PostgreSQL stopped for 10 s under load. It stops the test PostgreSQL that
// every other test shares, so ctest runs it alone (RUN_SERIAL).

#include <gtest/gtest.h>

#include <Poco/UUIDGenerator.h>

#include <atomic>
#include <mutex>

#include "backends.hpp"
#include "cluster.hpp"

using namespace eventflow::testing;

namespace {

int pgCtl(const std::string& action) {
  const std::string bin = requiredEnv("EVENTFLOW_TEST_PG_BIN");
  const std::string data = requiredEnv("EVENTFLOW_TEST_PG_DATA");
  const std::string log = requiredEnv("EVENTFLOW_TEST_PG_LOG");
  const std::string as = ::getuid() == 0 ? "runuser -u postgres -- " : "";
  return std::system((as + bin + "/pg_ctl -D " + data + " -l " + log + " -m fast -w " + action + " > /dev/null").c_str());
}

}  // namespace

TEST(FaultSerial, PostgresStoppedForTenSecondsUnderLoad) {
  const std::string pg = freshDatabase("fault_pgstop");
  ASSERT_FALSE(pg.empty());
  Cluster cluster("fault-pgstop", pg, redisUrl(), "2s", "3s");
  const auto api = cluster.add("api");
  cluster.add("worker");
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::vector<std::string> accepted;
  std::atomic<int> refused{0}, refused_with_retry_after{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < 4; ++t)
    posters.emplace_back([&] {
      for (int i = 0; !stop; ++i) {
        const std::string id = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
        auto r = http(api, "POST", "/events", validEvent(i, id).dump());
        if (r.status == 202) {
          std::lock_guard lock(mutex);
          accepted.push_back(id);
        } else if (r.status == 503) {
          ++refused;
          if (r.headers.count("Retry-After")) ++refused_with_retry_after;
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }
    });
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_EQ(pgCtl("stop"), 0);
  std::this_thread::sleep_for(std::chrono::seconds(10));
  ASSERT_EQ(pgCtl("start"), 0);
  std::this_thread::sleep_for(std::chrono::seconds(4));
  stop = true;
  for (auto& p : posters) p.join();
  // While the store was down ingest refused with 503 + Retry-After, never a 202 it could not keep (G6).
  EXPECT_GT(refused.load(), 0);
  EXPECT_EQ(refused.load(), refused_with_retry_after.load());
  ASSERT_FALSE(accepted.empty());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline &&
         pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead')") != 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead')"), 0);
  std::string ids = "'{";
  for (std::size_t i = 0; i < accepted.size(); ++i) ids += (i ? "," : "") + accepted[i];
  ids += "}'::uuid[]";
  // Every 202 is in the store and terminal: processed, or dead after its retries ran out during the outage.
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state IN ('done', 'dead') AND event_id = ANY(" + ids + ")"),
            static_cast<long long>(accepted.size()));
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM processed_events p JOIN failed_events f USING (event_id)"), 0);
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state = 'done' AND NOT EXISTS "
                        "(SELECT 1 FROM processed_events p WHERE p.event_id = raw_events.event_id)"),
            0);
  EXPECT_EQ(http(api, "GET", "/health").status, 200);
}
