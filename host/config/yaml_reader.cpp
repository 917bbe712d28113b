#include "config/yaml_reader.hpp"

#include <fstream>

namespace eventflow::config {
namespace fs = std::filesystem;
namespace {

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

}  // namespace

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

}  // namespace eventflow::config
