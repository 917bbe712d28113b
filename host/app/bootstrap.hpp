#pragma once
// "Read the config, scan the plugins, build the pipelines": what serve,
// validate, test and dlq replay all start with, in one place so they agree on
// what a broken set-up is.

#include <string>
#include <vector>

#include "base/expected.hpp"
#include "config/config.hpp"
#include "pipeline/pipeline.hpp"
#include "plugin/loader.hpp"

namespace eventflow::app {

struct Loaded {
  config::HostConfig config;
  plugin::Registry registry;
  std::vector<pipeline::PipelinePtr> pipelines;
};

/// Scans `config`'s plugin folders and builds every pipeline file. A plugin
/// folder that does not exist is an error (its plugins would otherwise be
/// "unknown" with no reason given); every pipeline's errors are collected,
/// one per line, not just the first.
Expected<Loaded> loadPipelines(config::HostConfig config);

/// Reads the host config at `path`, then as above.
Expected<Loaded> loadAll(const std::string& path);

/// The settings a plugin's Context answers (Context::setting).
pipeline::Settings pluginSettings(const config::HostConfig& config, const std::string& version);

}  // namespace eventflow::app
