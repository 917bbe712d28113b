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

TEST(Ids, IsUuidTakesHexDigitsOfEitherCaseAtTheirPlacesOnly) {
  EXPECT_TRUE(isUuid("0190a5f2-7b3c-7def-8abc-0123456789ab"));
  EXPECT_TRUE(isUuid("0190A5F2-7B3C-7DEF-8ABC-0123456789AB"));
  EXPECT_FALSE(isUuid("0190a5f2-7b3c-7def-8abc-0123456789ag"));   // g
  EXPECT_FALSE(isUuid("0190a5f2-7b3c-7def-8abc-0123456789a:"));   // the byte after '9'
  EXPECT_FALSE(isUuid("0190a5f2-7b3c-7def-8abc-0123456789a`"));   // the byte before 'a'
  EXPECT_FALSE(isUuid("0190A5F2-7B3C-7DEF-8ABC-0123456789A@"));   // the byte before 'A'
  EXPECT_FALSE(isUuid("0190A5F2-7B3C-7DEF-8ABC-0123456789AG"));
  EXPECT_FALSE(isUuid("0190a5f2-7b3c-7def-8abc-0123456789a\xe9")); // not ASCII
  EXPECT_FALSE(isUuid(std::string("0190a5f2-7b3c-7def-8abc-0123456789a\0", 36)));
  EXPECT_FALSE(isUuid("0190a5f27-b3c-7def-8abc-0123456789ab"));   // a dash out of place
  EXPECT_FALSE(isUuid("0190a5f2-7b3c-7def-8abc-0123456789a"));    // 35 characters
  EXPECT_FALSE(isUuid("{0190a5f2-7b3c-7def-8abc-0123456789ab}"));
  EXPECT_FALSE(isUuid(""));
}

TEST(Ids, Sha256HexMatchesTheStandardsVectors) {
  // FIPS 180-2's examples; stored payload hashes must not change with the library.
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256Hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // A NUL inside is data, not the end.
  EXPECT_NE(sha256Hex(std::string("a\0b", 3)), sha256Hex("a"));
}

TEST(Ids, Sha256HexGivesEachThreadTheSameAnswer) {
  // The context is kept per thread: threads hashing at once must not mix states.
  const std::string want = sha256Hex("abc");
  std::vector<std::thread> threads;
  std::vector<int> wrong(8, 0);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i)
        if (sha256Hex(i % 2 ? "abc" : std::string(100 + i % 50, 'x')) != want && i % 2) ++wrong[static_cast<std::size_t>(t)];
    });
  for (auto& th : threads) th.join();
  for (int w : wrong) EXPECT_EQ(w, 0);
}

}  // namespace
}  // namespace eventflow
