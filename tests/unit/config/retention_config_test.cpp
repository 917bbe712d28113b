// retention in the host file and a pipeline file: good values read, a
// pipeline's keys over the host's, hostile ones refused with file:line.

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.hpp"

namespace fs = std::filesystem;
using namespace eventflow;
using namespace std::chrono_literals;

namespace {

class RetentionConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("eventflow-retention-config-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Expected<config::HostConfig> host(const std::string& retention) {
    const auto path = dir_ / "eventflow.yaml";
    std::ofstream(path) << "logging: { level: info }\nretention: " << retention << "\n";
    return config::loadHostConfig(path.string());
  }
  Expected<config::PipelineSpec> pipeline(const std::string& retention) {
    const auto path = dir_ / "p.yaml";
    std::ofstream(path) << "pipeline: p\nmatch: { event_types: [a] }\nretention: " << retention
                        << "\nstages:\n  - sink: stdout\n";
    return config::loadPipelineFile(path.string());
  }

  fs::path dir_;
};

}  // namespace

TEST_F(RetentionConfigTest, DefaultsAreDesignsAndAPipelinesKeysComeFirst) {
  const auto path = dir_ / "empty.yaml";
  std::ofstream(path) << "logging: { level: info }\n";
  auto defaults = config::loadHostConfig(path.string());
  ASSERT_TRUE(defaults) << defaults.error().message;
  EXPECT_EQ(defaults->retention.done, std::chrono::days(7));
  EXPECT_EQ(defaults->retention.dead, std::chrono::days(30));
  EXPECT_EQ(defaults->retention.discarded, std::chrono::days(7));

  auto h = host("{ done: 12h, dead: never }");
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(h->retention.done, 12h);
  EXPECT_EQ(h->retention.dead, config::RetentionSpec::kForever);
  EXPECT_EQ(h->retention.discarded, std::chrono::days(7)) << "a key not given keeps its default";

  auto p = pipeline("{ done: 1s }");
  ASSERT_TRUE(p) << p.error().message;
  const auto effective = p->retention.over(h->retention);
  EXPECT_EQ(effective.done, 1s);
  EXPECT_EQ(effective.dead, config::RetentionSpec::kForever);
  EXPECT_EQ(effective.discarded, std::chrono::days(7));
}

TEST_F(RetentionConfigTest, HostileValuesAreRefusedNamingFileLineAndProblem) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"{ done: 0s }", "at least 1s"},
      {"{ done: 500ms }", "at least 1s"},
      {"{ done: -1d }", "retention 'done' must be a duration"},
      {"{ dead: forever }", "or never"},
      {"{ dead: 400d }", "at most 365d"},
      {"{ discarded: [1d] }", "retention 'discarded' must be a duration"},
      {"{ done: 1e9s }", "retention 'done' must be a duration"},
      {"{ processing: 1d }", "unknown key 'processing'"},
      {"7d", "retention must be a mapping"},
      {"{ done: \"\" }", "retention 'done' must be a duration"},
  };
  for (const auto& [value, expected] : cases) {
    auto h = host(value);
    ASSERT_FALSE(h) << value;
    EXPECT_NE(h.error().message.find(expected), std::string::npos) << value << " → " << h.error().message;
    EXPECT_NE(h.error().message.find("eventflow.yaml:2:"), std::string::npos) << h.error().message;
    auto p = pipeline(value);
    ASSERT_FALSE(p) << value;
    EXPECT_NE(p.error().message.find(expected), std::string::npos) << value << " → " << p.error().message;
    EXPECT_NE(p.error().message.find("p.yaml:3:"), std::string::npos) << p.error().message;
  }
}
