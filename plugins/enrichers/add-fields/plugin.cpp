#include "add_fields.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::AddFieldsEnricher, "add-fields", "0.1.0",
                 "Sets fields in the event body; strings expand ${now}, ${host}, ${env:NAME} and ${env:NAME:-default}.",
                 R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "fields": {
      "description": "Dotted path to value (any JSON). Strings expand ${now} per event, ${host} and ${env:NAME} (an error when NAME is unset) or ${env:NAME:-default} at start.",
      "type": "object",
      "minProperties": 1,
      "propertyNames": { "pattern": "^[^.]+(\\.[^.]+)*$" }
    }
  },
  "required": ["fields"],
  "additionalProperties": false
})json")
