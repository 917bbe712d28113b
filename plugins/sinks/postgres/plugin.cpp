#include "postgres.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::PostgresSink, sink, "postgres", "0.1.0",
                 "Writes events to a processed_events table in PostgreSQL (url, else the host's store.url).",
                 R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "table": {
      "description": "Table to write; created with the processed_events columns when missing.",
      "type": "string",
      "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
      "default": "processed_events"
    },
    "batch_size": {
      "description": "Rows per INSERT statement; a larger write() runs several statements in one transaction. A write() of 32 rows or more with distinct ids goes whole as one COPY first.",
      "type": "integer",
      "minimum": 1,
      "default": 500
    },
    "url": {
      "description": "libpq connection URL (postgresql://user:password@host:port/db). Defaults to the host's store.url, which must then be a PostgreSQL url.",
      "type": "string",
      "minLength": 1
    }
  },
  "additionalProperties": false
})json")
