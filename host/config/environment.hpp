#pragma once
// EVENTFLOW_* environment variables (and EVENTFLOW_*_FILE) that override
// host file values.

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace eventflow::config {

// Environment overrides land in the YAML tree before it is read, so they pass
// the same checks as the file.
void applyEnvironment(YAML::Node& root, std::vector<std::string>& errors);

}  // namespace eventflow::config
