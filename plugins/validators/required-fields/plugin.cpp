#include "required_fields.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::RequiredFieldsValidator, "required-fields", "0.1.0",
                 "Rejects events missing any of the listed (dotted) body fields, or holding null there.",
                 R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "fields": {
      "description": "Dotted paths into the event body, e.g. user_id or properties.amount.",
      "type": "array",
      "minItems": 1,
      "items": { "type": "string", "pattern": "^[^.]+(\\.[^.]+)*$" }
    }
  },
  "required": ["fields"],
  "additionalProperties": false
})json")
