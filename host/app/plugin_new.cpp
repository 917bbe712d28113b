// eventflow plugin new: writes an out-of-tree plugin project that builds
// against the installed SDK as it stands. tests/package builds every kind's
// project unchanged, so a template that stops compiling fails a test.

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <string_view>
#include <utility>
#include <vector>

#include "app/app.hpp"
#include "app/args.hpp"
#include "app/cli.hpp"
#include "app/templates.hpp"

namespace eventflow::app {
namespace {

namespace fs = std::filesystem;

const char* const kHelp = R"(usage: eventflow plugin new NAME --kind validator|enricher|sink [--dir D]

Writes a ready plugin project into D/NAME (D defaults to the current folder):
CMakeLists.txt, src/ with the kind's skeleton, a GoogleTest test and a README.
NAME is lower case: a letter, then letters, digits or '-'.
)";

// The files written, from host/app/templates/ (<kind>/ holds each kind's).
// Placeholders, replaced in this order (a stage mentions @NAME@): @STAGE@ a
// pipeline stage using the plugin, @NAME@ plugin name, @KIND@ kind, @FILE@
// snake_case file stem, @CLASS@ C++ class.

std::string substitute(std::string text, const std::vector<std::pair<std::string, std::string>>& values) {
  for (const auto& [key, value] : values)
    for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size()))
      text.replace(at, key.size(), value);
  return text;
}

// "my-plugin" → "MyPlugin".
std::string pascalCase(const std::string& name) {
  std::string out;
  bool upper = true;
  for (char c : name) {
    if (c == '-') {
      upper = true;
      continue;
    }
    out += upper && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
    upper = false;
  }
  return out;
}

int create(const std::string& name, const std::string& kind, const fs::path& dir) {
  std::string file = name;
  for (char& c : file)
    if (c == '-') c = '_';
  std::string kind_class = kind;
  kind_class[0] = static_cast<char>(kind_class[0] - 'a' + 'A');
  std::string stage(pluginTemplate(kind + "/stage.yaml.tmpl"));
  while (!stage.empty() && stage.back() == '\n') stage.pop_back();
  const std::vector<std::pair<std::string, std::string>> values{
      {"@STAGE@", stage}, {"@NAME@", name}, {"@KIND@", kind}, {"@FILE@", file},
      {"@CLASS@", pascalCase(name) + kind_class}};

  const auto of = [&](const std::string& path) { return std::string(pluginTemplate(path)); };
  const std::vector<std::pair<fs::path, std::string>> files{
      {"CMakeLists.txt", of("CMakeLists.txt.tmpl")},
      {".gitignore", of("gitignore.tmpl")},
      {"README.md", of("README.md.tmpl")},
      {fs::path("src") / (file + ".hpp"), of(kind + "/plugin.hpp.tmpl")},
      {fs::path("src") / (file + ".cpp"), of(kind + "/plugin.cpp.tmpl")},
      {fs::path("test") / (file + "_test.cpp"), of("test_head.cpp.tmpl") + "\n" + of(kind + "/test.cpp.tmpl")},
  };
  std::error_code ec;
  fs::create_directories(dir / "src", ec);
  if (!ec) fs::create_directories(dir / "test", ec);
  if (ec) return fail("cannot create " + dir.string() + ": " + ec.message());
  for (const auto& [path, text] : files) {
    const fs::path target = dir / path;
    std::ofstream out(target, std::ios::binary);
    out << substitute(text, values);
    out.close();
    if (!out) return fail("cannot write " + target.string() + ": " + std::strerror(errno));
  }
  std::cout << "wrote " << kind << " plugin '" << name << "' to " << dir.string() << "\n\n"
            << "  cmake -S " << dir.string() << " -B " << (dir / "build").string() << "\n"
            << "  cmake --build " << (dir / "build").string() << "\n"
            << "  ctest --test-dir " << (dir / "build").string() << "\n\n"
            << "then see " << (dir / "README.md").string() << " to install it and use it in a pipeline.\n";
  return 0;
}

}  // namespace

int pluginCommand(int argc, char** argv) {
  Args args(argc, argv, 2, {"help"});
  if (auto extra = args.unknown({"kind", "dir", "help"}); !extra.empty())
    return usageError(unknownOption(extra.front(), {"kind", "dir", "help"}), kHelp);
  if (!args.ok()) return usageError(args.error(), kHelp);
  if (args.has("help")) {
    std::cout << kHelp;
    return 0;
  }
  const auto& words = args.positional();
  if (words.empty() || words.front() != "new")
    return usageError(words.empty() ? "plugin needs a command: new" : unknownWord("plugin command", words.front(), {"new"}), kHelp);
  if (words.size() != 2) return usageError("plugin new needs exactly one NAME", kHelp);
  const std::string& name = words[1];
  // The name ends up in a file name, a CMake target and a pipeline file.
  if (!std::regex_match(name, std::regex("[a-z][a-z0-9-]*")))
    return usageError("invalid plugin name '" + name + "': use a lower-case letter, then letters, digits or '-'", kHelp);
  const std::string kind = args.get("kind");
  if (kind.empty()) return usageError("plugin new needs --kind validator|enricher|sink", kHelp);
  if (kind != "validator" && kind != "enricher" && kind != "sink")
    return usageError("invalid --kind '" + kind + "': use validator, enricher or sink", kHelp);
  const fs::path dir = fs::path(args.get("dir", ".")) / name;
  std::error_code ec;
  if (fs::exists(dir, ec))
    return usageError(dir.string() + " already exists; refusing to overwrite it (choose another --dir or name)", kHelp);
  if (ec) return fail("cannot check " + dir.string() + ": " + ec.message());
  return create(name, kind, dir);
}

}  // namespace eventflow::app
