#include "app/service_notify.hpp"

#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "base/log.hpp"
#include "base/threads.hpp"

namespace eventflow::app {

ServiceNotifier::~ServiceNotifier() { stopWatchdog(); }

void ServiceNotifier::ready(const std::string& status) {
  // sd_notify returns 0 when NOTIFY_SOCKET is unset: not under systemd.
  if (sd_notify(0, ("READY=1\nSTATUS=" + status).c_str()) < 0)
    log::warn("sd_notify READY=1 failed; systemd will time the start out");
  // sd_watchdog_enabled reads WATCHDOG_USEC alone; with nowhere to send the
  // feeds (no NOTIFY_SOCKET) a thread would wake up for nothing.
  std::uint64_t usec = 0;
  if (!std::getenv("NOTIFY_SOCKET") || sd_watchdog_enabled(0, &usec) <= 0 || usec == 0 || watchdog_.joinable()) return;
  // Half the interval, as sd_watchdog_enabled(3) advises: one late wake-up
  // (a loaded machine, a long GC in a plugin) still lands inside the window.
  const auto every = std::chrono::microseconds(usec / 2);
  log::info("systemd watchdog enabled", {{"interval_ms", std::to_string(usec / 1000)}});
  watchdog_ = std::thread([this, every] {
    nameThread("ef-watchdog");
    std::unique_lock lock(mutex_);
    do {
      sd_notify(0, "WATCHDOG=1");
    } while (!cv_.wait_for(lock, every, [this] { return stop_; }));
  });
}

void ServiceNotifier::reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1'000'000ULL + static_cast<unsigned long long>(ts.tv_nsec) / 1000;
  sd_notify(0, ("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=" + std::to_string(usec)).c_str());
}

void ServiceNotifier::stopping() { sd_notify(0, "STOPPING=1\nSTATUS=draining"); }

void ServiceNotifier::stopWatchdog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

}  // namespace eventflow::app
