#include "plugin/loader.hpp"

#define BOOST_DLL_USE_STD_FS
#include <boost/dll/shared_library.hpp>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "base/suggest.hpp"
#include "plugin/elf_symbols.hpp"
#include "plugin/versions.hpp"

namespace eventflow::plugin {
namespace fs = std::filesystem;
namespace {

Error refuse(const std::string& file, const std::string& step, const std::string& why) {
  return makeError(file + ": " + step + ": " + why);
}

std::string aKind(Kind kind) { return (kind == Kind::enricher ? "an " : "a ") + std::string(kindName(kind)); }

std::string version(unsigned major, unsigned minor) { return std::to_string(major) + "." + std::to_string(minor); }

bool writableByOthers(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IWOTH) != 0;
}

// A folder above the plugin's own in which anyone may rename or replace
// entries: world-writable without the sticky bit (/tmp's 1777 is fine, as
// nobody may move another's entries there).
bool replaceableByOthers(const fs::path& dir) {
  struct stat st {};
  return ::stat(dir.c_str(), &st) == 0 && (st.st_mode & S_IWOTH) != 0 && (st.st_mode & S_ISVTX) == 0;
}

}  // namespace

Expected<PluginPtr> loadPlugin(const std::string& path, const HostAbi& host) {
  const fs::path p(path);
  if (!p.is_absolute()) return refuse(path, "path", "plugin paths must be absolute");
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return refuse(path, "path", "no such file");
  // What is loaded is the file a symlink leads to: its permissions and its
  // folders' are the ones that matter, not the link's.
  const fs::path real = fs::canonical(p, ec);
  if (ec) return refuse(path, "path", "cannot resolve: " + ec.message());
  const std::string shown = real == p ? std::string() : " (" + real.string() + ")";
  if (writableByOthers(real.string()))
    return refuse(path, "permissions", "the file" + shown + " is writable by others; refusing to load it");
  if (writableByOthers(real.parent_path().string()))
    return refuse(path, "permissions", "its folder " + real.parent_path().string() + " is writable by others; refusing to load it");
  if (real != p && writableByOthers(p.parent_path().string()))
    return refuse(path, "permissions", "the folder of its link, " + p.parent_path().string() +
                                           ", is writable by others; refusing to load it");
  for (fs::path dir = real.parent_path().parent_path(); !dir.empty(); dir = dir.parent_path()) {
    if (replaceableByOthers(dir))
      return refuse(path, "permissions", "the folder " + dir.string() + " above it is writable by others; refusing to load it");
    if (dir == dir.root_path()) break;
  }

  // Checked before loading, so a file that is no plugin never runs its
  // initialisers. .dynsym, not .symtab: a stripped plugin keeps only the former.
  const auto exported = exportsDynamicSymbol(p.string(), kDescriptorSymbol);
  if (!exported) return refuse(path, "read", "not a loadable shared library: " + exported.error().message);
  if (!*exported)
    return refuse(path, "descriptor", std::string("no exported symbol '") + kDescriptorSymbol +
                                          "'; not an EventFlow plugin (declare it with EVENTFLOW_PLUGIN)");

  const std::string identity = fileIdentity(real.string());
  auto from = pathToLoad(real.string(), identity);
  if (!from) return from.error();
  auto loading = std::make_unique<boost::dll::shared_library>();
  try {
    loading->load(fs::path(*from), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    if (*from != real.string()) {
      fs::remove(*from, ec);
    }
    return refuse(path, "load", e.what());
  }
  auto library = track(std::move(loading), real.string(), identity, *from);
  const EventflowPluginDescriptor* d = nullptr;
  try {
    d = library->get<const EventflowPluginDescriptor*()>(kDescriptorSymbol)();
  } catch (const std::exception& e) {
    return refuse(path, "descriptor", e.what());
  }
  if (d == nullptr) return refuse(path, "descriptor", "the descriptor function returned null");

  // abi_major, abi_minor and struct_size are the only fields a different
  // major, or a descriptor of unknown size, may be trusted with.
  if (d->abi_major != host.major)
    return refuse(path, "abi", "plugin ABI " + version(d->abi_major, d->abi_minor) + " but host ABI " +
                                   version(host.major, host.minor) + " (major versions differ); rebuild the plugin against this host's SDK");
  if (d->abi_minor > host.minor)
    return refuse(path, "abi", "plugin ABI " + version(d->abi_major, d->abi_minor) + " is newer than host ABI " +
                                   version(host.major, host.minor) + "; upgrade the host or rebuild the plugin");
  if (d->struct_size < kDescriptorSizeV2 || (d->abi_minor == host.minor && d->struct_size != host.descriptor_size))
    return refuse(path, "descriptor", "the descriptor has " + std::to_string(d->struct_size) + " bytes but ABI " +
                                          version(d->abi_major, d->abi_minor) + "'s has " +
                                          std::to_string(d->abi_minor == host.minor ? host.descriptor_size : kDescriptorSizeV2) +
                                          "; rebuild the plugin against an unmodified SDK");
  const std::string sdk_hash = d->sdk_hash ? d->sdk_hash : "";
  const auto expected = host.sdk_hashes.find(d->abi_minor);
  if (expected == host.sdk_hashes.end())
    return refuse(path, "abi", "no SDK header hash is recorded for ABI " + version(d->abi_major, d->abi_minor) +
                                   " in this host (plugin-api/abi_hash.txt)");
  if (sdk_hash != expected->second)
    return refuse(path, "abi", "SDK header hash '" + sdk_hash + "' but ABI " + version(d->abi_major, d->abi_minor) +
                                   "'s headers have '" + expected->second +
                                   "'; the plugin was built with changed SDK headers: rebuild it against this host's SDK");
  const std::string cxx = d->cxx_abi_tag ? d->cxx_abi_tag : "";
  if (cxx != host.cxx_tag)
    return refuse(path, "abi", "C++ library ABI '" + cxx + "' but host has '" + host.cxx_tag + "'");
  const std::string json = d->json_abi_tag ? d->json_abi_tag : "";
  if (json != host.json_tag)
    return refuse(path, "abi", "JSON ABI '" + json + "' but host has '" + host.json_tag + "'");
  if (d->kind < 1 || d->kind > 3) return refuse(path, "descriptor", "unknown kind " + std::to_string(d->kind));
  if (!d->name || !*d->name) return refuse(path, "descriptor", "empty plugin name");
  if (!d->create || !d->destroy) return refuse(path, "descriptor", "missing create or destroy");

  auto plugin = std::make_shared<Plugin>();
  plugin->file = path;
  plugin->identity = identity;
  plugin->name = d->name;
  plugin->version = d->version ? d->version : "";
  plugin->description = d->description ? d->description : "";
  plugin->kind = static_cast<Kind>(d->kind);
  plugin->abi_major = d->abi_major;
  plugin->abi_minor = d->abi_minor;
  plugin->config_schema = nlohmann::json::parse(d->config_schema ? d->config_schema : "{}", nullptr, false);
  if (plugin->config_schema.is_discarded()) return refuse(path, "schema", "the config schema is not valid JSON");
  auto schema = JsonSchema::parse(plugin->config_schema);
  if (!schema)
    return refuse(path, "schema", "the config schema is not a JSON Schema (draft 7) the host can use: " +
                                      schema.error().message);
  plugin->schema = *schema;
  plugin->descriptor = d;
  plugin->library = std::move(library);
  return PluginPtr(std::move(plugin));
}

Expected<Registry> Registry::scan(const std::vector<std::string>& paths, const HostAbi& host) {
  Registry registry;
  registry.host_ = host;
  std::vector<std::string> files;
  for (const auto& dir : paths) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().extension() == ".so") files.push_back(fs::absolute(entry.path()).lexically_normal().string());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    auto plugin = loadPlugin(file, host);
    if (!plugin) {
      registry.failures_.push_back(plugin.error().message);
      continue;
    }
    const auto& name = (*plugin)->name;
    if (auto it = registry.plugins_.find(name); it != registry.plugins_.end())
      return makeError("two plugins are named '" + name + "': " + it->second->file + " and " + file);
    registry.plugins_.emplace(name, std::move(*plugin));
  }
  return registry;
}

