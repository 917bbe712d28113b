#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string_view>

#include <eventflow/time.hpp>

#include "base/suggest.hpp"
#include "base/utf8.hpp"
#include "config/files.hpp"
#include "config/pem.hpp"

namespace eventflow::config {
namespace fs = std::filesystem;
namespace {

// Longer than any timeout or interval means anything; far enough from the
// int64 milliseconds that a product of two of them cannot overflow.
constexpr std::int64_t kMaxDurationDays = 365;

// parseDuration (the SDK's) also takes what from_chars takes, such as "1e3s";
// a config takes digits, an optional fraction and a unit only, as people write
// them. (parseDuration refuses what int64 milliseconds cannot hold.)
std::optional<Millis> strictDuration(const std::string& s) {
  static const std::regex kShape("[0-9]{1,12}(\\.[0-9]{1,9})?(ms|s|m|h|d)?");
  if (!std::regex_match(s, kShape)) return std::nullopt;
  const auto d = parseDuration(s);
  if (!d || *d > std::chrono::hours(24 * kMaxDurationDays)) return std::nullopt;
  return d;
}

// HOST:PORT as the HTTP server binds it: an IPv4 address, [IPv6], or a host
// name, and a port 1-65535 (0: any free port, for tests). Empty when fine.
std::string listenProblem(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return "must be HOST:PORT, such as 127.0.0.1:8000";
  const std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535)
    return "port '" + port + "' must be a number from 1 to 65535 (HOST:PORT, such as 127.0.0.1:8000)";
  if (host.empty()) return "needs a host before the port: 127.0.0.1 (this machine) or 0.0.0.0 (every interface)";
  unsigned char addr[16];
  if (host.front() == '[') {
    if (host.back() != ']' || ::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), addr) != 1)
      return "'" + host + "' is not an IPv6 address in brackets, such as [::1]";
    return {};
  }
  if (host.find(':') != std::string::npos) return "an IPv6 address goes in brackets: [" + host + "]:" + port;
  // All digits and dots: meant as an IPv4 address, and must be one (999.1.1.1 is not).
  if (host.find_first_not_of("0123456789.") == std::string::npos) {
    if (::inet_pton(AF_INET, host.c_str(), addr) != 1) return "'" + host + "' is not an IPv4 address";
    return {};
  }
  static const std::regex kName("([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*");
  if (host.size() > 253 || !std::regex_match(host, kName)) return "'" + host + "' is not a host name or address";
  return {};
}

