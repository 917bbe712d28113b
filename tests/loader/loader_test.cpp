#include <gtest/gtest.h>
#include <sys/stat.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <eventflow/testing.hpp>
#include "plugin/loader.hpp"

using namespace eventflow;
using eventflow::testing::FakeContext;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) {
  return std::string(FIXTURE_DIR) + "/" + name + "/" + name + ".so";
}

std::string refusal(const std::string& name) {
  auto loaded = plugin::loadPlugin(fixture(name));
  EXPECT_FALSE(loaded) << name << " should have been refused";
  return loaded ? std::string() : loaded.error().message;
}


}  // namespace

TEST(Loader, LoadsAGoodPluginAndReadsItsDescriptor) {
  auto loaded = plugin::loadPlugin(fixture("good"));
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ((*loaded)->name, "good");
  EXPECT_EQ((*loaded)->version, "9.9.9");
  EXPECT_EQ((*loaded)->kind, Kind::validator);
  FakeContext ctx;
  auto instance = plugin::createInstance<Validator>(*loaded, nlohmann::json::object(), ctx);
  ASSERT_TRUE(instance) << instance.error().message;
  Event e;
  EXPECT_TRUE((*instance)->get().check(e).isOk());
}

TEST(Loader, RefusesWrongAbiMajorNamingFileAndBothVersions) {
  const auto m = refusal("abi-major");
  const std::string host = std::to_string(EVENTFLOW_PLUGIN_ABI_MAJOR) + "." + std::to_string(EVENTFLOW_PLUGIN_ABI_MINOR);
  const std::string plugin = std::to_string(EVENTFLOW_PLUGIN_ABI_MAJOR + 1) + "." + std::to_string(EVENTFLOW_PLUGIN_ABI_MINOR);
  EXPECT_NE(m.find(fixture("abi-major")), std::string::npos) << m;
  EXPECT_NE(m.find("plugin ABI " + plugin), std::string::npos) << m;
  EXPECT_NE(m.find("host ABI " + host), std::string::npos) << m;
  EXPECT_NE(m.find("major"), std::string::npos) << m;
}

TEST(Loader, RefusesNewerAbiMinor) {
  const auto m = refusal("abi-minor");
  EXPECT_NE(m.find("newer than host ABI"), std::string::npos) << m;
}

TEST(Loader, RefusesMismatchedCxxLibraryAbi) {
  const auto m = refusal("cxx-abi");
  EXPECT_NE(m.find("C++ library ABI 'libstdc++/cxx11abi=0'"), std::string::npos) << m;
  EXPECT_NE(m.find("libstdc++/cxx11abi=1"), std::string::npos) << m;
}

TEST(Loader, RefusesMismatchedJsonAbi) {
  const auto m = refusal("json-tag");
  EXPECT_NE(m.find("JSON ABI 'nlohmann-json/2.0/diagnostics=0'"), std::string::npos) << m;
}

// ABI 2.0: struct_size. A descriptor shorter than ABI 2.0's cannot hold the
// fields the host reads; at the host's own minor it must be exactly the host's.
TEST(Loader, RefusesADescriptorOfTheWrongSize) {
  const auto m = refusal("struct-size");
  EXPECT_NE(m.find(fixture("struct-size") + ": descriptor: the descriptor has " +
                   std::to_string(sizeof(EventflowPluginDescriptor) - 8) + " bytes but ABI "),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("'s has " + std::to_string(sizeof(EventflowPluginDescriptor))), std::string::npos) << m;
}

// ABI 2.0: the SDK header hash. A plugin built with headers that changed
// without a version bump is refused, naming the file, what it carries and what
// its version's headers hash to.
TEST(Loader, RefusesAPluginBuiltWithOtherSdkHeaders) {
  const auto m = refusal("sdk-hash");
  EXPECT_NE(m.find(fixture("sdk-hash") + ": abi: SDK header hash '" + std::string(64, '0') + "'"), std::string::npos)
      << m;
  EXPECT_NE(m.find(std::string("headers have '") + EVENTFLOW_SDK_HEADER_HASH + "'"), std::string::npos) << m;
}

