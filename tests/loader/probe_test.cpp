// The integration test's proof of "one instance per thread" is only as good as
// its probe: here one instance is deliberately shared, and must be caught.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include <eventflow/testing.hpp>
#include "plugin/loader.hpp"

using namespace eventflow;
using eventflow::testing::FakeContext;

TEST(ConcurrencyProbe, RejectsTwoThreadsInOneInstance) {
  auto plugin = plugin::loadPlugin(std::string(EVENTFLOW_INTEGRATION_FIXTURE_DIR) + "/concurrency-probe.so");
  ASSERT_TRUE(plugin) << plugin.error().message;
  FakeContext context;
  auto instance = plugin::createInstance<Validator>(*plugin, {{"hold_us", 2000}}, context);
  ASSERT_TRUE(instance) << instance.error().message;

  std::atomic<int> concurrent{0}, ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      Event event;
      for (int i = 0; i < 20; ++i) {
        const Result r = (*instance)->get().check(event);
        if (r.isOk()) ++ok;
        else if (r.errorType() == "concurrent_entry") ++concurrent;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_GT(concurrent.load(), 0);
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(concurrent + ok, 80);
}
