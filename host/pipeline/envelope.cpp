#include "pipeline/envelope.hpp"

#include <algorithm>

#include "base/ids.hpp"

namespace eventflow::pipeline {
namespace {
EnvelopeError invalid(std::string field, std::string message) {
  return EnvelopeError{"invalid_envelope", std::move(message), std::move(field)};
}

// A date-time with no offset and at most 9 fraction digits: the RFC 3339
// shape without its zone, as Python's datetime.isoformat() writes a naive
// time.
std::optional<SystemTime> parseNaive(std::string_view text) {
  if (text.size() < 19 || text.size() > 29) return std::nullopt;
  if (text.size() > 19 && (text[19] != '.' || text.size() == 20)) return std::nullopt;
  std::string zoned(text);
  zoned += 'Z';
  return parseRfc3339(zoned);
}
}  // namespace

bool canonicaliseEventId(nlohmann::json& doc) {
  if (!doc.is_object()) return false;
  auto id = doc.find("event_id");
  if (id == doc.end() || !id->is_string()) return false;
  auto& text = id->get_ref<std::string&>();
  if (!isUuid(text) || std::none_of(text.begin(), text.end(), [](char c) { return c >= 'A' && c <= 'F'; })) return false;
  for (auto& c : text)
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  return true;
}

std::optional<EnvelopeError> checkEnvelope(nlohmann::json& doc, SystemTime now, const std::string& header_correlation,
                                           Envelope& out, const EnvelopeOptions& options) {
  if (!doc.is_object()) return invalid("", "an event must be a JSON object");
  auto type = doc.find("event_type");
  if (type == doc.end() || type->is_null()) return invalid("event_type", "event_type is required");
  if (!type->is_string()) return invalid("event_type", "event_type must be a string");
  const auto& type_text = type->get_ref<const std::string&>();
  if (type_text.empty() || type_text.size() > 128) return invalid("event_type", "event_type must be 1 to 128 characters");
  out.type = type_text;

  if (auto id = doc.find("event_id"); id != doc.end() && !id->is_null()) {
    if (!id->is_string() || !isUuid(id->get_ref<const std::string&>()))
      return invalid("event_id", "event_id must be a UUID string");
    canonicaliseEventId(doc);
    out.id = id->get<std::string>();
  } else {
    out.id = newUuid();
    doc["event_id"] = out.id;
    out.rewritten = true;
  }
  if (auto ts = doc.find("timestamp"); ts != doc.end() && !ts->is_null()) {
    if (!ts->is_string())
      return invalid("timestamp", "timestamp must be an RFC 3339 date-time string, e.g. 2026-01-31T12:00:00Z");
    const auto& text = ts->get_ref<const std::string&>();
    if (!parseRfc3339(text)) {
      const auto naive = parseNaive(text);
      if (!naive)
        return invalid("timestamp", "timestamp must be an RFC 3339 date-time string, e.g. 2026-01-31T12:00:00Z");
      if (!options.naive_timestamps_utc)
        return invalid("timestamp", "timestamp has no UTC offset (ingest.naive_timestamps is reject); add Z or "
                                    "+hh:mm, e.g. 2026-01-31T12:00:00Z");
      *ts = formatRfc3339(*naive);
      out.rewritten = true;
    }
  } else {
    doc["timestamp"] = formatRfc3339(now);
    out.rewritten = true;
  }
  if (auto user = doc.find("user_id"); user != doc.end() && !user->is_null() && !user->is_string() &&
                                       !user->is_number_integer() && !user->is_number_unsigned())
    return invalid("user_id", "user_id must be a string or an integer");
  if (auto props = doc.find("properties"); props != doc.end() && !props->is_null() && !props->is_object())
    return invalid("properties", "properties must be an object");
  if (auto corr = doc.find("correlation_id"); corr != doc.end() && !corr->is_null()) {
    if (!corr->is_string()) return invalid("correlation_id", "correlation_id must be a string");
    out.correlation_id = corr->get<std::string>();
  } else {
    out.correlation_id = header_correlation;
  }
  return std::nullopt;
}

}  // namespace eventflow::pipeline
