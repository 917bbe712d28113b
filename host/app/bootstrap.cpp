#include "app/bootstrap.hpp"

#include <filesystem>

#include "base/ids.hpp"

namespace eventflow::app {

Expected<Loaded> loadPipelines(config::HostConfig config) {
  for (const auto& dir : config.plugin_paths) {
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec))
      return makeError(config.file + ": plugins.paths names " + dir + ", which does not exist");
    if (!std::filesystem::is_directory(dir, ec))
      return makeError(config.file + ": plugins.paths names " + dir + ", which is not a folder");
  }
  auto registry = plugin::Registry::scan(config.plugin_paths);
  if (!registry) return registry.error();
  auto specs = config::loadPipelines(config.pipeline_paths);
  if (!specs) return specs.error();
  Loaded out{std::move(config), std::move(*registry), {}};
  std::string errors;
  for (auto& spec : *specs) {
    auto built = pipeline::Pipeline::build(std::move(spec), out.registry);
    if (!built) errors += (errors.empty() ? "" : "\n") + built.error().message;
    else out.pipelines.push_back(std::move(*built));
  }
  if (!errors.empty()) return makeError(errors);
  return out;
}

Expected<Loaded> loadAll(const std::string& path) {
  auto config = config::loadHostConfig(path);
  if (!config) return config.error();
  return loadPipelines(std::move(*config));
}

pipeline::Settings pluginSettings(const config::HostConfig& config, const std::string& version) {
  return {{"store.url", config.store.url}, {"host.name", hostName()}, {"version", version}};
}

}  // namespace eventflow::app
