// The plugin commands of the eventflow binary, run as a user would.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>
#include <vector>

#include <eventflow/plugin.hpp>
#include <nlohmann/json.hpp>

#include "command.hpp"
#include "host_process.hpp"

using namespace eventflow::testing;
namespace fs = std::filesystem;

namespace {

// A temporary folder with a host config over the built plugins and `pipeline`.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("eventflow-cli-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "pipelines");
    writeConfig((dir_ / "pipelines").string());
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::string config() const { return (dir_ / "eventflow.yaml").string(); }
  // The host config over the built plugins and the pipelines in `pipelines`.
  void writeConfig(const std::string& pipelines) const {
    std::ofstream(config()) << "store: { url: \"sqlite://" << (dir_ / "eventflow.db").string() << "\" }\n"
                            << "plugins: { paths: [" << EVENTFLOW_PLUGIN_DIR << "] }\n"
                            << "pipelines: { paths: [" << pipelines << "] }\n";
  }
  fs::path writePipeline(const std::string& yaml) const {
    const fs::path file = dir_ / "pipelines" / "orders.yaml";
    std::ofstream(file) << yaml;
    return file;
  }
  CommandResult eventflow(std::vector<std::string> args) const {
    args.insert(args.begin(), EVENTFLOW_BINARY);
    return runCommand(args, dir_);
  }

  fs::path dir_;
};

}  // namespace

TEST_F(CliTest, ValidateRefusesAStageConfigFailingItsPluginSchema) {
  const auto file = writePipeline(R"(pipeline: orders
match: { event_types: [order] }
stages:
  - validator: required-fields
    config: { fields: 5 }
  - sink: sqlite
)");
  const auto r = eventflow({"validate", "--config", config()});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find(file.string() + ":5:15: pipeline 'orders', stage 1: config of validator 'required-fields' "
                                       "does not match its schema: fields:"),
            std::string::npos)
      << r.describe();

  writePipeline(R"(pipeline: orders
match: { event_types: [order] }
stages:
  - validator: required-fields
    config: { fields: [user_id] }
  - sink: sqlite
)");
  const auto ok = eventflow({"validate", "--config", config()});
  EXPECT_EQ(ok.exit_code, 0) << ok.describe();
}

// What `serve` refuses when it creates the stages, `validate` reports, at the stage.
TEST_F(CliTest, ValidateCreatesEveryStageAndReportsWhatServeWouldRefuse) {
  const fs::path not_json = dir_ / "pipelines" / "broken.schema.json";
  std::ofstream(not_json) << "{ this is not JSON";
  const auto file = writePipeline(R"(pipeline: orders
match: { event_types: [order] }
stages:
  - validator: json-schema
    config: { schema: no-such.schema.json }
  - validator: json-schema
    config: { schema: broken.schema.json }
  - enricher: classify
    config:
      field: category
      rules:
        - when: { field: properties.sku, op: matches, value: "([a-z" }
          value: odd
  - enricher: add-fields
    config: { fields: { site: "${env:EVENTFLOW_CLI_TEST_UNSET_SITE}" } }
  - sink: sqlite
)");
  ::unsetenv("EVENTFLOW_CLI_TEST_UNSET_SITE");
  const auto r = eventflow({"validate", "--config", config()});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  const std::string f = file.string();
  EXPECT_NE(r.err.find(f + ":4:5: pipeline 'orders', stage 1: "), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("cannot read schema file " + (dir_ / "pipelines" / "no-such.schema.json").string()),
            std::string::npos)
      << r.describe();
  EXPECT_NE(r.err.find(f + ":6:5: pipeline 'orders', stage 2: "), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("schema file " + not_json.string() + " is not valid JSON"), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find(f + ":8:5: pipeline 'orders', stage 3: "), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("is not a valid regex"), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find(f + ":14:5: pipeline 'orders', stage 4: "), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("${env:EVENTFLOW_CLI_TEST_UNSET_SITE}, but EVENTFLOW_CLI_TEST_UNSET_SITE is not set"),
            std::string::npos)
      << r.describe();
  EXPECT_EQ(r.err.find("stage 5"), std::string::npos) << "the sink is fine: " << r.describe();

  // With a default, or the variable set, the same stage is fine.
  ::setenv("EVENTFLOW_CLI_TEST_SITE", "eu", 1);
  writePipeline(R"(pipeline: orders
match: { event_types: [order] }
stages:
  - enricher: add-fields
    config: { fields: { site: "${env:EVENTFLOW_CLI_TEST_UNSET_SITE:-none}", region: "${env:EVENTFLOW_CLI_TEST_SITE}" } }
  - sink: sqlite
)");
  const auto ok = eventflow({"validate", "--config", config()});
  ::unsetenv("EVENTFLOW_CLI_TEST_SITE");
  EXPECT_EQ(ok.exit_code, 0) << ok.describe();
}

