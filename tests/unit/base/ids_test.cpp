#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/ids.hpp"

namespace eventflow {
namespace {

TEST(Ids, NewUuidIsCanonicalVersionSeven) {
  for (int i = 0; i < 1000; ++i) {
    const auto id = newUuid();
    ASSERT_TRUE(isUuid(id)) << id;
    EXPECT_EQ(id[14], '7') << id;                                  // version
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // variant
    for (char c : id) EXPECT_FALSE(c >= 'A' && c <= 'F') << id;    // lower case
  }
}

TEST(Ids, NewRandomUuidIsCanonicalVersionFour) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto id = newRandomUuid();
    ASSERT_TRUE(isUuid(id)) << id;
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
    seen.insert(id.substr(0, 8));
  }
  EXPECT_GT(seen.size(), 990u) << "the leading bits are random, not a clock";
}

TEST(Ids, NewUuidStartsWithTheTimeInMilliseconds) {
  using namespace std::chrono;
  const auto before = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  const auto id = newUuid();
  const auto after = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  const long long stamped = std::stoll(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
  EXPECT_GE(stamped, before) << id;
  EXPECT_LE(stamped, after) << id;
  // Ids made later sort after (once the millisecond has changed).
  std::this_thread::sleep_for(milliseconds(2));
  EXPECT_LT(id, newUuid());
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
