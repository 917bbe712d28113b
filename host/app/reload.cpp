#include "app/reload.hpp"

#include <chrono>
#include <set>

#include <eventflow/time.hpp>

#include "base/log.hpp"
#include "config/config.hpp"
#include "metrics/metrics.hpp"
#include "queue/queue.hpp"
#include "runtime/workers.hpp"

namespace eventflow::app {
namespace {

using Status = runtime::ReloadOutcome::Status;

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t from = 0;
  while (from <= text.size()) {
    const auto nl = text.find('\n', from);
    std::string line = text.substr(from, nl == std::string::npos ? std::string::npos : nl - from);
    if (!line.empty()) out.push_back(std::move(line));
    if (nl == std::string::npos) break;
    from = nl + 1;
  }
  return out;
}

std::string now() { return formatRfc3339(std::chrono::system_clock::now()); }

// How a changed pipeline's stages differ, by position.
nlohmann::json stageChanges(const pipeline::Pipeline& before, const pipeline::Pipeline& after) {
  nlohmann::json out = nlohmann::json::array();
  const auto& a = before.stages();
  const auto& b = after.stages();
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    std::string change;
    if (i >= a.size()) change = "added";
    else if (i >= b.size()) change = "removed";
    else if (a[i].spec.kind != b[i].spec.kind || a[i].plugin->name != b[i].plugin->name) change = "replaced";
    else if (a[i].plugin->identity != b[i].plugin->identity || a[i].plugin->file != b[i].plugin->file) change = "plugin";
    else if (a[i].spec.config != b[i].spec.config) change = "config";
    if (change.empty()) continue;
    const auto& st = i < b.size() ? b[i] : a[i];
    nlohmann::json item{{"index", i + 1}, {"stage", st.label}, {"change", change}};
    if (change == "plugin") {
      item["from_version"] = a[i].plugin->version;
      item["to_version"] = b[i].plugin->version;
    }
    out.push_back(std::move(item));
  }
  return out;
}

// Creates and at once destroys one instance of every stage, as `validate`
// does (sinks open nothing): for a process that runs no stages itself.
std::string instantiateOnly(const std::vector<pipeline::PipelinePtr>& pipelines, pipeline::Settings settings) {
  settings["validate_only"] = "1";
  std::string errors;
  for (const auto& p : pipelines)
    if (auto runner = pipeline::Runner::create(p, settings, nullptr); !runner)
      errors += (errors.empty() ? "" : "\n") + runner.error().message;
  return errors;
}

}  // namespace

Reloader::Reloader(ReloadContext context, const Loaded& started) : c_(std::move(context)) {
  if (auto doc = config::loadYamlAsJson(c_.config_path)) host_keys_ = flattenHostFile(*doc);
  for (const auto& [name, p] : started.registry.plugins()) plugins_[name] = {p->version, p->file, p->identity};
}

pipeline::GenerationPtr Reloader::firstGeneration(const Loaded& loaded) {
  pipeline::Generation g{
      .number = 1, .router = pipeline::Router(loaded.pipelines), .stamps = {}, .retention = loaded.config.retention};
  const std::string at = now();
  for (const auto& p : loaded.pipelines) g.stamps[p->name()] = {.generation = 1, .config_hash = pipelineHash(*p), .loaded_at = at};
  return std::make_shared<const pipeline::Generation>(std::move(g));
}

void Reloader::stop() {
  stopping_ = true;
  std::lock_guard lock(mutex_);  // a reload in progress finishes first
}

runtime::ReloadOutcome Reloader::reload(const std::string& trigger) {
  if (stopping_) return {.status = Status::stopping};
  std::unique_lock lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock()) {
    log::warn("reload refused: another reload is running", {{"trigger", trigger}});
    return {.status = Status::busy};
  }
  if (stopping_) return {.status = Status::stopping};
  try {
    return attempt(trigger);
  } catch (const std::exception& e) {
    return refuse(trigger, std::string("reload failed: ") + e.what());
  }
}

