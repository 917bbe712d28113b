#include "app/cli.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "base/suggest.hpp"

namespace eventflow::app {

std::string configPath(const Args& args) {
  if (args.has("config")) return args.get("config");
  if (const char* env = std::getenv("EVENTFLOW_CONFIG"); env && *env) return env;
  return "/etc/eventflow/eventflow.yaml";
}

int fail(const std::string& message) {
  std::cerr << "eventflow: " << message << "\n";
  return 1;
}

Expected<std::string> apiKey(const Args& args, bool from_environment) {
  std::string key = args.get("api-key");
  std::string source = "--api-key";
  if (key.empty() && from_environment)
    if (const char* env = std::getenv("EVENTFLOW_API_KEY"); env) {
      key = env;
      source = "$EVENTFLOW_API_KEY";
    }
  const bool control = std::any_of(key.begin(), key.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
  if (control) return Error{source + " holds a control character (a line break?); a key is one line of printable text"};
  return key;
}

int usageError(const std::string& message, std::string_view help) {
  std::cerr << "eventflow: " << message << "\n\n" << help;
  return 2;
}

int invalidConfiguration(const std::string& message) {
  return fail("invalid configuration:" + std::string(message.find('\n') == std::string::npos ? " " : "\n") + message);
}

std::string unknownOption(const std::string& name, const std::set<std::string>& known) {
  return "unknown option --" + name + didYouMean(name, {known.begin(), known.end()}, "--");
}

std::string unknownWord(const std::string& what, const std::string& word, const std::vector<std::string>& known) {
  return "unknown " + what + " '" + word + "'" + didYouMean(word, known);
}

}  // namespace eventflow::app