// Validating creates every sink, but sinks open nothing: no database file, no connection.
TEST_F(CliTest, ValidateOpensNoSinkForWritingAndUsesNoNetwork) {
  writePipeline(R"(pipeline: orders
match: { event_types: [order] }
stages:
  - sink: sqlite
  - sink: postgres
    config: { url: "postgresql://nobody@127.0.0.1:1/nowhere" }
  - sink: http
    config: { url: "http://127.0.0.1:1/hook" }
)");
  const auto r = eventflow({"validate", "--config", config()});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_FALSE(fs::exists(dir_ / "eventflow.db")) << "the sqlite sink opened the store";

  // What a sink can check without I/O it still checks.
  writePipeline(R"(pipeline: orders
match: { event_types: [order] }
stages:
  - sink: postgres
)");
  const auto no_url = eventflow({"validate", "--config", config()});
  EXPECT_EQ(no_url.exit_code, 1) << no_url.describe();
  EXPECT_NE(no_url.err.find("pipeline 'orders', stage 1: "), std::string::npos) << no_url.describe();
  EXPECT_NE(no_url.err.find("set url in the stage config or use a PostgreSQL store"), std::string::npos)
      << no_url.describe();
}

TEST_F(CliTest, ValidateSuggestsTheNearestPluginKeyAndFlag) {
  const auto file = writePipeline(R"(pipeline: orders
match: { event_types: [order] }
retry: { max_atempts: 3 }
stages:
  - validator: time-window
    config:
      field: timestamp
      max_futur: 0s
  - enricher: clasify
    config: { field: category, default: standard }
  - sink: sqlite
)");
  const auto r = eventflow({"validate", "--config", config()});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  const std::string f = file.string();
  EXPECT_NE(r.err.find(f + ":3:10: unknown key 'max_atempts' in retry (did you mean 'max_attempts'?)"),
            std::string::npos)
      << r.describe();

  writePipeline(R"(pipeline: orders
match: { event_types: [order] }
stages:
  - validator: time-window
    config:
      field: timestamp
      max_futur: 0s
  - enricher: clasify
    config: { field: category, default: standard }
  - sink: sqlite
)");
  const auto p = eventflow({"validate", "--config", config()});
  EXPECT_EQ(p.exit_code, 1) << p.describe();
  // The key's own line and column, not the stage's.
  EXPECT_NE(p.err.find(f + ":7:7: pipeline 'orders', stage 1: config of validator 'time-window' does not match its "
                           "schema: max_futur: unknown key 'max_futur' (did you mean 'max_future'?)"),
            std::string::npos)
      << p.describe();
  EXPECT_NE(p.err.find(f + ":8:5: pipeline 'orders', stage 2: no enricher plugin named 'clasify' in the plugin "
                           "paths (did you mean 'classify'?)"),
            std::string::npos)
      << p.describe();

  std::ofstream(config(), std::ios::app) << "shutdown_timout: 5s\n";
  const auto host = eventflow({"validate", "--config", config()});
  EXPECT_EQ(host.exit_code, 1) << host.describe();
  EXPECT_NE(host.err.find("unknown key 'shutdown_timout' in the host config (did you mean 'shutdown_timeout'?)"),
            std::string::npos)
      << host.describe();

  const auto flag = eventflow({"validate", "--confg", config()});
  EXPECT_EQ(flag.exit_code, 2) << flag.describe();
  EXPECT_NE(flag.err.find("unknown option --confg (did you mean '--config'?)"), std::string::npos) << flag.describe();
  const auto last = eventflow({"dlq", "replay", "--dry-rn"});
  EXPECT_EQ(last.exit_code, 2) << last.describe();
  EXPECT_NE(last.err.find("unknown option --dry-rn (did you mean '--dry-run'?)"), std::string::npos)
      << last.describe();
  // Last on the line in the commands that parse their values first, too.
  const auto key = eventflow({"keys", "new", "--scope", "ingest", "--nam"});
  EXPECT_EQ(key.exit_code, 2) << key.describe();
  EXPECT_NE(key.err.find("unknown option --nam (did you mean '--name'?)"), std::string::npos) << key.describe();
  const auto command = eventflow({"valdate"});
  EXPECT_EQ(command.exit_code, 2) << command.describe();
  EXPECT_NE(command.err.find("unknown command 'valdate' (did you mean 'validate'?)"), std::string::npos)
      << command.describe();
  const auto far = eventflow({"validate", "--frobnicate", "x"});
  EXPECT_NE(far.err.find("unknown option --frobnicate\n"), std::string::npos) << "nothing is close: " << far.describe();
}

