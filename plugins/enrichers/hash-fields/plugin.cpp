#include "hash_fields.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::HashFieldsEnricher, "hash-fields", "0.1.0",
                 "Replaces values at dotted paths with their HMAC-SHA256 (hex or base64) under a key from key_file.",
                 ::eventflow::plugins::kHashFieldsConfigSchema)
