#include "isolation/spawn.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "base/threads.hpp"
#include "isolation/channel.hpp"

extern char** environ;

namespace eventflow::isolation {
namespace {

std::mutex exe_mutex;
std::string& exe() {
  static std::string path = "/proc/self/exe";
  return path;
}

// One thread that lives as long as the process and does every fork.
class Keeper {
 public:
  Keeper() : thread_([this] { loop(); }) { thread_.detach(); }
  template <class F>
  auto run(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto done = task.get_future();
    {
      std::lock_guard lock(mutex_);
      tasks_.emplace_back([&task] { task(); });
    }
    cv_.notify_one();
    return done.get();
  }

 private:
  void loop() {
    nameThread("ef-spawner");
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::thread thread_;
};

Keeper& keeper() {
  static auto* k = new Keeper();  // never destroyed: its thread must outlive every child
  return *k;
}

}  // namespace

void setRunnerExecutable(std::string path) {
  std::lock_guard lock(exe_mutex);
  exe() = std::move(path);
}

pid_t spawnRunner(int channel, int shared, std::string& error) {
  std::string path;
  {
    std::lock_guard lock(exe_mutex);
    path = exe();
  }
  return keeper().run([&]() -> pid_t {
    // Above the target numbers first, so that one dup2 cannot overwrite the other's source.
    const int c = ::fcntl(channel, F_DUPFD_CLOEXEC, 10);
    const int s = ::fcntl(shared, F_DUPFD_CLOEXEC, 10);
    const std::string parent = std::to_string(::getpid());
    pid_t pid = -1;
    int rc = c < 0 || s < 0 ? errno : 0;
    if (rc == 0) {
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_adddup2(&actions, c, kChannelFd);
      posix_spawn_file_actions_adddup2(&actions, s, kSharedFd);
      posix_spawn_file_actions_addclosefrom_np(&actions, kSharedFd + 1);
      std::vector<char*> argv{path.data(), const_cast<char*>("plugin-runner"), const_cast<char*>("--parent"),
                              const_cast<char*>(parent.c_str()), nullptr};
      rc = ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&actions);
    }
    if (c >= 0) ::close(c);
    if (s >= 0) ::close(s);
    if (rc != 0) {
      error = "could not start " + path + " plugin-runner: " + std::strerror(rc);
      return -1;
    }
    return pid;
  });
}

}  // namespace eventflow::isolation
