#include "rename_drop.hpp"

EVENTFLOW_PLUGIN(eventflow::plugins::RenameDropEnricher, "rename-drop", "0.1.0",
                 "Renames ({from: to}) and drops fields of the event body by dotted path; missing paths are skipped.",
                 ::eventflow::plugins::kRenameDropConfigSchema)
