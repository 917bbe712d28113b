#pragma once

namespace eventflow::app {

/// The command line (DESIGN §8). Returns the exit code: 0 ok, 1 failure, 2 usage.
int run(int argc, char** argv);

int produce(int argc, char** argv);

/// eventflow plugins list|show (plugins_command.cpp).
int plugins(int argc, char** argv);

/// eventflow dlq list|show|replay|purge (dlq_command.cpp).
int dlq(int argc, char** argv);

/// eventflow plugin new (plugin_new.cpp).
int pluginCommand(int argc, char** argv);

/// eventflow test: pipeline fixtures without a server (test_command.cpp).
int testCommand(int argc, char** argv);

}  // namespace eventflow::app
