#include "store/group_commit.hpp"

#include <unordered_map>

#include "base/log.hpp"
#include "base/threads.hpp"

namespace eventflow::store {

void collapse(std::vector<Transition>& transitions) {
  // One change per event per commit, so a set-based UPDATE applies the right
  // one: the first terminal change wins, else the latest.
  if (transitions.size() < 2) return;
  std::unordered_map<std::string, std::size_t> at;
  std::vector<Transition> out;
  out.reserve(transitions.size());
  for (auto& t : transitions) {
    auto [it, fresh] = at.try_emplace(t.id, out.size());
    if (fresh) {
      out.push_back(std::move(t));
    } else if (out[it->second].kind == Transition::Kind::retrying) {
      out[it->second] = std::move(t);
    }
  }
  transitions.swap(out);
}

GroupCommitter::GroupCommitter(Store& store, std::size_t max_rows)
    : store_(store), max_rows_(max_rows) {
  if (!store.durableOnCommit()) sync_thread_ = std::thread([this] {
      nameThread("ef-sync");
      complete();
    });
  for (std::size_t i = 0; i < std::max<std::size_t>(1, store.writers()); ++i) threads_.emplace_back([this] {
      nameThread("ef-commit");
      run();
    });
}

GroupCommitter::~GroupCommitter() { stop(); }

void GroupCommitter::insert(std::vector<RawEvent> events, InsertDone done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      inserts_.push_back(InsertRequest{std::move(events), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  done(makeError("shutting down"));
}

std::future<Expected<std::vector<InsertStatus>>> GroupCommitter::insert(std::vector<RawEvent> events) {
  auto promise = std::make_shared<std::promise<Expected<std::vector<InsertStatus>>>>();
  auto future = promise->get_future();
  insert(std::move(events), [promise](Expected<std::vector<InsertStatus>> result) { promise->set_value(std::move(result)); });
  return future;
}

std::future<Expected<void>> GroupCommitter::transitions(std::vector<Transition> changes,
                                                        std::function<void()> on_commit) {
  Waiter waiter{{}, std::move(on_commit)};
  auto future = waiter.promise.get_future();
  {
    std::lock_guard lock(mutex_);
    transitions_.insert(transitions_.end(), std::make_move_iterator(changes.begin()),
                        std::make_move_iterator(changes.end()));
    waiters_.push_back(std::move(waiter));
  }
  cv_.notify_one();
  return future;
}

void GroupCommitter::transition(Transition t) {
  {
    std::lock_guard lock(mutex_);
    transitions_.push_back(std::move(t));
  }
  cv_.notify_one();
}

void GroupCommitter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  {
    std::lock_guard lock(done_mutex_);
    committers_stopped_ = true;
  }
  done_cv_.notify_all();
  if (sync_thread_.joinable()) sync_thread_.join();
}

void GroupCommitter::run() {
  int failures = 0;
  for (;;) {
    std::vector<InsertRequest> batch;
    std::vector<Transition> transitions;
    std::vector<Waiter> waiters;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !inserts_.empty() || !transitions_.empty() || !waiters_.empty(); });
      if (inserts_.empty() && transitions_.empty() && waiters_.empty()) return;  // stopping and drained
      std::size_t rows = 0;
      while (!inserts_.empty() && (batch.empty() || rows + inserts_.front().events.size() <= max_rows_)) {
        rows += inserts_.front().events.size();
        batch.push_back(std::move(inserts_.front()));
        inserts_.pop_front();
      }
      transitions.swap(transitions_);
      waiters.swap(waiters_);
    }
    std::vector<RawEvent> rows;
    for (auto& r : batch) rows.insert(rows.end(), std::make_move_iterator(r.events.begin()),
                                      std::make_move_iterator(r.events.end()));
    collapse(transitions);
    const auto commit_started = std::chrono::steady_clock::now();
    auto result = store_.commit(rows, transitions);
    if (result) {
      failures = 0;
      if (!sync_thread_.joinable()) {  // durable already
        Completion c{std::move(batch), std::move(rows), std::move(*result), {}, std::move(waiters), commit_started};
        if (commit_timer_) commit_timer_(std::chrono::steady_clock::now() - commit_started);
        answer(c);
        continue;
      }
      {
        std::lock_guard lock(done_mutex_);
        completions_.push_back(Completion{std::move(batch), std::move(rows), std::move(*result),
                                          std::move(transitions), std::move(waiters), commit_started});
      }
      done_cv_.notify_one();
      continue;
    }
    if (commit_timer_) commit_timer_(std::chrono::steady_clock::now() - commit_started);
    // Ingest callers get the error now (they answer 503); state changes wait
    // for the store to come back, since the events are already accepted.
    for (auto& r : batch) r.done(result.error());
    // Every 200 ms while the store is down: once a few seconds in the log.
    if (std::uint64_t suppressed = 0; commit_failures_.allow(suppressed))
      log::error("store commit failed",
                 {{"error", result.error().message}, {"failures_not_logged", std::to_string(suppressed)}});
    {
      std::lock_guard lock(mutex_);
      requeue(transitions, waiters);
      if (stopping_ && ++failures > 3) {
        log::error("giving up on state changes at shutdown; they are recovered at the next start");
        for (auto& w : waiters_) w.promise.set_value(makeError("store unavailable at shutdown"));
        for (auto& r : inserts_) r.done(makeError("store unavailable at shutdown"));
        waiters_.clear();
        transitions_.clear();
        inserts_.clear();
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void GroupCommitter::complete() {
  for (;;) {
    std::deque<Completion> ready;
    {
      std::unique_lock lock(done_mutex_);
      done_cv_.wait(lock, [&] { return committers_stopped_ || !completions_.empty(); });
      if (completions_.empty()) return;  // the committers stopped and all is answered
      ready.swap(completions_);
    }
    // One sync for every commit made since the last: all of them were
    // written before it started.
    if (auto synced = store_.sync(); !synced) {
      // Committed but maybe not durable: no request is told otherwise.
      // Inserts get the error (503; their rows are queued and recovered at
      // the next start, or the client retries); state changes are committed
      // again and synced with the next group.
      log::error("store sync failed", {{"error", synced.error().message}});
      std::vector<Transition> again;
      std::vector<Waiter> waiters;
      for (auto& c : ready) {
        for (auto& r : c.batch) r.done(synced.error());
        again.insert(again.end(), std::make_move_iterator(c.transitions.begin()),
                     std::make_move_iterator(c.transitions.end()));
        waiters.insert(waiters.end(), std::make_move_iterator(c.waiters.begin()),
                       std::make_move_iterator(c.waiters.end()));
      }
      bool stopped = false;
      {
        std::lock_guard lock(done_mutex_);
        stopped = committers_stopped_;
      }
      if (stopped) {  // no committer left to take them: recovered at the next start
        for (auto& w : waiters) w.promise.set_value(makeError("store sync failed at shutdown: " + synced.error().message));
        continue;
      }
      {
        std::lock_guard lock(mutex_);
        requeue(again, waiters);
      }
      cv_.notify_one();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    const auto synced_at = std::chrono::steady_clock::now();
    for (auto& c : ready) {
      if (commit_timer_) commit_timer_(synced_at - c.started);
      answer(c);
    }
  }
}

void GroupCommitter::requeue(std::vector<Transition>& transitions, std::vector<Waiter>& waiters) {
  // First in line: the next commit takes them before anything newer.
  transitions_.insert(transitions_.begin(), std::make_move_iterator(transitions.begin()),
                      std::make_move_iterator(transitions.end()));
  waiters_.insert(waiters_.begin(), std::make_move_iterator(waiters.begin()), std::make_move_iterator(waiters.end()));
}

void GroupCommitter::answer(Completion& c) {
  // Answer first: the rows are durable, and a publish that never happens is
  // the relay's to repair.
  std::size_t offset = 0;
  for (auto& r : c.batch) {
    std::vector<InsertStatus> mine(c.statuses.begin() + static_cast<std::ptrdiff_t>(offset),
                                   c.statuses.begin() + static_cast<std::ptrdiff_t>(offset + r.events.size()));
    offset += r.events.size();
    r.done(std::move(mine));
  }
  for (auto& w : c.waiters) {
    if (w.on_commit) w.on_commit();
    w.promise.set_value({});
  }
  // Rows come from ingest only, which starts after afterCommit() is set.
  if (!c.rows.empty() && after_commit_) after_commit_(c.rows, c.statuses);
}

}  // namespace eventflow::store