// valijson is built to throw (VALIJSON_USE_EXCEPTIONS) everywhere: a config
// schema it cannot use is a refusal, where it used to abort() the host.
TEST(Loader, RefusesAPluginWhoseConfigSchemaIsNotAValidSchema) {
  const auto m = refusal("bad-schema");
  EXPECT_NE(m.find(fixture("bad-schema") + ": schema: the config schema is not a JSON Schema (draft 7) the host can "
                   "use: invalid JSON Schema: "),
            std::string::npos)
      << m;
}

TEST(Loader, RefusesALibraryWithoutDescriptor) {
  const auto m = refusal("no-descriptor");
  EXPECT_NE(m.find("no exported symbol 'eventflow_plugin_descriptor'"), std::string::npos) << m;
}

TEST(Loader, LoadsAStrippedPlugin) {
  const std::string stripped = fixture("stripped");
  EXPECT_EQ(std::system(("! readelf -S '" + stripped + "' | grep -q '\\.symtab'").c_str()), 0)
      << "the fixture should have no .symtab left";
  auto loaded = plugin::loadPlugin(stripped);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ((*loaded)->name, "good");
}

TEST(Loader, RefusesFilesThatAreNoSharedLibraryWithoutReadingPastThem) {
  const fs::path dir = fs::temp_directory_path() / ("eventflow-loader-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0755);
  const auto write = [&](const std::string& name, const std::string& bytes) {
    const fs::path file = dir / name;
    std::ofstream(file, std::ios::binary) << bytes;
    ::chmod(file.c_str(), 0644);
    return file.string();
  };
  std::ifstream good(fixture("good"), std::ios::binary);
  const std::string image((std::istreambuf_iterator<char>(good)), std::istreambuf_iterator<char>());
  ASSERT_GT(image.size(), 4096u);
  const auto message = [](const std::string& path) {
    auto loaded = plugin::loadPlugin(path);
    EXPECT_FALSE(loaded) << path;
    return loaded ? std::string() : loaded.error().message;
  };
  EXPECT_NE(message(write("text.so", "not a library\n")).find("read: not a loadable shared library: not an ELF file"),
            std::string::npos);
  EXPECT_NE(message(write("empty.so", "")).find("not a loadable shared library"), std::string::npos);
  // Cut inside the headers and inside the sections: an error, never a crash.
  for (const std::size_t size : {std::size_t{20}, std::size_t{64}, std::size_t{1000}, image.size() / 2})
    EXPECT_NE(message(write("cut.so", image.substr(0, size))).find(": read: "), std::string::npos) << size;
  // Section headers pointing past the end of the file.
  std::string damaged = image;
  for (std::size_t i = 0x28; i < 0x30; ++i) damaged[i] = '\x7f';  // e_shoff
  EXPECT_FALSE(plugin::loadPlugin(write("damaged.so", damaged)));
  fs::remove_all(dir);
}

TEST(Loader, RefusesARelativePathAndAMissingFile) {
  EXPECT_FALSE(plugin::loadPlugin("relative/plugin.so"));
  auto missing = plugin::loadPlugin("/nonexistent/plugin.so");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no such file"), std::string::npos);
}

TEST(Loader, CreateThatThrowsOrReturnsNullIsAnErrorNotACrash) {
  FakeContext ctx;
  auto throws = plugin::loadPlugin(fixture("create-throws"));
  ASSERT_TRUE(throws) << throws.error().message;
  auto a = plugin::createInstance<Validator>(*throws, nlohmann::json::object(), ctx);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("fixture refuses to be created"), std::string::npos) << a.error().message;

  auto null = plugin::loadPlugin(fixture("create-null"));
  ASSERT_TRUE(null) << null.error().message;
  auto b = plugin::createInstance<Validator>(*null, nlohmann::json::object(), ctx);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("create: returned null"), std::string::npos) << b.error().message;
}

TEST(Registry, WrongKindForTheStageIsRefused) {
  auto registry = plugin::Registry::scan({std::string(FIXTURE_DIR) + "/sink-kind"});
  ASSERT_TRUE(registry) << registry.error().message;
  auto resolved = registry->resolve("sink-kind", Kind::validator, "");
  ASSERT_FALSE(resolved);
  EXPECT_NE(resolved.error().message.find("is a sink, but the stage uses it as a validator"), std::string::npos)
      << resolved.error().message;
}

