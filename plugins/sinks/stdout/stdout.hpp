#pragma once

#include <span>
#include <vector>

#include <eventflow/plugin.hpp>

namespace eventflow::plugins {

/// JSON Schema (draft 7) of the stage config: there is nothing to set.
inline constexpr char kStdoutSinkConfigSchema[] = R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {},
  "additionalProperties": false
})json";

/// Writes each event's body as one line of JSON (NDJSON) to the process's
/// standard output, for debugging and for containers whose runtime collects
/// stdout. The host logs to standard error, so the two streams stay apart.
/// All instances share one lock, so lines from several worker threads never
/// interleave; each write() goes out in one write(2) per batch.
class StdoutSink final : public Sink {
 public:
  StdoutSink(const nlohmann::json& config, Context& context);
  std::vector<Result> write(std::span<Event* const> events) override;

  /// The descriptor written to; tests point it at a pipe.
  void setDescriptor(int fd) { fd_ = fd; }

 private:
  int fd_ = 1;
};

}  // namespace eventflow::plugins
