#include "metrics/metrics.hpp"

#include <prometheus/text_serializer.h>

namespace eventflow::metrics {
namespace {

const prometheus::Histogram::BucketBoundaries& latencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                0.1,    0.25,  0.5,    1,     2.5,  5,     10,  30, 60};
  return kBuckets;
}

std::string sanitize(const std::string& name) {
  std::string out;
  for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  return out;
}

}  // namespace

Metrics::Metrics(const std::string& version)
    : registry_(std::make_shared<prometheus::Registry>()),
      received_(prometheus::BuildCounter().Name("eventflow_events_received_total").Help("Events accepted by ingest (202)").Register(*registry_)),
      processed_(prometheus::BuildCounter().Name("eventflow_events_processed_total").Help("Events that passed every stage").Register(*registry_)),
      failed_(prometheus::BuildCounter().Name("eventflow_events_failed_total").Help("Stage failures, by error type").Register(*registry_)),
      retried_(prometheus::BuildCounter().Name("eventflow_events_retried_total").Help("Retries scheduled").Register(*registry_)),
      dead_lettered_(prometheus::BuildCounter().Name("eventflow_events_dead_lettered_total").Help("Events sent to the DLQ").Register(*registry_)),
      duplicate_(prometheus::BuildCounter().Name("eventflow_events_duplicate_total").Help("Re-posted events absorbed").Register(*registry_)),
      processing_duration_(prometheus::BuildHistogram().Name("eventflow_event_processing_duration_seconds").Help("Received to terminal").Register(*registry_)),
      stage_duration_(prometheus::BuildHistogram().Name("eventflow_stage_duration_seconds").Help("Time in one stage").Register(*registry_)),
      queue_depth_(prometheus::BuildGauge().Name("eventflow_queue_depth").Help("Events waiting in the queue").Register(*registry_)),
      queue_pending_(prometheus::BuildGauge()
                         .Name("eventflow_queue_pending")
                         .Help("Events handed to a worker and not yet acknowledged: running, or waiting for a retry")
                         .Register(*registry_)),
      http_requests_(prometheus::BuildCounter().Name("eventflow_http_requests_total").Help("HTTP requests by route and code").Register(*registry_)),
      http_duration_(prometheus::BuildHistogram().Name("eventflow_http_request_duration_seconds").Help("HTTP request time").Register(*registry_)) {
  prometheus::BuildGauge().Name("eventflow_build_info").Help("Build version").Register(*registry_).Add({{"version", version}}).Set(1);
}

prometheus::Counter& Metrics::received(const std::string& p, const std::string& t) {
  return cached(received_, {{"pipeline", p}, {"event_type", t}});
}
prometheus::Counter& Metrics::processed(const std::string& p, const std::string& t) {
  return cached(processed_, {{"pipeline", p}, {"event_type", t}});
}
prometheus::Counter& Metrics::failed(const std::string& p, const std::string& e) {
  return cached(failed_, {{"pipeline", p}, {"error_type", e}});
}
prometheus::Counter& Metrics::retried(const std::string& p) { return cached(retried_, {{"pipeline", p}}); }
prometheus::Counter& Metrics::deadLettered(const std::string& p) { return cached(dead_lettered_, {{"pipeline", p}}); }
prometheus::Counter& Metrics::duplicate(const std::string& p) { return cached(duplicate_, {{"pipeline", p}}); }
prometheus::Histogram& Metrics::processingDuration(const std::string& p) {
  return cached(processing_duration_, {{"pipeline", p}}, latencyBuckets());
}
prometheus::Histogram& Metrics::stageDuration(const std::string& p, const std::string& s, const std::string& plugin) {
  return cached(stage_duration_, {{"pipeline", p}, {"stage", s}, {"plugin", plugin}}, latencyBuckets());
}
prometheus::Gauge& Metrics::queueDepth(const std::string& p) { return cached(queue_depth_, {{"pipeline", p}}); }
prometheus::Gauge& Metrics::queuePending(const std::string& p) { return cached(queue_pending_, {{"pipeline", p}}); }
prometheus::Counter& Metrics::httpRequests(const std::string& route, int code) {
  return cached(http_requests_, {{"route", route}, {"code", std::to_string(code)}});
}
prometheus::Histogram& Metrics::httpDuration(const std::string& route) {
  return cached(http_duration_, {{"route", route}}, latencyBuckets());
}

void Metrics::declarePipeline(const std::string& pipeline, const std::vector<std::string>& event_types,
                              const std::vector<std::pair<std::string, std::string>>& stages) {
  for (const auto& type : event_types) {
    received(pipeline, type);
    processed(pipeline, type);
  }
  // What the host itself gives (a reject or retry without a type, a throwing
  // plugin, a sink's missing result, a poison event) and the built-in
  // validators' "validation". Types a plugin makes up appear with their first use.
  for (const char* error_type : {"validation", "rejected", "transient", "plugin_exception", "sink_protocol", "poison"})
    failed(pipeline, error_type);
  retried(pipeline);
  deadLettered(pipeline);
  duplicate(pipeline);
  processingDuration(pipeline);
  for (const auto& [stage, plugin] : stages) stageDuration(pipeline, stage, plugin);
  queueDepth(pipeline);
  queuePending(pipeline);
}

prometheus::Counter& Metrics::pluginCounter(const std::string& name, const std::string& plugin, const std::string& pipeline) {
  std::lock_guard lock(plugin_mutex_);
  auto& family = plugin_counters_[name];
  if (!family)
    family = &prometheus::BuildCounter().Name("eventflow_plugin_" + sanitize(name) + "_total").Help("Reported by plugins").Register(*registry_);
  return family->Add({{"plugin", plugin}, {"pipeline", pipeline}});
}

prometheus::Histogram& Metrics::pluginHistogram(const std::string& name, const std::string& plugin, const std::string& pipeline) {
  std::lock_guard lock(plugin_mutex_);
  auto& family = plugin_histograms_[name];
  if (!family)
    family = &prometheus::BuildHistogram().Name("eventflow_plugin_" + sanitize(name)).Help("Reported by plugins").Register(*registry_);
  return family->Add({{"plugin", plugin}, {"pipeline", pipeline}}, latencyBuckets());
}

template <class T, class... Args>
T& Metrics::cached(prometheus::Family<T>& family, std::initializer_list<std::pair<const char*, const std::string&>> labels,
                   Args&&... args) {
  // Family::Add builds a label map and takes a lock; the hot path (every
  // request, every event) only pays for a shared-locked hash lookup.
  std::string key = std::to_string(reinterpret_cast<std::uintptr_t>(&family));
  for (const auto& [name, value] : labels) {
    key += '\x1f';
    key += value;
  }
  {
    std::shared_lock lock(cache_mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) return *static_cast<T*>(it->second);
  }
  prometheus::Labels map;
  for (const auto& [name, value] : labels) map.emplace(name, value);
  T& metric = family.Add(map, std::forward<Args>(args)...);
  std::unique_lock lock(cache_mutex_);
  cache_.emplace(std::move(key), &metric);
  return metric;
}

std::string Metrics::serialize() const { return prometheus::TextSerializer().Serialize(registry_->Collect()); }

}  // namespace eventflow::metrics
