// The SDK as a plugin author gets it: a staged `cmake --install --component
// dev` of this build, projects configured and built against that prefix with
// nothing else from this source tree, and the plugins loaded by a real host.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <Poco/UUIDGenerator.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "command.hpp"
#include "host_process.hpp"

using namespace eventflow::testing;
namespace fs = std::filesystem;

namespace {

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class PackageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The loader refuses plugin files and folders that others may write to.
    ::umask(022);
    dir_ = fs::temp_directory_path() / ("eventflow-package-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    stage_ = dir_ / "stage";
    const auto installed = runCommand(
        {EVENTFLOW_CMAKE, "--install", EVENTFLOW_BUILD_DIR, "--prefix", stage_.string(), "--component", "dev"});
    ASSERT_EQ(installed.exit_code, 0) << installed.describe();
    ASSERT_TRUE(fs::is_regular_file(stage_ / "include" / "eventflow" / "plugin.hpp"));
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // Configures and builds `source` into `build` against the staged prefix
  // only, and checks that the SDK package came from there.
  void build(const fs::path& source, const fs::path& build) {
    const auto configured = runCommand({EVENTFLOW_CMAKE, "-S", source.string(), "-B", build.string(),
                                        "-DCMAKE_PREFIX_PATH=" + stage_.string(), "-DCMAKE_BUILD_TYPE=Release"});
    ASSERT_EQ(configured.exit_code, 0) << configured.describe();
    std::smatch found;
    const std::string cache = readFile(build / "CMakeCache.txt");
    ASSERT_TRUE(std::regex_search(cache, found, std::regex("EventFlowPluginAPI_DIR:PATH=(.*)"))) << cache;
    EXPECT_EQ(found[1].str().rfind(stage_.string() + "/", 0), 0u)
        << "the SDK must come from the staged install, not " << found[1];
    const auto built = runCommand({EVENTFLOW_CMAKE, "--build", build.string(), "--parallel", "2"});
    ASSERT_EQ(built.exit_code, 0) << built.describe();
  }

  fs::path dir_;
  fs::path stage_;
};

}  // namespace

TEST_F(PackageTest, AnOutOfTreeEnricherRunsInAHostPipeline) {
  const fs::path plugin_build = dir_ / "sample-build";
  ASSERT_NO_FATAL_FAILURE(build(EVENTFLOW_SAMPLE_PLUGIN, plugin_build));
  ASSERT_TRUE(fs::is_regular_file(plugin_build / "stamp.so"));

  const fs::path pipelines = dir_ / "pipelines";
  fs::create_directories(pipelines);
  std::ofstream(pipelines / "stamped.yaml") << R"(pipeline: stamped
match: { event_types: [stamped] }
stages:
  - enricher: stamp
    config: { field: stamped_by, value: out-of-tree }
  - sink: sqlite
    config: { table: processed_events }
)";
  HostProcess host("package", pipelines.string(), {}, {plugin_build.string()});
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::string id = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
  const auto posted = host.post(nlohmann::json{{"event_id", id}, {"event_type", "stamped"}, {"user_id", "u1"}}.dump());
  ASSERT_EQ(posted.status, 202) << posted.body;
  const auto summary = host.waitIdle(std::chrono::seconds(30));
  ASSERT_EQ(summary["events_in_flight"], 0) << summary.dump();
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + id +
                       "' AND json_extract(enriched_data, '$.stamped_by') = 'out-of-tree'"),
            1)
      << host.readLog();
  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0);
}

namespace {

// The walk-through of docs/plugins.md as a shell script: between its
// walkthrough markers, every ```sh block in order, and every ```yaml block
// whose first line is "# <path>" written to that path (with its first line).
std::string walkthroughScript(const std::string& page) {
  const auto begin = page.find("<!-- walkthrough:begin -->");
  const auto end = page.find("<!-- walkthrough:end -->");
  if (begin == std::string::npos || end == std::string::npos || end < begin) return {};
  std::istringstream in(page.substr(begin, end - begin));
  std::string script, line, lang, file, body;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line.rfind("```", 0) == 0) {
      inside = true;
      lang = line.substr(3);
      file.clear();
      body.clear();
      continue;
    }
    if (inside && line == "```") {
      inside = false;
      if (lang == "sh") script += body;
      if (lang == "yaml" && !file.empty())
        script += "mkdir -p \"$(dirname '" + file + "')\"\ncat > '" + file + "' <<'EVENTFLOW_DOC_EOF'\n" + body +
                  "EVENTFLOW_DOC_EOF\n";
      continue;
    }
    if (!inside) continue;
    if (lang == "yaml" && body.empty() && file.empty() && line.rfind("# ", 0) == 0) file = line.substr(2);
    body += line + "\n";
  }
  return script;
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

}  // namespace

