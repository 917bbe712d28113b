#include "file.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::FileSink, "file", "0.1.0",
                 "Appends each event's body as one line of JSON to a file, rotated by size and age; flush() fsyncs.",
                 ::eventflow::plugins::kFileSinkConfigSchema)
