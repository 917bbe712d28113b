#include "app/cli.hpp"

#include <cstdlib>
#include <iostream>

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

}  // namespace eventflow::app
