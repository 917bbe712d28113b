#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <eventflow/plugin.hpp>

#include "common/field_path.hpp"
#include "table.hpp"

namespace eventflow::plugins {

/// JSON Schema (draft 7) of the stage config; here so tests check configs
/// against the schema the host sees.
inline constexpr char kLookupConfigSchema[] = R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "file": {
      "description": "CSV (first line names the columns) or JSON (an object of key: record, or an array of records) file; relative to the pipeline file's folder. Re-read within a second of a change; replace it by renaming a complete file into place.",
      "type": "string",
      "minLength": 1
    },
    "format": {
      "description": "csv or json; by default from the file name's extension.",
      "enum": ["csv", "json"]
    },
    "key": {
      "description": "Dotted path of the event value to look up (a string, or an integer compared as its decimal text).",
      "type": "string",
      "pattern": "^[^.]+(\\.[^.]+)*$"
    },
    "key_column": {
      "description": "Column (CSV) or record field (JSON array) holding the keys; by default the last part of key.",
      "type": "string",
      "minLength": 1
    },
    "fields": {
      "description": "Columns copied from the matching row into the event, under their own names. CSV values are strings; JSON values keep their type.",
      "type": "array",
      "minItems": 1,
      "uniqueItems": true,
      "items": { "type": "string", "minLength": 1 }
    },
    "into": {
      "description": "Dotted path of the object the fields are set in; by default the top level of the body.",
      "type": "string",
      "pattern": "^[^.]+(\\.[^.]+)*$"
    },
    "on_miss": {
      "description": "When the key is missing from the event or the table: skip (the event passes unchanged), reject (to the DLQ as lookup_miss) or default (set the values of `default`). Default skip.",
      "enum": ["skip", "reject", "default"]
    },
    "default": {
      "description": "Field: value set on a miss when on_miss is default.",
      "type": "object",
      "minProperties": 1
    }
  },
  "required": ["file", "key", "fields"],
  "if": { "properties": { "on_miss": { "const": "default" } }, "required": ["on_miss"] },
  "then": { "required": ["default"] },
  "additionalProperties": false
})json";

/// Adds fields from a reference file to each event, found by a key in the
/// event body. The file is loaded once per process (shared by every instance
/// that reads it the same way) and re-read when it changes; see
/// lookup::SharedTable.
class LookupEnricher final : public Enricher {
 public:
  LookupEnricher(const nlohmann::json& config, Context& context);
  Result enrich(Event& event) override;

 private:
  enum class OnMiss : std::uint8_t { skip, reject, fill };

  Result miss(Event& event, const std::string& why);
  nlohmann::json* target(Event& event);

  Context& context_;
  std::string file_name_;  // as configured, for reasons
  std::string key_name_;
  FieldPath key_;
  FieldPath into_;
  OnMiss on_miss_ = OnMiss::skip;
  nlohmann::json default_;
  std::shared_ptr<lookup::SharedTable> shared_;
  std::shared_ptr<const lookup::Table> table_;
  std::uint64_t generation_ = 0;
};

}  // namespace eventflow::plugins
