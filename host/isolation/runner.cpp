#include "isolation/runner.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <new>
#include <string>

#include "isolation/channel.hpp"
#include "isolation/seccomp.hpp"
#include "plugin/loader.hpp"
#include "plugin/local_context.hpp"

namespace eventflow::isolation {
namespace {

// Context in the child: log, count and observe go to the host as frames,
// sent with the batch's answer; paths and settings are answered here.
class ChildContext final : public plugin::LocalContext {
 public:
  ChildContext(std::string& out, std::string dir, std::map<std::string, std::string> settings)
      : LocalContext(std::move(dir), std::move(settings)), out_(out) {}
  void log(LogLevel level, std::string_view message) override {
    appendFrame(out_, Frame::log, nlohmann::json{static_cast<int>(level), std::string(message)}.dump(
                                      -1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  void count(std::string_view name, double value) override {
    appendFrame(out_, Frame::count, nlohmann::json{std::string(name), value}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  void observe(std::string_view name, double value) override {
    appendFrame(out_, Frame::observe, nlohmann::json{std::string(name), value}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

 private:
  std::string& out_;
};

[[noreturn]] void outOfMemory() { ::_exit(kExitOutOfMemory); }

// The host's gate: an exception is a retry with plugin_exception, as inline;
// a failed allocation is the memory limit and ends the child, which the host
// reports as a crash of this event.
template <class F>
Result guarded(F&& call) {
  try {
    return call();
  } catch (const std::bad_alloc&) {
    outOfMemory();
  } catch (const std::exception& e) {
    return Result::retry(std::string("plugin threw: ") + e.what(), error_type::kPluginException);
  } catch (...) {
    return Result::retry("plugin threw a non-standard exception", error_type::kPluginException);
  }
}

int fail(std::string& out, const std::string& message) {
  appendFrame(out, Frame::error, message);
  writeAll(kChannelFd, out);
  return 1;
}

int serve(Shared* shared) {
  FrameReader in;
  std::string out;
  auto nextFrame = [&]() -> std::optional<std::pair<Frame, std::string>> {
    for (;;) {
      if (auto f = in.next()) return f;
      if (in.broken() || in.fill(kChannelFd) == FrameReader::Fill::eof) return std::nullopt;
    }
  };
  auto init = nextFrame();
  if (!init || init->first != Frame::init) return 1;
  const auto spec = nlohmann::json::parse(init->second, nullptr, false);
  if (!spec.is_object()) return fail(out, "the host sent an unreadable init frame");

  // The limit comes before the plugin's code runs, so its static
  // constructors and create() are held to it as well.
  const rlim_t memory = spec.value("memory", std::uint64_t{0});
  if (memory > 0) {
    const rlimit limit{memory, memory};
    if (::setrlimit(RLIMIT_AS, &limit) != 0) return fail(out, std::string("setrlimit(RLIMIT_AS): ") + std::strerror(errno));
  }
  auto plugin = plugin::loadPlugin(spec.value("file", ""));
  if (!plugin) return fail(out, plugin.error().message);
  const auto kind = static_cast<Kind>(spec.value("kind", 0u));
  if ((*plugin)->kind != kind || (kind != Kind::validator && kind != Kind::enricher))
    return fail(out, (*plugin)->file + ": not a validator or enricher as the stage says");
  const nlohmann::json config = spec.value("config", nlohmann::json::object());
  if (auto ok = plugin::checkConfig(**plugin, config, spec.value("stage", "")); !ok) return fail(out, ok.error().message);
  ChildContext context(out, spec.value("dir", ""), spec.value("settings", std::map<std::string, std::string>{}));
  std::unique_ptr<plugin::Instance<Validator>> validator;
  std::unique_ptr<plugin::Instance<Enricher>> enricher;
  try {
    if (kind == Kind::validator) {
      auto made = plugin::createInstance<Validator>(*plugin, config, context);
      if (!made) return fail(out, made.error().message);
      validator = std::move(*made);
    } else {
      auto made = plugin::createInstance<Enricher>(*plugin, config, context);
      if (!made) return fail(out, made.error().message);
      enricher = std::move(*made);
    }
  } catch (const std::bad_alloc&) {
    outOfMemory();
  }
  // After the plugin is loaded and made (dlopen, its files, create() may
  // open what they need) and before its first call.
  if (spec.value("seccomp", false))
    if (auto e = installStrictFilter(kChannelFd); !e.empty()) return fail(out, "seccomp: strict could not be installed: " + e);
  appendFrame(out, Frame::ready, {});
  if (!writeAll(kChannelFd, out)) return 0;
  out.clear();

  std::vector<Event> events;
  std::vector<Result> results;
  std::string error;
  try {
    while (auto frame = nextFrame()) {
      if (frame->first != Frame::batch) return 1;
      if (!decodeEvents(frame->second, events, error)) return 1;
      results.clear();
      results.reserve(events.size());
      for (std::size_t i = 0; i < events.size(); ++i) {
        shared->calling.store(static_cast<std::uint32_t>(i + 1), std::memory_order_release);
        Event& e = events[i];
        results.push_back(validator ? guarded([&] { return validator->get().check(e); })
                                    : guarded([&] { return enricher->get().enrich(e); }));
      }
      appendFrame(out, Frame::answer, encodeResults(results, events, enricher != nullptr));
      if (!writeAll(kChannelFd, out)) return 0;
      out.clear();
    }
  } catch (const std::bad_alloc&) {
    outOfMemory();
  }
  return 0;  // the host closed the channel: it is stopping
}

}  // namespace

int runnerMain(int argc, char** argv) {
  pid_t parent = 0;
  for (int i = 2; i + 1 < argc; ++i)
    if (std::string_view(argv[i]) == "--parent") parent = static_cast<pid_t>(std::atoll(argv[i + 1]));
  // Dies with the host. PDEATHSIG is set after the fork, so a host that died
  // before this line would be missed: the parent is checked after it.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || parent <= 0 || ::getppid() != parent) return 1;
  // Nothing of the host's but the channel, the shared page and stderr (where
  // a plugin's stray output and a crash report land in the host's log).
  ::close_range(kSharedFd + 1, ~0u, 0);
  if (const int null = ::open("/dev/null", O_RDWR); null >= 0) {
    ::dup2(null, 0);
    ::dup2(null, 1);
    if (null > 2) ::close(null);
  }
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGTERM, SIG_DFL);
  void* page = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED, kSharedFd, 0);
  if (page == MAP_FAILED) return 1;
  try {
    return serve(static_cast<Shared*>(page));
  } catch (const std::bad_alloc&) {
    outOfMemory();
  } catch (...) {
    return 1;
  }
}

}  // namespace eventflow::isolation
