#pragma once
// A named thread that runs one pass every period until stopped: the loop of
// the relay and of retention, written once.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "base/threads.hpp"

namespace eventflow {

class Periodic {
 public:
  Periodic() = default;
  ~Periodic() { stop(); }
  Periodic(const Periodic&) = delete;
  Periodic& operator=(const Periodic&) = delete;

  /// Starts the thread `name`: `pass` runs each `period`, the first one
  /// period after the start.
  void start(const char* name, std::chrono::milliseconds period, std::function<void()> pass) {
    thread_ = std::thread([this, name, period, pass = std::move(pass)] {
      nameThread(name);
      std::unique_lock lock(mutex_);
      while (!cv_.wait_for(lock, period, [&] { return stopping_; })) {
        lock.unlock();
        pass();
        lock.lock();
      }
    });
  }

  /// Ends the thread after the pass in progress (which may ask stopping()).
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  /// Whether stop() was called: a long pass checks it between its steps.
  bool stopping() {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace eventflow
