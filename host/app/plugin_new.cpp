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

namespace eventflow::app {
namespace {

namespace fs = std::filesystem;

const char* const kHelp = R"(usage: eventflow plugin new NAME --kind validator|enricher|sink [--dir D]

Writes a ready plugin project into D/NAME (D defaults to the current folder):
CMakeLists.txt, src/ with the kind's skeleton, a GoogleTest test and a README.
NAME is lower case: a letter, then letters, digits or '-'.
)";

// Placeholders, replaced in this order (a stage mentions @NAME@): @STAGE@ a
// pipeline stage using the plugin, @NAME@ plugin name, @KIND@ kind, @FILE@ snake_case file
// stem, @CLASS@ C++ class.

const char* const kCMakeLists = R"tmpl(cmake_minimum_required(VERSION 3.20)
project(eventflow-@NAME@ VERSION 0.1.0 LANGUAGES CXX)

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)

# The EventFlow plugin SDK: the headers, eventflow::plugin-api and eventflow_add_plugin().
# Point CMAKE_PREFIX_PATH at its install prefix if it is not under /usr or /usr/local.
find_package(EventFlowPluginAPI CONFIG REQUIRED)

# Builds @KIND@-@NAME@.so with hidden visibility and no undefined symbols, the
# same way the plugins shipped with EventFlow are built.
eventflow_add_plugin(NAME @NAME@ KIND @KIND@ SOURCES src/@FILE@.cpp)
set(plugin_target ${EVENTFLOW_LAST_PLUGIN_TARGET})
target_compile_options(${plugin_target} PRIVATE -Wall -Wextra)

# EventFlow scans /usr/lib/eventflow/plugins by default (plugins.paths).
set(EVENTFLOW_PLUGIN_INSTALL_DIR lib/eventflow/plugins CACHE PATH "Plugin folder, relative to the install prefix")
install(TARGETS ${plugin_target} LIBRARY DESTINATION ${EVENTFLOW_PLUGIN_INSTALL_DIR})

option(BUILD_TESTING "Build the unit test (needs GoogleTest)" ON)
if(BUILD_TESTING)
  enable_testing()
  find_package(GTest REQUIRED)
  include(GoogleTest)
  # The test compiles the plugin's source into an ordinary executable and calls
  # the class directly: no .so and no host needed.
  add_executable(@FILE@_test test/@FILE@_test.cpp src/@FILE@.cpp)
  target_include_directories(@FILE@_test PRIVATE src)
  target_link_libraries(@FILE@_test PRIVATE eventflow::plugin-api GTest::gtest_main)
  gtest_discover_tests(@FILE@_test)
endif()
)tmpl";

const char* const kGitignore = "/build/\n";

const char* const kFakeContext = R"tmpl(
namespace {

// Stands in for the host: keeps what the plugin logs and counts.
class FakeContext final : public eventflow::Context {
 public:
  void log(eventflow::LogLevel, std::string_view message) override { logs.emplace_back(message); }
  void count(std::string_view name, double value) override { counts[std::string(name)] += value; }
  void observe(std::string_view, double) override {}
  std::string resolvePath(std::string_view path) const override { return std::string(path); }
  std::string setting(std::string_view) const override { return {}; }

  std::vector<std::string> logs;
  std::map<std::string, double> counts;
};

}  // namespace
)tmpl";

struct KindTemplates {
  const char* header;
  const char* source;
  const char* test;
  const char* stage;
};

const KindTemplates kValidator{
    R"tmpl(#pragma once

#include <string>

#include <eventflow/plugin.hpp>

/// @NAME@: rejects events whose body lacks a configured top-level field.
/// The host makes one instance per worker thread and never calls one instance
/// from two threads at once, so members need no locking.
class @CLASS@ final : public eventflow::Validator {
 public:
  /// `config` already satisfies the schema in @FILE@.cpp. Throw to refuse it
  /// anyway: the host shows the message with the pipeline file and stage.
  @CLASS@(const nlohmann::json& config, eventflow::Context& context);

  eventflow::Result check(const eventflow::Event& event) override;

 private:
  eventflow::Context& context_;
  std::string field_;
};
)tmpl",
    R"tmpl(#include "@FILE@.hpp"

@CLASS@::@CLASS@(const nlohmann::json& config, eventflow::Context& context)
    : context_(context), field_(config.value("field", "user_id")) {}

