#include "json_schema.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::JsonSchemaValidator, "json-schema", "0.1.0",
                 "Validates the event body against a JSON Schema (draft 7) file.",
                 R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "schema": {
      "description": "Path of the JSON Schema file, relative to the pipeline file's folder.",
      "type": "string",
      "minLength": 1
    }
  },
  "required": ["schema"],
  "additionalProperties": false
})json")
