#pragma once
// The part of a plugin's Context that both the host and an isolated stage's
// child answer from what they hold: paths relative to the pipeline file's
// folder, and the host's settings (store.url, validate_only, …).

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include <eventflow/plugin.hpp>

namespace eventflow::plugin {

class LocalContext : public Context {
 public:
  LocalContext(std::string dir, std::map<std::string, std::string> settings)
      : dir_(std::move(dir)), settings_(std::move(settings)) {}

  std::string resolvePath(std::string_view path) const override {
    std::filesystem::path p(path);
    if (p.is_relative()) p = std::filesystem::path(dir_) / p;
    return p.lexically_normal().string();
  }
  std::string setting(std::string_view key) const override {
    auto it = settings_.find(std::string(key));
    return it == settings_.end() ? std::string() : it->second;
  }

 private:
  std::string dir_;
  std::map<std::string, std::string> settings_;
};

}  // namespace eventflow::plugin
