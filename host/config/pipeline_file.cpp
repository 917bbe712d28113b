#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/utf8.hpp"
#include "config/config.hpp"
#include "config/yaml_reader.hpp"

// Pipeline files (pipelines/*.yaml): one pipeline each, and the routing
// checks across them.
namespace eventflow::config {
namespace fs = std::filesystem;

Expected<PipelineSpec> loadPipelineFile(const std::string& file) {
  auto parsed = parseFile(file);
  if (!parsed) return parsed.error();
  const YAML::Node root = *parsed;
  Reader r(file);
  if (!r.expectMap(root, "a pipeline file")) return r.error();
  PipelineSpec p;
  p.file = fs::absolute(file).lexically_normal().string();
  p.dir = fs::path(p.file).parent_path().string();
  r.checkKeys(root, {"pipeline", "match", "concurrency", "retry", "max_deliveries", "isolation", "limits", "retention",
               "stages"},
              "a pipeline");
  r.readIsolation(root, p.isolation);
  r.readRetention(root, p.retention);
  r.readString(root, "pipeline", p.name);
  if (p.name.empty()) r.fail(root, "missing 'pipeline': the pipeline's name");
  // The name goes into stream keys, metric labels, the store and every
  // answer: bytes that are not UTF-8 would come back from PostgreSQL as
  // U+FFFD and no longer match the pipeline they named.
  const bool control = std::any_of(p.name.begin(), p.name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
  if (!p.name.empty() && (control || !utf8::valid(p.name)))
    r.fail(root["pipeline"], "'pipeline' must be UTF-8 text without control characters (is the file saved as UTF-8?)");
  if (auto m = root["match"]; !m) {
    r.fail(root, "missing 'match': which event types this pipeline takes");
  } else if (m.IsScalar() && m.Scalar() == "*") {
    p.catch_all = true;
  } else if (r.expectMap(m, "match")) {
    r.checkKeys(m, {"event_types"}, "match");
    const auto types = m["event_types"];
    if (types && types.IsScalar() && types.Scalar() == "*") {
      p.catch_all = true;
    } else {
      r.readStringList(m, "event_types", p.event_types);
      if (p.event_types.empty()) r.fail(m, "'event_types' must list at least one event type, or be \"*\"");
      if (std::find(p.event_types.begin(), p.event_types.end(), "*") != p.event_types.end()) p.catch_all = true;
    }
  }
  r.readUnsigned(root, "concurrency", p.concurrency, 1);
  r.readUnsigned(root, "max_deliveries", p.max_deliveries, 1);
  if (auto s = root["retry"]; s && r.expectMap(s, "retry")) {
    r.checkKeys(s, {"max_attempts", "initial_backoff", "multiplier", "max_backoff", "jitter"}, "retry");
    r.readUnsigned(s, "max_attempts", p.retry.max_attempts, 1);
    r.readDuration(s, "initial_backoff", p.retry.initial_backoff);
    r.readDouble(s, "multiplier", p.retry.multiplier, 1.0);
    r.readDuration(s, "max_backoff", p.retry.max_backoff);
    std::string jitter = "full";
    r.readString(s, "jitter", jitter);
    if (jitter != "full" && jitter != "none") r.fail(s["jitter"], "'jitter' must be full or none");
    p.retry.full_jitter = jitter == "full";
  }
  const auto stages = root["stages"];
  if (!stages || !stages.IsSequence() || stages.size() == 0) {
    r.fail(stages ? stages : root, "'stages' must be a non-empty list");
  } else {
    int order = 0;  // validators, then enrichers, then sinks
    bool has_sink = false;
    for (const auto& st : stages) {
      if (!r.expectMap(st, "a stage")) continue;
      r.checkKeys(st, {"validator", "enricher", "sink", "config", "path", "isolation", "limits"}, "a stage");
      StageSpec spec;
      spec.isolation = p.isolation;
      r.readIsolation(st, spec.isolation);
      spec.where = r.where(st);
      int kinds = 0;
      for (auto [key, kind] : {std::pair{"validator", Kind::validator}, std::pair{"enricher", Kind::enricher},
                               std::pair{"sink", Kind::sink}}) {
        if (st[key]) {
          ++kinds;
          spec.kind = kind;
          r.readString(st, key, spec.plugin);
        }
      }
      if (kinds != 1) {
        r.fail(st, "a stage names exactly one of validator, enricher or sink");
        continue;
      }
      const int rank = static_cast<int>(spec.kind);
      if (rank < order)
        r.fail(st, std::string(kindName(spec.kind)) + " '" + spec.plugin +
                       "' comes after a later kind: stages run validators, then enrichers, then sinks");
      order = std::max(order, rank);
      has_sink = has_sink || spec.kind == Kind::sink;
      // A sink takes its events as one batch, so a crash in it could not be
      // pinned on one event: isolation (and a pipeline's default) is for
      // validators and enrichers.
      if (spec.kind == Kind::sink && st["isolation"] && spec.isolation.process)
        r.fail(st["isolation"], "'isolation: process' is for validators and enrichers, not sinks");
      if (spec.kind == Kind::sink) spec.isolation.process = spec.isolation.seccomp = false;
      if (auto cfg = st["config"]; cfg) {
        if (!cfg.IsMap() && !cfg.IsNull()) r.fail(cfg, "'config' must be a mapping");
        else if (cfg.IsMap()) {
          spec.config = toJson(cfg);
          r.locate(cfg, "", spec.config_where);
        }
      }
      if (st["path"]) {
        r.readString(st, "path", spec.path);
        spec.path = absoluteFrom(p.dir, spec.path);
      }
      p.stages.push_back(std::move(spec));
    }
    if (!has_sink) r.fail(stages, "a pipeline needs at least one sink");
  }
  if (!r.ok()) return r.error();
  return p;
}

Expected<void> checkRouting(const std::vector<PipelineSpec>& pipelines) {
  std::map<std::string, std::string> names, types;
  std::string catch_all;
  std::string errors;
  auto add = [&](const std::string& e) { errors += (errors.empty() ? "" : "\n") + e; };
  for (const auto& p : pipelines) {
    if (auto [it, fresh] = names.emplace(p.name, p.file); !fresh)
      add(p.file + ": pipeline '" + p.name + "' is also defined in " + it->second);
    if (p.catch_all) {
      if (!catch_all.empty()) add(p.file + ": a second catch-all pipeline (\"*\"); the first is in " + catch_all);
      catch_all = p.file;
    }
    for (const auto& t : p.event_types) {
      if (t == "*") continue;
      if (auto [it, fresh] = types.emplace(t, p.file); !fresh)
        add(p.file + ": event type '" + t + "' is already routed by " + it->second + "; each type routes to one pipeline");
    }
  }
  if (!errors.empty()) return makeError(errors);
  return {};
}

Expected<std::vector<PipelineSpec>> loadPipelines(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const auto& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<std::string> found;
      for (const auto& entry : fs::directory_iterator(path, ec)) {
        const auto ext = entry.path().extension();
        if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) found.push_back(entry.path().string());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(path, ec)) {
      files.push_back(path);
    } else {
      return makeError(path + ": pipelines path does not exist");
    }
  }
  std::vector<PipelineSpec> specs;
  std::string errors;
  for (const auto& f : files) {
    auto spec = loadPipelineFile(f);
    if (!spec) errors += (errors.empty() ? "" : "\n") + spec.error().message;
    else specs.push_back(std::move(*spec));
  }
  if (!errors.empty()) return makeError(errors);
  if (specs.empty()) return makeError("no pipeline files found in the pipelines paths");
  if (auto routed = checkRouting(specs); !routed) return routed.error();
  return specs;
}

}  // namespace eventflow::config
