#pragma once

#include <string>

#include "base/expected.hpp"

namespace eventflow::plugin {

// Whether the shared library at `path` exports `name` in its dynamic symbol
// table (.dynsym): the table dlsym() searches, which `strip --strip-all`
// keeps. Read with libelf before the library is loaded, so a file that is no
// plugin never has its initialisers run. An error names what is wrong with
// the file (not ELF, no dynamic symbols, unreadable).
Expected<bool> exportsDynamicSymbol(const std::string& path, const std::string& name);

}  // namespace eventflow::plugin
