// libFuzzer harness: YAML text as a host file (loadHostConfig) and as a
// pipeline file (loadPipelineFile), from a scratch file since both read
// paths. Every outcome must be a value: a config or an error naming the file.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "config/config.hpp"

namespace {

const std::string& scratchFile() {
  static const std::string path = [] {
    const char* tmp = std::getenv("TMPDIR");
    return std::string(tmp ? tmp : "/tmp") + "/eventflow-config-fuzz-" + std::to_string(::getpid()) + ".yaml";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::ofstream out(scratchFile(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  (void)eventflow::config::loadHostConfig(scratchFile());
  (void)eventflow::config::loadPipelineFile(scratchFile());
  return 0;
}
