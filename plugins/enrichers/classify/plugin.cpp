#include "classify.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::ClassifyEnricher, "classify", "0.1.0",
                 "Sets a field from the first matching rule on other fields, else from a default.",
                 R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "field": {
      "description": "Dotted path of the field to set.",
      "type": "string",
      "pattern": "^[^.]+(\\.[^.]+)*$"
    },
    "rules": {
      "description": "Tried in order; the first whose condition holds sets the field to its value.",
      "type": "array",
      "items": {
        "type": "object",
        "properties": {
          "when": {
            "type": "object",
            "properties": {
              "field": { "type": "string", "pattern": "^[^.]+(\\.[^.]+)*$" },
              "op": { "enum": ["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists", "matches"] },
              "value": {}
            },
            "required": ["field", "op"],
            "additionalProperties": false,
            "allOf": [
              { "if": { "properties": { "op": { "enum": ["eq", "ne"] } } },
                "then": { "required": ["value"] } },
              { "if": { "properties": { "op": { "enum": ["gt", "gte", "lt", "lte"] } } },
                "then": { "required": ["value"], "properties": { "value": { "type": "number" } } } },
              { "if": { "properties": { "op": { "const": "in" } } },
                "then": { "required": ["value"], "properties": { "value": { "type": "array" } } } },
              { "if": { "properties": { "op": { "const": "exists" } } },
                "then": { "properties": { "value": { "type": "boolean" } } } },
              { "if": { "properties": { "op": { "const": "matches" } } },
                "then": { "required": ["value"], "properties": { "value": { "type": "string" } } } }
            ]
          },
          "value": { "description": "What the field is set to when this rule matches." }
        },
        "required": ["when", "value"],
        "additionalProperties": false
      }
    },
    "default": { "description": "Set when no rule matches; when absent the field is left alone." }
  },
  "required": ["field", "rules"],
  "additionalProperties": false
})json")
