#pragma once
// Dotted paths into an event body ("properties.amount"), shared by the built-in
// plugins. Paths are split once at construction so per-event calls only walk.

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace eventflow::plugins {

/// Object keys from the root down; array indices are not addressable.
using FieldPath = std::vector<std::string>;

inline FieldPath parseFieldPath(std::string_view dotted) {
  FieldPath path;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = dotted.find('.', start);
    const std::string_view key = dotted.substr(start, dot == std::string_view::npos ? dotted.npos : dot - start);
    if (key.empty())
      throw std::invalid_argument("field path '" + std::string(dotted) + "' has an empty segment");
    path.emplace_back(key);
    if (dot == std::string_view::npos) return path;
    start = dot + 1;
  }
}

/// parseFieldPath with `what` ("lookup: key") in front of its error.
inline FieldPath parseFieldPath(std::string_view dotted, const std::string& what) {
  try {
    return parseFieldPath(dotted);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(what + ": " + e.what());
  }
}

/// The value at `path`, or null when any step is missing or not an object.
inline const nlohmann::json* findField(const nlohmann::json& root, const FieldPath& path) {
  const nlohmann::json* node = &root;
  for (const auto& key : path) {
    if (!node->is_object()) return nullptr;
    const auto it = node->find(key);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

inline nlohmann::json* findField(nlohmann::json& root, const FieldPath& path) {
  return const_cast<nlohmann::json*>(findField(static_cast<const nlohmann::json&>(root), path));
}

/// The slot at `path`, creating missing objects on the way; null when a step
/// exists but is not an object, since overwriting it would lose data.
inline nlohmann::json* makeField(nlohmann::json& root, const FieldPath& path) {
  nlohmann::json* node = &root;
  for (const auto& key : path) {
    if (node->is_null()) *node = nlohmann::json::object();
    if (!node->is_object()) return nullptr;
    node = &(*node)[key];
  }
  return node;
}

/// Removes the value at `path`; false when there was none.
inline bool eraseField(nlohmann::json& root, const FieldPath& path) {
  if (path.empty()) return false;
  nlohmann::json* parent = &root;
  for (std::size_t i = 0; i + 1 < path.size(); ++i) {
    if (!parent->is_object()) return false;
    const auto it = parent->find(path[i]);
    if (it == parent->end()) return false;
    parent = &*it;
  }
  return parent->is_object() && parent->erase(path.back()) > 0;
}

/// Parses each dotted path of a config list, naming the plugin and the key in
/// the error: `what` is e.g. "hash-fields: fields".
inline std::vector<FieldPath> parseFieldPaths(const nlohmann::json& list, const std::string& what) {
  if (!list.is_array() || list.empty())
    throw std::invalid_argument(what + " must be a non-empty list of dotted paths");
  std::vector<FieldPath> paths;
  for (const auto& item : list) {
    if (!item.is_string()) throw std::invalid_argument(what + ": " + item.dump() + " is not a dotted path");
    paths.push_back(parseFieldPath(item.get_ref<const std::string&>(), what));
  }
  return paths;
}

}  // namespace eventflow::plugins
