#pragma once
// Group commit: concurrent ingest requests and worker state changes share one
// transaction (and one fsync), bounded by rows. A request's future resolves
// only after its rows are committed and durable (G1).
//
// Two stages when the store's commits are not durable on return (SQLite):
// the committer thread ("ef-commit") runs the transactions; an "ef-sync"
// thread calls Store::sync() once for every commit made meanwhile and
// answers their requests, in commit order. The next
// transaction is built while the last one's fsync runs, and the answers
// (HTTP replies, acknowledgements, publishing) are no longer the
// committer's work.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "base/throttle.hpp"
#include "store/store.hpp"

namespace eventflow::store {

/// Keeps one transition per event: the first terminal one, else the latest.
void collapse(std::vector<Transition>& transitions);

class GroupCommitter {
 public:
  /// Runs on the committer thread after each successful commit, once the
  /// waiting requests are answered, with every row and its status; rows may
  /// be moved from. Ingest publishes the new events here, once per group.
  using AfterCommit = std::function<void(std::vector<RawEvent>& rows, const std::vector<InsertStatus>& statuses)>;

  explicit GroupCommitter(Store& store, std::size_t max_rows = 1000);
  /// Set before the first insert.
  void afterCommit(AfterCommit hook) { after_commit_ = std::move(hook); }
  /// Set before the first insert: told how long each commit took until it
  /// was durable (or failed).
  void timeCommits(std::function<void(std::chrono::steady_clock::duration)> hook) { commit_timer_ = std::move(hook); }
  ~GroupCommitter();
  /// The store it commits to, for the few reads its users need.
  Store& store() const { return store_; }

  using InsertDone = std::function<void(Expected<std::vector<InsertStatus>>)>;
  /// Records the events in the next group commit; `done` runs on the sync
  /// thread once they are durable (or have failed), so it must not block.
  void insert(std::vector<RawEvent> events, InsertDone done);
  std::future<Expected<std::vector<InsertStatus>>> insert(std::vector<RawEvent> events);
  /// Resolves once the changes are committed; retried while the store fails.
  /// `on_commit` runs on the sync thread once the commit is durable (and
  /// never if it fails for good), e.g. to acknowledge the queue entries.
  std::future<Expected<void>> transitions(std::vector<Transition> changes, std::function<void()> on_commit = {});
  /// Fire and forget.
  void transition(Transition t);
  /// Commits what is pending, then stops the thread.
  void stop();

 private:
  struct InsertRequest {
    std::vector<RawEvent> events;
    InsertDone done;
  };
  struct Waiter {
    std::promise<Expected<void>> promise;
    std::function<void()> on_commit;
  };
  // A commit made, waiting for the store's sync() before its answers go out.
  struct Completion {
    std::vector<InsertRequest> batch;
    std::vector<RawEvent> rows;
    std::vector<InsertStatus> statuses;
    std::vector<Transition> transitions;  // committed again if the sync fails
    std::vector<Waiter> waiters;
    std::chrono::steady_clock::time_point started;
  };
  void run();
  void complete();
  void answer(Completion& c);
  // Changes whose commit failed, or whose sync did, go back to the front of
  // the queue; mutex_ held.
  void requeue(std::vector<Transition>& transitions, std::vector<Waiter>& waiters);
  Store& store_;
  const std::size_t max_rows_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<InsertRequest> inserts_;
  std::vector<Transition> transitions_;
  std::vector<Waiter> waiters_;
  bool stopping_ = false;
  // The sync thread's: commits made and not yet durable, in commit order.
  std::mutex done_mutex_;
  std::condition_variable done_cv_;
  std::deque<Completion> completions_;
  bool committers_stopped_ = false;
  std::thread sync_thread_;
  AfterCommit after_commit_;
  std::function<void(std::chrono::steady_clock::duration)> commit_timer_;
  Throttle commit_failures_;
  std::vector<std::thread> threads_;
};

}  // namespace eventflow::store
