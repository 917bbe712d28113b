#include "isolation/process_stage.hpp"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "base/log.hpp"
#include "isolation/seccomp.hpp"
#include "isolation/spawn.hpp"
#include "metrics/metrics.hpp"

namespace eventflow::isolation {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t npos = static_cast<std::size_t>(-1);
// Loading a plugin and making its instance may connect somewhere (lookup
// does): the first answer may take this much longer than one call.
constexpr auto kStartAllowance = std::chrono::seconds(10);
// How often a waiting host looks at the shared page for a stuck call.
constexpr auto kPollSlice = std::chrono::milliseconds(50);
// Restarts back off only when children die without progress (outside any
// plugin call, or while starting): a plugin that crashes in create() must not
// be restarted in a tight loop. A crash pinned on an event is progress (that
// event is dead) and restarts at once: 100 of them in a row took ~3 s.
constexpr auto kFirstBackoff = std::chrono::milliseconds(25);
constexpr auto kMaxBackoff = std::chrono::seconds(2);
constexpr auto kMemorySample = std::chrono::seconds(1);

// Child numbers per stage, for the resident-memory label: the lowest free
// one, so that the labels stay 0..concurrency-1 across reloads.
std::mutex slots_mutex;
std::map<std::string, std::set<unsigned>>& slots() {
  static std::map<std::string, std::set<unsigned>> s;
  return s;
}
unsigned takeSlot(const std::string& key) {
  std::lock_guard lock(slots_mutex);
  auto& used = slots()[key];
  unsigned n = 0;
  while (used.count(n)) ++n;
  used.insert(n);
  return n;
}
void releaseSlot(const std::string& key, unsigned n) {
  std::lock_guard lock(slots_mutex);
  slots()[key].erase(n);
}

std::string signalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

}  // namespace

ProcessStage::ProcessStage(StageSetup setup, Context& context, metrics::Metrics* metrics)
    : setup_(std::move(setup)), context_(context), metrics_(metrics) {
  child_label_ = std::to_string(takeSlot(setup_.pipeline + '\n' + setup_.stage));
  if (metrics_) resident_ = &metrics_->pluginResident(setup_.pipeline, setup_.stage, child_label_);
}

ProcessStage::~ProcessStage() {
  stopChild(std::chrono::milliseconds(500));
  if (resident_) resident_->Set(0);
  releaseSlot(setup_.pipeline + '\n' + setup_.stage, static_cast<unsigned>(std::stoul(child_label_)));
}

Expected<std::unique_ptr<ProcessStage>> ProcessStage::start(StageSetup setup, Context& context, metrics::Metrics* metrics) {
  std::unique_ptr<ProcessStage> stage(new ProcessStage(std::move(setup), context, metrics));
  if (auto ok = stage->spawn(); !ok) return ok.error();
  return stage;
}

Expected<void> ProcessStage::spawn() {
  const std::string what = "stage '" + setup_.stage + "' (isolation: process): ";
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return makeError(what + "socketpair: " + std::strerror(errno));
  shared_fd_ = ::memfd_create("eventflow-plugin", MFD_CLOEXEC);
  void* page = MAP_FAILED;
  if (shared_fd_ >= 0 && ::ftruncate(shared_fd_, sizeof(Shared)) == 0)
    page = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED, shared_fd_, 0);
  if (page == MAP_FAILED) {
    const std::string err = std::strerror(errno);
    ::close(pair[0]);
    ::close(pair[1]);
    if (shared_fd_ >= 0) ::close(shared_fd_);
    shared_fd_ = -1;
    return makeError(what + "shared page: " + err);
  }
  shared_ = new (page) Shared();
  std::string error;
  pid_ = spawnRunner(pair[1], shared_fd_, error);
  ::close(pair[1]);
  ::close(shared_fd_);  // the mapping stays; the child has its own fd
  shared_fd_ = -1;
  fd_ = pair[0];
  if (pid_ < 0) {
    stopChild({});
    return makeError(what + error);
  }
  nlohmann::json init{{"file", setup_.file},       {"kind", static_cast<unsigned>(setup_.kind)},
                      {"config", setup_.config},   {"stage", setup_.stage},
                      {"dir", setup_.dir},         {"settings", setup_.settings},
                      {"memory", setup_.limits.memory}, {"seccomp", setup_.limits.seccomp}};
  std::string out;
  appendFrame(out, Frame::init, init.dump());
  writeAll(fd_, out);  // a child that died already shows as EOF below
  FrameReader in;
  const auto deadline = Clock::now() + setup_.limits.call_timeout + kStartAllowance;
  for (;;) {
    while (auto frame = in.next()) {
      if (frame->first == Frame::ready) {
        sampleMemory(true);
        return {};
      }
      if (frame->first == Frame::error) {
        stopChild({});
        return makeError(what + frame->second);
      }
      forward(frame->first, frame->second);
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (in.broken() || left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
      stopChild({});
      return makeError(what + "the plugin process did not start within " +
                       std::to_string((setup_.limits.call_timeout + kStartAllowance).count()) + " ms");
    }
    if (in.fill(fd_) == FrameReader::Fill::eof) {
      const Call c = died(npos);
      return makeError(what + "the plugin process ended while starting: " + c.message +
                       (c.reason == "memory" ? " (is limits.memory too small to load it?)" : ""));
    }
  }
}