// A word after a flag is not its value, and a command that takes no words
// says so instead of running without the one the user meant ("--close yes",
// "--wait=no").
TEST_F(CliTest, AStrayWordOrAFlagsValueIsRefusedNotIgnored) {
  const auto word = eventflow({"validate", "--config", config(), "pipelines"});
  EXPECT_EQ(word.exit_code, 2) << word.describe();
  EXPECT_NE(word.err.find("unexpected argument 'pipelines'"), std::string::npos) << word.describe();
  EXPECT_EQ(word.out.find("ok:"), std::string::npos) << "validated anyway: " << word.describe();

  const auto close = eventflow({"produce", "--url", "http://127.0.0.1:1", "--close", "yes", "--count", "1"});
  EXPECT_EQ(close.exit_code, 2) << close.describe();
  EXPECT_NE(close.err.find("--close takes no value, not 'yes'"), std::string::npos) << close.describe();
  EXPECT_EQ(close.err.find("cannot connect"), std::string::npos) << "ran anyway: " << close.describe();

  const auto wait = eventflow({"produce", "--url", "http://127.0.0.1:1", "--wait=no", "--count", "1"});
  EXPECT_EQ(wait.exit_code, 2) << wait.describe();
  EXPECT_NE(wait.err.find("--wait takes no value, not 'no'"), std::string::npos) << wait.describe();

  const auto serve = eventflow({"serve", "--config", config(), "--role", "all", "now"});
  EXPECT_EQ(serve.exit_code, 2) << serve.describe();
  EXPECT_NE(serve.err.find("unexpected argument 'now'"), std::string::npos) << serve.describe();

  const auto reload = eventflow({"reload", "--url", "http://127.0.0.1:1", "--json", "please"});
  EXPECT_EQ(reload.exit_code, 2) << reload.describe();
  EXPECT_NE(reload.err.find("--json takes no value, not 'please'"), std::string::npos) << reload.describe();

  const auto purge = eventflow({"dlq", "purge", "--all=false", "--config", config()});
  EXPECT_EQ(purge.exit_code, 2) << purge.describe();
  EXPECT_NE(purge.err.find("--all takes no value, not 'false'"), std::string::npos) << purge.describe();
}

// A line break in a key would end the Authorization header and start one of
// the user's making: refused before anything is sent, naming where the key
// came from.
TEST_F(CliTest, AnApiKeyWithALineBreakIsRefusedNamingItsSource) {
  const std::string injected = "key\r\nX-Injected: 1";
  const auto produce = eventflow({"produce", "--url", "http://127.0.0.1:1", "--count", "1", "--api-key", injected});
  EXPECT_EQ(produce.exit_code, 2) << produce.describe();
  EXPECT_NE(produce.err.find("--api-key holds a control character"), std::string::npos) << produce.describe();
  EXPECT_EQ(produce.err.find("cannot connect"), std::string::npos) << "it ran: " << produce.describe();

  const auto reload = eventflow({"reload", "--url", "http://127.0.0.1:1", "--api-key", injected});
  EXPECT_EQ(reload.exit_code, 2) << reload.describe();
  EXPECT_NE(reload.err.find("--api-key holds a control character"), std::string::npos) << reload.describe();

  ::setenv("EVENTFLOW_API_KEY", injected.c_str(), 1);
  const auto replay = eventflow({"dlq", "replay", "--all", "--config", config()});
  const auto env_reload = eventflow({"reload", "--url", "http://127.0.0.1:1"});
  ::unsetenv("EVENTFLOW_API_KEY");
  EXPECT_EQ(replay.exit_code, 2) << replay.describe();
  EXPECT_NE(replay.err.find("$EVENTFLOW_API_KEY holds a control character"), std::string::npos) << replay.describe();
  EXPECT_EQ(env_reload.exit_code, 2) << env_reload.describe();
  EXPECT_NE(env_reload.err.find("$EVENTFLOW_API_KEY holds a control character"), std::string::npos)
      << env_reload.describe();
}

