#pragma once
// The processed_events row of one event (DESIGN.md §6), shared by the sinks
// that write that table so an event lands the same way in SQLite and in
// PostgreSQL. Only the values are computed here; types, NULLs and SQL are the
// sink's business.

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <eventflow/plugin.hpp>

namespace eventflow::plugins {

/// Body fields with columns of their own; every other top-level field goes to
/// enriched_data.
inline constexpr std::array<std::string_view, 6> kProcessedEnvelopeFields{
    "event_id", "event_type", "user_id", "timestamp", "correlation_id", "properties"};

/// The columns of one processed_events row except processed_at, which is the
/// writer's clock and so the sink's to fill.
struct ProcessedRow {
  std::string event_id;
  std::string event_type;
  std::optional<std::string> user_id;     ///< a string as it is, another non-null value as JSON text
  std::optional<std::string> timestamp;   ///< same rule as user_id; neither checked nor normalised
  std::optional<std::string> properties;  ///< JSON text; absent when the field is missing or null
  std::string enriched_data;              ///< JSON text of an object, "{}" when nothing is left
  std::string pipeline;
  std::uint32_t attempts = 0;
};

/// JSON text of `value`. Invalid UTF-8 in a string becomes U+FFFD so that one
/// bad byte costs a character, not the row.
inline std::string dumpProcessedJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace detail {

// Absent or null as nothing, anything else as JSON text.
inline std::optional<std::string> jsonField(const nlohmann::json& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  return dumpProcessedJson(*it);
}

// Like jsonField, but a string as it is rather than quoted.
inline std::optional<std::string> textField(const nlohmann::json& body, const char* key) {
  const auto it = body.find(key);
  if (it != body.end() && it->is_string()) return it->get<std::string>();
  return jsonField(body, key);
}

}  // namespace detail

/// The row for `event`; a body that is not an object counts as empty.
inline ProcessedRow makeProcessedRow(const Event& event) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  const nlohmann::json& body = event.body.is_object() ? event.body : kEmpty;
  ProcessedRow row;
  row.event_id = event.id;
  row.event_type = event.type;
  row.user_id = detail::textField(body, "user_id");
  row.timestamp = detail::textField(body, "timestamp");
  row.properties = detail::jsonField(body, "properties");
  nlohmann::json enriched = nlohmann::json::object();
  for (const auto& [key, value] : body.items())
    if (std::find(kProcessedEnvelopeFields.begin(), kProcessedEnvelopeFields.end(), key) ==
        kProcessedEnvelopeFields.end())
      enriched[key] = value;
  row.enriched_data = dumpProcessedJson(enriched);
  row.pipeline = event.pipeline;
  row.attempts = event.attempt;
  return row;
}

}  // namespace eventflow::plugins