eventflow::Result @CLASS@::check(const eventflow::Event& event) {
  const auto it = event.body.find(field_);
  if (it != event.body.end() && !it->is_null()) return eventflow::Result::ok();
  // Shows on /metrics as eventflow_plugin_rejected_total{plugin="@NAME@",pipeline="..."}.
  context_.count("rejected");
  // reject: permanent, straight to the dead-letter queue. Use retry for
  // failures that may pass later; an exception also counts as a retry.
  return eventflow::Result::reject("missing field '" + field_ + "'", "validation");
}

EVENTFLOW_PLUGIN(@CLASS@, validator, "@NAME@", "0.1.0",
                 "Rejects events whose body lacks a configured top-level field.",
                 R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "field": {
      "description": "Top-level body field that must be present and not null.",
      "type": "string",
      "minLength": 1,
      "default": "user_id"
    }
  },
  "additionalProperties": false
})json")
)tmpl",
    R"tmpl(TEST(@CLASS@, PassesAnEventWithTheFieldAndRejectsOneWithout) {
  FakeContext context;
  @CLASS@ plugin(nlohmann::json{{"field", "user_id"}}, context);

  eventflow::Event event;
  event.body = {{"user_id", "u1"}};
  EXPECT_TRUE(plugin.check(event).isOk());

  event.body = {{"other", 1}};
  const eventflow::Result result = plugin.check(event);
  EXPECT_EQ(result.status(), eventflow::Result::Status::reject);
  EXPECT_EQ(result.errorType(), "validation");
  EXPECT_NE(result.reason().find("user_id"), std::string::npos);
  EXPECT_EQ(context.counts["rejected"], 1);
}

TEST(@CLASS@, ANullFieldCountsAsMissing) {
  FakeContext context;
  @CLASS@ plugin(nlohmann::json::object(), context);
  eventflow::Event event;
  event.body = {{"user_id", nullptr}};
  EXPECT_EQ(plugin.check(event).status(), eventflow::Result::Status::reject);
}
)tmpl",
    R"tmpl(  - validator: @NAME@
    config: { field: user_id })tmpl"};

const KindTemplates kEnricher{
    R"tmpl(#pragma once

#include <string>

#include <eventflow/plugin.hpp>

/// @NAME@: sets one configured field of the event body to a configured value.
/// The host makes one instance per worker thread and never calls one instance
/// from two threads at once, so members need no locking.
class @CLASS@ final : public eventflow::Enricher {
 public:
  /// `config` already satisfies the schema in @FILE@.cpp. Throw to refuse it
  /// anyway: the host shows the message with the pipeline file and stage.
  @CLASS@(const nlohmann::json& config, eventflow::Context& context);

  eventflow::Result enrich(eventflow::Event& event) override;

 private:
  std::string field_;
  nlohmann::json value_;
};
)tmpl",
    R"tmpl(#include "@FILE@.hpp"

@CLASS@::@CLASS@(const nlohmann::json& config, eventflow::Context&)
    : field_(config.value("field", "enriched_by")), value_(config.value("value", nlohmann::json("@NAME@"))) {}

eventflow::Result @CLASS@::enrich(eventflow::Event& event) {
  // reject: permanent, straight to the dead-letter queue. Use retry for
  // failures that may pass later; an exception also counts as a retry.
  if (!event.body.is_object()) return eventflow::Result::reject("the event body is not an object", "validation");
  event.body[field_] = value_;
  return eventflow::Result::ok();
}

EVENTFLOW_PLUGIN(@CLASS@, enricher, "@NAME@", "0.1.0",
                 "Sets one configured field of the event body to a configured value.",
                 R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "field": {
      "description": "Top-level body field to set.",
      "type": "string",
      "minLength": 1,
      "default": "enriched_by"
    },
    "value": {
      "description": "Any JSON value to put there.",
      "default": "@NAME@"
    }
  },
  "additionalProperties": false
})json")
)tmpl",
    R"tmpl(TEST(@CLASS@, SetsTheConfiguredFieldAndKeepsTheRest) {
  FakeContext context;
  @CLASS@ plugin(nlohmann::json{{"field", "region"}, {"value", "eu"}}, context);

  eventflow::Event event;
  event.body = {{"user_id", "u1"}};
  ASSERT_TRUE(plugin.enrich(event).isOk());
  EXPECT_EQ(event.body["region"], "eu");
  EXPECT_EQ(event.body["user_id"], "u1");
}

TEST(@CLASS@, DefaultsToItsOwnName) {
  FakeContext context;
  @CLASS@ plugin(nlohmann::json::object(), context);
  eventflow::Event event;
  event.body = nlohmann::json::object();
  ASSERT_TRUE(plugin.enrich(event).isOk());
  EXPECT_EQ(event.body["enriched_by"], "@NAME@");
}
)tmpl",
    R"tmpl(  - enricher: @NAME@
    config: { field: enriched_by, value: "@NAME@" })tmpl"};

