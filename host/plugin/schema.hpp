#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "base/expected.hpp"

namespace valijson { class Schema; }

namespace eventflow::plugin {

/// A parsed JSON Schema (draft 7), checked with valijson. Cheap to copy.
class JsonSchema {
 public:
  static Expected<JsonSchema> parse(const nlohmann::json& schema);
  static Expected<JsonSchema> parseText(const std::string& text);
  /// Ok, or an error naming the path of each failing value.
  Expected<void> validate(const nlohmann::json& document) const;

 private:
  std::shared_ptr<const valijson::Schema> schema_;
};

}  // namespace eventflow::plugin
