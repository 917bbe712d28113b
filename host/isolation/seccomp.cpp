#include "isolation/seccomp.hpp"

#include <seccomp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace eventflow::isolation {
namespace {

// Allowed whatever their arguments. Names, not numbers, so that one list
// serves every architecture libseccomp knows; a name an architecture lacks
// (time, poll on arm64) is skipped.
constexpr const char* kAllowed[] = {
    // memory: malloc (jemalloc in this binary, glibc's in a plugin's own code)
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
    // threads' waits, time
    "futex", "sched_yield", "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep",
    // ending, signals returning, who am I, randomness (std::random_device, uuids)
    "exit", "exit_group", "rt_sigreturn", "rt_sigprocmask", "restart_syscall", "getpid", "gettid", "getrandom",
    // on fds the process already has (it can open none): close, stat (stdio's first write), seek
    "close", "fstat", "newfstatat", "lseek",
};

// `call` allowed only when its first argument (an fd, or a pid) is `value`.
struct OnlyFor {
  const char* call;
  scmp_datum_t value;
};

}  // namespace

std::string installStrictFilter(int channel) {
  const auto release = [](scmp_filter_ctx c) { seccomp_release(c); };
  std::unique_ptr<void, decltype(release)> ctx(seccomp_init(SCMP_ACT_KILL_PROCESS), release);
  if (!ctx) return "seccomp_init failed";
  // The default (SCMP_FLTATR_CTL_NNP) sets no_new_privs, which an
  // unprivileged process needs to install a filter at all.
  auto add = [&](const char* name, unsigned args, const scmp_arg_cmp* cmp) -> std::string {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return {};
    const int rc = seccomp_rule_add_array(ctx.get(), SCMP_ACT_ALLOW, nr, args, cmp);
    // -EDOM/-EINVAL: a pseudo-number for a call this architecture does not have.
    if (rc != 0 && nr >= 0) return std::string("seccomp_rule_add(") + name + "): " + std::strerror(-rc);
    return {};
  };
  for (const char* name : kAllowed)
    if (auto e = add(name, 0, nullptr); !e.empty()) return e;
  const auto self = static_cast<scmp_datum_t>(::getpid());
  const auto fd = static_cast<scmp_datum_t>(channel);
  const OnlyFor only[] = {
      // the channel: frames in (read) and out (send; write for completeness)
      {"read", fd}, {"recvfrom", fd}, {"recvmsg", fd}, {"sendto", fd}, {"sendmsg", fd}, {"write", fd}, {"writev", fd},
      // what a plugin prints: stdout (/dev/null) and stderr (the host's log)
      {"write", 1}, {"write", 2}, {"writev", 1}, {"writev", 2},
      // abort() and raise() signal this very process: a SIGABRT, not a SIGSYS
      {"tgkill", self}, {"kill", self},
  };
  for (const auto& o : only) {
    const scmp_arg_cmp cmp = SCMP_A0(SCMP_CMP_EQ, o.value);
    if (auto e = add(o.call, 1, &cmp); !e.empty()) return e;
  }
  if (const int rc = seccomp_load(ctx.get()); rc != 0) return std::string("seccomp_load: ") + std::strerror(-rc);
  return {};
}

}  // namespace eventflow::isolation