TEST_F(CliTest, AConfigThatIsAFolderIsOneLineNamingIt) {
  for (const std::string command : {"validate", "serve", "test"}) {
    const auto r = eventflow({command, "--config", dir_.string()});
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_EQ(r.err, "eventflow: invalid configuration: " + dir_.string() + ": is a folder, not a YAML file\n")
        << r.describe();
  }
}

TEST_F(CliTest, PluginsShowPrintsTheDescriptorAndPrettySchema) {
  const auto r = eventflow({"plugins", "show", "required-fields", "--config", config()});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("name         required-fields\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kind         validator\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("version      0.1.0\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("abi          " + std::to_string(EVENTFLOW_PLUGIN_ABI_MAJOR) + "." +
                       std::to_string(EVENTFLOW_PLUGIN_ABI_MINOR) + "\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(std::string("file         ") + EVENTFLOW_PLUGIN_DIR + "/required-fields.so"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("description  Rejects events missing"), std::string::npos) << r.out;
  const auto schema_at = r.out.find("config schema:\n");
  ASSERT_NE(schema_at, std::string::npos) << r.out;
  const auto schema = nlohmann::json::parse(r.out.substr(schema_at + 15), nullptr, false);
  ASSERT_TRUE(schema.is_object()) << r.out;
  EXPECT_EQ(schema["required"], nlohmann::json::array({"fields"}));
  EXPECT_NE(r.out.find("\n  \"properties\": {\n"), std::string::npos) << "pretty-printed: " << r.out;
}

TEST_F(CliTest, PluginsShowOfAnUnknownNameFailsNamingIt) {
  const auto r = eventflow({"plugins", "show", "no-such-plugin", "--config", config()});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("no plugin named 'no-such-plugin'"), std::string::npos) << r.describe();
  EXPECT_TRUE(r.out.empty()) << r.describe();
}

TEST_F(CliTest, PluginsListJsonHasEveryBuiltInPlugin) {
  const auto r = eventflow({"plugins", "list", "--json", "--config", config()});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const auto list = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(list.is_array()) << r.out;
  std::map<std::string, std::string> kinds;
  std::map<std::string, std::string> versions;
  for (const auto& p : list) {
    kinds[p["name"]] = p["kind"];
    versions[p["name"]] = p.value("version", "");
  }
  EXPECT_EQ(kinds["required-fields"], "validator");
  EXPECT_EQ(kinds["add-fields"], "enricher");
  EXPECT_EQ(kinds["sqlite"], "sink");
  for (const std::string name : {"rename-drop", "hash-fields", "lookup"}) {
    EXPECT_EQ(kinds[name], "enricher") << name;
    EXPECT_EQ(versions[name], "0.1.0") << name;
  }
  for (const std::string name : {"file", "stdout", "redis-stream"}) {
    EXPECT_EQ(kinds[name], "sink") << name;
    EXPECT_EQ(versions[name], "0.1.0") << name;
  }
  EXPECT_GE(list.size(), 14u);
}

TEST_F(CliTest, PluginsShowPrintsTheConfigSchemaOfEachNewBuiltIn) {
  const std::map<std::string, std::string> required{{"rename-drop", ""},   {"hash-fields", "key_file"},
                                                    {"lookup", "file"},    {"file", "path"},
                                                    {"stdout", ""},        {"redis-stream", "stream"}};
  for (const auto& [name, field] : required) {
    const auto r = eventflow({"plugins", "show", name, "--config", config()});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("name         " + name + "\n"), std::string::npos) << r.out;
    const auto schema_at = r.out.find("config schema:\n");
    ASSERT_NE(schema_at, std::string::npos) << r.out;
    const auto schema = nlohmann::json::parse(r.out.substr(schema_at + 15), nullptr, false);
    ASSERT_TRUE(schema.is_object()) << r.out;
    EXPECT_EQ(schema["additionalProperties"], false) << name;
    if (!field.empty()) {
      EXPECT_NE(schema["required"].dump().find("\"" + field + "\""), std::string::npos) << name;
    }
  }
}

