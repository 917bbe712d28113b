#include "metrics/metrics.hpp"

#include <prometheus/text_serializer.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include <eventflow/plugin.hpp>

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

Metrics::Metrics(const std::string& version, std::size_t max_label_values)
    : registry_(std::make_shared<prometheus::Registry>()),
      max_label_values_(std::max<std::size_t>(max_label_values, 1)),
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
      ingest_uncommitted_(prometheus::BuildGauge()
                              .Name("eventflow_ingest_uncommitted")
                              .Help("Events received over HTTP whose group commit has not completed: clients waiting for their 202")
                              .Register(*registry_)),
      http_requests_(prometheus::BuildCounter().Name("eventflow_http_requests_total").Help("HTTP requests by route and code").Register(*registry_)),
      http_duration_(prometheus::BuildHistogram().Name("eventflow_http_request_duration_seconds").Help("HTTP request time").Register(*registry_)),
      rate_limited_(prometheus::BuildCounter()
                        .Name("eventflow_rate_limited_total")
                        .Help("Events refused with 429 because their API key was over its rate")
                        .Register(*registry_)),
      dlq_replayed_(prometheus::BuildCounter().Name("eventflow_dlq_replayed_total").Help("Dead events sent back through their pipeline").Register(*registry_)),
      retention_pruned_(prometheus::BuildCounter()
                            .Name("eventflow_retention_pruned_total")
                            .Help("Terminal events deleted by retention (still counted in the books)")
                            .Register(*registry_)),
      dlq_discarded_(prometheus::BuildCounter().Name("eventflow_dlq_discarded_total").Help("Dead events discarded").Register(*registry_)),
      books_(prometheus::BuildGauge()
                 .Name("eventflow_books_events")
                 .Help("The store's books (G8), system-wide: events received and by state (processed, dead, discarded, in_flight)")
                 .Register(*registry_)),
      store_up_(prometheus::BuildGauge().Name("eventflow_store_up").Help("1 when the store answered the last ping").Register(*registry_)),
      queue_up_(prometheus::BuildGauge().Name("eventflow_queue_up").Help("1 when the queue (Redis) answered the last ping").Register(*registry_)),
      store_commit_duration_(prometheus::BuildHistogram()
                                 .Name("eventflow_store_commit_duration_seconds")
                                 .Help("One group commit in the store, fsync included")
                                 .Register(*registry_)),
      reloads_(prometheus::BuildCounter().Name("eventflow_reloads_total").Help("Config reloads by result (ok, failed)").Register(*registry_)),
      config_generation_(prometheus::BuildGauge()
                             .Name("eventflow_config_generation")
                             .Help("The config generation in force: 1 at start, one more per reload that changed something")
                             .Register(*registry_)
                             .Add({})),
      resident_(prometheus::BuildGauge().Name("process_resident_memory_bytes").Help("Resident memory size in bytes").Register(*registry_).Add({})),
      virtual_(prometheus::BuildGauge().Name("process_virtual_memory_bytes").Help("Virtual memory size in bytes").Register(*registry_).Add({})),
      open_fds_(prometheus::BuildGauge().Name("process_open_fds").Help("Number of open file descriptors").Register(*registry_).Add({})),
      max_fds_(prometheus::BuildGauge().Name("process_max_fds").Help("Maximum number of open file descriptors").Register(*registry_).Add({})),
      cpu_seconds_(prometheus::BuildCounter().Name("process_cpu_seconds_total").Help("Total user and system CPU time spent in seconds").Register(*registry_).Add({})) {
  prometheus::BuildGauge().Name("eventflow_build_info").Help("Build version").Register(*registry_).Add({{"version", version}}).Set(1);
  config_generation_.Set(1);
  reloads("ok");
  reloads("failed");
  prometheus::BuildGauge()
      .Name("process_start_time_seconds")
      .Help("Start time of the process since unix epoch in seconds")
      .Register(*registry_)
      .Add({})
      .Set(static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count()));
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
prometheus::Gauge& Metrics::ingestUncommitted() { return cached(ingest_uncommitted_, {}); }
prometheus::Counter& Metrics::reloads(const std::string& result) { return cached(reloads_, {{"result", result}}); }
prometheus::Counter& Metrics::httpRequests(const std::string& route, int code) {
  return cached(http_requests_, {{"route", route}, {"code", std::to_string(code)}});
}
prometheus::Histogram& Metrics::httpDuration(const std::string& route) {
  return cached(http_duration_, {{"route", route}}, latencyBuckets());
}
prometheus::Counter& Metrics::rateLimited(const std::string& key_name) {
  return cached(rate_limited_, {{"key_name", key_name}});
}
prometheus::Counter& Metrics::dlqReplayed(const std::string& p) { return cached(dlq_replayed_, {{"pipeline", p}}); }
prometheus::Counter& Metrics::retentionPruned(const std::string& p, const std::string& state) {
  return cached(retention_pruned_, {{"pipeline", p}, {"state", state}});
}
prometheus::Counter& Metrics::dlqDiscarded(const std::string& p) { return cached(dlq_discarded_, {{"pipeline", p}}); }
prometheus::Gauge& Metrics::books(const std::string& p, const std::string& state) {
  return cached(books_, {{"pipeline", p}, {"state", state}});
}
prometheus::Gauge& Metrics::storeUp() { return cached(store_up_, {}); }
prometheus::Gauge& Metrics::queueUp() { return cached(queue_up_, {}); }
prometheus::Histogram& Metrics::storeCommitDuration() { return cached(store_commit_duration_, {}, latencyBuckets()); }