const KindTemplates kSink{
    R"tmpl(#pragma once

#include <span>
#include <string>
#include <vector>

#include <eventflow/plugin.hpp>

/// @NAME@: appends each event as one JSON line to a file.
/// The host makes one instance per worker thread and never calls one instance
/// from two threads at once, so members need no locking. The instances of
/// several threads share the file, so each line goes out in one O_APPEND write
/// and lines never interleave.
class @CLASS@ final : public eventflow::Sink {
 public:
  /// `config` already satisfies the schema in @FILE@.cpp. Throws when the file
  /// cannot be opened: the host refuses to start and shows the message.
  @CLASS@(const nlohmann::json& config, eventflow::Context& context);
  ~@CLASS@() override;
  @CLASS@(const @CLASS@&) = delete;
  @CLASS@& operator=(const @CLASS@&) = delete;

  std::vector<eventflow::Result> write(std::span<eventflow::Event* const> events) override;
  /// Called before the host records the batch as processed: makes it durable.
  eventflow::Result flush() override;

 private:
  std::string path_;
  int fd_ = -1;
};
)tmpl",
    R"tmpl(#include "@FILE@.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

@CLASS@::@CLASS@(const nlohmann::json& config, eventflow::Context& context)
    : path_(context.resolvePath(config.at("path").get<std::string>())) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error("cannot open " + path_ + ": " + std::strerror(errno));
}

@CLASS@::~@CLASS@() { ::close(fd_); }

std::vector<eventflow::Result> @CLASS@::write(std::span<eventflow::Event* const> events) {
  // Events may arrive again after a crash: readers should dedupe on event_id.
  std::vector<eventflow::Result> results;
  results.reserve(events.size());
  for (const eventflow::Event* event : events) {
    const std::string line = nlohmann::json{{"event_id", event->id}, {"event_type", event->type},
                                            {"pipeline", event->pipeline}, {"body", event->body}}
                                 .dump() +
                             "\n";
    const bool written = ::write(fd_, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    // retry: transient, the host tries again with backoff. reject would send
    // the event straight to the dead-letter queue.
    results.push_back(written ? eventflow::Result::ok()
                              : eventflow::Result::retry("cannot write to " + path_ + ": " + std::strerror(errno), "io"));
  }
  return results;
}

eventflow::Result @CLASS@::flush() {
  if (::fsync(fd_) == 0) return eventflow::Result::ok();
  return eventflow::Result::retry("cannot sync " + path_ + ": " + std::strerror(errno), "io");
}

EVENTFLOW_PLUGIN(@CLASS@, sink, "@NAME@", "0.1.0", "Appends each event as one JSON line to a file.",
                 R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "path": {
      "description": "File to append to; relative paths start at the pipeline file's folder.",
      "type": "string",
      "minLength": 1
    }
  },
  "required": ["path"],
  "additionalProperties": false
})json")
)tmpl",
    R"tmpl(TEST(@CLASS@, WritesOneJsonLinePerEvent) {
  const std::string path = ::testing::TempDir() + "@FILE@_test.ndjson";
  std::remove(path.c_str());
  FakeContext context;
  {
    @CLASS@ plugin(nlohmann::json{{"path", path}}, context);
    eventflow::Event a, b;
    a.id = "id-a";
    a.body = {{"n", 1}};
    b.id = "id-b";
    b.body = {{"n", 2}};
    eventflow::Event* batch[] = {&a, &b};
    const auto results = plugin.write(batch);
    ASSERT_EQ(results.size(), 2u);
    EXPECT_TRUE(results[0].isOk());
    EXPECT_TRUE(results[1].isOk());
    EXPECT_TRUE(plugin.flush().isOk());
  }
  std::ifstream in(path);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["event_id"], "id-a");
  EXPECT_EQ(lines[1]["body"]["n"], 2);
}

TEST(@CLASS@, RefusesAFileItCannotOpen) {
  FakeContext context;
  EXPECT_THROW(@CLASS@(nlohmann::json{{"path", "/nonexistent-folder/out.ndjson"}}, context), std::runtime_error);
}
)tmpl",
    R"tmpl(  - sink: @NAME@
    config: { path: /var/lib/eventflow/@NAME@.ndjson })tmpl"};

const char* const kTestHead = R"tmpl(// Calls the plugin class directly, with a fake Context: no .so, no host.

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "@FILE@.hpp"
)tmpl";

