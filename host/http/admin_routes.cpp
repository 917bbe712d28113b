// GET /pipelines and POST /admin/reload.

#include "base/log.hpp"
#include "http/api.hpp"
#include "pipeline/live_router.hpp"
#include "runtime/reload_outcome.hpp"

namespace eventflow::http {

Reply Api::pipelines() {
  const auto generation = s_.router->current();
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : generation->router.pipelines()) {
    nlohmann::json stages = nlohmann::json::array();
    for (const auto& st : p->stages())
      stages.push_back({{"kind", kindName(st.spec.kind)}, {"plugin", st.plugin->name}, {"version", st.plugin->version},
                        {"file", st.plugin->file}, {"config", st.spec.config}});
    nlohmann::json item{{"name", p->name()}, {"file", p->spec().file}, {"event_types", p->spec().event_types},
                        {"catch_all", p->spec().catch_all}, {"concurrency", p->spec().concurrency}, {"stages", stages}};
    if (auto it = generation->stamps.find(p->name()); it != generation->stamps.end()) {
      item["generation"] = it->second.generation;
      item["config_hash"] = it->second.config_hash;
      item["loaded_at"] = it->second.loaded_at;
    }
    out.push_back(std::move(item));
  }
  return json(200, {{"generation", generation->number}, {"pipelines", out}});
}

Reply Api::reload() {
  if (!s_.reload) return error(404, "not_found", "this process cannot reload");
  const runtime::ReloadOutcome outcome = s_.reload();
  using Status = runtime::ReloadOutcome::Status;
  switch (outcome.status) {
    case Status::reloaded:
    case Status::unchanged: return json(200, outcome.report);
    case Status::invalid: {
      // 422 as for an invalid envelope: the request was fine, the files it
      // asked to apply were not. Every problem is listed, not just the first.
      const auto& problems = outcome.report.value("problems", nlohmann::json::array());
      std::string message = "the new configuration was refused; nothing changed";
      if (!problems.empty()) message += ": " + problems.front().get<std::string>();
      nlohmann::json body = errorBody("invalid_config", message);
      body["error"]["problems"] = problems;
      return json(422, body);
    }
    case Status::busy: {
      Reply r = error(409, "reload_in_progress", "another reload is running; try again when it has answered");
      r.retry_after = "1";
      return r;
    }
    case Status::stopping: {
      Reply r = error(503, "shutting_down", "the host is shutting down; reload refused");
      r.retry_after = "5";
      return r;
    }
  }
  return error(500, "internal", "unknown reload outcome");
}

}  // namespace eventflow::http
