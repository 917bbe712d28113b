#pragma once
// Hot reload (DESIGN §3 POST /admin/reload; SIGHUP; `eventflow reload`):
// re-reads the host file and every pipeline file, builds everything off to
// the side (plugins loaded, stages instantiated), and only when all of it is
// good swaps the changed pipelines in one step. Any error changes nothing.
//
// What may change live and what needs a restart is decided per key in
// reload_diff.cpp (liveKeys) and written in docs/operations.md.

#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "app/bootstrap.hpp"
#include "pipeline/live_router.hpp"
#include "runtime/reload_outcome.hpp"

namespace eventflow::queue { class Queue; }
namespace eventflow::metrics { class Metrics; }
namespace eventflow::runtime { class WorkerPool; }

namespace eventflow::app {

/// A pipeline's config hash: its file's bytes, the bytes of every file its
/// stages' configs name (a schema, a Lua script), and the identity of every
/// plugin file its stages use, so that editing any of them counts as a change.
std::string pipelineHash(const pipeline::Pipeline& p);

/// The host file's keys, flattened to "section.key" (two levels) → JSON text.
std::map<std::string, std::string> flattenHostFile(const nlohmann::json& doc);

/// Keys of the host file that a reload applies; any other that changed is
/// reported under needs_restart and left as it was.
bool liveKey(const std::string& key);

struct ReloadContext {
  std::string config_path;
  std::string version;
  pipeline::LiveRouter* live = nullptr;
  queue::Queue* queue = nullptr;
  metrics::Metrics* metrics = nullptr;
  runtime::WorkerPool* workers = nullptr;  // null in the api role, which runs no stages
  pipeline::Settings settings;             // what plugins were created with
};

class Reloader {
 public:
  /// `started`: what serve started with (its config, registry and pipelines).
  Reloader(ReloadContext context, const Loaded& started);

  /// Generation 1, stamped, for the LiveRouter serve starts with.
  static pipeline::GenerationPtr firstGeneration(const Loaded& loaded);

  /// One reload; `trigger` (http, sighup) goes into its log line. While one
  /// runs another answers busy at once; after stop() every one answers
  /// stopping.
  runtime::ReloadOutcome reload(const std::string& trigger);

  /// Shutdown: waits for a reload in progress to end, then refuses the rest.
  void stop();

 private:
  runtime::ReloadOutcome attempt(const std::string& trigger);
  runtime::ReloadOutcome refuse(const std::string& trigger, const std::string& problems);

  ReloadContext c_;
  std::mutex mutex_;
  std::atomic<bool> stopping_{false};
  std::map<std::string, std::string> host_keys_;  // the host file as last applied (flattenHostFile)
  struct PluginSeen {
    std::string version;
    std::string file;
    std::string identity;
  };
  std::map<std::string, PluginSeen> plugins_;  // by name, as last applied
};

}  // namespace eventflow::app
