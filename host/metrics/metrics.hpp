#pragma once
// The host's Prometheus registry; metric names from DESIGN §7.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>
#include <string>
#include <utility>
#include <vector>

namespace eventflow::metrics {

class Metrics {
 public:
  /// `max_label_values`: distinct values one label takes at most; later ones
  /// are counted under "__other__" (metrics.max_label_values), so a client
  /// sending ever new event types cannot grow the exposition without bound.
  explicit Metrics(const std::string& version, std::size_t max_label_values = 1000);

  prometheus::Counter& received(const std::string& pipeline, const std::string& event_type);
  prometheus::Counter& processed(const std::string& pipeline, const std::string& event_type);
  prometheus::Counter& failed(const std::string& pipeline, const std::string& error_type);
  prometheus::Counter& retried(const std::string& pipeline);
  prometheus::Counter& deadLettered(const std::string& pipeline);
  prometheus::Counter& duplicate(const std::string& pipeline);
  prometheus::Histogram& processingDuration(const std::string& pipeline);
  prometheus::Histogram& stageDuration(const std::string& pipeline, const std::string& stage, const std::string& plugin);
  prometheus::Gauge& queueDepth(const std::string& pipeline);
  prometheus::Gauge& queuePending(const std::string& pipeline);
  prometheus::Gauge& ingestUncommitted();
  prometheus::Counter& httpRequests(const std::string& route, int code);
  prometheus::Histogram& httpDuration(const std::string& route);
  /// Events refused with 429 because key `key_name` was over its rate.
  prometheus::Counter& rateLimited(const std::string& key_name);
  /// Dead events sent back through their pipeline, and dead events discarded (DLQ routes).
  prometheus::Counter& dlqReplayed(const std::string& pipeline);
  /// Terminal events retention deleted (eventflow_retention_pruned_total).
  prometheus::Counter& retentionPruned(const std::string& pipeline, const std::string& state);
  prometheus::Counter& dlqDiscarded(const std::string& pipeline);
  /// The store's books (G8) as of the last scrape, system-wide: `state` is
  /// received, processed, dead (the DLQ's size), discarded or in_flight.
  prometheus::Gauge& books(const std::string& pipeline, const std::string& state);
  /// 1 when the store (or the queue: Redis, or the embedded queue) answered
  /// the last scrape's ping, else 0.
  prometheus::Gauge& storeUp();
  prometheus::Gauge& queueUp();
  /// One group commit's time in the store (the transaction and its fsync).
  prometheus::Histogram& storeCommitDuration();
  /// The config generation in force (1 at start, +1 per reload that changed something).
  prometheus::Gauge& configGeneration() { return config_generation_; }
  /// Reloads by result: ok (applied or nothing to apply), failed (refused, nothing changed).
  prometheus::Counter& reloads(const std::string& result);

  /// Creates at 0 every per-pipeline series a configured pipeline will have,
  /// so that increase() and rate() see its first events: received and
  /// processed for each listed event type, failed for the error types the
  /// host and the built-in plugins give, retries, dead letters, duplicates,
  /// the processing histogram, each stage's histogram and the queue gauges.
  /// `stages` holds (stage label, plugin name) pairs.
  void declarePipeline(const std::string& pipeline, const std::vector<std::string>& event_types,
                       const std::vector<std::pair<std::string, std::string>>& stages);

  /// Metrics a plugin reports through its Context, labelled with it.
  prometheus::Counter& pluginCounter(const std::string& name, const std::string& plugin, const std::string& pipeline);
  prometheus::Histogram& pluginHistogram(const std::string& name, const std::string& plugin, const std::string& pipeline);

  /// Isolated plugins (issue 14): restarts of their child processes by
  /// reason (signal, memory, exit, timeout), and each child's resident memory.
  prometheus::Counter& pluginRestarts(const std::string& pipeline, const std::string& stage, const std::string& plugin,
                                      const std::string& reason);
  prometheus::Gauge& pluginResident(const std::string& pipeline, const std::string& stage, const std::string& child);

  /// Prometheus text exposition of everything, with the standard process_*
  /// metrics read from /proc at that moment.
  std::string serialize();

  /// This process's resident memory, from /proc/self/statm; 0 if unreadable.
  static std::size_t residentBytes();

  static constexpr const char* kOther = "__other__";

 private:
  template <class T, class... Args>
  T& cached(prometheus::Family<T>& family, std::initializer_list<std::pair<const char*, const std::string&>> labels,
            Args&&... args);

  void updateProcessMetrics();

  std::shared_ptr<prometheus::Registry> registry_;
  std::size_t max_label_values_;
  std::shared_mutex cache_mutex_;
  std::unordered_map<std::string, void*> cache_;
  std::map<std::string, std::set<std::string>, std::less<>> label_values_;  // per label name; under cache_mutex_
  prometheus::Family<prometheus::Counter>& received_;
  prometheus::Family<prometheus::Counter>& processed_;
  prometheus::Family<prometheus::Counter>& failed_;
  prometheus::Family<prometheus::Counter>& retried_;
  prometheus::Family<prometheus::Counter>& dead_lettered_;
  prometheus::Family<prometheus::Counter>& duplicate_;
  prometheus::Family<prometheus::Histogram>& processing_duration_;
  prometheus::Family<prometheus::Histogram>& stage_duration_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& queue_pending_;
  prometheus::Family<prometheus::Gauge>& ingest_uncommitted_;
  prometheus::Family<prometheus::Counter>& http_requests_;
  prometheus::Family<prometheus::Histogram>& http_duration_;
  prometheus::Family<prometheus::Counter>& rate_limited_;
  prometheus::Family<prometheus::Counter>& dlq_replayed_;
  prometheus::Family<prometheus::Counter>& retention_pruned_;
  prometheus::Family<prometheus::Counter>& dlq_discarded_;
  prometheus::Family<prometheus::Gauge>& books_;
  prometheus::Family<prometheus::Gauge>& store_up_;
  prometheus::Family<prometheus::Gauge>& queue_up_;
  prometheus::Family<prometheus::Histogram>& store_commit_duration_;
  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Gauge& config_generation_;
  std::mutex plugin_mutex_;
  std::map<std::string, prometheus::Family<prometheus::Counter>*> plugin_counters_;
  std::map<std::string, prometheus::Family<prometheus::Histogram>*> plugin_histograms_;
  prometheus::Family<prometheus::Counter>* plugin_restarts_ = nullptr;  // under plugin_mutex_
  prometheus::Family<prometheus::Gauge>* plugin_resident_ = nullptr;
  std::mutex process_mutex_;
  prometheus::Gauge& resident_;
  prometheus::Gauge& virtual_;
  prometheus::Gauge& open_fds_;
  prometheus::Gauge& max_fds_;
  prometheus::Counter& cpu_seconds_;
  double cpu_seconds_seen_ = 0;
};

}  // namespace eventflow::metrics