// docs/plugins.md's steps 2-7, run as a reader would in an empty folder: a
// new plugin is built and tested, a pipeline uses it, the host serves it, and
// the page's own fixture passes. Only what must differ on a test machine is
// changed: the SDK comes from the staged install (CMAKE_PREFIX_PATH, as the
// page says), the built-in plugins from this build, the port is a free one.
TEST_F(PackageTest, ThePluginGuideWalkthroughRunsAsWritten) {
  std::ifstream in(EVENTFLOW_PLUGINS_GUIDE);
  const std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string script = walkthroughScript(page);
  ASSERT_NE(script.find("eventflow plugin new geo-tag"), std::string::npos) << script;
  ASSERT_NE(script.find("cat > 'pipelines/geo.yaml'"), std::string::npos) << script;
  ASSERT_NE(script.find("cat > 'pipelines/tests/geo.yaml'"), std::string::npos) << script;
  const std::uint16_t port = freePort();
  script = replaceAll(script, "localhost:8000", "localhost:" + std::to_string(port));
  script = replaceAll(script, "127.0.0.1:8000", "127.0.0.1:" + std::to_string(port));
  script = replaceAll(script, "/usr/lib/eventflow/plugins", EVENTFLOW_PLUGIN_DIR);
  // The host the page starts in the background is stopped whatever happens.
  script = "set -euo pipefail\ntrap 'jobs -p > serve.pid' EXIT\n" + script;

  const fs::path walk = dir_ / "walk";
  fs::create_directories(walk);
  std::ofstream(dir_ / "walkthrough.sh") << script;
  const std::string bin_dir = fs::path(EVENTFLOW_BINARY).parent_path().string();
  const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  ::setenv("PATH", (bin_dir + ":" + path).c_str(), 1);
  ::setenv("CMAKE_PREFIX_PATH", stage_.c_str(), 1);
  ::unsetenv("EVENTFLOW_CONFIG");
  const auto ran = runCommand({"/bin/bash", (dir_ / "walkthrough.sh").string()}, walk);
  ::setenv("PATH", path.c_str(), 1);
  ::unsetenv("CMAKE_PREFIX_PATH");
  pid_t serve = 0;
  std::ifstream(walk / "serve.pid") >> serve;
  struct StopHost {
    pid_t pid;
    ~StopHost() {
      if (pid > 0) ::kill(pid, SIGTERM);
    }
  } stop{serve};

  EXPECT_EQ(ran.exit_code, 0) << ran.describe();
  EXPECT_GT(serve, 0) << "the page starts the host: " << ran.describe();
  EXPECT_NE(ran.out.find("100% tests passed"), std::string::npos) << "the generated test: " << ran.describe();
  EXPECT_NE(ran.out.find("ok: "), std::string::npos) << "eventflow validate: " << ran.describe();
  EXPECT_NE(ran.out.find("\"status\":\"accepted\""), std::string::npos) << ran.describe();
  EXPECT_NE(ran.out.find("2 passed, 0 failed"), std::string::npos) << "the page's fixture: " << ran.describe();

  // The event the page posts ends done, with the field the new plugin set.
  std::smatch id;
  ASSERT_TRUE(std::regex_search(page, id, std::regex("\"event_id\": \"([0-9a-f-]{36})\""))) << page;
  nlohmann::json journey;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    journey = http(port, "GET", "/events/" + id[1].str()).json();
    if (journey.is_object() && journey.value("state", "") == "done") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(journey.value("state", ""), "done") << journey.dump() << "\n" << ran.describe();
  EXPECT_EQ(journey["processed"]["enriched_data"]["region"], "eu-west") << journey.dump();
}

class GeneratedProjectTest : public PackageTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(GeneratedProjectTest, BuildsUnchangedAgainstTheStagedSdkAndItsTestPasses) {
  const std::string kind = GetParam();
  const fs::path parent = dir_ / kind;
  const auto generated =
      runCommand({EVENTFLOW_BINARY, "plugin", "new", "demo", "--kind", kind, "--dir", parent.string()});
  ASSERT_EQ(generated.exit_code, 0) << generated.describe();

