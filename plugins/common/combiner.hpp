#pragma once
// Concurrent calls that write to one place join into one write: the workers'
// instances of a sink (one per worker, each called on its own thread) hand
// their batches to each other, and whichever finds no write running writes
// every waiting batch at once. The sqlite and postgres sinks use it: six
// workers writing by turns made small transactions, and with SQLite six
// connections that each dropped the others' page cache at every commit.

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

namespace eventflow::plugins {

template <class Batch>
class Combiner {
 public:
  /// Returns once `batch` is written: by `write`, called here with every
  /// waiting batch (`batch` among them, in the order they came), or by
  /// another caller's. Only one `write` runs at a time. It reports into the
  /// batches and must not throw: a follower cannot be told.
  template <class Write>
  void join(Batch& batch, Write&& write) {
    static_assert(std::is_nothrow_invocable_v<Write&, std::vector<Batch*>&>, "write must be noexcept");
    Entry mine{&batch};
    std::unique_lock lock(mutex_);
    waiting_.push_back(&mine);
    while (!mine.finished) {
      if (writing_) {
        cv_.wait(lock);
        continue;
      }
      writing_ = true;
      std::vector<Entry*> group;
      group.swap(waiting_);
      lock.unlock();
      std::vector<Batch*> batches;
      batches.reserve(group.size());
      for (Entry* e : group) batches.push_back(e->batch);
      write(batches);
      lock.lock();
      for (Entry* e : group) e->finished = true;
      writing_ = false;
      cv_.notify_all();
    }
  }

 private:
  struct Entry {
    Batch* batch;
    bool finished = false;
  };
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Entry*> waiting_;
  bool writing_ = false;
};

/// The one T of `key` in this process while anyone holds it, made with
/// `make()` when there is none.
template <class T, class Make>
std::shared_ptr<T> sharedByKey(const std::string& key, Make&& make) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<T>> all;
  std::lock_guard lock(mutex);
  auto& slot = all[key];
  auto shared = slot.lock();
  if (!shared) {
    shared = make();
    slot = shared;
  }
  return shared;
}

}  // namespace eventflow::plugins