Expected<PluginPtr> Registry::resolve(const std::string& name, Kind kind, const std::string& path) const {
  PluginPtr plugin;
  if (!path.empty()) {
    auto loaded = loadPlugin(path, host_);
    if (!loaded) return loaded.error();
    plugin = *loaded;
    if (plugin->name != name)
      return makeError(path + ": the file declares plugin '" + plugin->name + "', not '" + name + "'");
  } else if (auto it = plugins_.find(name); it != plugins_.end()) {
    plugin = it->second;
  } else {
    // Plugins of the stage's kind first: `clasify` as an enricher means classify.
    std::vector<std::string> same_kind, others;
    for (const auto& [n, p] : plugins_) (p->kind == kind ? same_kind : others).push_back(n);
    std::string hint = didYouMean(name, same_kind);
    if (hint.empty()) hint = didYouMean(name, others);
    std::string message =
        std::string("no ") + kindName(kind) + " plugin named '" + name + "' in the plugin paths" + hint;
    for (const auto& f : failures_) message += "\n  (not loaded: " + f + ")";
    return makeError(message);
  }
  if (plugin->kind != kind)
    return makeError(plugin->file + ": plugin '" + name + "' is " + aKind(plugin->kind) + ", but the stage uses it as " +
                     aKind(kind));
  return plugin;
}

Expected<void> checkConfig(const Plugin& plugin, const nlohmann::json& config, const std::string& where,
                           const std::function<std::string(const std::string&)>& locate) {
  const auto problems = plugin.schema.problems(config);
  if (problems.empty()) return {};
  std::string message;
  for (const auto& p : problems) {
    std::string at = locate ? locate(p.path) : std::string();
    if (at.empty()) at = where;
    message += (message.empty() ? "" : "\n") + at + ": config of " + kindName(plugin.kind) + " '" + plugin.name +
               "' does not match its schema: " + (p.path.empty() ? "(document)" : p.path) + ": " + p.message;
  }
  return makeError(message);
}

template <class T>
Expected<std::unique_ptr<Instance<T>>> createInstance(const PluginPtr& plugin, const nlohmann::json& config,
                                                      Context& context) {
  char error[1024] = {};
  void* object = nullptr;
  try {
    object = plugin->descriptor->create(&config, &context, error, sizeof error);
  } catch (const std::exception& e) {
    return makeError(plugin->file + ": create: threw: " + e.what());
  } catch (...) {
    return makeError(plugin->file + ": create: threw an unknown exception");
  }
  if (object == nullptr) {
    if (error[0] != '\0') return makeError(plugin->file + ": create: " + error);
    return makeError(plugin->file + ": create: returned null");
  }
  return std::make_unique<Instance<T>>(plugin, static_cast<T*>(object));
}

template Expected<std::unique_ptr<Instance<Validator>>> createInstance(const PluginPtr&, const nlohmann::json&, Context&);
template Expected<std::unique_ptr<Instance<Enricher>>> createInstance(const PluginPtr&, const nlohmann::json&, Context&);
template Expected<std::unique_ptr<Instance<Sink>>> createInstance(const PluginPtr&, const nlohmann::json&, Context&);

}  // namespace eventflow::plugin
