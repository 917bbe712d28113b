#pragma once
// The host's side of an isolated stage (issue 14): one child process running
// one instance of the stage's plugin, for one worker thread. A batch goes to
// the child in one frame and comes back in one; the shared page says which
// event a dead or stuck child was in, and only that one pays:
//   crash (signal, abort, exit, memory limit) → reject, error_type plugin_crashed
//   call past limits.call_timeout → retry, error_type plugin_timeout
// and the rest of the batch runs again in a fresh child.

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <eventflow/plugin.hpp>

#include "base/expected.hpp"
#include "config/config.hpp"
#include "isolation/channel.hpp"

namespace eventflow::metrics { class Metrics; }
namespace prometheus { class Gauge; }

namespace eventflow::isolation {

inline constexpr char kPluginCrashed[] = "plugin_crashed";
inline constexpr char kPluginTimeout[] = "plugin_timeout";
/// The child could not be (re)started: the batch is retried later.
inline constexpr char kPluginUnavailable[] = "plugin_unavailable";

struct StageSetup {
  std::string pipeline;
  std::string stage;   // "enricher geo-tag"
  std::string plugin;  // its name
  std::string file;    // its .so
  std::string dir;     // the pipeline file's folder
  Kind kind = Kind::enricher;
  nlohmann::json config;
  config::IsolationSpec limits;
  std::map<std::string, std::string> settings;
};

class ProcessStage {
 public:
  /// Starts the child and waits until it has made its instance; an error
  /// (the plugin refused its config, the limit is too small to load it)
  /// names the stage.
  /// `context` gets what the plugin logs and counts; it outlives this.
  static Expected<std::unique_ptr<ProcessStage>> start(StageSetup setup, Context& context, metrics::Metrics* metrics);
  ~ProcessStage();
  ProcessStage(const ProcessStage&) = delete;
  ProcessStage& operator=(const ProcessStage&) = delete;

  /// One result per event, in order; an enricher's changes are in the events.
  std::vector<Result> run(std::span<Event* const> events);

  pid_t pid() const { return pid_; }

 private:
  enum class Ended { answered, crashed, hung };
  struct Call {
    Ended how = Ended::answered;
    std::size_t at = 0;      // index of the event a crash or hang is pinned on; npos: none
    std::string reason;      // restart reason label: signal, memory, exit, timeout, protocol
    std::string message;
  };

  ProcessStage(StageSetup setup, Context& context, metrics::Metrics* metrics);
  Expected<void> spawn();
  void backOff();
  Call call(std::span<Event* const> events, std::vector<Result>& results);
  Call died(std::size_t at);
  void forward(Frame type, const std::string& payload);
  void stopChild(std::chrono::milliseconds grace);
  void sampleMemory(bool force);

  StageSetup setup_;
  Context& context_;
  metrics::Metrics* metrics_;
  std::string child_label_;
  prometheus::Gauge* resident_ = nullptr;
  pid_t pid_ = -1;
  int fd_ = -1;
  Shared* shared_ = nullptr;
  int shared_fd_ = -1;
  unsigned failures_in_a_row_ = 0;  // deaths that pinned no event, with no answer between
  std::chrono::steady_clock::time_point last_sample_{};
};

}  // namespace eventflow::isolation
