#pragma once
// Reading YAML files into typed specs: the parse with its limits, and a
// Reader that collects every problem with file:line:col so `eventflow
// validate` can show them all. Shared by the host file and pipeline files.

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/expected.hpp"
#include "base/suggest.hpp"
#include "config/config.hpp"
#include "config/values.hpp"

namespace eventflow::config {

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
    // yaml-cpp keeps both of a repeated key and a lookup sees the first: a
    // second `retention:` appended to a file would be silently ignored.
    std::map<std::string, YAML::Mark> seen;
    for (const auto& kv : node) {
      const auto key = kv.first.as<std::string>();
      if (const auto [first, fresh] = seen.emplace(key, kv.first.Mark()); !fresh)
        fail(kv.first, "key '" + key + "' is given twice in " + what + " (first at line " +
                           std::to_string(first->second.line + 1) + ")");
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

  // `isolation: inline | process | {mode: inline | process, seccomp: off | strict}`
  // and `limits: {memory, call_timeout}` of a stage or, as its stages'
  // default, of a pipeline. A stage's `isolation` replaces the pipeline's
  // whole (the short form means seccomp: off); its limits key by key.
  void readIsolation(const YAML::Node& map, IsolationSpec& out) {
    const auto mode = [&](const YAML::Node& n, const char* what) {
      if (!n.IsScalar() || (n.Scalar() != "inline" && n.Scalar() != "process"))
        fail(n, std::string(what) + " must be inline or process");
      else
        out.process = n.Scalar() == "process";
    };
    if (const auto n = map["isolation"]; n && n.IsMap()) {
      checkKeys(n, {"mode", "seccomp"}, "isolation");
      if (!n["mode"]) fail(n, "'isolation' needs 'mode' (inline or process)");
      else mode(n["mode"], "'isolation.mode'");
      out.seccomp = false;
      if (const auto s = n["seccomp"]; s) {
        if (!s.IsScalar() || (s.Scalar() != "off" && s.Scalar() != "strict"))
          fail(s, "'seccomp' must be off or strict");
        else
          out.seccomp = s.Scalar() == "strict";
        if (out.seccomp && n["mode"] && n["mode"].IsScalar() && n["mode"].Scalar() != "process")
          fail(s, "'seccomp: strict' needs 'mode: process': the filter is installed in the plugin's child process");
      }
    } else if (n) {
      mode(n, "'isolation'");
      out.seccomp = false;
    }
    if (const auto l = map["limits"]; l && expectMap(l, "limits")) {
      checkKeys(l, {"memory", "call_timeout"}, "limits");
      readSize(l, "memory", out.memory);
      readDuration(l, "call_timeout", out.call_timeout);
      if (l["memory"] && out.memory < (16ull << 20)) fail(l["memory"], "'memory' must be at least 16MiB");
      if (l["call_timeout"] && out.call_timeout.count() < 1) fail(l["call_timeout"], "'call_timeout' must be at least 1ms");
    }
  }

  // `retention: {done, dead, discarded}`: a duration each, or never.
  void readRetention(const YAML::Node& map, RetentionSpec& out) {
    const auto n = map["retention"];
    if (!n || !expectMap(n, "retention")) return;
    checkKeys(n, {"done", "dead", "discarded"}, "retention");
    const std::pair<const char*, std::optional<Millis>*> slots[] = {
        {"done", &out.done}, {"dead", &out.dead}, {"discarded", &out.discarded}};
    for (const auto& [key, slot] : slots) {
      const auto v = n[key];
      if (!v) continue;
      if (v.IsScalar() && v.Scalar() == "never") {
        *slot = RetentionSpec::kForever;
        continue;
      }
      const auto d = v.IsScalar() ? strictDuration(v.Scalar()) : std::nullopt;
      if (!d || d->count() < 1000) {
        fail(v, std::string("retention '") + key + "' must be a duration of at least 1s, such as 7d or 12h (at most " +
                    std::to_string(kMaxDurationDays) + "d), or never");
        continue;
      }
      *slot = *d;
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

/// A YAML node as JSON: quoted scalars stay strings; numbers, booleans and
/// null as YAML spells them.
nlohmann::json toJson(const YAML::Node& node);

/// `p` taken from `base` when relative, normalized; empty stays empty.
std::string absoluteFrom(const std::filesystem::path& base, const std::string& p);

/// The file parsed, refused with its place when it is not a regular file, is
/// not YAML, or expands past the node and depth limits.
Expected<YAML::Node> parseFile(const std::string& file);

}  // namespace eventflow::config
