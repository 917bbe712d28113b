// The plugin headers are the ABI: a change to them without a version bump
// would let a host load plugins whose layout it no longer shares (Envoy's
// abi_version.h). plugin-api/abi_hash.txt records one hash per ABI version,
// the loader checks each plugin's against it, and plugin.hpp writes down which
// changes are minor-safe: one test per rule here.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <eventflow/plugin.hpp>
#include <eventflow/testing.hpp>

#include "plugin/loader.hpp"

using namespace eventflow;
namespace fs = std::filesystem;

namespace {

struct Recorded {
  unsigned major = 0;
  unsigned minor = 0;
  std::string hash;
};

std::vector<Recorded> recordedHashes() {
  std::vector<Recorded> out;
  std::ifstream in(EVENTFLOW_ABI_HASH_FILE);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line.front() == '#') continue;
    Recorded r;
    char dot = 0;
    std::istringstream fields(line);
    fields >> r.major >> dot >> r.minor >> r.hash;
    EXPECT_TRUE(fields && dot == '.' && r.hash.size() == 64) << "malformed line in abi_hash.txt: " << line;
    out.push_back(r);
  }
  return out;
}

// The hash as the build computes it (EventFlowSdkHash.cmake in script mode).
std::string sdkHashOf(const fs::path& dir) {
  const std::string command = std::string("'") + EVENTFLOW_CMAKE + "' -DDIR='" + dir.string() + "' -P '" +
                              EVENTFLOW_SDK_HASH_SCRIPT + "' 2>&1";
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[256];
    while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
    ::pclose(pipe);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string fixture(const std::string& name) { return std::string(FIXTURE_DIR) + "/" + name + "/" + name + ".so"; }

// A copy of the SDK headers to change one at a time.
class SdkCopy {
 public:
  SdkCopy() : dir_(fs::temp_directory_path() / ("eventflow-sdk-hash-" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const auto& entry : fs::directory_iterator(EVENTFLOW_SDK_HEADER_DIR))
      fs::copy_file(entry.path(), dir_ / entry.path().filename());
  }
  ~SdkCopy() { fs::remove_all(dir_); }
  void append(const std::string& file, const std::string& text) { std::ofstream(dir_ / file, std::ios::app) << text; }
  void remove(const std::string& file) { fs::remove(dir_ / file); }
  std::string hash() const { return sdkHashOf(dir_); }

 private:
  fs::path dir_;
};

}  // namespace

TEST(AbiHash, SdkHeadersMatchTheHashRecordedForThisAbiVersion) {
  const auto recorded = recordedHashes();
  ASSERT_FALSE(recorded.empty()) << EVENTFLOW_ABI_HASH_FILE << " holds no hash";
  for (std::size_t i = 1; i < recorded.size(); ++i)
    EXPECT_LT(std::pair(recorded[i - 1].major, recorded[i - 1].minor), std::pair(recorded[i].major, recorded[i].minor))
        << "abi_hash.txt: versions must only grow, one line per version";

  const Recorded& last = recorded.back();
  const std::string current = std::to_string(EVENTFLOW_PLUGIN_ABI_MAJOR) + "." + std::to_string(EVENTFLOW_PLUGIN_ABI_MINOR);
  const std::string hash = EVENTFLOW_SDK_HEADER_HASH;
  EXPECT_EQ(std::to_string(last.major) + "." + std::to_string(last.minor), current)
      << "the plugin ABI version changed: append \"" << current << " " << hash << "\" to abi_hash.txt";
  EXPECT_EQ(last.hash, hash)
      << "the plugin SDK headers changed, so the plugin ABI did: bump EVENTFLOW_PLUGIN_ABI_MAJOR or "
         "EVENTFLOW_PLUGIN_ABI_MINOR in plugin.hpp (its comment says which) and append \"<major>.<minor> "
      << hash << "\" to " << EVENTFLOW_ABI_HASH_FILE;
  // The build recomputes the hash whenever a header changes; this catches a
  // stale generated sdk_hash.hpp.
  EXPECT_EQ(sdkHashOf(EVENTFLOW_SDK_HEADER_DIR), hash);
}

// Rule: every hashed header counts, comments and file names included.
TEST(AbiRules, AnyChangeToAHashedHeaderChangesTheHash) {
  SdkCopy sdk;
  const std::string before = sdk.hash();
  ASSERT_EQ(before, EVENTFLOW_SDK_HEADER_HASH);
  sdk.append("plugin.hpp", "// a comment\n");
  const std::string comment = sdk.hash();
  EXPECT_NE(comment, before) << "a comment in plugin.hpp is an ABI change";
  sdk.append("extra.hpp", "#pragma once\n");
  EXPECT_NE(sdk.hash(), comment) << "a new header is an ABI change";
}