TEST_F(CliTest, ValidateRefusesABadConfigOfEachNewBuiltInNamingTheField) {
  // stage, its bad config, and the field the error must name
  const std::vector<std::tuple<std::string, std::string, std::string>> cases{
      {"enricher: rename-drop", "{ drop: [a], rnaem: { a: b } }", "rnaem"},
      {"enricher: hash-fields", "{ fields: [user_id], key_file: k, encoding: md5 }", "encoding"},
      {"enricher: lookup", "{ file: a.csv, key: user_id, fields: [plan], on_miss: ignore }", "on_miss"},
      {"sink: file", "{ path: out.ndjson, max_bytes: 10MB }", "max_bytes"},
      {"sink: stdout", "{ pretty: true }", "pretty"},
      {"sink: redis-stream", "{ url: \"redis://127.0.0.1:1\", stream: s, maxlen: \"~1000\" }", "maxlen"},
  };
  for (const auto& [stage, bad, field] : cases) {
    const std::string kind = stage.substr(0, stage.find(':'));
    const std::string name = stage.substr(stage.find(' ') + 1);
    const auto file = writePipeline("pipeline: orders\nmatch: { event_types: [order] }\nstages:\n  - " + stage +
                                    "\n    config: " + bad + "\n" + (kind == "sink" ? "" : "  - sink: sqlite\n"));
    const auto r = eventflow({"validate", "--config", config()});
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    const std::string prefix = "config of " + kind + " '" + name + "' does not match its schema: ";
    const auto at = r.err.find(prefix);
    ASSERT_NE(at, std::string::npos) << r.describe();
    EXPECT_NE(r.err.find(field, at + prefix.size()), std::string::npos) << r.describe();
  }
}

// The example pipelines of the new built-ins, with their fixtures, as a user
// would set them up: the hash key written by its owner, mode 0600.
class BuiltinExamples : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    examples_ = dir_ / "builtins";
    fs::copy(fs::path(EVENTFLOW_PIPELINES_DIR) / "examples" / "builtins", examples_, fs::copy_options::recursive);
    fs::create_directories(examples_ / "keys");
    std::ofstream(examples_ / "keys" / "hash.key") << "eventflow-example-key-0001\n";
    fs::permissions(examples_ / "keys" / "hash.key", fs::perms::owner_read | fs::perms::owner_write);
    std::ofstream(config()) << "store: { url: \"sqlite://" << (dir_ / "eventflow.db").string() << "\" }\n"
                            << "plugins: { paths: [" << EVENTFLOW_PLUGIN_DIR << "] }\n"
                            << "pipelines: { paths: [" << examples_.string() << "] }\n";
  }
  fs::path examples_;
};