// Collects every problem in a file so `eventflow validate` can show them all.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  std::string where(const YAML::Node& node) const {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return file_ + " (from environment)";
    return file_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  void fail(const YAML::Node& node, const std::string& message) { errors_.push_back(where(node) + ": " + message); }
  void failText(const std::string& message) { errors_.push_back(message); }
  bool ok() const { return errors_.empty(); }
  Error error() const {
    std::string joined;
    for (const auto& e : errors_) joined += (joined.empty() ? "" : "\n") + e;
    return makeError(joined);
  }

  bool expectMap(const YAML::Node& node, const std::string& what) {
    if (node.IsMap()) return true;
    fail(node, what + " must be a mapping");
    return false;
  }

  void checkKeys(const YAML::Node& node, std::initializer_list<const char*> allowed, const std::string& what) {
    for (const auto& kv : node) {
      const auto key = kv.first.as<std::string>();
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        fail(kv.first, "unknown key '" + key + "' in " + what + didYouMean(key, {allowed.begin(), allowed.end()}) +
                           " (expected one of: " + list + ")");
      }
    }
  }

  // Where each key and item under `node` is, by dotted path.
  void locate(const YAML::Node& node, const std::string& path, std::map<std::string, std::string>& out) const {
    const auto join = [&](const std::string& part) { return path.empty() ? part : path + "." + part; };
    if (node.IsMap()) {
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) continue;
        const std::string at = join(kv.first.Scalar());
        out[at] = where(kv.first);
        locate(kv.second, at, out);
      }
    } else if (node.IsSequence()) {
      std::size_t i = 0;
      for (const auto& item : node) {
        const std::string at = join(std::to_string(i++));
        out[at] = where(item);
        locate(item, at, out);
      }
    }
  }

  void readString(const YAML::Node& map, const char* key, std::string& out) {
    const YAML::Node n = map[key];
    if (!n) return;
    if (!n.IsScalar()) return fail(n, std::string("'") + key + "' must be a string");
    out = n.Scalar();
  }

  template <class T>
  void readUnsigned(const YAML::Node& map, const char* key, T& out, std::uint64_t min = 0) {
    const YAML::Node n = map[key];
    if (!n) return;
    std::uint64_t v = 0;
    if (!n.IsScalar() || !YAML::convert<std::uint64_t>::decode(n, v) || n.Scalar().find('-') != std::string::npos ||
        v < min)
      return fail(n, std::string("'") + key + "' must be a whole number" + (min ? " >= " + std::to_string(min) : ""));
    out = static_cast<T>(v);
  }

  void readDouble(const YAML::Node& map, const char* key, double& out, double min) {
    const YAML::Node n = map[key];
    if (!n) return;
    double v = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || !std::isfinite(v) || v < min)
      return fail(n, std::string("'") + key + "' must be a number >= " + std::to_string(min));
    out = v;
  }

  void readDuration(const YAML::Node& map, const char* key, Millis& out) {
    const YAML::Node n = map[key];
    if (!n) return;
    const auto d = n.IsScalar() ? strictDuration(n.Scalar()) : std::nullopt;
    if (!d)
      return fail(n, std::string("'") + key + "' must be a duration such as 250ms, 30s, 5m (at most " +
                         std::to_string(kMaxDurationDays) + "d)");
    out = *d;
  }

  // A byte size: a whole number of bytes, or one with a unit (KiB, MiB, GiB;
  // KB, MB, GB in powers of ten).
  void readSize(const YAML::Node& map, const char* key, std::uint64_t& out) {
    const YAML::Node n = map[key];
    if (!n) return;
    const auto size = n.IsScalar() ? parseSize(n.Scalar()) : std::nullopt;
    if (!size) return fail(n, std::string("'") + key + "' must be a size such as 512MiB, 2GiB or a number of bytes");
    out = *size;
  }

  static std::optional<std::uint64_t> parseSize(std::string_view text) {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end == text.data()) return std::nullopt;
    const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    static const std::pair<std::string_view, std::uint64_t> kUnits[] = {
        {"", 1},          {"B", 1},          {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30},
        {"KB", 1000},     {"MB", 1000'000},  {"GB", 1000'000'000}};
    for (const auto& [name, factor] : kUnits)
      if (unit == name) {
        if (value > std::numeric_limits<std::uint64_t>::max() / factor) return std::nullopt;
        return value * factor;
      }
    return std::nullopt;
  }

  // `isolation: inline | process` and `limits: {memory, call_timeout}` of a
  // stage or, as its stages' default, of a pipeline.
  void readIsolation(const YAML::Node& map, IsolationSpec& out) {
    if (const auto n = map["isolation"]; n) {
      if (!n.IsScalar() || (n.Scalar() != "inline" && n.Scalar() != "process"))
        fail(n, "'isolation' must be inline or process");
      else
        out.process = n.Scalar() == "process";
    }
    if (const auto l = map["limits"]; l && expectMap(l, "limits")) {
      checkKeys(l, {"memory", "call_timeout"}, "limits");
      readSize(l, "memory", out.memory);
      readDuration(l, "call_timeout", out.call_timeout);
      if (l["memory"] && out.memory < (16ull << 20)) fail(l["memory"], "'memory' must be at least 16MiB");
      if (l["call_timeout"] && out.call_timeout.count() < 1) fail(l["call_timeout"], "'call_timeout' must be at least 1ms");
    }
  }

  void readStringList(const YAML::Node& map, const char* key, std::vector<std::string>& out) {
    const YAML::Node n = map[key];
    if (!n) return;
    if (n.IsScalar()) {
      out = {n.Scalar()};
      return;
    }
    if (!n.IsSequence()) return fail(n, std::string("'") + key + "' must be a list of strings");
    out.clear();
    for (const auto& item : n) {
      if (!item.IsScalar()) {
        fail(item, std::string("items of '") + key + "' must be strings");
        continue;
      }
      out.push_back(item.Scalar());
    }
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<std::string> errors_;
};

nlohmann::json toJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Sequence: {
      auto arr = nlohmann::json::array();
      for (const auto& item : node) arr.push_back(toJson(item));
      return arr;
    }
    case YAML::NodeType::Map: {
      auto obj = nlohmann::json::object();
      for (const auto& kv : node) obj[kv.first.as<std::string>()] = toJson(kv.second);
      return obj;
    }
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted: always a string
  if (s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  std::int64_t i = 0;
  if (YAML::convert<std::int64_t>::decode(node, i) && s.find_first_of(".eE") == std::string::npos) return i;
  double d = 0;
  if (YAML::convert<double>::decode(node, d)) return d;
  return s;
}

std::string absoluteFrom(const fs::path& base, const std::string& p) {
  if (p.empty()) return p;
  fs::path path(p);
  if (path.is_relative()) path = base / path;
  return path.lexically_normal().string();
}

// Aliases let a 1 KB file name a billion nodes ("nine levels of nine
// aliases"); every reader after the parser walks them expanded. No real
// config comes near this many, and walking it costs a few milliseconds.
constexpr std::size_t kMaxYamlNodes = 100'000;
// Nesting deeper than any config needs; the readers recurse.
constexpr std::size_t kMaxYamlDepth = 64;

std::string at(const std::string& file, const YAML::Mark& mark) {
  if (mark.is_null()) return file;
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

// Walks the tree as the readers will, aliases expanded, before any of them
// does: too many nodes, too deep, or a key that is not a scalar (which no
// reader can take as a name) is refused with where it happens.
Expected<void> checkShape(const std::string& file, const YAML::Node& node, std::size_t depth, std::size_t& count) {
  if (++count > kMaxYamlNodes)
    return makeError(at(file, node.Mark()) + ": the file expands to more than " + std::to_string(kMaxYamlNodes) +
                     " YAML nodes (aliases counted); refusing it");
  if (depth > kMaxYamlDepth)
    return makeError(at(file, node.Mark()) + ": nested more than " + std::to_string(kMaxYamlDepth) + " levels deep");
  if (node.IsMap()) {
    for (const auto& kv : node) {
      if (!kv.first.IsScalar())
        return makeError(at(file, kv.first.Mark()) + ": a mapping key must be a plain value, not a list or mapping");
      if (auto ok = checkShape(file, kv.second, depth + 1, count); !ok) return ok;
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node)
      if (auto ok = checkShape(file, item, depth + 1, count); !ok) return ok;
  }
  return {};
}

Expected<YAML::Node> parseFile(const std::string& file) {
  std::error_code ec;
  const auto status = fs::status(file, ec);
  if (ec || !fs::exists(status)) return makeError(file + ": cannot read file: no such file");
  if (fs::is_directory(status)) return makeError(file + ": is a folder, not a YAML file");
  if (!fs::is_regular_file(status)) return makeError(file + ": not a regular file");
  std::ifstream in(file);
  if (!in) return makeError(file + ": cannot read file");
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::Exception& e) {
    return makeError(file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                     ": invalid YAML: " + e.msg);
  } catch (const std::exception& e) {
    return makeError(file + ": cannot read file: " + e.what());
  }
  std::size_t count = 0;
  if (auto ok = checkShape(file, root, 0, count); !ok) return ok.error();
  return root;
}

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

// Environment overrides land in the YAML tree before it is read, so they pass
// the same checks as the file.
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

// server.tls: both files are read now, as the server will read them, so a
// missing file, a bad PEM or a key that is not the certificate's is refused
// by `validate` with its place, not found at `serve`'s start.
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
               "dlq", "shutdown_timeout"},
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
          r.checkKeys(k, {"name", "sha256", "scopes"}, "an api key");
          ApiKey key;
          r.readString(k, "name", key.name);
          r.readString(k, "sha256", key.sha256);
          r.readStringList(k, "scopes", key.scopes);
          if (key.sha256.size() != 64) r.fail(k, "api key needs 'sha256': the hex SHA-256 of the key");
          for (const auto& scope : key.scopes)
            if (scope != "ingest" && scope != "admin" && scope != "metrics")
              r.fail(k, "unknown scope '" + scope + "' (ingest, admin, metrics)" +
                            didYouMean(scope, {"ingest", "admin", "metrics"}));
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
    r.checkKeys(s, {"type", "url", "stream_prefix", "max_depth", "claim_idle"}, "queue");
    r.readDuration(s, "claim_idle", c.queue.claim_idle);
    r.readString(s, "type", c.queue.type);
    r.readString(s, "url", c.queue.url);
    r.readString(s, "stream_prefix", c.queue.stream_prefix);
    r.readUnsigned(s, "max_depth", c.queue.max_depth, 1);
    if (c.queue.type != "embedded" && c.queue.type != "redis")
      r.fail(s["type"], "queue 'type' must be embedded or redis, not '" + c.queue.type + "'");
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
  if (!r.ok()) return r.error();
  return c;
}

Expected<PipelineSpec> loadPipelineFile(const std::string& file) {
  auto parsed = parseFile(file);
  if (!parsed) return parsed.error();
  const YAML::Node root = *parsed;
  Reader r(file);
  if (!r.expectMap(root, "a pipeline file")) return r.error();
  PipelineSpec p;
  p.file = fs::absolute(file).lexically_normal().string();
  p.dir = fs::path(p.file).parent_path().string();
  r.checkKeys(root, {"pipeline", "match", "concurrency", "retry", "max_deliveries", "isolation", "limits", "stages"},
              "a pipeline");
  r.readIsolation(root, p.isolation);
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
      if (spec.kind == Kind::sink) spec.isolation.process = false;
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

Expected<nlohmann::json> loadYamlAsJson(const std::string& file) {
  auto parsed = parseFile(file);
  if (!parsed) return parsed.error();
  return toJson(*parsed);
}

}  // namespace eventflow::config
