#pragma once
// Checks a stage config against a plugin's config schema with valijson, as
// the host does before it creates an instance.

#include <string>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace eventflow::test {

class SchemaCheck {
 public:
  explicit SchemaCheck(const char* schema_text) : document_(nlohmann::json::parse(schema_text)) {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(document_);
    parser.populateSchema(adapter, schema_);
  }

  bool valid(const nlohmann::json& config) const { return errors(config).empty(); }

  /// Each failure's path and description, one per line; empty when valid.
  std::string errors(const nlohmann::json& config) const {
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter adapter(config);
    if (validator.validate(schema_, adapter, &results)) return {};
    std::string text;
    valijson::ValidationResults::Error error;
    while (results.popError(error)) {
      for (const auto& step : error.context) text += step;
      text += ": " + error.description + "\n";
    }
    return text.empty() ? "invalid" : text;
  }

 private:
  nlohmann::json document_;
  valijson::Schema schema_;
};

}  // namespace eventflow::test
