#include "config/environment.hpp"

#include <cstdlib>
#include <sstream>
#include <string_view>

#include "base/expected.hpp"
#include "config/files.hpp"

namespace eventflow::config {
namespace {

// A secret (a store URL with its password) is small; a FIFO would block
// start-up and /dev/zero would never end, so only regular files, and only so much.
constexpr std::size_t kMaxSecretFileBytes = 64 * 1024;

Expected<std::string> readSecretFile(const std::string& variable, const std::string& path) {
  auto read = readSmallFile(path, kMaxSecretFileBytes);
  if (!read) return makeError(variable + "=" + path + ": " + read.error().message);
  std::string s = std::move(*read);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

void applyEnvironment(YAML::Node& root, std::vector<std::string>& errors) {
  static const struct {
    const char* env;
    const char* section;
    const char* key;
    bool list;
  } kOverrides[] = {
      {"EVENTFLOW_SERVER_LISTEN", "server", "listen", false},
      {"EVENTFLOW_SERVER_MAX_BODY_BYTES", "server", "max_body_bytes", false},
      {"EVENTFLOW_SERVER_MAX_BATCH", "server", "max_batch", false},
      {"EVENTFLOW_SERVER_THREADS", "server", "threads", false},
      {"EVENTFLOW_SERVER_MAX_JSON_DEPTH", "server", "max_json_depth", false},
      {"EVENTFLOW_SERVER_MAX_CONNECTIONS", "server", "max_connections", false},
      {"EVENTFLOW_SERVER_TLS_CERT_FILE", "server.tls", "cert_file", false},
      {"EVENTFLOW_SERVER_TLS_KEY_FILE", "server.tls", "key_file", false},
      {"EVENTFLOW_SERVER_TLS_CLIENT_CA_FILE", "server.tls", "client_ca_file", false},
      {"EVENTFLOW_STORE_URL", "store", "url", false},
      {"EVENTFLOW_QUEUE_TYPE", "queue", "type", false},
      {"EVENTFLOW_QUEUE_URL", "queue", "url", false},
      {"EVENTFLOW_QUEUE_STREAM_PREFIX", "queue", "stream_prefix", false},
      {"EVENTFLOW_QUEUE_MAX_DEPTH", "queue", "max_depth", false},
      {"EVENTFLOW_QUEUE_MAX_BYTES", "queue", "max_bytes", false},
      {"EVENTFLOW_QUEUE_CLAIM_IDLE", "queue", "claim_idle", false},
      {"EVENTFLOW_PLUGINS_PATHS", "plugins", "paths", true},
      {"EVENTFLOW_PIPELINES_PATHS", "pipelines", "paths", true},
      {"EVENTFLOW_LOGGING_LEVEL", "logging", "level", false},
      {"EVENTFLOW_LOGGING_FORMAT", "logging", "format", false},
      {"EVENTFLOW_RELAY_REPUBLISH_AFTER", "relay", "republish_after", false},
      {"EVENTFLOW_DLQ_REPLAY_RATE", "dlq", "replay_rate", false},
      {"EVENTFLOW_DLQ_MAX_PAGE_BYTES", "dlq", "max_page_bytes", false},
      {"EVENTFLOW_INGEST_NAIVE_TIMESTAMPS", "ingest", "naive_timestamps", false},
      {"EVENTFLOW_METRICS_MAX_LABEL_VALUES", "metrics", "max_label_values", false},
      {"EVENTFLOW_LIMITS_MAX_RSS", "limits", "max_rss", false},
      {"EVENTFLOW_SHUTDOWN_TIMEOUT", nullptr, "shutdown_timeout", false},
  };
  for (const auto& o : kOverrides) {
    std::string value;
    if (const char* v = std::getenv(o.env)) {
      value = v;
    } else if (const char* f = std::getenv((std::string(o.env) + "_FILE").c_str())) {
      auto read = readSecretFile(std::string(o.env) + "_FILE", f);
      if (!read) {
        errors.push_back(read.error().message);
        continue;
      }
      value = std::move(*read);
    } else {
      continue;
    }
    // "server.tls": a section within a section. Built as one expression:
    // assigning a YAML::Node to another would write through, not rebind.
    const std::string_view section = o.section ? o.section : "";
    const auto dot = section.find('.');
    YAML::Node target = section.empty()                ? root
                        : dot == std::string_view::npos ? root[std::string(section)]
                                                        : root[std::string(section.substr(0, dot))][std::string(section.substr(dot + 1))];
    if (o.list) {
      YAML::Node seq(YAML::NodeType::Sequence);
      std::stringstream ss(value);
      for (std::string item; std::getline(ss, item, ':');)
        if (!item.empty()) seq.push_back(item);
      target[o.key] = seq;
    } else {
      target[o.key] = value;
    }
  }
}

}  // namespace eventflow::config
