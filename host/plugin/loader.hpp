#pragma once
// Loads plugin .so files behind the descriptor gate (DESIGN §5, STYLE.md):
// absolute path → descriptor symbol present (read from the file, no code run)
// → dlopen(RTLD_NOW|RTLD_LOCAL) → descriptor → ABI tags and kind checked.
// Nothing is ever unloaded: every instance holds its library.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <eventflow/plugin.hpp>

#include "base/expected.hpp"
#include "plugin/schema.hpp"

namespace boost::dll { class shared_library; }

namespace eventflow::plugin {

struct Plugin {
  std::string file;
  std::string name;
  std::string version;
  std::string description;
  Kind kind = Kind::validator;
  unsigned abi_major = 0;
  unsigned abi_minor = 0;
  nlohmann::json config_schema;
  JsonSchema schema;
  const EventflowPluginDescriptor* descriptor = nullptr;
  std::shared_ptr<boost::dll::shared_library> library;
};
using PluginPtr = std::shared_ptr<const Plugin>;

/// The host's own tags, which a plugin's descriptor must match.
struct HostAbi {
  unsigned major = EVENTFLOW_PLUGIN_ABI_MAJOR;
  unsigned minor = EVENTFLOW_PLUGIN_ABI_MINOR;
  std::string cxx_tag = EVENTFLOW_CXX_ABI_TAG;
  std::string json_tag = EVENTFLOW_JSON_ABI_TAG;
};

/// Loads one plugin file; every refusal names the file and the failed step.
Expected<PluginPtr> loadPlugin(const std::string& path, const HostAbi& host = {});

/// Every plugin found in the configured folders, by name.
class Registry {
 public:
  /// Scans `paths` for *.so. A file that fails to load is remembered (and
  /// reported when a pipeline asks for it); two plugins with one name fail.
  static Expected<Registry> scan(const std::vector<std::string>& paths, const HostAbi& host = {});

  /// The plugin `name` of `kind`, or `path` when the stage names a file.
  Expected<PluginPtr> resolve(const std::string& name, Kind kind, const std::string& path) const;
  const std::map<std::string, PluginPtr>& plugins() const { return plugins_; }
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  HostAbi host_;
  std::map<std::string, PluginPtr> plugins_;
  std::vector<std::string> failures_;
};

/// A live plugin object of base type T (Validator, Enricher, Sink). Destroyed
/// by the library that made it, which it keeps loaded.
template <class T>
class Instance {
 public:
  Instance(PluginPtr plugin, T* object) : plugin_(std::move(plugin)), object_(object) {}
  ~Instance() {
    if (object_) plugin_->descriptor->destroy(object_);
  }
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;
  T* operator->() const { return object_; }
  T& get() const { return *object_; }
  const Plugin& plugin() const { return *plugin_; }

 private:
  PluginPtr plugin_;
  T* object_;
};

/// Checks `config` against the plugin's schema; one line per problem. Each
/// line starts with locate(path of the value at fault) when that gives
/// something (the key's file:line:col), else with `where`.
Expected<void> checkConfig(const Plugin& plugin, const nlohmann::json& config, const std::string& where,
                           const std::function<std::string(const std::string&)>& locate = {});

/// Creates an instance through the descriptor; a throw or a null is an error.
template <class T>
Expected<std::unique_ptr<Instance<T>>> createInstance(const PluginPtr& plugin, const nlohmann::json& config,
                                                      Context& context);

}  // namespace eventflow::plugin
