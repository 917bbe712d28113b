#include "pipeline/pipeline.hpp"

#include <chrono>
#include <filesystem>

#include "base/crash.hpp"
#include "base/log.hpp"
#include "isolation/process_stage.hpp"
#include "metrics/metrics.hpp"
#include "plugin/local_context.hpp"

namespace eventflow::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

class PluginContext final : public plugin::LocalContext {
 public:
  PluginContext(const Pipeline& pipeline, const Stage& stage, const Settings& settings, metrics::Metrics* metrics)
      : LocalContext(pipeline.spec().dir, settings), pipeline_(pipeline.name()), plugin_(stage.plugin->name),
        metrics_(metrics) {}

  void log(LogLevel level, std::string_view message) override {
    static constexpr spdlog::level::level_enum kLevels[] = {spdlog::level::debug, spdlog::level::info,
                                                            spdlog::level::warn, spdlog::level::err};
    log::write(kLevels[static_cast<int>(level)], message, {{"plugin", plugin_}, {"pipeline", pipeline_}});
  }
  void count(std::string_view name, double value) override {
    if (metrics_) metrics_->pluginCounter(std::string(name), plugin_, pipeline_).Increment(value);
  }
  void observe(std::string_view name, double value) override {
    if (metrics_) metrics_->pluginHistogram(std::string(name), plugin_, pipeline_).Observe(value);
  }

 private:
  std::string pipeline_;
  std::string plugin_;
  metrics::Metrics* metrics_;
};

Outcome failure(const Result& r, const Stage& stage) {
  Outcome o;
  o.kind = r.status() == Result::Status::reject ? Outcome::Kind::dead : Outcome::Kind::retry;
  o.error_type = r.errorType().empty() ? (o.kind == Outcome::Kind::dead ? error_type::kRejected : error_type::kTransient) : r.errorType();
  o.message = r.reason();
  o.stage = stage.label;
  o.plugin = stage.plugin->name;
  return o;
}

// Every call into a plugin goes through here: an escaping exception becomes a
// retry with error_type plugin_exception, and the host keeps running.
template <class F>
Result guarded(F&& call) {
  try {
    return call();
  } catch (const std::exception& e) {
    return Result::retry(std::string("plugin threw: ") + e.what(), error_type::kPluginException);
  } catch (...) {
    return Result::retry("plugin threw a non-standard exception", error_type::kPluginException);
  }
}

}  // namespace

Expected<PipelinePtr> Pipeline::build(config::PipelineSpec spec, const plugin::Registry& registry) {
  auto p = std::shared_ptr<Pipeline>(new Pipeline());
  std::string errors;
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    const auto& st = spec.stages[i];
    // file:line:col alone is hard to read when a pipeline has many stages.
    const std::string where = st.where + ": pipeline '" + spec.name + "', stage " + std::to_string(i + 1);
    auto plugin = registry.resolve(st.plugin, st.kind, st.path);
    if (!plugin) {
      errors += (errors.empty() ? "" : "\n") + where + ": " + plugin.error().message;
      continue;
    }
    // A schema error points at the key at fault, where the config has one.
    const auto at_key = [&](const std::string& path) {
      const auto it = st.config_where.find(path);
      return it == st.config_where.end() ? std::string() : it->second + where.substr(st.where.size());
    };
    if (auto ok = plugin::checkConfig(**plugin, st.config, where, at_key); !ok) {
      errors += (errors.empty() ? "" : "\n") + ok.error().message;
      continue;
    }
    p->stages_.push_back(Stage{st, *plugin, std::string(kindName(st.kind)) + " " + st.plugin});
  }
  if (!errors.empty()) return makeError(errors);
  if (p->sinkCount() > 32) return makeError(spec.file + ": at most 32 sinks per pipeline");
  p->spec_ = std::move(spec);
  return PipelinePtr(std::move(p));
}

std::size_t Pipeline::sinkCount() const {
  std::size_t n = 0;
  for (const auto& s : stages_) n += s.spec.kind == Kind::sink;
  return n;
}

Router::Router(std::vector<PipelinePtr> pipelines) : pipelines_(std::move(pipelines)) {
  for (const auto& p : pipelines_) {
    if (p->spec().catch_all) catch_all_ = p.get();
    for (const auto& t : p->spec().event_types) by_type_[t] = p.get();
  }
}

const Pipeline* Router::route(const std::string& event_type) const {
  auto it = by_type_.find(event_type);
  return it != by_type_.end() ? it->second : catch_all_;
}

struct Runner::Impl {
  struct Slot {
    const Stage* stage;
    std::unique_ptr<PluginContext> context;
    std::unique_ptr<plugin::Instance<Validator>> validator;
    std::unique_ptr<plugin::Instance<Enricher>> enricher;
    std::unique_ptr<plugin::Instance<Sink>> sink;
    std::unique_ptr<isolation::ProcessStage> isolated;  // isolation: process
    prometheus::Histogram* duration = nullptr;
  };
  std::vector<Slot> slots;  // in stage order
};

Runner::Runner(PipelinePtr pipeline) : pipeline_(std::move(pipeline)), impl_(std::make_unique<Impl>()) {}
Runner::~Runner() = default;

