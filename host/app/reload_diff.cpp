// What counts as a change for a reload: a pipeline's hash, the host file's
// keys and which of them apply live.

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "app/reload.hpp"
#include "base/ids.hpp"

namespace eventflow::app {
namespace {

namespace fs = std::filesystem;

// A file a stage's config names is read whole into the hash; larger ones
// (a lookup table's data, say) only by size and mtime.
constexpr std::uintmax_t kHashWhole = 4 << 20;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Strings in a stage's config that name an existing file, relative to the
// pipeline file's folder as plugins resolve them (Context::resolvePath).
void namedFiles(const nlohmann::json& value, const std::string& dir, std::set<std::string>& out) {
  if (value.is_object() || value.is_array()) {
    for (const auto& item : value) namedFiles(item, dir, out);
    return;
  }
  if (!value.is_string()) return;
  const auto& s = value.get_ref<const std::string&>();
  if (s.empty() || s.size() > 4096 || s.find('\n') != std::string::npos || s.find("${") != std::string::npos) return;
  fs::path p(s);
  if (p.is_relative()) p = fs::path(dir) / p;
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) out.insert(p.lexically_normal().string());
}

}  // namespace

std::string pipelineHash(const pipeline::Pipeline& p) {
  std::string text = "file\n" + p.spec().file + "\n" + readFile(p.spec().file);
  std::set<std::string> files;
  for (const auto& st : p.stages()) {
    namedFiles(st.spec.config, p.spec().dir, files);
    text += "\nplugin\n" + st.plugin->file + "\n" + st.plugin->identity + "\n" + st.plugin->version;
  }
  for (const auto& f : files) {
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    if (!ec && size > kHashWhole) {
      const auto mtime = fs::last_write_time(f, ec).time_since_epoch().count();
      text += "\nnamed\n" + f + "\n" + std::to_string(size) + ":" + std::to_string(mtime);
    } else {
      text += "\nnamed\n" + f + "\n" + readFile(f);
    }
  }
  return sha256Hex(text);
}

std::map<std::string, std::string> flattenHostFile(const nlohmann::json& doc) {
  std::map<std::string, std::string> out;
  if (!doc.is_object()) return out;
  for (const auto& [section, value] : doc.items()) {
    if (!value.is_object()) {
      out[section] = value.dump();
      continue;
    }
    for (const auto& [key, v] : value.items()) out[section + "." + key] = v.dump();
  }
  return out;
}

bool liveKey(const std::string& key) {
  // logging.level: the logger is set up again. plugins.paths and
  // pipelines.paths: the reload reads them to find what to load. retention:
  // the pruner reads it from each generation.
  // Everything else is held by a running part (the listening socket and its
  // TLS context, the store's and queue's connections, the committer, the
  // relay's timer, the API keys each request checks, the limits ingest
  // checks): it needs a restart, and the answer says so.
  static const std::set<std::string> kLive{"logging.level", "plugins.paths", "pipelines.paths", "retention.done",
                                              "retention.dead", "retention.discarded"};
  return kLive.count(key) > 0;
}

}  // namespace eventflow::app
