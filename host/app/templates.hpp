#pragma once
// The `eventflow plugin new` project templates, kept as files under
// host/app/templates/ and embedded at build time (templates.cpp.in).

#include <string_view>

namespace eventflow::app {

/// The text of templates/<path> (e.g. "sink/plugin.cpp.tmpl"). Throws
/// std::logic_error for a path that is not there: a bug, not an input.
std::string_view pluginTemplate(std::string_view path);

}  // namespace eventflow::app
