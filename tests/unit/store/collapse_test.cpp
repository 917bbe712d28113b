// collapse(): one change per event per group commit, because a set-based
// UPDATE applies one row per id. The first terminal change wins (a later
// retry of a done event is a stale redelivery), else the latest retry.

#include <gtest/gtest.h>

#include <vector>

#include "store/group_commit.hpp"

using namespace eventflow::store;
using Kind = Transition::Kind;

namespace {

Transition change(Kind kind, const std::string& id, unsigned attempts, const std::string& error_type = {}) {
  return {.kind = kind, .id = id, .attempts = attempts, .error_type = error_type};
}

}  // namespace

TEST(Collapse, KeepsOneChangePerEventInFirstSeenOrder) {
  std::vector<Transition> ts{change(Kind::done, "a", 1), change(Kind::retrying, "b", 1), change(Kind::dead, "c", 2)};
  collapse(ts);
  ASSERT_EQ(ts.size(), 3u);
  EXPECT_EQ(ts[0].id, "a");
  EXPECT_EQ(ts[1].id, "b");
  EXPECT_EQ(ts[2].id, "c");
}

TEST(Collapse, ALaterChangeReplacesARetry) {
  std::vector<Transition> ts{change(Kind::retrying, "a", 1), change(Kind::retrying, "a", 2),
                             change(Kind::done, "b", 1)};
  collapse(ts);
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[0].id, "a");
  EXPECT_EQ(ts[0].attempts, 2u) << "the latest retry";

  std::vector<Transition> then_dead{change(Kind::retrying, "a", 4), change(Kind::dead, "a", 5, "transient")};
  collapse(then_dead);
  ASSERT_EQ(then_dead.size(), 1u);
  EXPECT_EQ(then_dead[0].kind, Kind::dead);
  EXPECT_EQ(then_dead[0].error_type, "transient");
}

TEST(Collapse, TheFirstTerminalChangeWins) {
  std::vector<Transition> ts{change(Kind::done, "a", 1), change(Kind::retrying, "a", 2),
                             change(Kind::dead, "a", 3, "poison")};
  collapse(ts);
  ASSERT_EQ(ts.size(), 1u);
  EXPECT_EQ(ts[0].kind, Kind::done) << "a redelivery's changes after done are stale";
  EXPECT_EQ(ts[0].attempts, 1u);

  std::vector<Transition> dead_first{change(Kind::dead, "a", 2, "validation"), change(Kind::done, "a", 3)};
  collapse(dead_first);
  ASSERT_EQ(dead_first.size(), 1u);
  EXPECT_EQ(dead_first[0].kind, Kind::dead);
  EXPECT_EQ(dead_first[0].error_type, "validation");
}

TEST(Collapse, NothingOrOneIsLeftAlone) {
  std::vector<Transition> none;
  collapse(none);
  EXPECT_TRUE(none.empty());
  std::vector<Transition> one{change(Kind::retrying, "a", 1)};
  collapse(one);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].id, "a");
}
