#pragma once
// The child side of an isolated plugin: `eventflow plugin-runner --parent PID`,
// started by the host with its channel on fd 3 and the shared page on fd 4.
// Not a command for people; `eventflow --help` does not list it.

namespace eventflow::isolation {

/// Loads the plugin the host names (same descriptor gate and config schema
/// check as in the host), makes one instance and runs the batches it is sent
/// until the channel closes. Exit 0 then; kExitOutOfMemory when an
/// allocation failed; 1 when it could not start.
int runnerMain(int argc, char** argv);

}  // namespace eventflow::isolation