// Rule: time.hpp and testing.hpp are not hashed; changing them needs no bump.
TEST(AbiRules, TimeAndTestingHeadersAreNotHashed) {
  SdkCopy sdk;
  sdk.append("time.hpp", "// a new helper\n");
  sdk.append("testing.hpp", "// a new helper\n");
  EXPECT_EQ(sdk.hash(), EVENTFLOW_SDK_HEADER_HASH);
  sdk.remove("testing.hpp");
  EXPECT_EQ(sdk.hash(), EVENTFLOW_SDK_HEADER_HASH);
}

// Rule: abi_major, abi_minor and struct_size never move, so any host can read
// any plugin's version and descriptor size before trusting the rest.
TEST(AbiRules, TheFieldsEveryHostReadsFirstNeverMove) {
  EXPECT_EQ(offsetof(EventflowPluginDescriptor, abi_major), 0u);
  EXPECT_EQ(offsetof(EventflowPluginDescriptor, abi_minor), 4u);
  EXPECT_EQ(offsetof(EventflowPluginDescriptor, struct_size), 8u);
  EXPECT_EQ(plugin::kDescriptorSizeV2, sizeof(EventflowPluginDescriptor))
      << "ABI 2.0's descriptor ends at `destroy`; a minor may append after it only";
}

// Rule: a minor only appends to the descriptor. A host of a newer minor, whose
// descriptor is longer, loads a plugin of an older minor with the shorter one,
// checking its header hash against the line recorded for its version.
TEST(AbiRules, ANewerMinorHostLoadsAnOlderMinorPlugin) {
  plugin::HostAbi newer;
  newer.minor += 1;
  newer.descriptor_size += sizeof(void*);
  newer.sdk_hashes[newer.minor] = std::string(64, 'e');
  auto loaded = plugin::loadPlugin(fixture("good"), newer);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ((*loaded)->abi_minor, static_cast<unsigned>(EVENTFLOW_PLUGIN_ABI_MINOR));

  newer.sdk_hashes[EVENTFLOW_PLUGIN_ABI_MINOR] = std::string(64, 'f');
  auto changed = plugin::loadPlugin(fixture("good"), newer);
  ASSERT_FALSE(changed) << "an older plugin is held to its own version's hash";
  EXPECT_NE(changed.error().message.find("headers have '" + std::string(64, 'f') + "'"), std::string::npos)
      << changed.error().message;

  newer.sdk_hashes.erase(EVENTFLOW_PLUGIN_ABI_MINOR);
  auto unknown = plugin::loadPlugin(fixture("good"), newer);
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("no SDK header hash is recorded for ABI"), std::string::npos)
      << unknown.error().message;
}

// Rule: appending a virtual to Context is minor-safe: the host implements
// Context, and a plugin built without the new function still reaches the old
// ones in the slots it always used.
TEST(AbiRules, AVirtualAppendedToContextLeavesOldCallsInPlace) {
  class NewerContext : public Context {
   public:
    void log(LogLevel, std::string_view) override {}
    void count(std::string_view name, double value) override { counted += name == "created" ? value : 0; }
    void observe(std::string_view, double) override {}
    std::string resolvePath(std::string_view p) const override { return std::string(p); }
    std::string setting(std::string_view) const override { return {}; }
    virtual void appendedInANewerMinor() {}
    double counted = 0;
  };
  auto loaded = plugin::loadPlugin(fixture("good"));
  ASSERT_TRUE(loaded) << loaded.error().message;
  NewerContext context;
  auto instance = plugin::createInstance<Validator>(*loaded, nlohmann::json::object(), context);
  ASSERT_TRUE(instance) << instance.error().message;
  EXPECT_EQ(context.counted, 1.0) << "the fixture's count(\"created\") reached the host's object";
}

// Rule: the kind is stated once, by the base class; EVENTFLOW_PLUGIN deduces it.
TEST(AbiRules, TheKindIsDeducedFromTheBaseClass) {
  struct V : Validator {
    Result check(const Event&) override { return Result::ok(); }
  };
  struct E : Enricher {
    Result enrich(Event&) override { return Result::ok(); }
  };
  struct S : Sink {
    std::vector<Result> write(std::span<Event* const>) override { return {}; }
  };
  static_assert(detail::kindOf<V>() == Kind::validator);
  static_assert(detail::kindOf<E>() == Kind::enricher);
  static_assert(detail::kindOf<S>() == Kind::sink);
  auto registry = plugin::Registry::scan({EVENTFLOW_PLUGIN_DIR});
  ASSERT_TRUE(registry) << registry.error().message;
  for (const auto& [name, kind] : {std::pair<std::string, Kind>{"required-fields", Kind::validator},
                                   {"add-fields", Kind::enricher},
                                   {"sqlite", Kind::sink}}) {
    const auto it = registry->plugins().find(name);
    ASSERT_NE(it, registry->plugins().end()) << name;
    EXPECT_EQ(it->second->kind, kind) << name;
  }
}
