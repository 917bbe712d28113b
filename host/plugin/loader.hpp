#pragma once
// Loads plugin .so files behind the descriptor gate (DESIGN §5, STYLE.md):
// absolute path → descriptor symbol present (read from the file, no code run)
// → dlopen(RTLD_NOW|RTLD_LOCAL) → descriptor → ABI version, descriptor size,
// SDK header hash, library tags and kind checked → config schema usable.
// Every instance holds its library, so a version is unloaded only once a
// reload replaced it and its last instance is gone (versions.hpp).

#include <cstddef>
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
  std::string identity;  // the file's "dev:ino:size:mtime_ns" when loaded: a reload loads a file anew when it differs
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

/// The SDK header hash recorded in plugin-api/abi_hash.txt for each minor of
/// ABI `major` (generated at build time).
std::map<unsigned, std::string> recordedSdkHashes(unsigned major);

/// The host's own ABI, which a plugin's descriptor must match. Tests make a
/// host of another version by changing it.
struct HostAbi {
  unsigned major = EVENTFLOW_PLUGIN_ABI_MAJOR;
  unsigned minor = EVENTFLOW_PLUGIN_ABI_MINOR;
  /// sizeof(EventflowPluginDescriptor) in this host: a plugin of the same minor has exactly this.
  std::uint32_t descriptor_size = sizeof(EventflowPluginDescriptor);
  /// The header hash a plugin of each minor up to `minor` must carry: the
  /// recorded ones, and for this host's own minor the hash it was built with.
  std::map<unsigned, std::string> sdk_hashes = withOwn(recordedSdkHashes(major), minor, EVENTFLOW_SDK_HEADER_HASH);
  std::string cxx_tag = EVENTFLOW_CXX_ABI_TAG;
  std::string json_tag = EVENTFLOW_JSON_ABI_TAG;

  static std::map<unsigned, std::string> withOwn(std::map<unsigned, std::string> recorded, unsigned own_minor,
                                                 std::string own_hash) {
    recorded[own_minor] = std::move(own_hash);
    return recorded;
  }
};

/// The end of the ABI 2.0 descriptor (its last field, `destroy`): every
/// plugin of major 2 has at least this much. Fields a later minor appends
/// are read only when a plugin's `struct_size` covers them.
inline constexpr std::uint32_t kDescriptorSizeV2 =
    offsetof(EventflowPluginDescriptor, destroy) + sizeof(eventflow_destroy_fn);

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
