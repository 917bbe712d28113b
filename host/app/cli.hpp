#pragma once
// What every command shares: where the config is and how a failure is printed.

#include <string>

#include "app/args.hpp"

namespace eventflow::app {

/// --config, else $EVENTFLOW_CONFIG, else /etc/eventflow/eventflow.yaml.
std::string configPath(const Args& args);

/// Prints "eventflow: <message>" on stderr; returns exit code 1.
int fail(const std::string& message);

}  // namespace eventflow::app
