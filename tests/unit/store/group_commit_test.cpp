// The group committer's two stages: a commit is answered only after the
// store's sync() that follows it (G1), the next commit runs while that sync
// waits, and a failed sync answers no insert as accepted and commits the
// state changes again.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "store/group_commit.hpp"

using namespace eventflow;
using namespace eventflow::store;
using namespace std::chrono_literals;

namespace {

// Commits at once; sync() waits at a gate the test opens, and fails while
// `fail_syncs` is above zero.
class GatedStore final : public Store {
 public:
  std::string backend() const override { return "gated"; }
  bool durableOnCommit() const override { return false; }
  Expected<void> migrate() override { return {}; }
  Expected<std::vector<InsertStatus>> commit(std::span<const RawEvent> inserts,
                                             std::span<const Transition> transitions) override {
    std::lock_guard lock(mutex_);
    ++commits_;
    for (const auto& t : transitions) committed_changes_.push_back(t.id);
    cv_.notify_all();
    return std::vector<InsertStatus>(inserts.size(), InsertStatus::inserted);
  }
  Expected<void> sync() override {
    std::unique_lock lock(mutex_);
    ++syncs_started_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    if (fail_syncs_ > 0) {
      --fail_syncs_;
      return makeError("fdatasync: input/output error");
    }
    return {};
  }

  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  void failSyncs(int n) {
    std::lock_guard lock(mutex_);
    fail_syncs_ = n;
  }
  // Waits (bounded) until `pred` holds under the store's lock.
  template <class Pred>
  bool waitFor(Pred pred) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, 10s, [&] { return pred(*this); });
  }
  int commits_ = 0;
  int syncs_started_ = 0;
  std::vector<std::string> committed_changes_;

  Expected<std::vector<PendingEvent>> unfinished() override { return std::vector<PendingEvent>{}; }
  Expected<std::map<std::string, unsigned>> recordDeliveries(const std::vector<std::string>&) override {
    return std::map<std::string, unsigned>{};
  }
  Expected<std::vector<PendingEvent>> stale(std::chrono::milliseconds, std::size_t) override {
    return std::vector<PendingEvent>{};
  }
  Expected<std::optional<Journey>> journey(const std::string&) override { return std::optional<Journey>{}; }
  Expected<std::map<std::string, StateCounts>> counts() override { return std::map<std::string, StateCounts>{}; }
  Expected<void> compactCounts() override { return {}; }
  Expected<std::vector<std::string>> settled(std::span<const std::string>) override {
    return std::vector<std::string>{};
  }
  Expected<std::size_t> prune(const std::string&, State, std::chrono::milliseconds, std::size_t) override {
    return std::size_t{0};
  }
  Expected<void> ping() override { return {}; }
  Expected<DeadPage> listDead(const DeadFilter&) override { return DeadPage{}; }
  Expected<std::optional<DeadEvent>> getDead(const std::string&) override { return std::optional<DeadEvent>{}; }
  Expected<ReplayResult> replay(std::span<const std::string>) override { return ReplayResult{}; }
  Expected<bool> discard(const std::string&) override { return false; }
  Expected<std::uint64_t> purge(const DeadFilter&) override { return std::uint64_t{0}; }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
  int fail_syncs_ = 0;
};

RawEvent row(const std::string& id) { return {.id = id, .type = "t", .pipeline = "p", .payload = "{}"}; }

}  // namespace

TEST(GroupCommit, AnInsertIsAnsweredOnlyAfterTheSyncThatFollowsItsCommit) {
  GatedStore store;
  GroupCommitter committer(store);
  auto first = committer.insert({row("a")});
  ASSERT_TRUE(store.waitFor([](GatedStore& s) { return s.commits_ == 1 && s.syncs_started_ == 1; }));
  EXPECT_EQ(first.wait_for(50ms), std::future_status::timeout) << "committed, not yet durable: no answer";

  // The next group commits while the first one's sync still waits.
  auto second = committer.insert({row("b")});
  ASSERT_TRUE(store.waitFor([](GatedStore& s) { return s.commits_ == 2; }));
  EXPECT_EQ(second.wait_for(0ms), std::future_status::timeout);

  store.open();
  auto a = first.get();
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->at(0), InsertStatus::inserted);
  auto b = second.get();
  ASSERT_TRUE(b) << b.error().message;
  committer.stop();
}

TEST(GroupCommit, AFailedSyncAcceptsNoInsertAndCommitsTheStateChangesAgain) {
  GatedStore store;
  store.failSyncs(2);
  GroupCommitter committer(store);
  // The insert's commit is the first sync's; the change's commit the second's.
  auto insert = committer.insert({row("a")});
  ASSERT_TRUE(store.waitFor([](GatedStore& s) { return s.commits_ == 1 && s.syncs_started_ == 1; }));
  auto change = committer.transitions({{.kind = Transition::Kind::done, .id = "x", .attempts = 1}});
  ASSERT_TRUE(store.waitFor([](GatedStore& s) { return s.commits_ == 2; }));
  store.open();
  auto answered = insert.get();
  ASSERT_FALSE(answered) << "the client must not get a 202 for rows that may not be durable";
  EXPECT_NE(answered.error().message.find("input/output error"), std::string::npos) << answered.error().message;
  auto changed = change.get();
  EXPECT_TRUE(changed) << "the change resolves once committed again and synced";
  committer.stop();
  EXPECT_EQ(std::count(store.committed_changes_.begin(), store.committed_changes_.end(), "x"), 2)
      << "committed, its sync failed, committed again";
}

TEST(GroupCommit, StopAnswersWhatWasCommittedBeforeItReturns) {
  GatedStore store;
  store.open();
  GroupCommitter committer(store);
  std::vector<std::future<Expected<std::vector<InsertStatus>>>> answers;
  for (int i = 0; i < 50; ++i) answers.push_back(committer.insert({row("e" + std::to_string(i))}));
  committer.stop();
  for (auto& f : answers) {
    ASSERT_EQ(f.wait_for(0ms), std::future_status::ready) << "stop() returned with a request unanswered";
    EXPECT_TRUE(f.get());
  }
}
