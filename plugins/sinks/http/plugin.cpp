#include "http.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::HttpSink, "http", "0.1.0",
                 "POSTs (or PUTs) each event's body as JSON to a webhook url with Idempotency-Key: <event id>.",
                 ::eventflow::plugins::kHttpSinkConfigSchema)
