// A stage config that fails its plugin's schema is refused before any
// instance exists, and the message leads the author to the exact spot.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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
  auto spec = config::loadPipelineFile(file.string());
  ASSERT_TRUE(spec) << spec.error().message;
  auto registry = plugin::Registry::scan({EVENTFLOW_PLUGIN_DIR});
  ASSERT_TRUE(registry) << registry.error().message;

  auto built = pipeline::Pipeline::build(*spec, *registry);
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
  auto spec = config::loadPipelineFile(file.string());
  ASSERT_TRUE(spec) << spec.error().message;
  auto registry = plugin::Registry::scan({EVENTFLOW_PLUGIN_DIR});
  ASSERT_TRUE(registry) << registry.error().message;
  auto built = pipeline::Pipeline::build(*spec, *registry);
  ASSERT_TRUE(built) << built.error().message;
  EXPECT_EQ((*built)->stages().size(), 2u);
  fs::remove_all(file.parent_path());
}
