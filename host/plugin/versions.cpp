#include "plugin/versions.hpp"

#define BOOST_DLL_USE_STD_FS
#include <boost/dll/shared_library.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>

#include "base/log.hpp"

namespace eventflow::plugin {
namespace fs = std::filesystem;
namespace {

std::mutex g_mutex;
// Per canonical path, the versions (by identity) loaded now: how many live
// handles each has and the path it was loaded from, which a second load of
// the same version must use again (by the file's own name dlopen would give
// whichever version holds that name).
struct Loaded {
  int handles = 0;
  std::string from;
};
std::map<std::string, std::map<std::string, Loaded>> g_loaded;
std::atomic<unsigned> g_copies{0};

std::string inodeOf(const std::string& id) { return id.substr(0, id.find(':', id.find(':') + 1)); }

}  // namespace

std::string fileIdentity(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return {};
  const long long mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000LL + st.st_mtim.tv_nsec;
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(mtime_ns);
}

Expected<std::string> pathToLoad(const std::string& real, const std::string& id) {
  std::lock_guard lock(g_mutex);
  auto it = g_loaded.find(real);
  if (it == g_loaded.end() || it->second.empty()) return real;
  if (auto same = it->second.find(id); same != it->second.end()) return same->second.from;
  for (const auto& [other, n] : it->second)
    if (inodeOf(other) == inodeOf(id))
      return makeError(real + ": load: the file was changed in place while a version of it is loaded; install a new "
                              "version by writing another file and renaming it over this one (install(1) and mv do)");
  const fs::path dir = fs::temp_directory_path() / ("eventflow-plugins-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::permissions(dir, fs::perms::owner_all, ec);
  const fs::path copy = dir / (fs::path(real).stem().string() + "." + std::to_string(++g_copies) + ".so");
  fs::copy_file(real, copy, fs::copy_options::overwrite_existing, ec);
  if (ec) return makeError(real + ": load: cannot copy the new version to " + copy.string() + ": " + ec.message());
  return copy.string();
}

std::shared_ptr<boost::dll::shared_library> track(std::unique_ptr<boost::dll::shared_library> library,
                                                  const std::string& real, const std::string& id,
                                                  const std::string& loaded_from) {
  {
    std::lock_guard lock(g_mutex);
    auto& version = g_loaded[real][id];
    ++version.handles;
    version.from = loaded_from;
  }
  return std::shared_ptr<boost::dll::shared_library>(
      library.release(), [real, id, loaded_from](boost::dll::shared_library* lib) {
        delete lib;
        bool last = false;
        {
          std::lock_guard lock(g_mutex);
          auto& versions = g_loaded[real];
          last = --versions[id].handles == 0;
          if (last) versions.erase(id);
        }
        if (last && loaded_from != real) {
          std::error_code ec;
          fs::remove(loaded_from, ec);
        }
        if (last) log::debug("plugin library released", {{"file", real}, {"identity", id}});
      });
}

}  // namespace eventflow::plugin
