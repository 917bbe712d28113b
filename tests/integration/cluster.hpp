#pragma once
// Several EventFlow processes on one PostgreSQL and one Redis, for the
// scale-out and fault tests.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include "child_process.hpp"
#include "host_process.hpp"

namespace eventflow::testing {

namespace fs = std::filesystem;

// The shipped pipelines, writing to PostgreSQL instead of SQLite.
inline fs::path postgresPipelines(const fs::path& dir) {
  const fs::path out = dir / "pipelines";
  fs::create_directories(out);
  fs::copy(fs::path(EVENTFLOW_PIPELINES_DIR) / "schemas", out / "schemas", fs::copy_options::recursive);
  for (const auto& entry : fs::directory_iterator(EVENTFLOW_PIPELINES_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    std::ofstream(out / entry.path().filename()) << std::regex_replace(ss.str(), std::regex("sink: sqlite"), "sink: postgres");
  }
  return out;
}

class Cluster {
 public:
  Cluster(const std::string& name, const std::string& pg, const std::string& redis, std::string claim_idle = "5s",
          std::string republish_after = "10s")
      : dir_(fs::temp_directory_path() / ("eventflow-" + name + "-" + std::to_string(::getpid()))),
        claim_idle_(std::move(claim_idle)), republish_after_(std::move(republish_after)) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    pipelines_ = postgresPipelines(dir_);
    pg_ = pg;
    redis_ = redis;
    prefix_ = "ef" + std::to_string(::getpid()) + ":";
  }
  ~Cluster() {
    processes_.clear();
    if (!::testing::Test::HasFailure()) fs::remove_all(dir_);
  }

  /// Starts one process of `role` (on `port`, else a free one); returns its port.
  std::uint16_t add(const std::string& role, std::uint16_t port = 0) {
    if (port == 0) port = freePort();
    const std::string id = role + std::to_string(processes_.size());
    const auto config = dir_ / (id + ".yaml");
    std::ofstream(config) << "server: { listen: \"127.0.0.1:" << port << "\" }\n"
                          << "store: { url: \"" << pg_ << "\" }\n"
                          << "queue: { type: redis, url: \"" << redis_ << "\", stream_prefix: \"" << prefix_
                          << "\", claim_idle: " << claim_idle_ << queue_extra_ << " }\n"
                          << "plugins: { paths: [" << plugin_paths_ << "] }\n"
                          << "pipelines: { paths: [" << pipelines_.string() << "] }\n"
                          << "relay: { republish_after: " << republish_after_ << " }\n"
                          << "shutdown_timeout: " << shutdown_timeout_ << "\n"
                          << host_extra_;
    auto p = std::make_unique<ChildProcess>(
        std::vector<std::string>{EVENTFLOW_BINARY, "serve", "--role", role, "--config", config.string()},
        (dir_ / (id + ".log")).string());
    EXPECT_TRUE(p->start());
    for (int i = 0; i < 200 && http(port, "GET", "/health/ready").status != 200; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(http(port, "GET", "/health/ready").status, 200) << p->output();
    processes_.push_back(std::move(p));
    return port;
  }

  std::vector<std::unique_ptr<ChildProcess>>& processes() { return processes_; }

  /// Pipelines from `dir` instead of the shipped ones; plugins also from `plugins`.
  void use(const fs::path& dir, const std::string& plugins = {}) {
    pipelines_ = dir;
    if (!plugins.empty()) plugin_paths_ += ", " + plugins;
  }
  const fs::path& dir() const { return dir_; }
  const std::string& prefix() const { return prefix_; }
  /// For processes added from now on.
  void shutdownTimeout(std::string timeout) { shutdown_timeout_ = std::move(timeout); }
  /// Keys added to the queue section (", max_depth: 400"), for processes added from now on.
  void queueExtra(std::string keys) { queue_extra_ = std::move(keys); }
  /// Top-level lines added to the host file ("retention: {done: 1s}\n"), for processes added from now on.
  void hostExtra(std::string yaml) { host_extra_ = std::move(yaml); }

 private:
  fs::path dir_, pipelines_;
  std::string claim_idle_, republish_after_;
  std::string shutdown_timeout_ = "10s", queue_extra_, host_extra_;
  std::string plugin_paths_ = EVENTFLOW_PLUGIN_DIR;
  std::string pg_, redis_, prefix_;
  std::vector<std::unique_ptr<ChildProcess>> processes_;
};


}  // namespace eventflow::testing
