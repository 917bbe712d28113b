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

}  // namespace eventflow::plugins
