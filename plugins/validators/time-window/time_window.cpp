#include "time_window.hpp"

#include <stdexcept>

#include <eventflow/time.hpp>

namespace eventflow::plugins {
namespace {

std::optional<std::string> optionalString(const nlohmann::json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (!it->is_string()) throw std::invalid_argument(std::string("time-window: '") + key + "' must be a string");
  return it->get<std::string>();
}

}  // namespace

TimeWindowValidator::TimeWindowValidator(const nlohmann::json& config, Context&) {
  if (!config.is_object()) throw std::invalid_argument("time-window: config must be an object");
  field_name_ = optionalString(config, "field").value_or("timestamp");
  try {
    field_ = parseFieldPath(field_name_);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("time-window: ") + e.what());
  }
  const auto bound = [&](const char* key) -> std::optional<Bound> {
    const auto text = optionalString(config, key);
    if (!text) return std::nullopt;
    const auto duration = parseDuration(*text);
    if (!duration)
      throw std::invalid_argument(std::string("time-window: '") + key + "' is '" + *text +
                                  "', not a duration such as 250ms, 30s, 5m, 2h or 7d");
    return Bound{*text, *duration};
  };
  max_age_ = bound("max_age");
  max_future_ = bound("max_future");
}

Result TimeWindowValidator::check(const Event& event) {
  const nlohmann::json* value = findField(event.body, field_);
  if (value == nullptr || value->is_null()) return Result::reject(field_name_ + " is missing", error_type::kValidation);
  if (!value->is_string()) return Result::reject(field_name_ + " is not a string", error_type::kValidation);
  const auto& text = value->get_ref<const std::string&>();
  const auto when = parseRfc3339(text);
  if (!when) return Result::reject(field_name_ + " '" + text + "' is not an RFC 3339 timestamp", error_type::kValidation);
  // max_age counts from receipt, so a retry or a DLQ replay days later is not
  // refused for its age; max_future counts from now, which only grows, so it
  // never flags a timestamp the host defaulted to the receipt time.
  const auto now = std::chrono::system_clock::now();
  const SystemTime received = event.received_at != SystemTime{} ? event.received_at : now;
  if (max_age_ && *when < received - max_age_->duration)
    return Result::reject(field_name_ + " " + text + " is older than max_age " + max_age_->text + " at receipt",
                          error_type::kValidation);
  if (max_future_ && *when > now + max_future_->duration)
    return Result::reject(field_name_ + " " + text + " is later than now + max_future " + max_future_->text,
                          error_type::kValidation);
  return Result::ok();
}

}  // namespace eventflow::plugins