void ProcessStage::stopChild(std::chrono::milliseconds grace) {
  if (fd_ >= 0) {
    ::shutdown(fd_, SHUT_RDWR);  // the child reads EOF and exits
    ::close(fd_);
    fd_ = -1;
  }
  if (pid_ > 0) {
    int status = 0;
    const auto deadline = Clock::now() + grace;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
  }
  if (shared_) {
    ::munmap(shared_, sizeof(Shared));
    shared_ = nullptr;
  }
}

// The child is gone or must go: reaps it and says why, for the event at `at`.
ProcessStage::Call ProcessStage::died(std::size_t at) {
  Call c;
  c.how = Ended::crashed;
  c.at = at;
  int status = 0;
  if (pid_ > 0) {
    // SIGKILL to a child that is already exiting does not change its status.
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS && setup_.limits.seccomp) {
    c.reason = "seccomp";
    c.message = "the plugin process died of SIGSYS" + std::string(kSeccompViolation);
  } else if (WIFSIGNALED(status)) {
    c.reason = "signal";
    c.message = "the plugin process died of " + signalName(WTERMSIG(status));
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == kExitOutOfMemory) {
    c.reason = "memory";
    c.message = "the plugin process reached limits.memory (" + std::to_string(setup_.limits.memory >> 20) + " MiB)";
  } else {
    c.reason = "exit";
    c.message = "the plugin process exited with status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  stopChild({});
  return c;
}

void ProcessStage::forward(Frame type, const std::string& payload) {
  const auto j = nlohmann::json::parse(payload, nullptr, false);
  if (!j.is_array() || j.size() != 2) return;
  if (type == Frame::log && j[0].is_number_unsigned() && j[0].get<unsigned>() <= 3 && j[1].is_string())
    context_.log(static_cast<LogLevel>(j[0].get<unsigned>()), j[1].get<std::string>());
  else if ((type == Frame::count || type == Frame::observe) && j[0].is_string() && j[1].is_number())
    type == Frame::count ? context_.count(j[0].get<std::string>(), j[1].get<double>())
                         : context_.observe(j[0].get<std::string>(), j[1].get<double>());
}

ProcessStage::Call ProcessStage::call(std::span<Event* const> events, std::vector<Result>& results) {
  const auto pinned = [&] {
    const std::uint32_t n = shared_->calling.load(std::memory_order_acquire);
    return n == 0 ? npos : static_cast<std::size_t>(n - 1);
  };
  shared_->calling.store(0, std::memory_order_release);
  std::string out;
  appendFrame(out, Frame::batch, encodeEvents(events));
  if (!writeAll(fd_, out)) return died(pinned());
  FrameReader in;
  std::uint32_t seen = 0;
  auto since = Clock::now();
  const auto slice = std::min<std::chrono::milliseconds>(kPollSlice, setup_.limits.call_timeout);
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(slice.count()));
    if (ready > 0) {
      if (in.fill(fd_) == FrameReader::Fill::eof) return died(pinned());
      while (auto frame = in.next()) {
        if (frame->first != Frame::answer) {
          forward(frame->first, frame->second);
          continue;
        }
        if (!decodeResults(frame->second, events, results)) {
          Call c = died(npos);
          c.reason = "protocol";
          c.message = "the plugin process answered something other than one result per event";
          return c;
        }
        return Call{};
      }
      if (in.broken()) {
        Call c = died(npos);
        c.reason = "protocol";
        c.message = "the plugin process sent a malformed frame";
        return c;
      }
    }
    const std::uint32_t now_calling = shared_->calling.load(std::memory_order_acquire);
    if (now_calling != seen) {
      seen = now_calling;
      since = Clock::now();
    } else if (Clock::now() - since > setup_.limits.call_timeout) {
      ::kill(pid_, SIGKILL);
      Call c = died(pinned());
      c.how = Ended::hung;
      c.reason = "timeout";
      c.message = "the plugin call took longer than limits.call_timeout (" +
                  std::to_string(setup_.limits.call_timeout.count()) + " ms); its process was killed";
      return c;
    }
  }
}

