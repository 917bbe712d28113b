#pragma once
// A Context for constructing plugin classes directly in tests: paths resolve
// under a base folder, settings come from a map; log lines and counters are
// kept for tests to read.

#include <filesystem>
#include <functional>
#include <cstdio>
#include <map>
#include <span>
#include <stdexcept>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <eventflow/plugin.hpp>

namespace eventflow::test {

class FakeContext final : public Context {
 public:
  explicit FakeContext(std::filesystem::path base = {}, std::map<std::string, std::string, std::less<>> settings = {})
      : base_(std::move(base)), settings_(std::move(settings)) {}

  void log(LogLevel level, std::string_view message) override {
    const std::lock_guard lock(mutex_);
    logs_.emplace_back(level, std::string(message));
  }
  void count(std::string_view name, double value) override {
    const std::lock_guard lock(mutex_);
    counts_[std::string(name)] += value;
  }
  void observe(std::string_view, double) override {}
  std::string resolvePath(std::string_view path) const override {
    const std::filesystem::path p(path);
    return p.is_absolute() ? p.string() : (base_ / p).string();
  }
  std::string setting(std::string_view key) const override {
    const auto it = settings_.find(key);
    return it == settings_.end() ? std::string() : it->second;
  }

  std::vector<std::pair<LogLevel, std::string>> logs() const {
    const std::lock_guard lock(mutex_);
    return logs_;
  }
  double counted(const std::string& name) const {
    const std::lock_guard lock(mutex_);
    const auto it = counts_.find(name);
    return it == counts_.end() ? 0 : it->second;
  }

 private:
  std::filesystem::path base_;
  std::map<std::string, std::string, std::less<>> settings_;
  mutable std::mutex mutex_;
  std::vector<std::pair<LogLevel, std::string>> logs_;
  std::map<std::string, double> counts_;
};

/// An event as the host would hand it to a plugin.
inline Event makeEvent(nlohmann::json body, std::string id = "00000000-0000-4000-8000-000000000001") {
  Event event;
  event.id = std::move(id);
  const auto type = body.find("event_type");
  event.type = type != body.end() && type->is_string() ? type->get<std::string>() : "test";
  event.pipeline = "test";
  body["event_id"] = event.id;
  event.body = std::move(body);
  return event;
}

/// A version-4-shaped event id with `n` in its last group.
inline std::string eventId(int n) {
  char id[37];
  std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", n);
  return id;
}

/// `sink.write` over the events of `batch`, as the host passes them.
inline std::vector<Result> writeBatch(Sink& sink, std::vector<Event>& batch) {
  std::vector<Event*> pointers;
  for (auto& e : batch) pointers.push_back(&e);
  return sink.write(std::span<Event* const>(pointers.data(), pointers.size()));
}

/// What constructing `Plugin` from `config` throws (std::invalid_argument's
/// message), or "accepted".
template <class Plugin>
std::string refusal(const nlohmann::json& config, Context& context) {
  try {
    Plugin plugin(config, context);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace eventflow::test
