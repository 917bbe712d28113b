// pipeline::Runner, the logic between the worker loop and the plugins, with
// real plugins and no store, queue or server: how results become outcomes,
// that an escaping exception is a retry, and that sinks run in order and a
// retry resumes at the first sink that has not taken the event (G2, G4).

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "pipeline/pipeline.hpp"
#include "plugin/loader.hpp"

using namespace eventflow;
namespace fs = std::filesystem;

namespace {

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("eventflow-runner-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "p.yaml") << R"(pipeline: p
match: { event_types: [t] }
stages:
  - validator: required-fields
    config: { fields: [user_id] }
  - validator: explode
  - sink: flaky
    config: { log: first.log, fail: true }
  - sink: flaky
    config: { log: second.log }
)";
    auto spec = config::loadPipelineFile((dir_ / "p.yaml").string());
    ASSERT_TRUE(spec) << spec.error().message;
    auto registry = plugin::Registry::scan(
        {EVENTFLOW_PLUGIN_DIR, EVENTFLOW_INTEGRATION_FIXTURE_DIR, EVENTFLOW_FAULT_FIXTURE_DIR});
    ASSERT_TRUE(registry) << registry.error().message;
    auto built = pipeline::Pipeline::build(std::move(*spec), *registry);
    ASSERT_TRUE(built) << built.error().message;
    auto runner = pipeline::Runner::create(std::move(*built), {}, nullptr);
    ASSERT_TRUE(runner) << runner.error().message;
    runner_ = std::move(*runner);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static pipeline::Work work(const std::string& id, nlohmann::json body, std::uint32_t attempt = 1) {
    pipeline::Work w;
    w.event.id = id;
    w.event.type = "t";
    w.event.pipeline = "p";
    w.event.attempt = attempt;
    w.event.body = std::move(body);
    return w;
  }

  // The "<id> <attempt>" lines a flaky sink wrote.
  std::string seen(const std::string& log) const {
    std::ifstream in(dir_ / log);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  fs::path dir_;
  std::unique_ptr<pipeline::Runner> runner_;
};

using OutcomeKind = pipeline::Outcome::Kind;

}  // namespace

TEST_F(RunnerTest, EachResultBecomesItsOutcomeNamingStageAndPlugin) {
  std::vector<pipeline::Work> batch;
  batch.push_back(work("missing", {{"event_type", "t"}}));
  batch.push_back(work("throws", {{"event_type", "t"}, {"user_id", "u"}, {"explode", true}}));
  batch.push_back(work("fine", {{"event_type", "t"}, {"user_id", "u"}}));
  runner_->run(batch);

  EXPECT_EQ(batch[0].outcome.kind, OutcomeKind::dead);
  EXPECT_EQ(batch[0].outcome.error_type, error_type::kValidation);
  EXPECT_EQ(batch[0].outcome.plugin, "required-fields");
  EXPECT_NE(batch[0].outcome.stage.find("required-fields"), std::string::npos) << batch[0].outcome.stage;
  EXPECT_NE(batch[0].outcome.message.find("user_id"), std::string::npos) << batch[0].outcome.message;

  EXPECT_EQ(batch[1].outcome.kind, OutcomeKind::retry) << "an exception is a retry, never a crash";
  EXPECT_EQ(batch[1].outcome.error_type, error_type::kPluginException);
  EXPECT_EQ(batch[1].outcome.plugin, "explode");
  EXPECT_NE(batch[1].outcome.message.find("plugin threw: boom"), std::string::npos) << batch[1].outcome.message;

  EXPECT_EQ(batch[2].outcome.kind, OutcomeKind::done);
  EXPECT_EQ(batch[2].sinks_done, 0b11u);
  EXPECT_EQ(seen("first.log"), "fine 1\n") << "only the survivors reach the sinks";
  EXPECT_EQ(seen("second.log"), "fine 1\n");
}

TEST_F(RunnerTest, ARetryResumesAtTheFirstSinkNotDone) {
  // The first sink fails attempt 1 of "late": the second never sees it then.
  std::vector<pipeline::Work> first{work("late", {{"event_type", "t"}, {"user_id", "u"}, {"fail_times", 1}})};
  runner_->run(first);
  EXPECT_EQ(first[0].outcome.kind, OutcomeKind::retry);
  EXPECT_EQ(first[0].outcome.error_type, error_type::kTransient);
  EXPECT_EQ(first[0].sinks_done, 0u);
  EXPECT_EQ(seen("second.log"), "") << "a sink sees an event only after every sink before it took it";

  // Attempt 2 passes both.
  std::vector<pipeline::Work> second{work("late", {{"event_type", "t"}, {"user_id", "u"}, {"fail_times", 1}}, 2)};
  second[0].sinks_done = first[0].sinks_done;
  runner_->run(second);
  EXPECT_EQ(second[0].outcome.kind, OutcomeKind::done);
  EXPECT_EQ(seen("first.log"), "late 1\nlate 2\n");
  EXPECT_EQ(seen("second.log"), "late 2\n");

  // An event the first sink already took is not given to it again.
  std::vector<pipeline::Work> resumed{work("half", {{"event_type", "t"}, {"user_id", "u"}, {"fail_times", 5}}, 3)};
  resumed[0].sinks_done = 0b01;
  runner_->run(resumed);
  EXPECT_EQ(resumed[0].outcome.kind, OutcomeKind::done);
  EXPECT_EQ(resumed[0].sinks_done, 0b11u);
  EXPECT_EQ(seen("first.log").find("half"), std::string::npos) << seen("first.log");
  EXPECT_NE(seen("second.log").find("half 3\n"), std::string::npos) << seen("second.log");
}

TEST_F(RunnerTest, APartialSinkBatchRetriesOnlyTheEventsTheSinkRefused) {
  // One batch at the first sink: two of three ask to retry, the middle one is ok.
  std::vector<pipeline::Work> batch;
  batch.push_back(work("a", {{"event_type", "t"}, {"user_id", "u"}, {"fail_times", 1}}));
  batch.push_back(work("b", {{"event_type", "t"}, {"user_id", "u"}}));
  batch.push_back(work("c", {{"event_type", "t"}, {"user_id", "u"}, {"fail_times", 1}}));
  runner_->run(batch);
  EXPECT_EQ(batch[0].outcome.kind, OutcomeKind::retry);
  EXPECT_EQ(batch[1].outcome.kind, OutcomeKind::done) << "one event's retry is not its neighbours'";
  EXPECT_EQ(batch[2].outcome.kind, OutcomeKind::retry);
  EXPECT_EQ(batch[0].sinks_done, 0u);
  EXPECT_EQ(batch[1].sinks_done, 0b11u);
  EXPECT_EQ(batch[2].sinks_done, 0u);
  EXPECT_EQ(seen("second.log"), "b 1\n") << "only what the first sink took goes on";

  // The worker retries only the two it was told to, with their masks.
  std::vector<pipeline::Work> retry;
  for (std::size_t i : {0u, 2u}) {
    retry.push_back(work(batch[i].event.id, batch[i].event.body, 2));
    retry.back().sinks_done = batch[i].sinks_done;
  }
  runner_->run(retry);
  EXPECT_EQ(retry[0].outcome.kind, OutcomeKind::done);
  EXPECT_EQ(retry[1].outcome.kind, OutcomeKind::done);
  EXPECT_EQ(seen("first.log"), "a 1\nb 1\nc 1\na 2\nc 2\n");
  EXPECT_EQ(seen("second.log"), "b 1\na 2\nc 2\n") << "b, done, is written once";
}

TEST_F(RunnerTest, EachEventInABatchResumesAtItsOwnFirstSinkNotDone) {
  // Retries meet in one batch with different masks: each sink gets exactly
  // the events that do not have its bit, and none twice.
  std::vector<pipeline::Work> batch;
  batch.push_back(work("fresh", {{"event_type", "t"}, {"user_id", "u"}}, 2));
  batch.push_back(work("half", {{"event_type", "t"}, {"user_id", "u"}, {"fail_times", 9}}, 2));
  batch[1].sinks_done = 0b01;  // would fail at the first sink if it ran there again
  batch.push_back(work("whole", {{"event_type", "t"}, {"user_id", "u"}, {"fail_times", 9}}, 2));
  batch[2].sinks_done = 0b11;  // both took it (say the commit of `done` was lost)
  runner_->run(batch);
  for (const auto& w : batch) {
    EXPECT_EQ(w.outcome.kind, OutcomeKind::done) << w.event.id << ": " << w.outcome.message;
    EXPECT_EQ(w.sinks_done, 0b11u) << w.event.id;
  }
  EXPECT_EQ(seen("first.log"), "fresh 2\n");
  EXPECT_EQ(seen("second.log"), "fresh 2\nhalf 2\n");
}

TEST_F(RunnerTest, ADeadResultAtALaterSinkKeepsTheEarlierSinksWork) {
  std::vector<pipeline::Work> batch;
  batch.push_back(work("refused", {{"event_type", "t"}, {"user_id", "u"}, {"reject_in", "second.log"}}));
  batch.push_back(work("fine", {{"event_type", "t"}, {"user_id", "u"}}));
  runner_->run(batch);
  EXPECT_EQ(batch[0].outcome.kind, OutcomeKind::dead);
  EXPECT_EQ(batch[0].outcome.error_type, error_type::kRejected);
  EXPECT_EQ(batch[0].outcome.plugin, "flaky");
  EXPECT_NE(batch[0].outcome.message.find("refused on purpose"), std::string::npos) << batch[0].outcome.message;
  EXPECT_EQ(batch[0].sinks_done, 0b01u) << "the first sink took it, and that is recorded";
  EXPECT_EQ(seen("first.log"), "refused 1\nfine 1\n");
  EXPECT_EQ(seen("second.log"), "refused 1\nfine 1\n");
  EXPECT_EQ(batch[1].outcome.kind, OutcomeKind::done) << "a neighbour's dead result is not its own";
  EXPECT_EQ(batch[1].sinks_done, 0b11u);

  // A dead result at the first sink: no later sink sees the event, no bit is set.
  std::vector<pipeline::Work> early{work("early", {{"event_type", "t"}, {"user_id", "u"}, {"reject_in", "first.log"}})};
  runner_->run(early);
  EXPECT_EQ(early[0].outcome.kind, OutcomeKind::dead);
  EXPECT_EQ(early[0].sinks_done, 0u);
  EXPECT_EQ(seen("second.log").find("early"), std::string::npos) << seen("second.log");
}
