#include "time_window.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::TimeWindowValidator, "time-window", "0.1.0",
                 "Rejects events whose RFC 3339 timestamp is missing, too old or in the future.",
                 R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "field": {
      "description": "Dotted path of the timestamp field in the event body (default timestamp).",
      "type": "string",
      "pattern": "^[^.]+(\\.[^.]+)*$"
    },
    "max_age": {
      "description": "Reject timestamps older than the receipt time minus this (e.g. 7d); unbounded when absent.",
      "type": "string",
      "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)?$"
    },
    "max_future": {
      "description": "Reject timestamps later than now plus this (e.g. 0s); unbounded when absent.",
      "type": "string",
      "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)?$"
    }
  },
  "additionalProperties": false
})json")