const char* const kReadme = R"tmpl(# @NAME@

An EventFlow @KIND@ plugin.

## Build and test

Needs a C++20 compiler, CMake 3.20+, the EventFlow plugin SDK (the `dev`
install of EventFlow, which brings nlohmann-json along) and GoogleTest.

```sh
cmake -S . -B build
cmake --build build
ctest --test-dir build --output-on-failure
```

If the SDK is installed under another prefix, add `-DCMAKE_PREFIX_PATH=<prefix>`
to the first command.

This produces `build/@KIND@-@NAME@.so`. Build it against the SDK of the host
that will load it: the host refuses a plugin whose ABI version, C++ library ABI
or nlohmann-json version differs from its own, and says which.

## Install

```sh
sudo cmake --install build --prefix /usr
eventflow plugins show @NAME@
```

The first command installs `/usr/lib/eventflow/plugins/@KIND@-@NAME@.so`, the
folder the host scans by default (`plugins.paths`); the second shows what the
host sees: kind, version, ABI, file and the config schema.

The host refuses a plugin file, or a folder holding one, that others may write
to: keep them 0644 and 0755.

## Use it in a pipeline

```yaml
# /etc/eventflow/pipelines/@NAME@-demo.yaml
pipeline: @NAME@-demo
match: { event_types: [@FILE@_demo] }
stages:
@STAGE@
  - sink: sqlite
```

`eventflow validate` checks that the plugin loads and that the stage config
satisfies its schema. Restart the host to load the pipeline, then post an event:

```sh
eventflow validate
curl -s -X POST localhost:8000/events -H 'Content-Type: application/json' \
  -d '{"event_type": "@FILE@_demo", "user_id": "u1"}'
```

`GET /events/{event_id}` then shows what became of the event. See the
EventFlow plugin guide (docs/plugins.md) for the ABI rules and how `Result`
maps to retries and the dead-letter queue.
)tmpl";

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

int usageError(const std::string& message) {
  std::cerr << "eventflow: " << message << "\n\n" << kHelp;
  return 2;
}

int create(const std::string& name, const std::string& kind, const fs::path& dir) {
  const KindTemplates& t = kind == "validator" ? kValidator : kind == "enricher" ? kEnricher : kSink;
  std::string file = name;
  for (char& c : file)
    if (c == '-') c = '_';
  std::string kind_class = kind;
  kind_class[0] = static_cast<char>(kind_class[0] - 'a' + 'A');
  const std::vector<std::pair<std::string, std::string>> values{
      {"@STAGE@", t.stage}, {"@NAME@", name}, {"@KIND@", kind}, {"@FILE@", file},
      {"@CLASS@", pascalCase(name) + kind_class}};

  const std::vector<std::pair<fs::path, std::string>> files{
      {"CMakeLists.txt", kCMakeLists},
      {".gitignore", kGitignore},
      {"README.md", kReadme},
      {fs::path("src") / (file + ".hpp"), t.header},
      {fs::path("src") / (file + ".cpp"), t.source},
      {fs::path("test") / (file + "_test.cpp"), std::string(kTestHead) + kFakeContext + "\n" + t.test},
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
    return usageError(unknownOption(extra.front(), {"kind", "dir", "help"}));
  if (!args.ok()) return usageError(args.error());
  if (args.has("help")) {
    std::cout << kHelp;
    return 0;
  }
  const auto& words = args.positional();
  if (words.empty() || words.front() != "new")
    return usageError(words.empty() ? "plugin needs a command: new" : unknownWord("plugin command", words.front(), {"new"}));
  if (words.size() != 2) return usageError("plugin new needs exactly one NAME");
  const std::string& name = words[1];
  // The name ends up in a file name, a CMake target and a pipeline file.
  if (!std::regex_match(name, std::regex("[a-z][a-z0-9-]*")))
    return usageError("invalid plugin name '" + name + "': use a lower-case letter, then letters, digits or '-'");
  const std::string kind = args.get("kind");
  if (kind.empty()) return usageError("plugin new needs --kind validator|enricher|sink");
  if (kind != "validator" && kind != "enricher" && kind != "sink")
    return usageError("invalid --kind '" + kind + "': use validator, enricher or sink");
  const fs::path dir = fs::path(args.get("dir", ".")) / name;
  std::error_code ec;
  if (fs::exists(dir, ec))
    return usageError(dir.string() + " already exists; refusing to overwrite it (choose another --dir or name)");
  if (ec) return fail("cannot check " + dir.string() + ": " + ec.message());
  return create(name, kind, dir);
}

}  // namespace eventflow::app
