#pragma once
// What a reload (POST /admin/reload, SIGHUP, `eventflow reload`) came to, as
// a typed outcome: app/reload.cpp decides it, the HTTP layer maps it to a
// status code.

#include <nlohmann/json.hpp>

namespace eventflow::runtime {

struct ReloadOutcome {
  enum class Status {
    reloaded,   // something changed and is in force now
    unchanged,  // every file read as before: nothing swapped
    invalid,    // a file did not parse, validate or instantiate: nothing changed
    busy,       // another reload is running
    stopping,   // the host is shutting down
  };
  Status status = Status::unchanged;
  /// reloaded/unchanged: the report (generation, pipelines, plugins,
  /// needs_restart). invalid: {"problems": ["file:line:col: ...", ...]}.
  nlohmann::json report = nlohmann::json::object();
};

}  // namespace eventflow::runtime
