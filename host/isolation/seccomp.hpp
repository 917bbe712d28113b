#pragma once
// `isolation: {mode: process, seccomp: strict}`: the allow-list a plugin's
// child runs its calls under. A plugin that computes on events needs memory,
// time, futexes and its channel; anything else (opening files, sockets,
// exec, fork, ptrace, changing its limits) kills the child with SIGSYS, and
// the host dead-letters the event it was running as plugin_crashed.

#include <string>

namespace eventflow::isolation {

/// Installs the filter on the calling process (and its future threads, had
/// it any), for good: empty on success, else why it could not be (the child
/// then refuses to start rather than run unfiltered). `channel` is the only
/// fd it may read; it may write there and to stdout and stderr.
std::string installStrictFilter(int channel);

/// The message a child killed by SIGSYS under the filter gets, after the
/// signal's name.
inline constexpr char kSeccompViolation[] =
    ": it made a system call that seccomp: strict does not allow (see docs/plugins.md, seccomp)";

}  // namespace eventflow::isolation
