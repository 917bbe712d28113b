// eventflow plugins list|show: what the host finds in plugins.paths, read
// through the loader `serve` uses, so what it prints is what `serve` would load.

#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "app/app.hpp"
#include "app/args.hpp"
#include "app/cli.hpp"
#include "config/config.hpp"
#include "plugin/loader.hpp"

namespace eventflow::app {
namespace {
namespace fs = std::filesystem;

const char* const kHelp = R"(usage: eventflow plugins list [--config FILE] [--json]
       eventflow plugins show NAME [--config FILE]

list   every plugin found in plugins.paths: kind, name, version, ABI, file
show   one plugin: kind, version, ABI, file, description and the JSON Schema
       its stage config must satisfy
)";

std::string abi(const plugin::Plugin& p) { return std::to_string(p.abi_major) + "." + std::to_string(p.abi_minor); }

// Files that failed the gate are worth showing: the plugin asked for may be one.
void reportFailures(const plugin::Registry& registry) {
  for (const auto& f : registry.failures()) std::cerr << "not loaded: " << f << "\n";
}

int list(const plugin::Registry& registry, bool json) {
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [name, p] : registry.plugins())
      out.push_back({{"name", name}, {"kind", kindName(p->kind)}, {"version", p->version}, {"abi", abi(*p)},
                     {"file", p->file}, {"description", p->description}});
    std::cout << out.dump(2) << "\n";
  } else {
    for (const auto& [name, p] : registry.plugins())
      std::cout << kindName(p->kind) << "\t" << name << "\t" << p->version << "\tabi " << abi(*p) << "\t" << p->file
                << "\n";
  }
  reportFailures(registry);
  return 0;
}

int show(const plugin::Registry& registry, const std::string& name, const config::HostConfig& cfg) {
  const auto it = registry.plugins().find(name);
  if (it == registry.plugins().end()) {
    std::string paths;
    for (const auto& p : cfg.plugin_paths) paths += (paths.empty() ? "" : ", ") + p;
    reportFailures(registry);
    return fail("no plugin named '" + name + "' in the plugin paths (" + paths + ")");
  }
  const plugin::Plugin& p = *it->second;
  std::cout << "name         " << p.name << "\n"
            << "kind         " << kindName(p.kind) << "\n"
            << "version      " << p.version << "\n"
            << "abi          " << abi(p) << "\n"
            << "file         " << p.file << "\n"
            << "description  " << p.description << "\n\n"
            << "config schema:\n"
            << p.config_schema.dump(2) << "\n";
  return 0;
}

}  // namespace

int plugins(int argc, char** argv) {
  Args args(argc, argv, 2, {"json", "help"});
  if (auto extra = args.unknown({"config", "json", "help"}); !extra.empty())
    return usageError(unknownOption(extra.front(), {"config", "json", "help"}), kHelp);
  if (!args.ok()) return usageError(args.error(), kHelp);
  if (args.has("help")) {
    std::cout << kHelp;
    return 0;
  }
  const auto& words = args.positional();
  const std::string sub = words.empty() ? "" : words.front();
  if (sub == "list" && words.size() != 1) return usageError("plugins list takes no arguments", kHelp);
  if (sub == "show" && words.size() != 2) return usageError("plugins show needs one plugin name", kHelp);
  if (sub.empty()) return usageError("plugins needs list or show", kHelp);
  if (sub != "list" && sub != "show") return usageError(unknownWord("plugins command", sub, {"list", "show"}), kHelp);
  if (sub == "show" && args.has("json")) return usageError("--json goes with plugins list", kHelp);

  auto cfg = config::loadHostConfig(configPath(args));
  if (!cfg) return fail(cfg.error().message);
  // A misspelt or unmounted folder would otherwise look like "no plugins".
  for (const auto& dir : cfg->plugin_paths) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) std::cerr << "eventflow: warning: plugins.paths names " << dir << ", which does not exist\n";
    else if (!fs::is_directory(dir, ec)) std::cerr << "eventflow: warning: plugins.paths names " << dir << ", which is not a folder\n";
  }
  auto registry = plugin::Registry::scan(cfg->plugin_paths);
  if (!registry) return fail(registry.error().message);
  if (sub == "list" && registry->plugins().empty()) {
    reportFailures(*registry);
    std::string paths;
    for (const auto& p : cfg->plugin_paths) paths += (paths.empty() ? "" : ", ") + p;
    return fail("no plugins found in plugins.paths (" + paths + ")");
  }
  return sub == "list" ? list(*registry, args.has("json")) : show(*registry, words[1], *cfg);
}

}  // namespace eventflow::app
