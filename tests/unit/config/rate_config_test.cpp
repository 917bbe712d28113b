// server.api_keys[].rate: good values read, hostile ones refused with file:line.

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.hpp"

namespace fs = std::filesystem;
using namespace eventflow;

namespace {

class RateConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("eventflow-rate-config-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A host file whose second line is the key with `rate` as given.
  Expected<config::HostConfig> load(const std::string& rate) {
    const auto path = dir_ / "eventflow.yaml";
    std::ofstream(path) << "server:\n  api_keys: [{ name: ci, sha256: \"" << std::string(64, 'a')
                        << "\", scopes: [ingest], rate: " << rate << " }]\n";
    return config::loadHostConfig(path.string());
  }

  fs::path dir_;
};

}  // namespace

TEST_F(RateConfigTest, RateAndBurstAreReadAndBurstDefaultsToOneSecond) {
  auto both = load("{ events_per_second: 100, burst: 20 }");
  ASSERT_TRUE(both) << both.error().message;
  ASSERT_TRUE(both->server.api_keys.at(0).rate);
  EXPECT_EQ(both->server.api_keys[0].rate->events_per_second, 100);
  EXPECT_EQ(both->server.api_keys[0].rate->burst, 20u);
  auto fraction = load("{ events_per_second: 2.5 }");
  ASSERT_TRUE(fraction) << fraction.error().message;
  EXPECT_EQ(fraction->server.api_keys[0].rate->burst, 3u) << "a second's worth, rounded up";
  auto slow = load("{ events_per_second: 0.1 }");
  ASSERT_TRUE(slow) << slow.error().message;
  EXPECT_EQ(slow->server.api_keys[0].rate->burst, 1u);
}

TEST_F(RateConfigTest, HostileValuesAreRefusedNamingFileLineAndProblem) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"{ events_per_second: -5 }", "'events_per_second' must be a number > 0"},
      {"{ events_per_second: 0 }", "'events_per_second' must be a number > 0"},
      {"{ events_per_second: fast }", "not 'fast'"},
      {"{ events_per_second: \"\" }", "'events_per_second' must be a number > 0"},
      {"{ events_per_second: .nan }", "'events_per_second' must be a number > 0"},
      {"{ events_per_second: .inf }", "'events_per_second' must be a number > 0"},
      {"{ events_per_second: 1e300 }", "at most 1e9"},
      {"{ events_per_second: [1] }", "not a list"},
      {"{ events_per_second: { n: 1 } }", "not a mapping"},
      {"{ burst: 10 }", "'rate' needs 'events_per_second'"},
      {"{ events_per_second: 10, burst: 0 }", "'burst' must be a whole number >= 1"},
      {"{ events_per_second: 10, burst: -1 }", "'burst' must be a whole number >= 1"},
      {"{ events_per_second: 10, burst: 2.5 }", "'burst' must be a whole number >= 1"},
      {"{ events_per_second: 10, burst: lots }", "'burst' must be a whole number >= 1"},
      {"{ events_per_second: 10, burst: 99999999999999999999999 }", "'burst' must be a whole number >= 1"},
      {"{ events_per_second: 10, burst: 5000000000 }", "'burst' must be at most 1000000000"},
      {"{ events_per_second: 0.001, burst: 1000 }", "takes more than a day to refill"},
      {"{ events_per_second: 10, brust: 5 }", "unknown key 'brust' in an api key's rate (did you mean 'burst'?)"},
      {"100", "an api key's 'rate' must be a mapping"},
      {"[100, 10]", "an api key's 'rate' must be a mapping"},
  };
  for (const auto& [rate, expected] : cases) {
    auto cfg = load(rate);
    ASSERT_FALSE(cfg) << rate;
    const auto& message = cfg.error().message;
    EXPECT_NE(message.find(expected), std::string::npos) << rate << " -> " << message;
    EXPECT_NE(message.find("eventflow.yaml:2:"), std::string::npos) << rate << " -> " << message;
  }
}
