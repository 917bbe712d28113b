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

/// Lower-cases a UUID `event_id` of `doc` in place: one UUID in upper and in
/// lower case is one event (G3), in the idempotency check and in every store.
/// True if it changed. checkEnvelope does it too; ingest calls it first, so
/// the body it hashes and keeps already has the canonical id.
bool canonicaliseEventId(nlohmann::json& doc);

/// Checks `doc` and fills `event_id` (new UUID) and `timestamp` (`now`) when
/// absent. `correlation_id` comes from the document, else `header_correlation`.
std::optional<EnvelopeError> checkEnvelope(nlohmann::json& doc, SystemTime now, const std::string& header_correlation,
                                           Envelope& out);

}  // namespace eventflow::pipeline
