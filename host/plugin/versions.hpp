#pragma once
// Loading a new version of a plugin file while the old one still runs
// (reload). glibc's dlopen returns the library already loaded under the same
// path name without looking at the file again, so a rebuilt .so installed at
// the old path would silently stay the old code. A file whose identity
// (device, inode, size, mtime) differs from a version still loaded is
// therefore loaded from a private copy, under a name of its own; the copy is
// removed when that version is unloaded.

#include <memory>
#include <string>

#include "base/expected.hpp"

namespace boost::dll { class shared_library; }

namespace eventflow::plugin {

/// "dev:ino:size:mtime_ns" of `file`, empty when it cannot be read.
std::string fileIdentity(const std::string& file);

/// The path to dlopen for `real` (a canonical path) of identity `id`: itself,
/// or a private copy when another version of it is loaded now. Refuses a file
/// changed in place (same inode, other size or mtime) while loaded: its pages
/// are mapped into the process, and writing them crashes the old version.
Expected<std::string> pathToLoad(const std::string& real, const std::string& id);

/// Wraps a loaded library so that its unloading is logged, its copy (if
/// any) removed, and the version known to be gone.
std::shared_ptr<boost::dll::shared_library> track(std::unique_ptr<boost::dll::shared_library> library,
                                                  const std::string& real, const std::string& id,
                                                  const std::string& loaded_from);

}  // namespace eventflow::plugin
