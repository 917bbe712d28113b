// A stage config that fails its plugin's schema is refused before any
// instance exists, and the message leads the author to the exact spot.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "config/config.hpp"
#include "pipeline/pipeline.hpp"
#include "plugin/loader.hpp"

using namespace eventflow;
namespace fs = std::filesystem;

namespace {

fs::path writePipeline(const std::string& name, const std::string& yaml) {
  const fs::path dir = fs::temp_directory_path() / ("eventflow-pipeline-config-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / (name + ".yaml");
  std::ofstream(file) << yaml;
  return file;
}

// The pipeline file, built against the built-in plugins.
Expected<pipeline::PipelinePtr> buildWithBuiltIns(const fs::path& file) {
  auto spec = config::loadPipelineFile(file.string());
  if (!spec) return spec.error();
  auto registry = plugin::Registry::scan({EVENTFLOW_PLUGIN_DIR});
  if (!registry) return registry.error();
  return pipeline::Pipeline::build(std::move(*spec), *registry);
}

}  // namespace

TEST(PipelineConfig, StageConfigFailingThePluginSchemaNamesFileStagePluginAndField) {
  const auto file = writePipeline("orders", R"(pipeline: orders
match: { event_types: [order] }
stages:
  - validator: time-window
    config: { max_future: 0s }
  - validator: required-fields
    config: { fields: 5 }
  - sink: sqlite
)");
  auto built = buildWithBuiltIns(file);
  ASSERT_FALSE(built) << "a config with fields: 5 must be refused";
  const auto& m = built.error().message;
  // The offending key's line:col (`fields`), not the stage's (6:5).
  EXPECT_NE(m.find(file.string() + ":7:15: pipeline 'orders', stage 2"), std::string::npos) << m;
  EXPECT_NE(m.find("stage 2"), std::string::npos) << m;
  EXPECT_NE(m.find("validator 'required-fields'"), std::string::npos) << m;
  EXPECT_NE(m.find("fields:"), std::string::npos) << m;
  EXPECT_EQ(m.find("time-window"), std::string::npos) << "only the failing stage is reported: " << m;
  fs::remove_all(file.parent_path());
}

TEST(PipelineConfig, TheSameStageWithAValidConfigBuilds) {
  const auto file = writePipeline("orders-ok", R"(pipeline: orders
match: { event_types: [order] }
stages:
  - validator: required-fields
    config: { fields: [user_id] }
  - sink: sqlite
)");
  auto built = buildWithBuiltIns(file);
  ASSERT_TRUE(built) << built.error().message;
  EXPECT_EQ((*built)->stages().size(), 2u);
  fs::remove_all(file.parent_path());
}

// Issue 12: the host does not apply a schema's `default`s, so a built-in
// plugin's schema declares none (each default is in its description and in
// the plugin's code, the one place that applies it), and accepts no key it
// ignores: the sqlite sink's batch_size did nothing and is refused now.
TEST(PipelineConfig, BuiltInSchemasDeclareNoDefaultTheHostWouldNotApply) {
  auto registry = plugin::Registry::scan({EVENTFLOW_PLUGIN_DIR});
  ASSERT_TRUE(registry) << registry.error().message;
  ASSERT_FALSE(registry->plugins().empty());
  for (const auto& [name, p] : registry->plugins()) {
    std::vector<std::string> found;
    const std::function<void(const nlohmann::json&, const std::string&)> walk = [&](const nlohmann::json& schema,
                                                                                    const std::string& at) {
      if (!schema.is_object()) return;
      if (schema.contains("default")) found.push_back(at.empty() ? "(top)" : at);
      if (const auto props = schema.find("properties"); props != schema.end() && props->is_object())
        for (const auto& [key, sub] : props->items()) walk(sub, at.empty() ? key : at + "." + key);
      if (const auto items = schema.find("items"); items != schema.end()) walk(*items, at + "[]");
    };
    walk(p->config_schema, "");
    EXPECT_TRUE(found.empty()) << name << " declares a default at " << found.front();
  }
}

TEST(PipelineConfig, TheSqliteSinkRefusesTheBatchSizeItWouldIgnore) {
  const auto file = writePipeline("batch", R"(pipeline: batch
match: { event_types: [batch] }
stages:
  - sink: sqlite
    config: { table: processed_events, batch_size: 100 }
)");
  auto built = buildWithBuiltIns(file);
  ASSERT_FALSE(built);
  EXPECT_NE(built.error().message.find("batch_size: unknown key 'batch_size'"), std::string::npos)
      << built.error().message;
  fs::remove_all(file.parent_path());
}
