#pragma once

#include <string>
#include <vector>

#include <eventflow/plugin.hpp>

#include "common/field_path.hpp"

namespace eventflow::plugins {

/// JSON Schema (draft 7) of the stage config; here so tests check configs
/// against the schema the host sees.
inline constexpr char kRenameDropConfigSchema[] = R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "rename": {
      "description": "Dotted source path to dotted target path, e.g. {\"userId\": \"user_id\", \"properties.mail\": \"properties.email\"}. A missing source is skipped; an existing target is replaced.",
      "type": "object",
      "minProperties": 1,
      "propertyNames": { "pattern": "^[^.]+(\\.[^.]+)*$" },
      "additionalProperties": { "type": "string", "pattern": "^[^.]+(\\.[^.]+)*$" }
    },
    "drop": {
      "description": "Dotted paths removed from the body after the renames; a missing path is skipped.",
      "type": "array",
      "minItems": 1,
      "uniqueItems": true,
      "items": { "type": "string", "pattern": "^[^.]+(\\.[^.]+)*$" }
    }
  },
  "anyOf": [ { "required": ["rename"] }, { "required": ["drop"] } ],
  "additionalProperties": false
})json";

/// Renames and drops fields of the event body by dotted path: the renames
/// first, then the drops. A path that is not there is skipped, so events of
/// several shapes can share one stage.
class RenameDropEnricher final : public Enricher {
 public:
  RenameDropEnricher(const nlohmann::json& config, Context& context);
  Result enrich(Event& event) override;

 private:
  struct Rename {
    std::string from_name;
    std::string to_name;
    FieldPath from;
    FieldPath to;
  };
  std::vector<Rename> renames_;
  std::vector<FieldPath> drops_;
};

}  // namespace eventflow::plugins
