#pragma once

#include <memory>
#include <string>
#include <vector>

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

  /// One thing wrong with a document: where (dotted path: "rules.0.value",
  /// empty for the whole document) and what.
  struct Problem {
    std::string path;
    std::string message;
  };
  /// Keys the schema does not allow (additionalProperties: false), each with
  /// the nearest allowed key when one is close; else valijson's deepest error.
  /// Empty when the document is valid.
  std::vector<Problem> problems(const nlohmann::json& document) const;

 private:
  std::shared_ptr<const valijson::Schema> schema_;
  std::shared_ptr<const nlohmann::json> document_;
};

}  // namespace eventflow::plugin
