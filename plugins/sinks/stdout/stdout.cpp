#include "stdout.hpp"

#include <mutex>
#include <stdexcept>

#include "common/ndjson.hpp"

namespace eventflow::plugins {

StdoutSink::StdoutSink(const nlohmann::json& config, Context&) {
  if (!config.is_null() && !(config.is_object() && config.empty()))
    throw std::invalid_argument("stdout: takes no config, not " + config.dump());
}

std::vector<Result> StdoutSink::write(std::span<Event* const> events) {
  const ndjson::Lines lines = ndjson::render(events);
  std::vector<Result> results(events.size(), Result::ok());
  // One lock for the process: every instance writes the same descriptor.
  static std::mutex mutex;
  int error = 0;
  std::size_t written = 0;
  {
    const std::lock_guard lock(mutex);
    written = ndjson::writeAll(fd_, lines.text, error);
  }
  if (written < lines.text.size())
    // A closed or full-disk stdout (EPIPE, ENOSPC) may recover, as when a
    // log collector restarts; the lines that got out count as written.
    ndjson::settle(results, lines, 0, events.size(), 0, written,
                   Result::retry(std::string("stdout: cannot write: ") + std::strerror(error), "sink_unavailable"));
  return results;
}

}  // namespace eventflow::plugins
