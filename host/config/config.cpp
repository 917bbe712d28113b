#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/suggest.hpp"
#include "config/environment.hpp"
#include "config/pem.hpp"
#include "config/values.hpp"
#include "config/yaml_reader.hpp"

// The host file (eventflow.yaml); pipeline files are read in
// pipeline_file.cpp, the YAML and the values in yaml_reader.cpp and values.cpp.
namespace eventflow::config {
namespace fs = std::filesystem;
namespace {

// server.tls: both files are read now, as the server will read them, so a
// missing file, a bad PEM or a key that is not the certificate's is refused
// by `validate` with its place, not found at `serve`'s start.
// An API key's `rate: {events_per_second, burst}`. The bounds keep the
// limiter's nanosecond arithmetic (burst / events_per_second seconds) far
// from int64's range; nothing sensible lies beyond them.
std::optional<RateSpec> readRate(Reader& r, const YAML::Node& n) {
  if (!r.expectMap(n, "an api key's 'rate'")) return std::nullopt;
  r.checkKeys(n, {"events_per_second", "burst"}, "an api key's rate");
  RateSpec rate;
  const YAML::Node eps = n["events_per_second"];
  double v = 0;
  if (!eps) {
    r.fail(n, "'rate' needs 'events_per_second' (a number > 0); omit 'rate' for no limit");
    return std::nullopt;
  }
  if (!eps.IsScalar() || !YAML::convert<double>::decode(eps, v) || !std::isfinite(v) || v <= 0 ||
      v > RateSpec::kMaxEventsPerSecond) {
    const std::string given = eps.IsScalar() ? "'" + eps.Scalar() + "'" : eps.IsMap() ? "a mapping" : "a list";
    r.fail(eps, "'events_per_second' must be a number > 0 and at most 1e9, not " + given + " (omit 'rate' for no limit)");
    return std::nullopt;
  }
  rate.events_per_second = v;
  rate.burst = static_cast<std::uint64_t>(std::max(1.0, std::ceil(v)));
  if (n["burst"]) {
    std::uint64_t burst = 0;
    r.readUnsigned(n, "burst", burst, 1);
    if (burst == 0) return std::nullopt;  // readUnsigned named the problem
    if (burst > RateSpec::kMaxBurst) {
      r.fail(n["burst"], "'burst' must be at most " + std::to_string(RateSpec::kMaxBurst));
      return std::nullopt;
    }
    rate.burst = burst;
  }
  if (static_cast<double>(rate.burst) / rate.events_per_second > RateSpec::kMaxBurstSeconds) {
    r.fail(n, "'burst' (" + std::to_string(rate.burst) + ") takes more than a day to refill at " + eps.Scalar() +
                  " events per second; lower it or raise events_per_second");
    return std::nullopt;
  }
  return rate;
}

void readTls(Reader& r, const YAML::Node& t, const fs::path& base, TlsConfig& tls) {
  r.checkKeys(t, {"cert_file", "key_file", "client_ca_file"}, "server.tls");
  r.readString(t, "cert_file", tls.cert_file);
  r.readString(t, "key_file", tls.key_file);
  r.readString(t, "client_ca_file", tls.client_ca_file);
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    r.fail(t, "server.tls needs both 'cert_file' and 'key_file' (PEM files)");
    tls = {};
    return;
  }
  for (auto* p : {&tls.cert_file, &tls.key_file, &tls.client_ca_file})
    if (!p->empty()) *p = absoluteFrom(base, *p);
  auto check = [&](const char* key, const std::string& file, const std::string& problem) {
    if (!problem.empty()) r.fail(t[key], std::string("server.tls.") + key + " '" + file + "' " + problem);
  };
  const std::string cert_problem = certificateProblem(tls.cert_file);
  check("cert_file", tls.cert_file, cert_problem);
  check("key_file", tls.key_file, privateKeyProblem(tls.key_file, cert_problem.empty() ? tls.cert_file : ""));
  if (!tls.client_ca_file.empty()) check("client_ca_file", tls.client_ca_file, certificateProblem(tls.client_ca_file));
}

}  // namespace

