#pragma once
// A pipeline is its stages: validators, then enrichers, then sinks. It runs
// events through plugin instances and says what became of each; it does no I/O
// of its own.

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <eventflow/plugin.hpp>

#include "base/expected.hpp"
#include "config/config.hpp"
#include "plugin/loader.hpp"

namespace eventflow::metrics { class Metrics; }

namespace eventflow::pipeline {

struct Stage {
  config::StageSpec spec;
  plugin::PluginPtr plugin;
  std::string label;  // "validator json-schema", for logs, metrics and the DLQ
};

/// Host values a plugin may read through Context::setting.
using Settings = std::map<std::string, std::string>;

class Pipeline {
 public:
  /// Resolves every stage's plugin and checks its config against the plugin's
  /// schema; each error names the pipeline file and the stage.
  static Expected<std::shared_ptr<const Pipeline>> build(config::PipelineSpec spec, const plugin::Registry& registry);

  const config::PipelineSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  const std::vector<Stage>& stages() const { return stages_; }
  std::size_t sinkCount() const;

 private:
  config::PipelineSpec spec_;
  std::vector<Stage> stages_;
};
using PipelinePtr = std::shared_ptr<const Pipeline>;

/// event_type → pipeline.
class Router {
 public:
  explicit Router(std::vector<PipelinePtr> pipelines);
  const Pipeline* route(const std::string& event_type) const;
  const std::vector<PipelinePtr>& pipelines() const { return pipelines_; }

 private:
  std::vector<PipelinePtr> pipelines_;
  std::map<std::string, const Pipeline*> by_type_;
  const Pipeline* catch_all_ = nullptr;
};

/// What became of one event in one run.
struct Outcome {
  enum class Kind { done, dead, retry } kind = Kind::done;
  std::string error_type;
  std::string message;
  std::string stage;
  std::string plugin;
};

struct Work {
  Event event;
  std::uint32_t sinks_done = 0;  // bit i: sink i has it; survives retries
  Outcome outcome;
};

/// One set of plugin instances for one worker thread; never shared.
class Runner {
 public:
  static Expected<std::unique_ptr<Runner>> create(PipelinePtr pipeline, const Settings& settings,
                                                  metrics::Metrics* metrics);
  ~Runner();

  /// Runs every item through the chain; sinks get the survivors as one batch.
  void run(std::span<Work> batch);
  const Pipeline& pipeline() const { return *pipeline_; }

 private:
  struct Impl;
  explicit Runner(PipelinePtr pipeline);
  PipelinePtr pipeline_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eventflow::pipeline
