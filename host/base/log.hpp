#pragma once
// Structured logging for operators: one JSON object per line (or plain text),
// with timestamp, level, message and whatever fields are known.

#include <spdlog/spdlog.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace eventflow::log {

using Field = std::pair<std::string_view, std::string_view>;
using Fields = std::initializer_list<Field>;

enum class Format { json, text };

/// Sets up the process-wide logger (stderr). Safe to call again on reload.
void setup(std::string_view level, Format format);

void write(spdlog::level::level_enum level, std::string_view message, Fields fields = {});

inline void debug(std::string_view m, Fields f = {}) { write(spdlog::level::debug, m, f); }
inline void info(std::string_view m, Fields f = {}) { write(spdlog::level::info, m, f); }
inline void warn(std::string_view m, Fields f = {}) { write(spdlog::level::warn, m, f); }
inline void error(std::string_view m, Fields f = {}) { write(spdlog::level::err, m, f); }

inline bool enabled(spdlog::level::level_enum level) { return spdlog::default_logger_raw()->should_log(level); }

}  // namespace eventflow::log
