#include "lua_script.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::LuaEnricher, "lua", "0.1.0",
                 "Runs a sandboxed Lua 5.4 script's process(event) on each event, with instruction and memory budgets.",
                 R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "script": {
      "description": "The Lua source, defining function process(event); give this or file.",
      "type": "string",
      "minLength": 1
    },
    "file": {
      "description": "A file holding the Lua source, relative to the pipeline file's folder; give this or script.",
      "type": "string",
      "minLength": 1
    },
    "params": {
      "description": "Values the script reads as the read-only table params.",
      "type": "object"
    },
    "max_instructions": {
      "description": "Lua VM instructions one call of process may run (default 1000000).",
      "type": "integer",
      "minimum": 1000,
      "maximum": 2147483647
    },
    "max_memory": {
      "description": "Bytes the script's state may hold: a number, or with KiB, MiB or GiB (default 32MiB, at least 1MiB).",
      "type": ["integer", "string"],
      "minimum": 1048576,
      "pattern": "^[0-9]{1,12}(KiB|MiB|GiB)?$"
    }
  },
  "additionalProperties": false
})json")
