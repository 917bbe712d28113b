// The plugin headers are the ABI: a change to them without a version bump
// would let a host load plugins whose layout it no longer shares (Envoy's
// abi_version.h). abi_hash.txt records one hash per ABI version.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <eventflow/plugin.hpp>

#include "base/ids.hpp"

namespace fs = std::filesystem;

namespace {

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Names are part of the hash, so adding, removing or renaming a header counts.
std::string sdkHash() {
  std::vector<fs::path> headers;
  for (const auto& entry : fs::directory_iterator(EVENTFLOW_SDK_HEADER_DIR))
    if (entry.path().extension() == ".hpp") headers.push_back(entry.path());
  std::sort(headers.begin(), headers.end());
  std::string all;
  for (const auto& h : headers) {
    all += h.filename().string();
    all += '\0';
    all += readFile(h);
    all += '\0';
  }
  return eventflow::sha256Hex(all);
}

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

}  // namespace

TEST(AbiHash, SdkHeadersMatchTheHashRecordedForThisAbiVersion) {
  const auto recorded = recordedHashes();
  ASSERT_FALSE(recorded.empty()) << EVENTFLOW_ABI_HASH_FILE << " holds no hash";
  for (std::size_t i = 1; i < recorded.size(); ++i)
    EXPECT_LT(std::pair(recorded[i - 1].major, recorded[i - 1].minor), std::pair(recorded[i].major, recorded[i].minor))
        << "abi_hash.txt: versions must only grow, one line per version";

  const Recorded& last = recorded.back();
  const std::string current = std::to_string(EVENTFLOW_PLUGIN_ABI_MAJOR) + "." + std::to_string(EVENTFLOW_PLUGIN_ABI_MINOR);
  const std::string hash = sdkHash();
  EXPECT_EQ(std::to_string(last.major) + "." + std::to_string(last.minor), current)
      << "the plugin ABI version changed: append \"" << current << " " << hash << "\" to abi_hash.txt";
  EXPECT_EQ(last.hash, hash)
      << "the plugin SDK headers changed, so the plugin ABI did: bump EVENTFLOW_PLUGIN_ABI_MAJOR (breaking) or "
         "EVENTFLOW_PLUGIN_ABI_MINOR (addition) in plugin.hpp and append \"<major>.<minor> "
      << hash << "\" to " << EVENTFLOW_ABI_HASH_FILE;
}
