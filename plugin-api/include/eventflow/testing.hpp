#pragma once
/// Test helpers for plugin authors: construct a plugin class directly in a
/// unit test, with no host and no .so. `eventflow plugin new` writes a test
/// that uses them.
///
/// Not part of the plugin ABI (not in the SDK header hash): a plugin's own
/// tests compile this, the plugin loaded by a host never does.

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <eventflow/plugin.hpp>

namespace eventflow::testing {

/// Stands in for the host's Context. It keeps what the plugin logs, counts and
/// observes, so a test can assert on them; resolves relative paths under a
/// base folder, as the host does under the pipeline file's folder; and answers
/// `setting` from a map (e.g. {{"validate_only", "1"}}). Like the host's, it is
/// meant for one instance at a time: it does no locking.
class FakeContext final : public Context {
 public:
  struct LogLine {
    LogLevel level;
    std::string message;
  };

  explicit FakeContext(std::filesystem::path base = {}, std::map<std::string, std::string, std::less<>> settings = {})
      : base_(std::move(base)), settings_(std::move(settings)) {}

  void log(LogLevel level, std::string_view message) override { logs.push_back({level, std::string(message)}); }
  void count(std::string_view name, double value = 1.0) override { counts[std::string(name)] += value; }
  void observe(std::string_view name, double value) override { observations[std::string(name)].push_back(value); }
  std::string resolvePath(std::string_view path) const override {
    const std::filesystem::path p(path);
    return p.is_absolute() || base_.empty() ? p.string() : (base_ / p).string();
  }
  std::string setting(std::string_view key) const override {
    const auto it = settings_.find(key);
    return it == settings_.end() ? std::string() : it->second;
  }

  /// Sets what `setting(key)` answers.
  void set(std::string key, std::string value) { settings_[std::move(key)] = std::move(value); }

  /// Whether a logged line contains `text`.
  bool logged(std::string_view text) const {
    for (const auto& line : logs)
      if (line.message.find(text) != std::string::npos) return true;
    return false;
  }

  std::vector<LogLine> logs;                                           ///< every log() call, in order
  std::map<std::string, double, std::less<>> counts;                   ///< count() totals by name
  std::map<std::string, std::vector<double>, std::less<>> observations;  ///< observe() values by name

 private:
  std::filesystem::path base_;
  std::map<std::string, std::string, std::less<>> settings_;
};

/// An event as the host hands it to a plugin: `id` set (and copied into the
/// body as event_id), `type` from the body's event_type ("test" without one),
/// pipeline "test", attempt 1.
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

}  // namespace eventflow::testing