TEST_F(BuiltinExamples, ValidateAcceptsThemAndTestPassesTheirFixtures) {
  const auto valid = eventflow({"validate", "--config", config()});
  EXPECT_EQ(valid.exit_code, 0) << valid.describe();
  EXPECT_FALSE(fs::exists(examples_ / "out")) << "validate opens no sink file";
  const auto r = eventflow({"test", "--config", config()});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("ok    a profile update is renamed, joined with its account and pseudonymised\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("5 passed, 0 failed"), std::string::npos) << r.out;
}

TEST_F(BuiltinExamples, ValidateRefusesAHashKeyOthersCanRead) {
  const fs::path key = examples_ / "keys" / "hash.key";
  fs::permissions(key, fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
  const auto r = eventflow({"validate", "--config", config()});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("key_file " + key.string() + ": has mode 0644, which lets group or others read or change the key; chmod 600"),
            std::string::npos)
      << r.describe();
}

TEST_F(CliTest, PluginsListNamesAMissingFolderAndFailsWhenNothingIsFound) {
  const fs::path missing = dir_ / "no-such-plugins";
  std::ofstream(config()) << "plugins: { paths: [" << missing.string() << ", " << EVENTFLOW_PLUGIN_DIR << "] }\n";
  const auto some = eventflow({"plugins", "list", "--config", config()});
  EXPECT_EQ(some.exit_code, 0) << some.describe();
  EXPECT_NE(some.err.find("warning: plugins.paths names " + missing.string() + ", which does not exist"),
            std::string::npos)
      << some.describe();
  EXPECT_NE(some.out.find("required-fields"), std::string::npos) << some.describe();

  std::ofstream(config()) << "plugins: { paths: [" << missing.string() << "] }\n";
  const auto none = eventflow({"plugins", "list", "--config", config()});
  EXPECT_EQ(none.exit_code, 1) << none.describe();
  EXPECT_NE(none.err.find(missing.string() + ", which does not exist"), std::string::npos) << none.describe();
  EXPECT_NE(none.err.find("no plugins found in plugins.paths (" + missing.string() + ")"), std::string::npos)
      << none.describe();
}

TEST_F(CliTest, PluginNewWritesAProjectForEachKind) {
  for (const std::string kind : {"validator", "enricher", "sink"}) {
    const std::string name = "my-" + kind;
    const auto r = eventflow({"plugin", "new", name, "--kind", kind, "--dir", (dir_ / "projects").string()});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const fs::path project = dir_ / "projects" / name;
    const std::string file = "my_" + kind;
    for (const auto& f : {fs::path("CMakeLists.txt"), fs::path("README.md"), fs::path("src") / (file + ".hpp"),
                          fs::path("src") / (file + ".cpp"), fs::path("test") / (file + "_test.cpp")})
      EXPECT_TRUE(fs::is_regular_file(project / f)) << (project / f);
    std::ifstream in(project / "CMakeLists.txt");
    const std::string cmake((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(cmake.find("find_package(EventFlowPluginAPI CONFIG REQUIRED)"), std::string::npos) << cmake;
    EXPECT_NE(cmake.find("eventflow_add_plugin(NAME " + name + " SOURCES src/" + file + ".cpp)"),
              std::string::npos)
        << cmake;
    EXPECT_NE(cmake.find("gtest_discover_tests(" + file + "_test)"), std::string::npos) << cmake;
    std::ifstream src(project / "src" / (file + ".cpp"));
    const std::string source((std::istreambuf_iterator<char>(src)), std::istreambuf_iterator<char>());
    // "my-sink" of kind sink is class MySinkSink.
    const std::string kind_class = std::string(1, static_cast<char>(kind[0] - 'a' + 'A')) + kind.substr(1);
    EXPECT_NE(source.find("EVENTFLOW_PLUGIN(My" + kind_class + kind_class + ", \"" + name + "\""),
              std::string::npos)
        << source;
    EXPECT_EQ(source.find('@'), std::string::npos) << "an unreplaced placeholder: " << source;
  }
}

TEST_F(CliTest, PluginNewRefusesAnExistingFolderABadNameOrKind) {
  fs::create_directories(dir_ / "taken");
  const auto exists = eventflow({"plugin", "new", "taken", "--kind", "validator", "--dir", dir_.string()});
  EXPECT_EQ(exists.exit_code, 2) << exists.describe();
  EXPECT_NE(exists.err.find((dir_ / "taken").string() + " already exists"), std::string::npos) << exists.describe();
  EXPECT_TRUE(fs::is_empty(dir_ / "taken")) << "nothing written into an existing folder";

  for (const std::string bad : {"Upper", "9lives", "under_score", "-dash", "a/b"}) {
    const auto r = eventflow({"plugin", "new", bad, "--kind", "validator", "--dir", dir_.string()});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.describe();
    EXPECT_NE(r.err.find("invalid plugin name '" + bad + "'"), std::string::npos) << r.describe();
    EXPECT_FALSE(fs::exists(dir_ / bad)) << bad;
  }

  const auto kind = eventflow({"plugin", "new", "fine", "--kind", "router", "--dir", dir_.string()});
  EXPECT_EQ(kind.exit_code, 2) << kind.describe();
  EXPECT_NE(kind.err.find("invalid --kind 'router'"), std::string::npos) << kind.describe();
  const auto no_kind = eventflow({"plugin", "new", "fine", "--dir", dir_.string()});
  EXPECT_EQ(no_kind.exit_code, 2) << no_kind.describe();
  EXPECT_NE(no_kind.err.find("--kind"), std::string::npos) << no_kind.describe();
  EXPECT_FALSE(fs::exists(dir_ / "fine"));
}

TEST_F(CliTest, TestRunsTheShippedFixturesWithoutAServerOrAStore) {
  writeConfig(EVENTFLOW_PIPELINES_DIR);
  const auto r = eventflow({"test", "--config", config()});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("ok    a large purchase is classified high_value and stamped\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("7 passed, 0 failed"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir_ / "eventflow.db")) << "sinks and the store stay untouched";
}

TEST_F(CliTest, TestRunsTheLuaExamplePipelinesFixtures) {
  // pipelines/examples holds the lua versions of the shipped enrichment; its
  // own tests/ folder holds their fixtures, found through pipelines.paths.
  writeConfig(EVENTFLOW_PIPELINES_DIR "/examples");
  const auto r = eventflow({"test", "--config", config()});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("ok    lua - a large purchase is classified high_value and stamped\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ok    lua - a signup starts a session\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("6 passed, 0 failed"), std::string::npos) << r.out;
}

TEST_F(CliTest, ValidateNamesTheLineOfALuaScriptThatCannotStart) {
  const auto file = writePipeline(R"(pipeline: orders
match: { event_types: [order] }
stages:
  - enricher: lua
    config:
      script: |
        function process(event)
          event.total = event.price *
        end
  - enricher: lua
    config: { script: "function handle(event) end" }
  - sink: sqlite
)");
  const auto r = eventflow({"validate", "--config", config()});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  const std::string f = file.string();
  EXPECT_NE(r.err.find(f + ":4:5: pipeline 'orders', stage 1: "), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("create: lua: script:3: unexpected symbol near 'end'"), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find(f + ":10:5: pipeline 'orders', stage 2: "), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("lua: the script defines no function process(event)"), std::string::npos) << r.describe();

  writePipeline(R"(pipeline: orders
match: { event_types: [order] }
stages:
  - enricher: lua
    config: { script: "function process(event) end", file: x.lua, max_instructions: 10 }
  - sink: sqlite
)");
  const auto schema = eventflow({"validate", "--config", config()});
  EXPECT_EQ(schema.exit_code, 1) << schema.describe();
  EXPECT_NE(schema.err.find(f + ":5:"), std::string::npos) << schema.describe();
  EXPECT_NE(schema.err.find("max_instructions"), std::string::npos) << schema.describe();
}

TEST_F(CliTest, TestNamesTheCaseThatFailedAndWhy) {
  writePipeline(R"(pipeline: orders
match: { event_types: [order] }
stages:
  - validator: required-fields
    config: { fields: [user_id] }
  - enricher: add-fields
    config: { fields: { region: eu } }
  - sink: sqlite
)");
  const fs::path fixtures = dir_ / "orders.test.yaml";
  std::ofstream(fixtures) << R"(pipeline: orders
cases:
  - name: an order is stamped with its region
    event: { event_type: order, user_id: u1 }
    expect: { output: { region: eu, user_id: u1 } }
  - name: wrong region expected
    event: { event_type: order, user_id: u1 }
    expect: { output: { region: us } }
  - name: expected dead but it passes
    event: { event_type: order, user_id: u1 }
    expect: { dead: { error_type: validation } }
  - name: a missing user_id is dead
    event: { event_type: order }
    expect: { dead: { error_type: validation, stage: validator required-fields, message: user_id } }
)";
  const auto r = eventflow({"test", "--config", config(), fixtures.string()});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.out.find("ok    an order is stamped with its region\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FAIL  wrong region expected\n      " + fixtures.string() +
                       ", case 2: region is \"eu\", expected \"us\""),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("FAIL  expected dead but it passes\n      " + fixtures.string() +
                       ", case 3: expected dead, but it passed"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("ok    a missing user_id is dead\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 passed, 2 failed"), std::string::npos) << r.out;
}

TEST_F(CliTest, TestRefusesABrokenFixtureFileNamingIt) {
  writePipeline("pipeline: orders\nmatch: { event_types: [order] }\nstages:\n  - sink: sqlite\n");
  const fs::path broken = dir_ / "broken.yaml";
  std::ofstream(broken) << "cases: [ { name: x, event: {\n";
  const auto r = eventflow({"test", "--config", config(), broken.string()});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.out.find("FAIL  " + broken.string() + ":"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("invalid YAML"), std::string::npos) << r.out;
  const auto missing = eventflow({"test", "--config", config(), (dir_ / "nowhere").string()});
  EXPECT_EQ(missing.exit_code, 2) << missing.describe();
  EXPECT_NE(missing.err.find("nowhere: no such file or folder"), std::string::npos) << missing.err;
  // There, but neither: not called missing.
  const auto device = eventflow({"test", "--config", config(), "/dev/null"});
  EXPECT_EQ(device.exit_code, 2) << device.describe();
  EXPECT_NE(device.err.find("/dev/null: not a file or folder"), std::string::npos) << device.err;
}

TEST_F(CliTest, TestExpectsAnUnroutedEventTypeRefusedAsIngestRefusesIt) {
  // POST /events answers 422 no_pipeline for an event_type no pipeline
  // takes; a fixture can say so, and is not run through any pipeline.
  writePipeline("pipeline: orders\nmatch: { event_types: [order] }\nstages:\n  - sink: sqlite\n");
  const fs::path fixtures = dir_ / "routing.yaml";
  std::ofstream(fixtures) << R"(cases:
  - name: nobody takes a refund
    event: { event_type: refund, user_id: u1 }
    expect: { refused: { code: no_pipeline } }
  - name: refused, but with the wrong code
    event: { event_type: refund, user_id: u1 }
    expect: { refused: { code: invalid_envelope } }
  - name: an unrouted event expected through
    event: { event_type: refund, user_id: u1 }
    expect: { output: { user_id: u1 } }
  - name: a routed event is not refused
    event: { event_type: order, user_id: u1 }
    expect: { refused: { code: no_pipeline } }
)";
  const auto r = eventflow({"test", "--config", config(), fixtures.string()});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.out.find("ok    nobody takes a refund\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FAIL  refused, but with the wrong code\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("refused with no_pipeline"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no pipeline matches event_type 'refund'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FAIL  a routed event is not refused\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 passed, 3 failed"), std::string::npos) << r.out;
}

// The whole flow of docs/operations.md: make a key, put its line in the
// config, post with it (202) and without it (401).
TEST(KeysNew, PrintsAKeyOnceAndTheConfigLineThatAdmitsIt) {
  const auto made = runCommand({EVENTFLOW_BINARY, "keys", "new", "--scope", "ingest", "--name", "producer"});
  ASSERT_EQ(made.exit_code, 0) << made.describe();
  const std::string key = made.out.substr(0, made.out.find('\n'));
  EXPECT_EQ(key.size(), 3u + 64u) << made.out;
  EXPECT_EQ(key.rfind("ef_", 0), 0u) << made.out;
  const auto last = made.out.rfind("\n- { name: producer, sha256: \"");
  ASSERT_NE(last, std::string::npos) << made.out;
  const std::string line = made.out.substr(last + 1, made.out.size() - last - 2);
  EXPECT_EQ(line.find(key), std::string::npos) << "only the hash goes into the config: " << line;
  EXPECT_NE(line.find("scopes: [ingest] }"), std::string::npos) << line;

  const auto again = runCommand({EVENTFLOW_BINARY, "keys", "new", "--scope", "ingest"});
  ASSERT_EQ(again.exit_code, 0) << again.describe();
  EXPECT_NE(again.out.substr(0, again.out.find('\n')), key) << "every key is new";

  HostProcess host("keys-new");
  {
    // The config as a user edits it: the printed line under server.api_keys.
    std::ifstream in(host.config());
    std::string rest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    rest = rest.substr(rest.find('\n') + 1);  // the generated server line
    std::ofstream(host.config()) << "server:\n  listen: \"127.0.0.1:" << host.port() << "\"\n  api_keys:\n    "
                                 << line << "\n"
                                 << rest;
  }
  const auto valid = runCommand({EVENTFLOW_BINARY, "validate", "--config", host.config()});
  ASSERT_EQ(valid.exit_code, 0) << valid.describe();
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::string event = R"({"event_type":"page_view","user_id":"u1"})";
  EXPECT_EQ(http(host.port(), "POST", "/events", event, "application/json", {{"Authorization", "Bearer " + key}}).status,
            202);
  EXPECT_EQ(http(host.port(), "POST", "/events", event).status, 401);
  EXPECT_EQ(http(host.port(), "POST", "/events", event, "application/json", {{"Authorization", "Bearer ef_0"}}).status,
            401);
  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0);

  for (const auto& args : std::vector<std::vector<std::string>>{{"keys", "new"},
                                                                {"keys", "new", "--scope", "root"},
                                                                {"keys", "new", "--scope", "ingest", "--name", "a b"},
                                                                {"keys", "old", "--scope", "ingest"}}) {
    std::vector<std::string> argv{EVENTFLOW_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto bad = runCommand(argv);
    EXPECT_EQ(bad.exit_code, 2) << bad.describe();
    EXPECT_TRUE(bad.out.empty()) << "no key printed on a usage error: " << bad.describe();
  }
}

// Issue 11: a plugins.paths entry that is missing or not a folder was
// skipped silently by validate and serve; it is an error naming it now. Issue
// 12: `test` starts from the same bootstrap (host/app/bootstrap.cpp), so it
// refuses it the same way.
TEST_F(CliTest, ValidateServeAndTestRefuseAPluginPathThatIsMissingOrNotAFolder) {
  const fs::path missing = dir_ / "no-such-plugins";
  std::ofstream(dir_ / "a-file") << "x";
  for (const auto& [path, why] : {std::pair{missing, std::string("which does not exist")},
                                  std::pair{dir_ / "a-file", std::string("which is not a folder")}}) {
    std::ofstream(config()) << "plugins: { paths: [" << EVENTFLOW_PLUGIN_DIR << ", " << path.string() << "] }\n"
                            << "pipelines: { paths: [" << (dir_ / "pipelines").string() << "] }\n";
    for (const std::string command : {"validate", "serve", "test"}) {
      const auto r = eventflow({command, "--config", config()});
      EXPECT_EQ(r.exit_code, 1) << r.describe();
      EXPECT_NE((r.out + r.err).find("plugins.paths names " + path.string() + ", " + why), std::string::npos)
          << r.describe();
    }
  }
}