void ProcessStage::backOff() {
  if (failures_in_a_row_ < 2) return;
  const auto wait = std::min<std::chrono::milliseconds>(kFirstBackoff * (1u << std::min(failures_in_a_row_ - 2, 10u)), kMaxBackoff);
  std::this_thread::sleep_for(wait);
}

std::vector<Result> ProcessStage::run(std::span<Event* const> events) {
  std::vector<Result> out(events.size(), Result::ok());
  std::vector<std::size_t> pending(events.size());
  for (std::size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  std::vector<Event*> batch;
  std::vector<Result> results;
  unsigned unpinned = 0;  // deaths that named no event: after two the batch is retried later
  while (!pending.empty()) {
    if (pid_ < 0) {
      backOff();
      if (auto ok = spawn(); !ok) {
        ++failures_in_a_row_;
        log::error("could not restart an isolated plugin", {{"pipeline", setup_.pipeline}, {"stage", setup_.stage},
                                                            {"error", ok.error().message}});
        for (auto i : pending) out[i] = Result::retry(ok.error().message, kPluginUnavailable);
        return out;
      }
    }
    batch.clear();
    for (auto i : pending) batch.push_back(events[i]);
    const Call c = call(batch, results);
    if (c.how == Ended::answered) {
      failures_in_a_row_ = 0;
      for (std::size_t k = 0; k < pending.size(); ++k) out[pending[k]] = std::move(results[k]);
      sampleMemory(false);
      return out;
    }
    if (metrics_) metrics_->pluginRestarts(setup_.pipeline, setup_.stage, setup_.plugin, c.reason).Increment();
    if (resident_) resident_->Set(0);
    const std::string where = " (plugin " + setup_.plugin + ", stage " + setup_.stage + ")";
    if (c.at == npos || c.at >= pending.size()) {
      log::warn("isolated plugin process died outside a plugin call; its batch runs again",
                {{"pipeline", setup_.pipeline}, {"stage", setup_.stage}, {"error", c.message}});
      ++failures_in_a_row_;
      if (++unpinned >= 2) {
        for (auto i : pending) out[i] = Result::retry(c.message + where, kPluginUnavailable);
        return out;
      }
      continue;
    }
    const std::size_t blamed = pending[c.at];
    log::warn(c.how == Ended::hung ? "isolated plugin call timed out" : "isolated plugin crashed",
              {{"pipeline", setup_.pipeline}, {"stage", setup_.stage}, {"plugin", setup_.plugin},
               {"event_id", events[blamed]->id}, {"error", c.message}});
    out[blamed] = c.how == Ended::hung ? Result::retry(c.message + where, kPluginTimeout)
                                       : Result::reject(c.message + " while running this event" + where, kPluginCrashed);
    // The events before it ran in the dead child, whose answer never came;
    // they and the ones after run again in the next child.
    pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(c.at));
  }
  // The next batch should find a child ready, whatever this one ended with;
  // if it cannot start now, the next run tries again.
  if (pid_ < 0 && !spawn()) ++failures_in_a_row_;
  return out;
}

void ProcessStage::sampleMemory(bool force) {
  if (!resident_ || pid_ <= 0) return;
  const auto now = Clock::now();
  if (!force && now - last_sample_ < kMemorySample) return;
  last_sample_ = now;
  std::ifstream statm("/proc/" + std::to_string(pid_) + "/statm");
  std::size_t pages = 0, resident = 0;
  if (statm >> pages >> resident) resident_->Set(static_cast<double>(resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))));
}

}  // namespace eventflow::isolation
