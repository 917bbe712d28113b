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
  bool rewritten = false;  // the document was changed: a field filled in or normalised
};

struct EnvelopeOptions {
  /// A timestamp without an offset ("2026-12-04T23:55:14.898123", what the
  /// original EventFlow's producer sends) is taken as UTC; false refuses it
  /// (`ingest.naive_timestamps: reject`).
  bool naive_timestamps_utc = true;
};

/// Lower-cases a UUID `event_id` of `doc` in place: one UUID in upper and in
/// lower case is one event (G3), in the idempotency check and in every store.
/// True if it changed. checkEnvelope does it too; ingest calls it first, so
/// the body it hashes and keeps already has the canonical id.
bool canonicaliseEventId(nlohmann::json& doc);

/// Checks `doc` and fills `event_id` (new UUID) and `timestamp` (`now`) when
/// absent; a naive timestamp taken as UTC is rewritten as RFC 3339 with `Z`.
/// `correlation_id` comes from the document, else `header_correlation`.
std::optional<EnvelopeError> checkEnvelope(nlohmann::json& doc, SystemTime now, const std::string& header_correlation,
                                           Envelope& out, const EnvelopeOptions& options = {});

}  // namespace eventflow::pipeline