Expected<std::unique_ptr<Runner>> Runner::create(PipelinePtr pipeline, const Settings& settings,
                                                 metrics::Metrics* metrics) {
  std::unique_ptr<Runner> runner(new Runner(pipeline));
  for (const auto& stage : pipeline->stages()) {
    Impl::Slot slot;
    slot.stage = &stage;
    slot.context = std::make_unique<PluginContext>(*pipeline, stage, settings, metrics);
    if (metrics) slot.duration = &metrics->stageDuration(pipeline->name(), stage.label, stage.plugin->name);
    const std::string where = stage.spec.where + ": ";
    if (stage.spec.isolation.process) {
      auto made = isolation::ProcessStage::start(
          {.pipeline = pipeline->name(), .stage = stage.label, .plugin = stage.plugin->name, .file = stage.plugin->file,
           .dir = pipeline->spec().dir, .kind = stage.spec.kind, .config = stage.spec.config,
           .limits = stage.spec.isolation, .settings = settings},
          *slot.context, metrics);
      if (!made) return makeError(where + made.error().message);
      slot.isolated = std::move(*made);
      runner->impl_->slots.push_back(std::move(slot));
      continue;
    }
    switch (stage.spec.kind) {
      case Kind::validator: {
        auto made = plugin::createInstance<Validator>(stage.plugin, stage.spec.config, *slot.context);
        if (!made) return makeError(where + made.error().message);
        slot.validator = std::move(*made);
        break;
      }
      case Kind::enricher: {
        auto made = plugin::createInstance<Enricher>(stage.plugin, stage.spec.config, *slot.context);
        if (!made) return makeError(where + made.error().message);
        slot.enricher = std::move(*made);
        break;
      }
      case Kind::sink: {
        auto made = plugin::createInstance<Sink>(stage.plugin, stage.spec.config, *slot.context);
        if (!made) return makeError(where + made.error().message);
        slot.sink = std::move(*made);
        break;
      }
    }
    runner->impl_->slots.push_back(std::move(slot));
  }
  return runner;
}

void Runner::run(std::span<Work> batch) {
  // Sinks run in the order written (G2): any failure stops the event's chain,
  // so a sink sees an event only after every sink before it took it, and a
  // row in the last sink's table means the event is done. sinks_done keeps
  // the sinks that took it across retries, so a retry resumes at the first
  // sink that has not.
  std::vector<bool> active(batch.size(), true);
  for (auto& w : batch) w.outcome = Outcome{};
  std::size_t sink_index = 0;
  for (auto& slot : impl_->slots) {
    const auto start = Clock::now();
    // What a crash report names if this stage's plugin takes the process down.
    crash::Doing doing{.pipeline = &pipeline_->name(), .stage = &slot.stage->label, .plugin = &slot.stage->plugin->name};
    const crash::Scope crash_scope(doing);
    if (slot.isolated) {
      std::vector<std::size_t> index;
      std::vector<Event*> events;
      for (std::size_t i = 0; i < batch.size(); ++i)
        if (active[i]) {
          index.push_back(i);
          events.push_back(&batch[i].event);
        }
      const auto results = slot.isolated->run(events);
      for (std::size_t k = 0; k < index.size(); ++k)
        if (!results[k].isOk()) {
          batch[index[k]].outcome = failure(results[k], *slot.stage);
          active[index[k]] = false;
        }
    } else if (slot.validator || slot.enricher) {
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!active[i]) continue;
        Work& w = batch[i];
        doing.event_id = &w.event.id;
        const Result r = slot.validator ? guarded([&] { return slot.validator->get().check(w.event); })
                                        : guarded([&] { return slot.enricher->get().enrich(w.event); });
        if (!r.isOk()) {
          w.outcome = failure(r, *slot.stage);
          active[i] = false;
        }
      }
    } else {
      const std::uint32_t bit = 1u << sink_index++;
      std::vector<std::size_t> index;
      std::vector<Event*> events;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!active[i] || (batch[i].sinks_done & bit)) continue;
        index.push_back(i);
        events.push_back(&batch[i].event);
      }
      if (!events.empty()) {
        doing.events = events.data();
        doing.event_count = events.size();
        std::vector<Result> results;
        try {
          results = slot.sink->get().write(std::span<Event* const>(events.data(), events.size()));
        } catch (const std::exception& e) {
          results.assign(events.size(), Result::retry(std::string("plugin threw: ") + e.what(), error_type::kPluginException));
        } catch (...) {
          results.assign(events.size(), Result::retry("plugin threw a non-standard exception", error_type::kPluginException));
        }
        const Result flushed = guarded([&] { return slot.sink->get().flush(); });
        for (std::size_t k = 0; k < index.size(); ++k) {
          Work& w = batch[index[k]];
          Result r = k < results.size() ? results[k] : Result::retry("sink returned no result for the event", error_type::kSinkProtocol);
          if (r.isOk() && !flushed.isOk()) r = flushed;
          if (r.isOk()) {
            w.sinks_done |= bit;
          } else {
            w.outcome = failure(r, *slot.stage);
            active[index[k]] = false;
          }
        }
      }
    }
    if (slot.duration)
      slot.duration->Observe(std::chrono::duration<double>(Clock::now() - start).count() /
                             static_cast<double>(std::max<std::size_t>(batch.size(), 1)));
  }
}

}  // namespace eventflow::pipeline
