// The host as systemd runs it (packaging/eventflow.service, Type=notify): the
// sd_notify messages it sends on NOTIFY_SOCKET, read here from a datagram
// socket as the service manager would, and SIGHUP (ExecReload=) reloading with
// RELOADING=1 then READY=1.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <Poco/UUIDGenerator.h>

#include <cstring>

#include "host_process.hpp"

using namespace eventflow::testing;

namespace {

// A bound AF_UNIX datagram socket standing in for systemd's notify socket.
class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool bound() const { return bound_; }

  /// The next datagram, or "" if none came within `within`.
  std::string next(std::chrono::milliseconds within) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(within.count())) != 1) return {};
    char buf[4096];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  }

  /// Reads datagrams until one contains `line` as a line; all read so far in `seen`.
  bool waitFor(const std::string& line, std::chrono::milliseconds within, std::string& seen) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      const std::string m = next(std::max(left, std::chrono::milliseconds(1)));
      if (m.empty()) continue;
      seen += m + "\n--\n";
      if (("\n" + m + "\n").find("\n" + line + "\n") != std::string::npos) return true;
    }
    return false;
  }

 private:
  fs::path path_;
  int fd_ = -1;
  bool bound_ = false;
};

std::size_t countLines(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
  return n;
}

}  // namespace

TEST(ServiceNotify, ReadyOnceServingWatchdogAtHalfTheIntervalStoppingOnSigterm) {
  HostProcess host("notify");
  NotifySocket notify(host.dir() / "notify.sock");
  ASSERT_TRUE(notify.bound()) << std::strerror(errno);
  ::setenv("NOTIFY_SOCKET", (host.dir() / "notify.sock").c_str(), 1);
  // 400 ms: the host should then feed it every 200 ms.
  ::setenv("WATCHDOG_USEC", "400000", 1);
  const bool started = host.start();
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(started) << host.readLog();

  std::string seen;
  ASSERT_TRUE(notify.waitFor("READY=1", std::chrono::seconds(10), seen)) << seen << host.readLog();
  EXPECT_NE(seen.find("STATUS=serving on 127.0.0.1:" + std::to_string(host.port())), std::string::npos) << seen;
  // Ready means serving: the port answers and the store takes events.
  EXPECT_EQ(http(host.port(), "GET", "/health/ready").status, 200);

  // Three feeds in 1.5 s: at 200 ms apart there are ~7; without a watchdog thread, none.
  int fed = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < until) fed += notify.next(std::chrono::milliseconds(300)) == "WATCHDOG=1";
  EXPECT_GE(fed, 3) << host.readLog();
  EXPECT_LE(fed, 12) << "fed far more often than half the interval";

  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0) << host.readLog();
  seen.clear();
  EXPECT_TRUE(notify.waitFor("STOPPING=1", std::chrono::seconds(1), seen)) << seen;
}

TEST(ServiceNotify, WithoutNotifySocketTheHostServesAndSendsNothing) {
  HostProcess host("nonotify");
  NotifySocket notify(host.dir() / "notify.sock");
  ASSERT_TRUE(notify.bound());
  ::unsetenv("NOTIFY_SOCKET");
  ::setenv("WATCHDOG_USEC", "400000", 1);  // ignored without a socket to send to
  const bool started = host.start();
  ::unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(started) << host.readLog();
  EXPECT_EQ(notify.next(std::chrono::milliseconds(500)), "");
  EXPECT_EQ(countLines(host.readLog(), "systemd watchdog enabled"), 0u) << host.readLog();
  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0);
}

// ExecReload= sends SIGHUP: with nothing changed on disk it reloads to the
// same set (one log line, no restart), telling systemd RELOADING=1 and then
// READY=1 (systemd 253's notify-reload protocol), and the host keeps serving
// and keeps its data.
TEST(ServiceNotify, SighupReloadsInPlaceAndTellsTheServiceManager) {
  HostProcess host("sighup");
  NotifySocket notify(host.dir() / "notify.sock");
  ASSERT_TRUE(notify.bound()) << std::strerror(errno);
  ::setenv("NOTIFY_SOCKET", (host.dir() / "notify.sock").c_str(), 1);
  const bool started = host.start();
  ::unsetenv("NOTIFY_SOCKET");
  ASSERT_TRUE(started) << host.readLog();
  std::string seen;
  ASSERT_TRUE(notify.waitFor("READY=1", std::chrono::seconds(10), seen)) << seen;
  const std::string before = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
  ASSERT_EQ(host.post(validEvent(0, before).dump()).status, 202);
  ASSERT_EQ(host.waitIdle(std::chrono::seconds(30))["events_in_flight"], 0);

  ASSERT_TRUE(host.signal(SIGHUP));
  EXPECT_TRUE(notify.waitFor("RELOADING=1", std::chrono::seconds(10), seen)) << seen;
  EXPECT_TRUE(notify.waitFor("READY=1", std::chrono::seconds(10), seen)) << seen;
  // Wait on the log line, not on time.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (countLines(host.readLog(), "\"trigger\":\"sighup\"") == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::string log = host.readLog();
  EXPECT_EQ(countLines(log, "\"trigger\":\"sighup\""), 1u) << log;
  EXPECT_EQ(countLines(log, "reload: nothing to swap"), 1u) << log;
  EXPECT_EQ(countLines(log, "eventflow started"), 1u) << "no restart: " << log;

  EXPECT_TRUE(host.running());
  EXPECT_EQ(http(host.port(), "GET", "/health/ready").status, 200);
  const std::string after = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
  ASSERT_EQ(host.post(validEvent(0, after).dump()).status, 202);
  ASSERT_EQ(host.waitIdle(std::chrono::seconds(30))["events_in_flight"], 0);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'done' AND event_id IN ('" + before + "', '" +
                       after + "')"),
            2);
  EXPECT_EQ(host.terminate(std::chrono::seconds(15)), 0) << host.readLog();
}
