#pragma once
// Runs a program to completion for tests, capturing its exit code, stdout and
// stderr separately (the CLI's contract puts messages on stderr).

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace eventflow::testing {

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed; -1 when it could not start
  std::string out;
  std::string err;
  std::string describe() const { return "exit " + std::to_string(exit_code) + "\nstdout:\n" + out + "\nstderr:\n" + err; }
};

/// Runs `argv` (argv[0] is a path) in `workdir` (the current folder when empty).
inline CommandResult runCommand(const std::vector<std::string>& argv, const std::filesystem::path& workdir = {}) {
  namespace fs = std::filesystem;
  CommandResult result;
  char out_name[] = "/tmp/eventflow-cmd-out-XXXXXX";
  char err_name[] = "/tmp/eventflow-cmd-err-XXXXXX";
  const int out_fd = ::mkstemp(out_name);
  const int err_fd = ::mkstemp(err_name);
  if (out_fd < 0 || err_fd < 0) return result;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  if (!workdir.empty()) posix_spawn_file_actions_addchdir_np(&actions, workdir.c_str());
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv.front().c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_fd);
  ::close(err_fd);
  if (rc == 0) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  auto slurp = [](const char* name) {
    std::ifstream in(name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  result.out = slurp(out_name);
  result.err = slurp(err_name);
  fs::remove(out_name);
  fs::remove(err_name);
  return result;
}

}  // namespace eventflow::testing
