#include "lookup.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::LookupEnricher, "lookup", "0.1.0",
                 "Adds fields from a CSV or JSON file, keyed by a value of the event; re-reads the file when it changes.",
                 ::eventflow::plugins::kLookupConfigSchema)
