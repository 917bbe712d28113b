// Retention end to end (issue 16 part 2), in both modes: a host keeping done
// and dead events for 1 s, under single-post load with a kill -9 in the
// middle. Its tables shrink to nothing while /metrics/summary still balances,
// and no unfinished event is ever deleted: one that were would stay "in
// flight" in the books for good.

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "backends.hpp"
#include "cluster.hpp"
#include "command.hpp"
#include "host_process.hpp"

using namespace eventflow::testing;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kRetention = "retention: { done: 1s, dead: 1s, discarded: 1s }\n";

enum class Mode { embedded, postgres };

// One host on either SQLite + the embedded queue or PostgreSQL + Redis.
class Deployment {
 public:
  explicit Deployment(Mode mode) {
    if (mode == Mode::embedded) {
      host_ = std::make_unique<HostProcess>("retention");
      std::ofstream(host_->config(), std::ios::app) << kRetention;
    } else {
      pg_ = freshDatabase("retention");
      cluster_ = std::make_unique<Cluster>("retention", pg_, redisUrl());
      cluster_->hostExtra(kRetention);
    }
  }
  bool start() {
    if (host_) return host_->start();
    port_ = cluster_->add("all", port_);
    return !::testing::Test::HasFailure();
  }
  void kill9() {
    if (host_) host_->kill9();
    else cluster_->processes().back()->kill(SIGKILL);
  }
  std::uint16_t port() const { return host_ ? host_->port() : port_; }
  long long rows(const std::string& table) const {
    const std::string sql = "SELECT COUNT(*) FROM " + table;
    return host_ ? host_->count(sql) : pgCount(pg_, sql);
  }
  std::string log() const { return host_ ? host_->readLog() : cluster_->processes().back()->output(); }

 private:
  std::unique_ptr<HostProcess> host_;
  std::unique_ptr<Cluster> cluster_;
  std::string pg_;
  std::uint16_t port_ = 0;
};

struct Tally {
  std::mutex mutex;
  std::size_t accepted = 0;
  std::size_t unanswered = 0;  // no answer: the host was down, or died with the request in hand
  std::vector<std::string> problems;
};

// Single posts over one kept-alive connection until `stop`; every 20th a
// purchase its pipeline's schema refuses (dead at once).
void send(const Deployment& d, std::atomic<bool>& stop, Tally& tally, int seed) {
  for (int n = 0; !stop; ++n) {
    auto e = validEvent(seed + n, uuid());
    if (n % 20 == 0) e = {{"event_id", uuid()}, {"event_type", "purchase"}, {"properties", {{"amount", -1}}}};
    const auto r = http(d.port(), "POST", "/events", e.dump());
    std::lock_guard lock(tally.mutex);
    if (r.status == 202) ++tally.accepted;
    else if (r.status == 0 || r.status == 503) ++tally.unanswered;
    else tally.problems.push_back(std::to_string(r.status) + " " + r.body);
    if (r.status == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // down: wait for the restart
  }
}

class Retention : public ::testing::TestWithParam<Mode> {};

}  // namespace

