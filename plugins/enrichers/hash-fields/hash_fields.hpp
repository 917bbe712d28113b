#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <eventflow/plugin.hpp>

#include "common/field_path.hpp"

namespace eventflow::plugins {

/// JSON Schema (draft 7) of the stage config; here so tests check configs
/// against the schema the host sees.
inline constexpr char kHashFieldsConfigSchema[] = R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "fields": {
      "description": "Dotted paths whose values are replaced by their HMAC-SHA256, e.g. [user_id, properties.email]. A missing or null value is left alone.",
      "type": "array",
      "minItems": 1,
      "uniqueItems": true,
      "items": { "type": "string", "pattern": "^[^.]+(\\.[^.]+)*$" }
    },
    "key_file": {
      "description": "File holding the HMAC key (16 to 4096 bytes; one trailing newline is not part of it). Refused unless it is a regular file owned by the user the host runs as with no permission for group or others (chmod 600 or 400). Relative to the pipeline file's folder.",
      "type": "string",
      "minLength": 1
    },
    "encoding": {
      "description": "How the 32-byte digest is written: hex (64 lower-case characters) or base64 (44 characters, RFC 4648 with padding). Default hex.",
      "enum": ["hex", "base64"]
    },
    "keep_prefix": {
      "description": "Keep this many leading characters (code points) of a string value in front of its digest, e.g. 3 turns \"alice@example.com\" into \"ali\" + digest. A string no longer than this is replaced by the digest alone. Default 0.",
      "type": "integer",
      "minimum": 0,
      "maximum": 64
    }
  },
  "required": ["fields", "key_file"],
  "additionalProperties": false
})json";

/// Pseudonymises fields of the event body: each value becomes the
/// HMAC-SHA256 of its text under a secret key, so equal inputs map to equal
/// outputs (joins and counts still work) while the input cannot be recovered
/// or guessed without the key. A string is hashed over its UTF-8 bytes, any
/// other value over its compact JSON text (so 42 and "42" give one digest).
class HashFieldsEnricher final : public Enricher {
 public:
  HashFieldsEnricher(const nlohmann::json& config, Context& context);
  Result enrich(Event& event) override;

  /// The encoded HMAC-SHA256 of `text` under this instance's key.
  std::string digest(std::string_view text) const;

 private:
  std::vector<FieldPath> fields_;
  std::string key_;
  bool base64_ = false;
  std::size_t keep_prefix_ = 0;
};

/// Reads an HMAC key from `path` as hash-fields does, refusing a file that is
/// not regular, not owned by the effective user, open to group or others, or
/// of a size outside 16..4096 bytes. Throws std::invalid_argument naming the
/// file and the check that failed.
std::string readKeyFile(const std::string& path);

}  // namespace eventflow::plugins
