#pragma once
// Runs a real `eventflow serve` in a temporary folder for integration tests:
// its own config, SQLite database and free port. Nothing is faked.

#include <Poco/Data/Session.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/DigestEngine.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/SHA2Engine.h>
#include <Poco/UUIDGenerator.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

extern char** environ;

namespace eventflow::testing {

namespace fs = std::filesystem;

struct HttpReply {
  int status = 0;  // 0: no connection
  std::string body;
  std::map<std::string, std::string> headers;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

inline HttpReply http(std::uint16_t port, const std::string& method, const std::string& path,
                      const std::string& body = {}, const std::string& content_type = "application/json",
                      std::map<std::string, std::string> headers = {}) {
  HttpReply reply;
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", port);
    session.setTimeout(Poco::Timespan(30, 0));
    Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    for (const auto& [k, v] : headers) req.set(k, v);
    if (method == "POST" || !body.empty()) {
      if (!content_type.empty()) req.setContentType(content_type);
      req.setContentLength(static_cast<std::streamsize>(body.size()));
    }
    session.sendRequest(req) << body;
    Poco::Net::HTTPResponse res;
    std::istream& in = session.receiveResponse(res);
    std::stringstream ss;
    ss << in.rdbuf();
    reply.status = res.getStatus();
    reply.body = ss.str();
    for (const auto& [k, v] : res) reply.headers[k] = v;
  } catch (const Poco::Exception&) {
    reply.status = 0;
  }
  return reply;
}

/// Reaps `pid` once it exits and sets it to -1: its exit status (128+signal
/// when killed), or -1 if it is still running after `within`.
inline int waitForExit(pid_t& pid, std::chrono::milliseconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

/// A random (version 4) UUID: an event id or key no other test uses.
inline std::string uuid() { return Poco::UUIDGenerator::defaultGenerator().createRandom().toString(); }

/// Lower-case hex SHA-256, as api_keys' `sha256` holds a key.
inline std::string sha256(const std::string& s) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(s);
  return Poco::DigestEngine::digestToHex(engine.digest());
}

inline std::uint16_t freePort() {
  Poco::Net::ServerSocket s(Poco::Net::SocketAddress("127.0.0.1", 0));
  return s.address().port();
}

class HostProcess {
 public:
  /// A fresh folder with a config serving `pipelines_dir` (the repo's by
  /// default); `server_extra` adds keys to the server section;
  /// `extra_plugin_paths` are scanned after the built-in plugins' folder.
  explicit HostProcess(std::string name, std::string pipelines_dir = EVENTFLOW_PIPELINES_DIR,
                       std::string server_extra = {}, std::vector<std::string> extra_plugin_paths = {})
      : dir_(fs::temp_directory_path() / ("eventflow-it-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    port_ = freePort();
    std::string plugin_paths = EVENTFLOW_PLUGIN_DIR;
    for (const auto& p : extra_plugin_paths) plugin_paths += ", \"" + p + "\"";
    std::ofstream(dir_ / "eventflow.yaml") << "server: { listen: \"127.0.0.1:" << port_ << "\""
                                           << (server_extra.empty() ? "" : ", " + server_extra) << " }\n"
                                           << "store: { url: \"sqlite://" << (dir_ / "eventflow.db").string() << "\" }\n"
                                           << "plugins: { paths: [" << plugin_paths << "] }\n"
                                           << "pipelines: { paths: [" << pipelines_dir << "] }\n"
                                           << "logging: { level: info, format: json }\n"
                                           << "shutdown_timeout: 10s\n";
  }
  ~HostProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (!::testing::Test::HasFailure()) fs::remove_all(dir_);
  }

  const fs::path& dir() const { return dir_; }
  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string config() const { return (dir_ / "eventflow.yaml").string(); }
  std::string db() const { return (dir_ / "eventflow.db").string(); }
  std::string logFile() const { return (dir_ / "host.log").string(); }
  /// Where standard output goes after splitStdout(); else it shares logFile().
  std::string stdoutFile() const { return (dir_ / "stdout.log").string(); }
  void splitStdout() { split_stdout_ = true; }

  /// Starts the host and waits until /health/ready answers 200.
  bool start() {
    return start([this] { return http(port_, "GET", "/health/ready").status == 200; });
  }

  /// Starts the host and waits until `ready` is true (a TLS host's readiness
  /// is asked over HTTPS).
  bool start(const std::function<bool()>& ready) {
    const std::string bin = EVENTFLOW_BINARY;
    const std::string cfg = config();
    const std::string log = logFile();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const std::string out = split_stdout_ ? stdoutFile() : log;
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    std::vector<char*> argv{const_cast<char*>(bin.c_str()), const_cast<char*>("serve"), const_cast<char*>("--config"),
                            const_cast<char*>(cfg.c_str()), nullptr};
    const int rc = posix_spawn(&pid_, bin.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return false;
    for (int i = 0; i < 300; ++i) {
      if (ready()) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  /// False once the process has exited (it is reaped then).
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return true;
    pid_ = -1;
    return false;
  }

  void kill9() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  /// Sends `sig` to the running host; false if it is not running.
  bool signal(int sig) const { return pid_ > 0 && ::kill(pid_, sig) == 0; }

  /// Sends SIGTERM; returns the exit status, or -1 if it did not exit in time.
  int terminate(std::chrono::seconds within) {
    ::kill(pid_, SIGTERM);
    return waitForExit(pid_, within);
  }

  HttpReply post(const std::string& body, const std::string& path = "/events") const {
    return http(port_, "POST", path, body);
  }

  /// Waits until no event is in flight per /metrics/summary; returns the summary.
  /// `headers`: an API key with scope metrics, when keys are configured.
  nlohmann::json waitIdle(std::chrono::seconds within, const std::map<std::string, std::string>& headers = {}) const {
    nlohmann::json last;
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = http(port_, "GET", "/metrics/summary", {}, "application/json", headers);
      if (r.status == 200) {
        last = r.json();
        if (last["events_in_flight"] == 0) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return last;
  }

  /// Runs a query with one integer result against the host's database.
  Poco::Int64 count(const std::string& sql) const {
    Poco::Data::SQLite::Connector::registerConnector();
    Poco::Data::Session session("SQLite", db());
    Poco::Int64 n = -1;
    session << sql, Poco::Data::Keywords::into(n), Poco::Data::Keywords::now;
    return n;
  }

  std::string readLog() const {
    std::ifstream in(logFile());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  bool split_stdout_ = false;
  fs::path dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

/// An event the shipped pipelines accept, with a fresh id.
inline nlohmann::json validEvent(int n, const std::string& id) {
  static const char* kTypes[] = {"purchase", "user_signup", "page_view", "custom"};
  nlohmann::json e{{"event_id", id}, {"event_type", kTypes[n % 4]}, {"user_id", "user_" + std::to_string(n)},
                   {"timestamp", "2026-01-01T00:00:00Z"}};
  if (n % 4 == 0) e["properties"] = {{"amount", 10.5 + n}, {"currency", "USD"}};
  else e["properties"] = {{"n", n}};
  return e;
}

}  // namespace eventflow::testing
