#pragma once
// A queue's lanes by pipeline name, to which a reload may add one while
// workers and ingest look lanes up on every call. A lookup is one atomic load
// of an immutable map, with no lock and no shared counter to bounce between
// cores; an addition copies the map. Lanes and old maps are kept until the
// queue goes (a lane whose pipeline was removed is empty once drained, and
// maps are a few hundred bytes per reload that added a pipeline).

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace eventflow::queue {

template <class Lane>
class Lanes {
 public:
  using Map = std::map<std::string, Lane*>;

  explicit Lanes(const std::vector<std::string>& names) {
    auto first = std::make_unique<Map>();
    for (const auto& n : names) {
      owned_.push_back(std::make_unique<Lane>());
      first->emplace(n, owned_.back().get());
    }
    current_.store(first.get(), std::memory_order_release);
    maps_.push_back(std::move(first));
  }

  Lane* find(const std::string& name) const {
    const Map& m = *current_.load(std::memory_order_acquire);
    auto it = m.find(name);
    return it == m.end() ? nullptr : it->second;
  }
  /// Every lane as of now.
  const Map& all() const { return *current_.load(std::memory_order_acquire); }

  /// Adds `name`'s lane unless it has one; true when added.
  bool add(const std::string& name) {
    std::lock_guard lock(mutex_);
    const Map& now = *current_.load(std::memory_order_relaxed);
    if (now.count(name)) return false;
    auto next = std::make_unique<Map>(now);
    owned_.push_back(std::make_unique<Lane>());
    next->emplace(name, owned_.back().get());
    current_.store(next.get(), std::memory_order_release);
    maps_.push_back(std::move(next));
    return true;
  }

 private:
  std::mutex mutex_;
  std::deque<std::unique_ptr<Lane>> owned_;
  std::vector<std::unique_ptr<Map>> maps_;
  std::atomic<const Map*> current_{nullptr};
};

}  // namespace eventflow::queue