Expected<HostConfig> loadHostConfig(const std::string& path) {
  auto parsed = parseFile(path);
  if (!parsed) return parsed.error();
  YAML::Node root = *parsed;
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  Reader r(path);
  if (!r.expectMap(root, "the host config")) return r.error();
  std::vector<std::string> env_errors;
  applyEnvironment(root, env_errors);
  for (const auto& e : env_errors) r.failText(e);

  HostConfig c;
  c.file = fs::absolute(path).lexically_normal().string();
  const fs::path base = fs::path(c.file).parent_path();
  r.checkKeys(root,
              {"server", "ingest", "metrics", "limits", "store", "queue", "plugins", "pipelines", "logging", "relay",
               "dlq", "shutdown_timeout", "retention"},
              "the host config");
  if (auto s = root["server"]; s && r.expectMap(s, "server")) {
    r.checkKeys(s, {"listen", "max_body_bytes", "max_batch", "max_json_depth", "max_connections", "threads", "api_keys", "tls"},
                "server");
    r.readString(s, "listen", c.server.listen);
    if (const auto problem = listenProblem(c.server.listen); !problem.empty() && s["listen"])
      r.fail(s["listen"], "server.listen '" + c.server.listen + "': " + problem);
    r.readUnsigned(s, "max_body_bytes", c.server.max_body_bytes, 64);
    r.readUnsigned(s, "max_batch", c.server.max_batch, 1);
    r.readUnsigned(s, "threads", c.server.threads);
    r.readUnsigned(s, "max_json_depth", c.server.max_json_depth, 1);
    // Documents are dumped and copied recursively, a stack frame per level.
    if (c.server.max_json_depth > ServerConfig::kMaxJsonDepth)
      r.fail(s["max_json_depth"], "'max_json_depth' must be at most " + std::to_string(ServerConfig::kMaxJsonDepth));
    r.readUnsigned(s, "max_connections", c.server.max_connections, 1);
    if (auto t = s["tls"]; t && r.expectMap(t, "server.tls")) readTls(r, t, base, c.server.tls);
    if (auto keys = s["api_keys"]; keys) {
      if (!keys.IsSequence()) {
        r.fail(keys, "'api_keys' must be a list");
      } else {
        for (const auto& k : keys) {
          if (!r.expectMap(k, "an api key")) continue;
          r.checkKeys(k, {"name", "sha256", "scopes", "rate"}, "an api key");
          ApiKey key;
          r.readString(k, "name", key.name);
          r.readString(k, "sha256", key.sha256);
          r.readStringList(k, "scopes", key.scopes);
          if (key.sha256.size() != 64) r.fail(k, "api key needs 'sha256': the hex SHA-256 of the key");
          for (const auto& scope : key.scopes)
            if (scope != "ingest" && scope != "admin" && scope != "metrics")
              r.fail(k, "unknown scope '" + scope + "' (ingest, admin, metrics)" +
                            didYouMean(scope, {"ingest", "admin", "metrics"}));
          if (auto rate = k["rate"]; rate) key.rate = readRate(r, rate);
          c.server.api_keys.push_back(std::move(key));
        }
      }
    }
  }
  if (auto s = root["ingest"]; s && r.expectMap(s, "ingest")) {
    r.checkKeys(s, {"naive_timestamps"}, "ingest");
    std::string naive = c.ingest.naive_timestamps;
    r.readString(s, "naive_timestamps", naive);
    if (naive != "utc" && naive != "reject")
      r.fail(s["naive_timestamps"], "'naive_timestamps' must be utc or reject, not '" + naive + "'");
    c.ingest.naive_timestamps = naive;
  }
  if (auto s = root["metrics"]; s && r.expectMap(s, "metrics")) {
    r.checkKeys(s, {"max_label_values"}, "metrics");
    r.readUnsigned(s, "max_label_values", c.metrics.max_label_values, 1);
  }
  if (auto s = root["limits"]; s && r.expectMap(s, "limits")) {
    r.checkKeys(s, {"max_rss"}, "limits");
    r.readSize(s, "max_rss", c.limits.max_rss);
  }
  if (auto s = root["store"]; s && r.expectMap(s, "store")) {
    r.checkKeys(s, {"url"}, "store");
    r.readString(s, "url", c.store.url);
    if (c.store.url.rfind("sqlite://", 0) != 0 && c.store.url.rfind("postgresql://", 0) != 0 &&
        c.store.url.rfind("postgres://", 0) != 0)
      r.fail(s["url"], "'url' must start with sqlite:// or postgresql://");
  }
  // A relative SQLite path is taken from the config file's folder, like every other path.
  if (c.store.url.rfind("sqlite://", 0) == 0) {
    const std::string p = c.store.url.substr(9);
    if (!p.empty() && p.front() != '/') c.store.url = "sqlite://" + absoluteFrom(base, p);
  }
  if (auto s = root["queue"]; s && r.expectMap(s, "queue")) {
    r.checkKeys(s, {"type", "url", "stream_prefix", "max_depth", "max_bytes", "claim_idle"}, "queue");
    r.readDuration(s, "claim_idle", c.queue.claim_idle);
    r.readString(s, "type", c.queue.type);
    r.readString(s, "url", c.queue.url);
    r.readString(s, "stream_prefix", c.queue.stream_prefix);
    r.readUnsigned(s, "max_depth", c.queue.max_depth, 1);
    c.queue.max_depth_set = static_cast<bool>(s["max_depth"]);
    r.readSize(s, "max_bytes", c.queue.max_bytes);
    if (c.queue.type != "embedded" && c.queue.type != "redis")
      r.fail(s["type"], "queue 'type' must be embedded or redis, not '" + c.queue.type + "'");
    else if (s["max_bytes"] && c.queue.type == "redis")
      r.fail(s["max_bytes"], "queue 'max_bytes' bounds the embedded queue only; Redis keeps the events in its own "
                             "memory (bound that with Redis's maxmemory, the queue with max_depth)");
    else if (s["max_bytes"] && c.queue.max_bytes < 1024)
      r.fail(s["max_bytes"], "queue 'max_bytes' must be at least 1KiB");
  }
  if (auto s = root["plugins"]; s && r.expectMap(s, "plugins")) {
    r.checkKeys(s, {"paths"}, "plugins");
    r.readStringList(s, "paths", c.plugin_paths);
  }
  if (auto s = root["pipelines"]; s && r.expectMap(s, "pipelines")) {
    r.checkKeys(s, {"paths"}, "pipelines");
    r.readStringList(s, "paths", c.pipeline_paths);
  }
  for (auto& p : c.plugin_paths) p = absoluteFrom(base, p);
  for (auto& p : c.pipeline_paths) p = absoluteFrom(base, p);
  if (auto s = root["logging"]; s && r.expectMap(s, "logging")) {
    r.checkKeys(s, {"level", "format"}, "logging");
    r.readString(s, "level", c.logging.level);
    r.readString(s, "format", c.logging.format);
    static const std::set<std::string> kLevels{"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (!kLevels.contains(c.logging.level)) r.fail(s["level"], "unknown log level '" + c.logging.level + "'");
    if (c.logging.format != "json" && c.logging.format != "text")
      r.fail(s["format"], "log 'format' must be json or text");
  }
  if (auto s = root["relay"]; s && r.expectMap(s, "relay")) {
    r.checkKeys(s, {"republish_after"}, "relay");
    r.readDuration(s, "republish_after", c.republish_after);
  }
  if (auto s = root["dlq"]; s && r.expectMap(s, "dlq")) {
    r.checkKeys(s, {"replay_rate", "max_page_bytes"}, "dlq");
    r.readUnsigned(s, "replay_rate", c.dlq.replay_rate, 1);
    r.readUnsigned(s, "max_page_bytes", c.dlq.max_page_bytes, 1024);
  }
  r.readDuration(root, "shutdown_timeout", c.shutdown_timeout);
  r.readRetention(root, c.retention);
  if (!r.ok()) return r.error();
  return c;
}

Expected<nlohmann::json> loadYamlAsJson(const std::string& file) {
  auto parsed = parseFile(file);
  if (!parsed) return parsed.error();
  return toJson(*parsed);
}

QueueBounds queueBounds(const QueueConfig& queue) {
  if (queue.type != "embedded") return {queue.max_depth, std::numeric_limits<std::uint64_t>::max()};
  return {queue.max_depth_set ? queue.max_depth : std::numeric_limits<std::size_t>::max(), queue.max_bytes};
}

}  // namespace eventflow::config