runtime::ReloadOutcome Reloader::refuse(const std::string& trigger, const std::string& problems) {
  c_.metrics->reloads("failed").Increment();
  // One line naming every problem (file:line:col: what), as the answer does.
  log::error("reload refused; the running configuration is unchanged",
             {{"trigger", trigger}, {"config", c_.config_path}, {"problems", problems}});
  nlohmann::json list = nlohmann::json::array();
  for (auto& l : lines(problems)) list.push_back(std::move(l));
  return {.status = Status::invalid, .report = {{"problems", list}}};
}

runtime::ReloadOutcome Reloader::attempt(const std::string& trigger) {
  const auto started = std::chrono::steady_clock::now();
  // 1. Read and check everything, touching nothing that runs.
  auto cfg = config::loadHostConfig(c_.config_path);
  if (!cfg) return refuse(trigger, cfg.error().message);
  auto doc = config::loadYamlAsJson(c_.config_path);
  if (!doc) return refuse(trigger, doc.error().message);
  const auto keys = flattenHostFile(*doc);
  std::vector<std::string> applied, needs_restart;
  std::set<std::string> all_keys;
  for (const auto& [k, v] : keys) all_keys.insert(k);
  for (const auto& [k, v] : host_keys_) all_keys.insert(k);
  for (const auto& k : all_keys) {
    const auto a = host_keys_.find(k);
    const auto b = keys.find(k);
    if (a != host_keys_.end() && b != keys.end() && a->second == b->second) continue;
    (liveKey(k) ? applied : needs_restart).push_back(k);
  }
  const std::string level = cfg->logging.level;
  auto loaded = loadPipelines(std::move(*cfg));
  if (!loaded) return refuse(trigger, loaded.error().message);

  const auto old = c_.live->current();
  std::map<std::string, pipeline::PipelinePtr> before;
  for (const auto& p : old->router.pipelines()) before[p->name()] = p;
  std::vector<pipeline::PipelinePtr> next, fresh;
  std::map<std::string, std::string> hashes;
  std::set<std::string> added, changed, unchanged, removed;
  for (const auto& p : loaded->pipelines) {
    const std::string hash = pipelineHash(*p);
    hashes[p->name()] = hash;
    const auto was = before.find(p->name());
    const auto stamp = old->stamps.find(p->name());
    if (was != before.end() && stamp != old->stamps.end() && stamp->second.config_hash == hash) {
      next.push_back(was->second);  // the running one: its workers carry on untouched
      unchanged.insert(p->name());
      continue;
    }
    next.push_back(p);
    fresh.push_back(p);
    (was == before.end() ? added : changed).insert(p->name());
  }
  for (const auto& [name, p] : before)
    if (!hashes.count(name)) removed.insert(name);

  // 2. Instantiate what is new: the stages this process will run, or (api
  // role) one instance of each to prove they can be made.
  runtime::WorkerPool::Staged staged;
  if (c_.workers && c_.workers->started()) {
    auto made = c_.workers->stage(fresh);
    if (!made) return refuse(trigger, made.error().message);
    staged = std::move(*made);
  } else if (auto refused = instantiateOnly(fresh, c_.settings); !refused.empty()) {
    return refuse(trigger, refused);
  }

  // 3. The report, and for plugins what is new and what goes.
  nlohmann::json plugins_loaded = nlohmann::json::array(), plugins_unloading = nlohmann::json::array();
  std::map<std::string, PluginSeen> seen;
  for (const auto& [name, p] : loaded->registry.plugins()) seen[name] = {p->version, p->file, p->identity};
  for (const auto& p : next)
    for (const auto& st : p->stages()) seen.try_emplace(st.plugin->name, PluginSeen{st.plugin->version, st.plugin->file, st.plugin->identity});
  for (const auto& [name, now_seen] : seen) {
    const auto was = plugins_.find(name);
    if (was != plugins_.end() && was->second.identity == now_seen.identity) continue;
    nlohmann::json item{{"name", name}, {"version", now_seen.version}, {"file", now_seen.file}};
    if (was != plugins_.end()) item["previous_version"] = was->second.version;
    plugins_loaded.push_back(std::move(item));
    if (was != plugins_.end())
      plugins_unloading.push_back({{"name", name}, {"version", was->second.version}, {"file", was->second.file}});
  }
  for (const auto& [name, was] : plugins_)
    if (!seen.count(name)) plugins_unloading.push_back({{"name", name}, {"version", was.version}, {"file", was.file}});

  nlohmann::json changed_list = nlohmann::json::array();
  for (const auto& name : changed) {
    const auto& after = *std::find_if(next.begin(), next.end(), [&](const auto& p) { return p->name() == name; });
    changed_list.push_back({{"name", name}, {"stages", stageChanges(*before[name], *after)}});
  }
  // The host's retention lives in the generation, which a change to it alone
  // also replaces.
  const bool swap =
      !added.empty() || !changed.empty() || !removed.empty() || loaded->config.retention != old->retention;
  const std::uint64_t number = swap ? old->number + 1 : old->number;
  nlohmann::json report{{"status", swap || !applied.empty() ? "reloaded" : "unchanged"},
                        {"generation", number},
                        {"pipelines",
                         {{"added", added}, {"removed", removed}, {"changed", changed_list}, {"unchanged", unchanged}}},
                        {"plugins", {{"loaded", plugins_loaded}, {"unloading", plugins_unloading}}},
                        {"applied", applied},
                        {"needs_restart", needs_restart}};

  // 4. Swap. From here nothing can fail.
  if (swap) {
    pipeline::Generation g{
        .number = number, .router = pipeline::Router(next), .stamps = {}, .retention = loaded->config.retention};
    const std::string at = now();
    for (const auto& p : next) {
      if (unchanged.count(p->name())) {
        g.stamps[p->name()] = old->stamps.at(p->name());
        continue;
      }
      g.stamps[p->name()] = {.generation = number, .config_hash = hashes[p->name()], .loaded_at = at};
      std::vector<std::pair<std::string, std::string>> stages;
      for (const auto& st : p->stages()) stages.emplace_back(st.label, st.plugin->name);
      c_.metrics->declarePipeline(p->name(), p->spec().event_types, stages);
      if (added.count(p->name())) c_.queue->addPipeline(p->name());
    }
    c_.live->publish(std::make_shared<const pipeline::Generation>(std::move(g)));
    if (c_.workers && c_.workers->started()) c_.workers->swap(std::move(staged), changed, removed);
    c_.metrics->configGeneration().Set(static_cast<double>(number));
  }
  for (const auto& k : applied) {
    if (keys.count(k)) host_keys_[k] = keys.at(k);
    else host_keys_.erase(k);
  }
  if (std::find(applied.begin(), applied.end(), "logging.level") != applied.end()) {
    const auto format = host_keys_.count("logging.format") && host_keys_["logging.format"] == "\"text\"" ? log::Format::text
                                                                                                            : log::Format::json;
    log::setup(level, format);
  }
  plugins_ = std::move(seen);
  c_.metrics->reloads("ok").Increment();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  auto joined = [](const auto& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ",") + std::string(n);
    return s;
  };
  std::vector<std::string> changed_names(changed.begin(), changed.end());
  log::info(swap ? "reloaded: new configuration generation in force" : "reload: nothing to swap",
            {{"trigger", trigger},
             {"generation", std::to_string(number)},
             {"added", joined(added)},
             {"removed", joined(removed)},
             {"changed", joined(changed_names)},
             {"applied", joined(applied)},
             {"needs_restart", joined(needs_restart)},
             {"took_ms", std::to_string(ms.count())}});
  if (!needs_restart.empty())
    log::warn("reload: some changed settings apply only after a restart", {{"keys", joined(needs_restart)}});
  return {.status = swap || !applied.empty() ? Status::reloaded : Status::unchanged, .report = std::move(report)};
}

}  // namespace eventflow::app
