#include "base/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <nlohmann/json.hpp>

#include <atomic>

namespace eventflow::log {
namespace {

std::atomic<Format> g_format{Format::json};

// The message arrives already rendered as the JSON members after level; this
// flag only adds the timestamp in RFC 3339 UTC with milliseconds.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[64];
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    const auto level = spdlog::level::to_string_view(msg.level);
    fmt::format_to(std::back_inserter(dest), R"({{"timestamp":"{}","level":"{}",{}}})",
                   stamp, std::string_view(level.data(), level.size()),
                   std::string_view(msg.payload.data(), msg.payload.size()));
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

void setup(std::string_view level, Format format) {
  auto logger = spdlog::stderr_logger_mt("eventflow");
  spdlog::drop("eventflow");
  g_format = format;
  if (format == Format::json) {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  }
  logger->set_level(spdlog::level::from_str(std::string(level)));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

void write(spdlog::level::level_enum level, std::string_view message, Fields fields) {
  auto* logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  std::string line;
  if (g_format.load(std::memory_order_relaxed) == Format::json) {
    line = "\"message\":" + nlohmann::json(message).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    for (const auto& [key, value] : fields) {
      line += ",\"";
      line += key;
      line += "\":";
      line += nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  } else {
    line = message;
    for (const auto& [key, value] : fields) {
      line += ' ';
      line += key;
      line += '=';
      line += value;
    }
  }
  logger->log(level, line);
}

}  // namespace eventflow::log
