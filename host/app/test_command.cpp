// eventflow test: pipeline fixtures, run without any server (DESIGN §8).
// Each case's event goes through the envelope check and its pipeline's
// validators and enrichers, with the plugins and config `serve` would load;
// sinks are not run, and nothing is stored or queued.

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "app/app.hpp"
#include "app/args.hpp"
#include "app/bootstrap.hpp"
#include "app/cli.hpp"
#include "base/ids.hpp"
#include "config/config.hpp"
#include "pipeline/envelope.hpp"
#include "pipeline/pipeline.hpp"
#include "plugin/loader.hpp"

namespace eventflow::app {
namespace {

namespace fs = std::filesystem;

const char* const kHelp = R"(usage: eventflow test [--config FILE] [PATH ...]

Runs pipeline fixtures without any server. Each case's event is checked as
POST /events checks it, routed to its pipeline, and run through that
pipeline's validators and enrichers with the plugins and config `serve`
loads. Sinks are not run; nothing is stored or queued.

PATH is a fixture file or a folder of them (*.yaml, *.yml); without one, the
folder `tests` inside each of pipelines.paths.

A fixture file:

  cases:
    - name: a large purchase is high value
      event: { event_type: purchase, user_id: u1, properties: { amount: 1500, currency: USD } }
      expect:
        output: { category: high_value }      # fields the event has after the enrichers
    - name: a negative amount is refused
      event: { event_type: purchase, user_id: u1, properties: { amount: -1, currency: USD } }
      expect:
        dead: { error_type: validation, stage: validator json-schema, message: amount }
    - name: no event_type
      event: { user_id: u1 }
      expect:
        refused: { code: invalid_envelope }  # answered 422 at ingest

`output` matches when every field it names has that value (objects are
matched the same way, field by field; anything else exactly). `dead` and
`retry` match when each of error_type, stage and plugin given is equal and
message is part of the reason. `refused` matches the 422 ingest answers:
code invalid_envelope, or no_pipeline when no pipeline takes the event_type.
`pipeline: NAME` in a case or at the top of
the file also checks where the event is routed.

exit code: 0 every case passed, 1 a case failed or a fixture is broken, 2 usage errors.
)";

// Every field `want` names, with the same value; objects field by field.
bool contains(const nlohmann::json& have, const nlohmann::json& want, const std::string& at, std::string& why) {
  if (want.is_object()) {
    if (!have.is_object()) {
      why = (at.empty() ? "the event" : at) + " is " + have.dump() + ", not an object";
      return false;
    }
    for (const auto& [key, value] : want.items()) {
      const std::string path = at.empty() ? key : at + "." + key;
      if (!have.contains(key)) {
        why = path + " is missing";
        return false;
      }
      if (!contains(have.at(key), value, path, why)) return false;
    }
    return true;
  }
  if (have != want) {
    why = at + " is " + have.dump() + ", expected " + want.dump();
    return false;
  }
  return true;
}

// The failure fields the case names, against what happened.
bool matches(const pipeline::Outcome& o, const nlohmann::json& want, std::string& why) {
  const std::map<std::string, const std::string*> fields{
      {"error_type", &o.error_type}, {"stage", &o.stage}, {"plugin", &o.plugin}};
  for (const auto& [key, value] : want.items()) {
    if (!value.is_string()) {
      why = "expect field '" + key + "' must be a string";
      return false;
    }
    const std::string& expected = value.get_ref<const std::string&>();
    if (key == "message") {
      if (o.message.find(expected) == std::string::npos) {
        why = "the reason \"" + o.message + "\" does not contain \"" + expected + "\"";
        return false;
      }
    } else if (auto it = fields.find(key); it != fields.end()) {
      if (*it->second != expected) {
        why = key + " is \"" + *it->second + "\", expected \"" + expected + "\"";
        return false;
      }
    } else {
      why = "unknown expect field '" + key + "' (error_type, stage, plugin, message)";
      return false;
    }
  }
  return true;
}

std::string describe(const pipeline::Outcome& o) {
  const char* kind = o.kind == pipeline::Outcome::Kind::done ? "passed" : o.kind == pipeline::Outcome::Kind::dead ? "dead" : "retry";
  if (o.kind == pipeline::Outcome::Kind::done) return kind;
  return std::string(kind) + " (" + o.error_type + " at " + o.stage + ": " + o.message + ")";
}

// Fixture files: the paths given, else each pipelines path's `tests` folder.
std::vector<fs::path> fixtureFiles(const std::vector<std::string>& given, const config::HostConfig& cfg,
                                   std::string& error) {
  std::vector<fs::path> roots;
  for (const auto& g : given) roots.emplace_back(g);
  if (roots.empty())
    for (const auto& p : cfg.pipeline_paths) roots.push_back(fs::path(p) / "tests");
  std::vector<fs::path> files;
  for (const auto& root : roots) {
    std::error_code ec;
    if (fs::is_regular_file(root, ec)) {
      files.push_back(root);
    } else if (fs::is_directory(root, ec)) {
      std::vector<fs::path> found;
      for (const auto& entry : fs::directory_iterator(root, ec))
        if (entry.is_regular_file() && (entry.path().extension() == ".yaml" || entry.path().extension() == ".yml"))
          found.push_back(entry.path());
      if (ec) {
        error = root.string() + ": cannot read the folder: " + ec.message();
        return {};
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (!given.empty()) {
      error = root.string() + (fs::exists(root, ec) ? ": not a file or folder" : ": no such file or folder");
      return {};
    }
  }
  return files;
}

class FixtureRun {
 public:
  FixtureRun(const pipeline::Router& router, const plugin::Registry& registry, const pipeline::Settings& settings,
             pipeline::EnvelopeOptions envelope)
      : router_(router), registry_(registry), settings_(settings), envelope_(envelope) {}

  // Runs one file's cases, printing a line each; false if any failed.
  bool file(const fs::path& path) {
    auto root = config::loadYamlAsJson(path.string());
    if (!root) return broken(root.error().message);
    if (!root->is_object() || !root->contains("cases") || !(*root)["cases"].is_array() || (*root)["cases"].empty())
      return broken(path.string() + ": a fixture file has a list of cases under 'cases'");
    const auto& top = *root;
    const std::string file_pipeline = top.contains("pipeline") && top["pipeline"].is_string() ? top["pipeline"].get<std::string>() : "";
    bool ok = true;
    const auto& cases = top["cases"];
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const auto& c = cases[i];
      const std::string name = c.is_object() && c.contains("name") && c["name"].is_string()
                                   ? c["name"].get<std::string>()
                                   : "case " + std::to_string(i + 1);
      std::string why;
      const bool passed = one(c, file_pipeline, why);
      ++(passed ? passed_ : failed_);
      std::cout << (passed ? "ok    " : "FAIL  ") << name;
      if (!passed) std::cout << "\n      " << path.string() << ", case " << (i + 1) << ": " << why;
      std::cout << "\n";
      ok = ok && passed;
    }
    return ok;
  }

  std::size_t passed() const { return passed_; }
  std::size_t failed() const { return failed_; }

 private:
  bool broken(const std::string& message) {
    std::cout << "FAIL  " << message << "\n";
    ++failed_;
    return false;
  }

  bool one(const nlohmann::json& c, const std::string& file_pipeline, std::string& why) {
    if (!c.is_object() || !c.contains("event") || !c.contains("expect") || !c["expect"].is_object()) {
      why = "a case has 'event' (the document as posted) and 'expect' (output, dead, retry or refused)";
      return false;
    }
    nlohmann::json doc = c["event"];
    const nlohmann::json& expect = c["expect"];
    std::size_t kinds = 0;
    for (const char* k : {"output", "dead", "retry", "refused"}) kinds += expect.contains(k) ? 1 : 0;
    if (kinds != 1 || expect.size() != 1) {
      why = "'expect' names exactly one of output, dead, retry or refused";
      return false;
    }
    // Refused as POST /events refuses: the envelope, then routing (422 no_pipeline).
    pipeline::Envelope env;
    const pipeline::Pipeline* p = nullptr;
    auto err = pipeline::checkEnvelope(doc, std::chrono::system_clock::now(), newUuid(), env, envelope_);
    if (!err && !(p = router_.route(env.type)))
      err = pipeline::EnvelopeError{"no_pipeline", "no pipeline matches event_type '" + env.type + "'", "event_type"};
    if (err) {
      if (!expect.contains("refused")) {
        why = "refused at ingest: " + err->code + ": " + err->message;
        return false;
      }
      const auto& want = expect["refused"];
      if (want.is_object() && want.contains("code") && want["code"] != err->code) {
        why = "refused with " + err->code + " (" + err->message + "), expected " + want["code"].dump();
        return false;
      }
      return true;
    }
    if (expect.contains("refused")) {
      why = "accepted at ingest, expected it refused";
      return false;
    }
    const std::string want_pipeline =
        c.contains("pipeline") && c["pipeline"].is_string() ? c["pipeline"].get<std::string>() : file_pipeline;
    if (!want_pipeline.empty() && want_pipeline != p->name()) {
      why = "routed to pipeline '" + p->name() + "', expected '" + want_pipeline + "'";
      return false;
    }
    auto runner = runnerFor(*p, why);
    if (!runner) return false;
    pipeline::Work w;
    w.event.id = env.id;
    w.event.type = env.type;
    w.event.correlation_id = env.correlation_id;
    w.event.pipeline = p->name();
    w.event.received_at = std::chrono::system_clock::now();
    w.event.body = std::move(doc);
    runner->run(std::span<pipeline::Work>(&w, 1));
    const auto& o = w.outcome;
    if (expect.contains("output")) {
      if (o.kind != pipeline::Outcome::Kind::done) {
        why = "expected it through, but it was " + describe(o);
        return false;
      }
      return contains(w.event.body, expect["output"], "", why);
    }
    const bool want_dead = expect.contains("dead");
    const auto kind = want_dead ? pipeline::Outcome::Kind::dead : pipeline::Outcome::Kind::retry;
    if (o.kind != kind) {
      why = std::string("expected ") + (want_dead ? "dead" : "retry") + ", but it " + describe(o);
      return false;
    }
    const auto& want = expect[want_dead ? "dead" : "retry"];
    if (!want.is_object()) {
      why = std::string("'") + (want_dead ? "dead" : "retry") + "' names fields: error_type, stage, plugin, message";
      return false;
    }
    return matches(o, want, why);
  }

  // One runner per pipeline, of its validators and enrichers only.
  pipeline::Runner* runnerFor(const pipeline::Pipeline& p, std::string& why) {
    auto& slot = runners_[p.name()];
    if (slot) return slot.get();
    config::PipelineSpec spec = p.spec();
    std::erase_if(spec.stages, [](const config::StageSpec& s) { return s.kind == Kind::sink; });
    auto built = pipeline::Pipeline::build(std::move(spec), registry_);
    if (!built) {
      why = built.error().message;
      return nullptr;
    }
    auto runner = pipeline::Runner::create(std::move(*built), settings_, nullptr);
    if (!runner) {
      why = runner.error().message;
      return nullptr;
    }
    slot = std::move(*runner);
    return slot.get();
  }

  const pipeline::Router& router_;
  const plugin::Registry& registry_;
  const pipeline::Settings& settings_;
  pipeline::EnvelopeOptions envelope_;
  std::map<std::string, std::unique_ptr<pipeline::Runner>> runners_;
  std::size_t passed_ = 0, failed_ = 0;
};

}  // namespace

int testCommand(int argc, char** argv) {
  Args args(argc, argv, 2, {"help"});
  if (args.has("help")) {
    std::cout << kHelp;
    return 0;
  }
  if (auto extra = args.unknown({"config", "help"}); !extra.empty())
    return usageError(unknownOption(extra.front(), {"config", "help"}), kHelp);
  if (!args.ok()) return usageError(args.error(), kHelp);
  auto loaded = loadAll(configPath(args));
  if (!loaded) return invalidConfiguration(loaded.error().message);
  const config::HostConfig& cfg = loaded->config;
  std::string error;
  const auto files = fixtureFiles(args.positional(), cfg, error);
  if (!error.empty()) return usageError(error, kHelp);
  if (files.empty()) return fail("no fixture files: give a file or folder, or put them in a `tests` folder of a pipelines path");
  pipeline::Router router(loaded->pipelines);
  const pipeline::Settings settings = pluginSettings(cfg, "test");
  FixtureRun run(router, loaded->registry, settings, {.naive_timestamps_utc = cfg.ingest.naive_timestamps == "utc"});
  bool ok = true;
  for (const auto& f : files) ok = run.file(f) && ok;
  std::cout << "\n" << run.passed() << " passed, " << run.failed() << " failed\n";
  return ok ? 0 : 1;
}

}  // namespace eventflow::app
