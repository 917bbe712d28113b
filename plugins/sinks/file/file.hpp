#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <eventflow/plugin.hpp>

namespace eventflow::plugins {

/// JSON Schema (draft 7) of the stage config; here so tests check configs
/// against the schema the host sees.
inline constexpr char kFileSinkConfigSchema[] = R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "path": {
      "description": "The file events are appended to, one JSON document per line; relative to the pipeline file's folder. Its folder is created when missing. A rotated file is renamed to <stem>-<UTC rotation time>[.N]<extension> beside it, e.g. events-20261206T001500Z.ndjson.",
      "type": "string",
      "minLength": 1
    },
    "max_bytes": {
      "description": "Rotate before a line would take the file past this size; a single longer line gets a file of its own. Without it, size does not rotate.",
      "type": "integer",
      "minimum": 1
    },
    "max_age": {
      "description": "Rotate at the first write after the file has been open this long (\"1h\", \"1d\"; at least 1s). Without it, age does not rotate.",
      "type": "string",
      "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)?$"
    },
    "keep": {
      "description": "How many rotated files to keep; older ones are deleted at each rotation. Without it, all are kept.",
      "type": "integer",
      "minimum": 0
    }
  },
  "required": ["path"],
  "additionalProperties": false
})json";

namespace file_sink {
class Writer;

/// A rotated file's name for `path` (".../events.ndjson") rotated at `when`,
/// with `counter` > 0 when that second already has one.
std::filesystem::path rotatedName(const std::filesystem::path& path, std::chrono::system_clock::time_point when,
                                  unsigned counter);
}  // namespace file_sink

/// Appends each event's body as one line of JSON (NDJSON) to a file, rotating
/// it by size and age. Every instance (worker thread) writing one path shares
/// one open file, so lines never interleave. `flush()` fsyncs, so an event
/// the host records as processed is on disk. Append-only: an event retried
/// after a crash or a failed flush can appear twice (at-least-once); its
/// event_id tells the copies apart.
class FileSink final : public Sink {
 public:
  FileSink(const nlohmann::json& config, Context& context);
  ~FileSink() override;
  std::vector<Result> write(std::span<Event* const> events) override;
  Result flush() override;

  /// The settings of one path, as parsed from the config.
  struct Settings {
    std::filesystem::path path;
    std::uint64_t max_bytes = 0;             // 0: no size limit
    std::chrono::milliseconds max_age{0};    // 0: no age limit
    std::optional<std::size_t> keep;         // nullopt: keep all rotated files
  };

 private:
  Context* context_ = nullptr;
  std::shared_ptr<file_sink::Writer> writer_;
};

}  // namespace eventflow::plugins
