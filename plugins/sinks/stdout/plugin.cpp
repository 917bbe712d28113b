#include "stdout.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::StdoutSink, "stdout", "0.1.0",
                 "Writes each event's body as one line of JSON to standard output (the host logs to standard error).",
                 ::eventflow::plugins::kStdoutSinkConfigSchema)