TEST(Registry, TwoPluginsWithOneNameNameBothFiles) {
  auto registry = plugin::Registry::scan({std::string(FIXTURE_DIR) + "/dup-a"});
  ASSERT_FALSE(registry);
  const auto& m = registry.error().message;
  EXPECT_NE(m.find("two plugins are named 'twin'"), std::string::npos) << m;
  EXPECT_NE(m.find("/dup-a.so"), std::string::npos) << m;
  EXPECT_NE(m.find("/dup-b.so"), std::string::npos) << m;
}

TEST(Registry, AMissingPluginMentionsWhatFailedToLoad) {
  auto registry = plugin::Registry::scan({std::string(FIXTURE_DIR) + "/abi-major"});
  ASSERT_TRUE(registry) << registry.error().message;
  auto resolved = registry->resolve("fixture", Kind::validator, "");
  ASSERT_FALSE(resolved);
  EXPECT_NE(resolved.error().message.find("not loaded:"), std::string::npos) << resolved.error().message;
}

TEST(Loader, RefusesAPluginWritableByOthers) {
  const fs::path dir = fs::temp_directory_path() / ("eventflow-loader-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0755);
  const fs::path copy = dir / "good.so";
  fs::copy_file(fixture("good"), copy, fs::copy_options::overwrite_existing);
  ::chmod(copy.c_str(), 0646);
  auto file = plugin::loadPlugin(copy.string());
  ASSERT_FALSE(file);
  EXPECT_NE(file.error().message.find("writable by others"), std::string::npos) << file.error().message;
  ::chmod(copy.c_str(), 0644);
  ::chmod(dir.c_str(), 0777);
  auto folder = plugin::loadPlugin(copy.string());
  ASSERT_FALSE(folder);
  EXPECT_NE(folder.error().message.find("folder"), std::string::npos) << folder.error().message;
  ::chmod(dir.c_str(), 0755);
  EXPECT_TRUE(plugin::loadPlugin(copy.string()));
  fs::remove_all(dir);
}

// Issue 11: a link in a safe folder to a plugin in an unsafe one was loaded,
// because only the link's folder was checked. The file a link leads to, its
// folder, and every folder above that anyone may rewrite, are checked now.
TEST(Loader, ChecksTheFileASymlinkLeadsToAndTheFoldersAboveIt) {
  const fs::path root = fs::temp_directory_path() / ("eventflow-loader-link-" + std::to_string(::getpid()));
  fs::remove_all(root);
  const fs::path safe = root / "safe", open = root / "open" / "inner";
  fs::create_directories(safe);
  fs::create_directories(open);
  for (const auto& d : {root, safe, root / "open", open}) ::chmod(d.c_str(), 0755);
  fs::copy_file(fixture("good"), open / "good.so");
  fs::create_symlink(open / "good.so", safe / "good.so");
  EXPECT_TRUE(plugin::loadPlugin((safe / "good.so").string())) << "all folders safe: loaded";

  ::chmod(open.c_str(), 0777);  // the target's own folder
  auto target_folder = plugin::loadPlugin((safe / "good.so").string());
  ASSERT_FALSE(target_folder);
  EXPECT_NE(target_folder.error().message.find(open.string() + " is writable by others"), std::string::npos)
      << target_folder.error().message;
  ::chmod(open.c_str(), 0755);

  ::chmod((root / "open").c_str(), 0777);  // a folder above it: anyone may swap `inner`
  auto above = plugin::loadPlugin((safe / "good.so").string());
  ASSERT_FALSE(above);
  EXPECT_NE(above.error().message.find((root / "open").string() + " above it is writable by others"), std::string::npos)
      << above.error().message;
  ::chmod((root / "open").c_str(), 01777);  // sticky, like /tmp: nobody may move another's entries
  EXPECT_TRUE(plugin::loadPlugin((safe / "good.so").string()));
  ::chmod((root / "open").c_str(), 0755);
  fs::remove_all(root);
}
