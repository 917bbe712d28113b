#pragma once
// The systemd service protocol (sd_notify(3)) for `Type=notify` units: READY=1
// once the host serves, STOPPING=1 when it begins to drain, and WATCHDOG=1
// from a host thread while WatchdogSec= asks for it. Without NOTIFY_SOCKET
// (not run by systemd) every call does nothing.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace eventflow::app {

class ServiceNotifier {
 public:
  ServiceNotifier() = default;
  ~ServiceNotifier();
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  /// READY=1 with a STATUS= line, then starts feeding the watchdog if the
  /// service manager enabled one (WATCHDOG_USEC), at half its interval.
  void ready(const std::string& status);
  /// STOPPING=1; the watchdog keeps being fed until the object goes, so a
  /// drain that takes up to shutdown_timeout is not killed as a hang.
  void stopping();
  /// RELOADING=1 (with MONOTONIC_USEC, as systemd 253's notify-reload wants);
  /// ready() again once the reload answered.
  void reloading();

 private:
  void stopWatchdog();

  std::thread watchdog_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace eventflow::app
