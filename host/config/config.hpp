#pragma once
// Typed specs read from eventflow.yaml and pipelines/*.yaml (DESIGN §4).

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <eventflow/plugin.hpp>
#include <nlohmann/json.hpp>

#include "base/expected.hpp"

namespace eventflow::config {

using Millis = std::chrono::milliseconds;

/// A key's ingest budget (`rate: {events_per_second, burst}`): a token
/// bucket that refills at events_per_second and holds at most burst events.
/// A batch takes one token per event; one larger than burst is refused (413).
struct RateSpec {
  double events_per_second = 0;  // > 0; fractions allowed (0.5: one event every 2 s)
  std::uint64_t burst = 0;       // >= 1; default: one second's worth, at least 1
  static constexpr double kMaxEventsPerSecond = 1e9;
  static constexpr std::uint64_t kMaxBurst = 1'000'000'000;
  static constexpr double kMaxBurstSeconds = 86400;  // burst / events_per_second: a day's refill at most
};

struct ApiKey {
  std::string name;
  std::string sha256;
  std::vector<std::string> scopes;
  std::optional<RateSpec> rate;  // absent: no limit
};

/// HTTPS on the server's port; absent (cert_file empty): plain HTTP.
struct TlsConfig {
  std::string cert_file;       // PEM: the server's certificate, then any intermediates
  std::string key_file;        // PEM: its private key, unencrypted
  std::string client_ca_file;  // PEM: when set, every client must present a certificate this CA signed
  bool enabled() const { return !cert_file.empty(); }
};

struct ServerConfig {
  std::string listen = "127.0.0.1:8000";
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_batch = 1000;
  // Nesting of any request body, checked before it is parsed (issue 11).
  std::size_t max_json_depth = 64;
  static constexpr std::size_t kMaxJsonDepth = 1000;
  std::size_t max_connections = 10000;  // open at once; past it a new one is closed at once
  unsigned threads = 0;  // HTTP io threads; 0: one per core, at least 2
  std::vector<ApiKey> api_keys;
  TlsConfig tls;
};

struct IngestConfig {
  /// "utc": a timestamp without an offset is taken as UTC (what the original
  /// EventFlow's producer sends); "reject": it is refused with 422.
  std::string naive_timestamps = "utc";
};

struct MetricsConfig {
  std::size_t max_label_values = 1000;  // distinct values per label; more count as "__other__"
};

struct LimitsConfig {
  std::uint64_t max_rss = 0;  // bytes; over it /health/ready answers 503. 0: no limit
};

struct StoreConfig {
  std::string url = "sqlite:///var/lib/eventflow/eventflow.db";
};

struct QueueConfig {
  std::string type = "embedded";
  std::string url = "redis://127.0.0.1:6379";
  std::string stream_prefix = "eventflow:";
  std::size_t max_depth = 100000;  // events waiting per pipeline before ingest answers 503
  bool max_depth_set = false;      // given in the file or the environment (see queueBounds)
  std::uint64_t max_bytes = 64ull << 20;  // embedded: memory of the events waiting per pipeline
  Millis claim_idle{30'000};       // redis: entries idle this long are taken from stopped consumers
};

/// What a pipeline's queue admits before ingest answers 503 `overloaded`
/// (and a DLQ replay pauses). The embedded queue is bounded by the memory its
/// waiting events hold, max_bytes, and by their count only when max_depth is
/// set: a burst of small events is taken while the host keeps up, and large
/// ones cannot fill the process's memory. Redis is bounded by count, its
/// memory being Redis's.
struct QueueBounds {
  std::size_t max_depth;
  std::uint64_t max_bytes;
};
QueueBounds queueBounds(const QueueConfig& queue);

struct LoggingConfig {
  std::string level = "info";
  std::string format = "json";
};

struct DlqConfig {
  unsigned replay_rate = 1000;  // events per second a bulk replay sends at most
  std::size_t max_page_bytes = 8 << 20;  // GET /dlq: events' bytes per page (at least one event)
};

/// How long a terminal event is kept (issue 16, DESIGN §4 `retention`): an
/// event in that state is pruned once its last change (updated_at) is older,
/// with its failed_events and processed_events rows. nullopt: this file does
/// not say (a pipeline's falls back to the host's); kForever: never pruned.
struct RetentionSpec {
  static constexpr Millis kForever = Millis::max();
  std::optional<Millis> done;
  std::optional<Millis> dead;
  std::optional<Millis> discarded;

