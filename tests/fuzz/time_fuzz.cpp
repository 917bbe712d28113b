// libFuzzer harness: the SDK's RFC 3339 and duration parsers, and the
// config's duration and size readers reached through loadHostConfig (they
// are private to config.cpp). A timestamp that parses must format and parse
// back.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include <eventflow/time.hpp>

#include "config/config.hpp"

namespace {

// The text as a YAML double-quoted scalar, whatever its bytes.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (const unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

const std::string& scratchFile() {
  static const std::string path = [] {
    const char* tmp = std::getenv("TMPDIR");
    return std::string(tmp ? tmp : "/tmp") + "/eventflow-time-fuzz-" + std::to_string(::getpid()) + ".yaml";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (const auto t = eventflow::parseRfc3339(text)) {
    // formatRfc3339 writes milliseconds, so the instant may lose digits;
    // what it writes must read back and write the same again.
    const std::string formatted = eventflow::formatRfc3339(*t);
    const auto again = eventflow::parseRfc3339(formatted);
    if (!again || eventflow::formatRfc3339(*again) != formatted) __builtin_trap();
  }
  // parseDuration refuses what int64 milliseconds cannot hold ("1e300s",
  // "nan", "inf"); it converted such values with undefined behaviour before.
  if (const auto d = eventflow::parseDuration(text); d && d->count() < 0) __builtin_trap();

  if (size > 256) return 0;  // the readers take one short scalar
  {
    std::ofstream out(scratchFile(), std::ios::trunc);
    out << "shutdown_timeout: " << quoted(text) << "\nlimits: { max_rss: " << quoted(text)
        << " }\nqueue: { claim_idle: " << quoted(text) << " }\n";
  }
  (void)eventflow::config::loadHostConfig(scratchFile());
  return 0;
}