void Metrics::declarePipeline(const std::string& pipeline, const std::vector<std::string>& event_types,
                              const std::vector<std::pair<std::string, std::string>>& stages) {
  for (const auto& type : event_types) {
    received(pipeline, type);
    processed(pipeline, type);
  }
  // What the host itself gives (a reject or retry without a type, a throwing
  // plugin, a sink's missing result, a poison event) and the built-in
  // validators' "validation". Types a plugin makes up appear with their first use.
  for (const char* type : {error_type::kValidation, error_type::kRejected, error_type::kTransient,
                           error_type::kPluginException, error_type::kSinkProtocol, error_type::kPoison})
    failed(pipeline, type);
  retried(pipeline);
  deadLettered(pipeline);
  duplicate(pipeline);
  processingDuration(pipeline);
  for (const auto& [stage, plugin] : stages) stageDuration(pipeline, stage, plugin);
  queueDepth(pipeline);
  queuePending(pipeline);
  dlqReplayed(pipeline);
  dlqDiscarded(pipeline);
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

prometheus::Counter& Metrics::pluginRestarts(const std::string& pipeline, const std::string& stage,
                                             const std::string& plugin, const std::string& reason) {
  std::lock_guard lock(plugin_mutex_);
  if (!plugin_restarts_)
    plugin_restarts_ = &prometheus::BuildCounter().Name("eventflow_plugin_restarts_total")
                            .Help("Child processes of isolated plugins restarted, by reason").Register(*registry_);
  return plugin_restarts_->Add({{"pipeline", pipeline}, {"stage", stage}, {"plugin", plugin}, {"reason", reason}});
}

prometheus::Gauge& Metrics::pluginResident(const std::string& pipeline, const std::string& stage, const std::string& child) {
  std::lock_guard lock(plugin_mutex_);
  if (!plugin_resident_)
    plugin_resident_ = &prometheus::BuildGauge().Name("eventflow_plugin_process_resident_memory_bytes")
                            .Help("Resident memory of an isolated plugin's child process").Register(*registry_);
  return plugin_resident_->Add({{"pipeline", pipeline}, {"stage", stage}, {"child", child}});
}

template <class T, class... Args>
T& Metrics::cached(prometheus::Family<T>& family, std::initializer_list<std::pair<const char*, const std::string&>> labels_in,
                   Args&&... args) {
  // Family::Add builds a label map and takes a lock; the hot path (every
  // request, every event) only pays for a shared-locked hash lookup.
  std::string key = std::to_string(reinterpret_cast<std::uintptr_t>(&family));
  for (const auto& [name, value] : labels_in) {
    key += '\x1f';
    key += value;
  }
  {
    std::shared_lock lock(cache_mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) return *static_cast<T*>(it->second);
  }
  // A series not seen yet: each of its label values is admitted while that
  // label has fewer than max_label_values_ distinct values, else it becomes
  // "__other__". Such an overflowing key is not cached (the cache would grow
  // without bound too); it takes this path each time.
  std::unique_lock lock(cache_mutex_);
  if (auto it = cache_.find(key); it != cache_.end()) return *static_cast<T*>(it->second);
  prometheus::Labels map;
  bool overflow = false;
  for (const auto& [name, value] : labels_in) {
    auto& seen = label_values_[name];
    if (seen.contains(value) || seen.size() < max_label_values_) {
      seen.insert(value);
      map.emplace(name, value);
    } else {
      map.emplace(name, kOther);
      overflow = true;
    }
  }
  T& metric = family.Add(map, std::forward<Args>(args)...);
  if (!overflow) cache_.emplace(std::move(key), &metric);
  return metric;
}

namespace {
// Virtual and resident size in bytes, from /proc/self/statm; false if unreadable.
bool memoryBytes(std::size_t& total, std::size_t& resident) {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return false;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  total = pages_total * page;
  resident = pages_resident * page;
  return true;
}
}  // namespace

std::size_t Metrics::residentBytes() {
  std::size_t total = 0, resident = 0;
  return memoryBytes(total, resident) ? resident : 0;
}

void Metrics::updateProcessMetrics() {
  std::lock_guard lock(process_mutex_);
  if (std::size_t total = 0, resident = 0; memoryBytes(total, resident)) {
    virtual_.Set(static_cast<double>(total));
    resident_.Set(static_cast<double>(resident));
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    ++fds;
  if (fds > 0) open_fds_.Set(static_cast<double>(fds - 1));  // less the one the listing itself holds open
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) max_fds_.Set(static_cast<double>(limit.rlim_cur));
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) == 0) {
    const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    if (cpu > cpu_seconds_seen_) cpu_seconds_.Increment(cpu - cpu_seconds_seen_);
    cpu_seconds_seen_ = std::max(cpu_seconds_seen_, cpu);
  }
}

std::string Metrics::serialize() {
  updateProcessMetrics();
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace eventflow::metrics
