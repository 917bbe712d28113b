#pragma once
// What every command shares: where the config is and how a failure is printed.

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "app/args.hpp"
#include "base/expected.hpp"

namespace eventflow::app {

/// --config, else $EVENTFLOW_CONFIG, else /etc/eventflow/eventflow.yaml.
std::string configPath(const Args& args);

/// Prints "eventflow: <message>" on stderr; returns exit code 1.
int fail(const std::string& message);

/// A usage error: "eventflow: <message>", a blank line and the command's
/// help on stderr; returns exit code 2.
int usageError(const std::string& message, std::string_view help);

/// "invalid configuration: <message>" on one line when the message is one
/// line, else the header and then each problem on its own line; returns 1.
int invalidConfiguration(const std::string& message);

/// "unknown option --NAME", with "(did you mean '--X'?)" when a known one is close.
std::string unknownOption(const std::string& name, const std::set<std::string>& known);

/// "unknown WHAT 'WORD'", with "(did you mean 'X'?)" when one of `known` is close.
std::string unknownWord(const std::string& what, const std::string& word, const std::vector<std::string>& known);

/// The API key a command sends: --api-key, else $EVENTFLOW_API_KEY (when
/// `from_environment`); an error naming where it came from when it holds a
/// control character (a line break would end the Authorization header and
/// start another).
Expected<std::string> apiKey(const Args& args, bool from_environment);

/// eventflow keys new (keys_command.cpp).
int keys(int argc, char** argv);

/// eventflow reload (reload_command.cpp).
int reloadCommand(int argc, char** argv);

}  // namespace eventflow::app
