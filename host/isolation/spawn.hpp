#pragma once
// Starting a plugin child: `eventflow plugin-runner` with its channel and
// shared page on fixed fds and nothing else of the host's.

#include <sys/types.h>

#include <string>

namespace eventflow::isolation {

/// The executable children run; /proc/self/exe (this very binary) unless a
/// test says otherwise.
void setRunnerExecutable(std::string path);

/// Spawns a child with `channel` as fd 3 and `shared` as fd 4, every other
/// fd closed. Always forks from one long-lived thread: PR_SET_PDEATHSIG
/// fires when the thread that forked dies, and a worker thread may end
/// before its child should. -1 and `error` set on failure.
pid_t spawnRunner(int channel, int shared, std::string& error);

}  // namespace eventflow::isolation
