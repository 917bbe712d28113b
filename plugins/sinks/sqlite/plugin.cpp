#include "sqlite.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::SqliteSink, "sqlite", "0.1.0",
                 "Writes events to a processed_events table in the host's SQLite store (store.url).",
                 R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "table": {
      "description": "Table to write (default processed_events); created with the processed_events columns when missing.",
      "type": "string",
      "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"
    }
  },
  "additionalProperties": false
})json")