TEST_P(Retention, TablesShrinkUnderLoadAndACrashWhileTheBooksBalance) {
  Deployment d(GetParam());
  ASSERT_TRUE(d.start()) << d.log();

  std::atomic<bool> stop{false};
  Tally tally;
  std::vector<std::thread> senders;
  for (int c = 0; c < 4; ++c) senders.emplace_back([&, c] { send(d, stop, tally, c * 1'000'000); });
  // Load for a while, with pruning running under it, then a crash in the middle of both.
  const auto wait_accepted = [&](std::size_t n) {
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      {
        std::lock_guard lock(tally.mutex);
        if (tally.accepted >= n) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };
  ASSERT_TRUE(wait_accepted(1500)) << d.log();
  d.kill9();
  ASSERT_TRUE(d.start()) << d.log();
  std::size_t before;
  {
    std::lock_guard lock(tally.mutex);
    before = tally.accepted;
  }
  EXPECT_TRUE(wait_accepted(before + 1500)) << d.log();
  stop = true;
  for (auto& t : senders) t.join();
  EXPECT_TRUE(tally.problems.empty()) << tally.problems.size() << " bad answers, first: " << tally.problems.front();

  // Every event that was accepted reaches an end, and the books balance.
  nlohmann::json summary;
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (Clock::now() < deadline) {
    summary = http(d.port(), "GET", "/metrics/summary").json();
    if (summary.is_object() && summary["events_in_flight"] == 0 &&
        summary["events_received"].get<std::size_t>() >= tally.accepted)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(summary.is_object());
  EXPECT_EQ(summary["events_in_flight"], 0) << summary.dump();
  const auto received = summary["events_received"].get<std::size_t>();
  EXPECT_GE(received, tally.accepted) << summary.dump();
  // Answers lost in the crash may still have been recorded.
  EXPECT_LE(received, tally.accepted + tally.unanswered) << summary.dump();
  EXPECT_EQ(summary["events_processed"].get<std::size_t>() + summary["events_failed"].get<std::size_t>() +
                summary["events_discarded"].get<std::size_t>(),
            received)
      << summary.dump();
  EXPECT_GE(summary["events_failed"].get<std::size_t>(), tally.accepted / 25) << summary.dump();

  // And retention takes every row away, the books unchanged.
  long long left = -1;
  const auto pruned_by = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < pruned_by) {
    left = d.rows("raw_events") + d.rows("failed_events") + d.rows("processed_events");
    if (left == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(left, 0) << "rows of finished events still stored: raw_events " << d.rows("raw_events")
                      << ", failed_events " << d.rows("failed_events") << ", processed_events "
                      << d.rows("processed_events");
  const auto after = http(d.port(), "GET", "/metrics/summary").json();
  EXPECT_EQ(after["events_received"], summary["events_received"]);
  EXPECT_EQ(after["events_processed"], summary["events_processed"]);
  EXPECT_EQ(after["events_failed"], summary["events_failed"]);
  const std::string metrics = http(d.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("eventflow_retention_pruned_total{pipeline=\"purchases\",state=\"done\"}"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Modes, Retention, ::testing::Values(Mode::embedded, Mode::postgres),
                         [](const auto& param_info) {
                           return std::string(param_info.param == Mode::embedded ? "embedded" : "postgres");
                         });

// A copy of an event published again (recovery publishes every unfinished
// event after a crash while its first entry may still be in the stream; the
// relay republishes stale ones) can arrive after another copy finished the
// event and retention pruned it. The worker acknowledges it unrun, and no
// sink row comes back. An entry of the same id without the mark runs: what
// the mark is for.
TEST(RetentionCopies, ACopyPublishedAgainAfterItsEventWasPrunedDoesNotRunItsSinks) {
  const std::string pg = freshDatabase("retcopy");
  Cluster cluster("retcopy", pg, redisUrl());
  cluster.hostExtra(kRetention);
  const auto port = cluster.add("all");
  const std::string id = uuid();
  const auto event = validEvent(2, id);  // a page_view: the activity pipeline
  ASSERT_EQ(http(port, "POST", "/events", event.dump()).status, 202);
  const std::string row = "SELECT COUNT(*) FROM processed_events WHERE event_id = '" + id + "'";
  const auto pruned_by = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < pruned_by && pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE event_id = '" + id + "'") != 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE event_id = '" + id + "'"), 0) << "never pruned";
  ASSERT_EQ(pgCount(pg, row), 0) << "its sink row went with it";

  const std::string stream = cluster.prefix() + "activity";
  const auto xadd = [&](bool again) {
    std::vector<std::string> argv{"/usr/bin/redis-cli", "-u", redisUrl(), "XADD", stream, "*", "id", id, "type", "page_view",
                                  "cid", "", "at", "1767225600000", "attempts", "0", "payload", event.dump()};
    if (again) argv.insert(argv.end(), {"again", "1"});
    const auto added = runCommand(argv);
    ASSERT_EQ(added.exit_code, 0) << added.describe();
  };
  const auto drained = [&] {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline) {
      const auto len = runCommand({"/usr/bin/redis-cli", "-u", redisUrl(), "XLEN", stream});
      if (len.exit_code == 0 && std::stoll(len.out) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  xadd(true);
  ASSERT_TRUE(drained()) << "the copy was never acknowledged";
  EXPECT_EQ(pgCount(pg, row), 0) << "a copy published again ran the sink of a pruned event";

  xadd(false);
  ASSERT_TRUE(drained());
  EXPECT_EQ(pgCount(pg, row), 1) << "an unmarked entry should have run: the check above proved nothing";
}