  const fs::path project = parent / "demo";
  const fs::path project_build = dir_ / (kind + "-build");
  ASSERT_NO_FATAL_FAILURE(build(project, project_build));
  const auto tested =
      runCommand({EVENTFLOW_CTEST, "--test-dir", project_build.string(), "--no-tests=error", "--output-on-failure"});
  EXPECT_EQ(tested.exit_code, 0) << tested.describe();
  EXPECT_NE(tested.out.find("100% tests passed"), std::string::npos) << tested.describe();

  // The generated plugin passes the host's descriptor gate, its kind deduced from its base class.
  ASSERT_TRUE(fs::is_regular_file(project_build / "demo.so"));
  const fs::path config = dir_ / "eventflow.yaml";
  std::ofstream(config) << "plugins: { paths: [\"" << project_build.string() << "\"] }\n";
  const auto shown = runCommand({EVENTFLOW_BINARY, "plugins", "show", "demo", "--config", config.string()});
  ASSERT_EQ(shown.exit_code, 0) << shown.describe();
  EXPECT_NE(shown.out.find("kind         " + kind + "\n"), std::string::npos) << shown.describe();
}

INSTANTIATE_TEST_SUITE_P(Kinds, GeneratedProjectTest, ::testing::Values("validator", "enricher", "sink"),
                         [](const ::testing::TestParamInfo<std::string>& kind) { return kind.param; });

namespace {

std::vector<std::string> manifest(const fs::path& file) {
  std::vector<std::string> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

}  // namespace

// `cmake --install build --prefix P` writes only under P, and what it writes
// runs: the installed config names the installed plugins and pipelines.
TEST(Install, WritesOnlyUnderThePrefixItIsGiven) {
  ::umask(022);
  const fs::path dir = fs::temp_directory_path() / ("eventflow-install-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const fs::path prefix = dir / "prefix";
  ::unsetenv("DESTDIR");
  const auto installed = runCommand({EVENTFLOW_CMAKE, "--install", EVENTFLOW_BUILD_DIR, "--prefix", prefix.string()});
  ASSERT_EQ(installed.exit_code, 0) << installed.describe();
  const auto files = manifest(fs::path(EVENTFLOW_BUILD_DIR) / "install_manifest.txt");
  ASSERT_FALSE(files.empty());
  for (const auto& f : files) EXPECT_EQ(f.rfind(prefix.string() + "/", 0), 0u) << f << " is outside " << prefix;
  const fs::path config = prefix / "etc" / "eventflow" / "eventflow.yaml";
  ASSERT_TRUE(fs::is_regular_file(config));
  ASSERT_TRUE(fs::is_regular_file(prefix / "etc" / "eventflow" / "pipelines" / "purchases.yaml"));
  const auto valid = runCommand({(prefix / "bin" / "eventflow").string(), "validate", "--config", config.string()});
  EXPECT_EQ(valid.exit_code, 0) << valid.describe();
  EXPECT_NE(valid.out.find("3 pipelines, 15 plugins"), std::string::npos) << valid.describe();

  // The prefix /usr keeps its config in /etc, as GNUInstallDirs has it; staged
  // with DESTDIR, everything still lands under DESTDIR.
  const fs::path destdir = dir / "destdir";
  ::setenv("DESTDIR", destdir.c_str(), 1);
  const auto staged = runCommand({EVENTFLOW_CMAKE, "--install", EVENTFLOW_BUILD_DIR, "--prefix", "/usr"});
  ::unsetenv("DESTDIR");
  ASSERT_EQ(staged.exit_code, 0) << staged.describe();
  bool etc = false;
  for (const auto& f : manifest(fs::path(EVENTFLOW_BUILD_DIR) / "install_manifest.txt")) {
    EXPECT_TRUE(f.rfind("/usr/", 0) == 0 || f.rfind("/etc/eventflow/", 0) == 0) << f;
    EXPECT_TRUE(fs::exists(destdir.string() + f)) << f << " is not under DESTDIR " << destdir;
    etc = etc || f == "/etc/eventflow/eventflow.yaml";
  }
  EXPECT_TRUE(etc);
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}
