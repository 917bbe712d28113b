#pragma once

#include <memory>
#include <string>

#include <eventflow/plugin.hpp>

namespace valijson {
class Schema;
class Validator;
}  // namespace valijson

namespace eventflow::plugins {

/// Validates the event body against a JSON Schema (draft 7) file, loaded once
/// at construction. Rejects with the path and reason of the first error.
class JsonSchemaValidator final : public Validator {
 public:
  JsonSchemaValidator(const nlohmann::json& config, Context& context);
  ~JsonSchemaValidator() override;
  Result check(const Event& event) override;

 private:
  std::string file_;
  std::unique_ptr<valijson::Schema> schema_;
  // Kept across events: it caches compiled "pattern" regexes.
  std::unique_ptr<valijson::Validator> validator_;
};

}  // namespace eventflow::plugins
