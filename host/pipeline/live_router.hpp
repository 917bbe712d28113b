#pragma once
// The pipelines in force, as one immutable generation that a reload replaces
// whole (DESIGN §3, POST /admin/reload). Readers take a snapshot and route
// with it, so a request or a relay pass sees one generation from start to end
// even if a reload lands meanwhile; the old generation, and the plugin
// libraries only it holds, go when the last snapshot does.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/pipeline.hpp"

namespace eventflow::pipeline {

/// When and from what a pipeline's current version was loaded.
struct PipelineStamp {
  std::uint64_t generation = 1;  // the config generation that (re)loaded it
  std::string config_hash;       // sha256 of its file, the files it names, its plugins' files
  std::string loaded_at;         // RFC 3339
};

struct Generation {
  std::uint64_t number = 1;
  Router router;
  std::map<std::string, PipelineStamp> stamps;  // by pipeline name
  /// The host file's retention: what a pipeline's file does not say, and
  /// everything for events of pipelines no longer configured.
  config::RetentionSpec retention{};
};
using GenerationPtr = std::shared_ptr<const Generation>;

class LiveRouter {
 public:
  explicit LiveRouter(GenerationPtr first) : current_(std::move(first)) {}
  /// Generation 1 of `pipelines`, without stamps (commands that never reload).
  explicit LiveRouter(std::vector<PipelinePtr> pipelines)
      : current_(std::make_shared<const Generation>(Generation{.number = 1, .router = Router(std::move(pipelines)), .stamps = {}, .retention = {}})) {}

  /// One atomic load: take it once per request or pass, not once per event.
  GenerationPtr current() const { return current_.load(std::memory_order_acquire); }
  void publish(GenerationPtr next) { current_.store(std::move(next), std::memory_order_release); }

 private:
  std::atomic<GenerationPtr> current_;
};

}  // namespace eventflow::pipeline
