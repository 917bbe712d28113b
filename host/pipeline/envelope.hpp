#pragma once
// The event envelope (DESIGN §3): reserved fields checked, defaults filled.

#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <eventflow/time.hpp>

namespace eventflow::pipeline {

struct EnvelopeError {
  std::string code;  // "invalid_envelope"
  std::string message;
  std::string field;
};

struct Envelope {
  std::string id;
  std::string type;
  std::string correlation_id;
};

/// Checks `doc` and fills `event_id` (new UUID) and `timestamp` (`now`) when
/// absent. `correlation_id` comes from the document, else `header_correlation`.
std::optional<EnvelopeError> checkEnvelope(nlohmann::json& doc, SystemTime now, const std::string& header_correlation,
                                           Envelope& out);

}  // namespace eventflow::pipeline
