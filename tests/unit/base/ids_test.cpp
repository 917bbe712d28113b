#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "base/ids.hpp"

namespace eventflow {
namespace {

TEST(Ids, NewUuidIsCanonicalVersionFour) {
  for (int i = 0; i < 1000; ++i) {
    const auto id = newUuid();
    ASSERT_TRUE(isUuid(id)) << id;
    EXPECT_EQ(id[14], '4') << id;                                  // version
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // variant
    for (char c : id) EXPECT_FALSE(c >= 'A' && c <= 'F') << id;    // lower case
  }
}

TEST(Ids, NewUuidNeverRepeatsAcrossThreads) {
  constexpr int kThreads = 8, kEach = 20000;
  std::vector<std::vector<std::string>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) made[static_cast<std::size_t>(t)].push_back(newUuid());
    });
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& v : made) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach));
}

}  // namespace
}  // namespace eventflow