  /// This spec's keys, and `base`'s where this one says nothing.
  RetentionSpec over(const RetentionSpec& base) const {
    return {.done = done ? done : base.done,
            .dead = dead ? dead : base.dead,
            .discarded = discarded ? discarded : base.discarded};
  }
  bool operator==(const RetentionSpec&) const = default;
};

struct HostConfig {
  std::string file;  // where it was read from; empty for built-in defaults
  ServerConfig server;
  IngestConfig ingest;
  MetricsConfig metrics;
  LimitsConfig limits;
  StoreConfig store;
  QueueConfig queue;
  std::vector<std::string> plugin_paths{"/usr/lib/eventflow/plugins"};
  std::vector<std::string> pipeline_paths{"/etc/eventflow/pipelines"};
  LoggingConfig logging;
  DlqConfig dlq;
  Millis republish_after{30'000};
  Millis shutdown_timeout{30'000};
  RetentionSpec retention{.done = std::chrono::days(7), .dead = std::chrono::days(30), .discarded = std::chrono::days(7)};
};

struct RetrySpec {
  unsigned max_attempts = 5;
  Millis initial_backoff{200};
  double multiplier = 2.0;
  Millis max_backoff{30'000};
  bool full_jitter = true;
};

/// How a stage's plugin runs (issue 14): in the worker thread, or in a child
/// process that a crash, leak or hang of the plugin cannot take the host with.
struct IsolationSpec {
  bool process = false;
  // `isolation: {mode: process, seccomp: strict}`: the child runs the
  // plugin's calls under a seccomp allow-list (host/isolation/seccomp.cpp).
  bool seccomp = false;
  std::uint64_t memory = 256ull << 20;  // RLIMIT_AS of the child
  Millis call_timeout{2'000};           // one plugin call; past it the child is killed
};

struct StageSpec {
  Kind kind = Kind::validator;
  IsolationSpec isolation;   // the pipeline's default unless the stage says
  std::string plugin;
  std::string path;          // explicit .so, absolute; empty: found by name
  nlohmann::json config = nlohmann::json::object();
  std::string where;         // "file:line:col" of the stage, for messages
  // "file:line:col" of each key and list item in `config`, by dotted path
  // ("rules.0.value"), so a schema error can point at the key, not the stage.
  std::map<std::string, std::string> config_where;
};

struct PipelineSpec {
  std::string name;
  std::string file;
  std::string dir;           // folder of `file`: base for relative paths in configs
  std::vector<std::string> event_types;
  bool catch_all = false;
  unsigned concurrency = 2;
  RetrySpec retry;
  unsigned max_deliveries = 5;
  IsolationSpec isolation;   // default of its stages
  RetentionSpec retention;   // its own keys only: the host's apply to the rest
  std::vector<StageSpec> stages;
};

/// Reads the host file; relative paths in it are taken from its folder, and
/// EVENTFLOW_* environment variables (or EVENTFLOW_*_FILE) override values.
Expected<HostConfig> loadHostConfig(const std::string& path);

/// Reads every pipeline file found under `paths` (folders: *.yaml, *.yml) and
/// checks that each event type routes to one pipeline.
Expected<std::vector<PipelineSpec>> loadPipelines(const std::vector<std::string>& paths);

/// Reads one pipeline file.
Expected<PipelineSpec> loadPipelineFile(const std::string& file);

/// Same checks for specs already read (names unique, routing unambiguous).
Expected<void> checkRouting(const std::vector<PipelineSpec>& pipelines);

/// Reads a YAML file as JSON, the way stage configs are read (quoted scalars
/// stay strings; numbers, booleans and null as YAML spells them).
Expected<nlohmann::json> loadYamlAsJson(const std::string& file);

}  // namespace eventflow::config
