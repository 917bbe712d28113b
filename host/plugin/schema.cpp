#include "plugin/schema.hpp"

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace eventflow::plugin {

Expected<JsonSchema> JsonSchema::parse(const nlohmann::json& document) {
  auto schema = std::make_shared<valijson::Schema>();
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(document);
    parser.populateSchema(adapter, *schema);
  } catch (const std::exception& e) {
    return makeError(std::string("invalid JSON Schema: ") + e.what());
  }
  JsonSchema result;
  result.schema_ = std::move(schema);
  return result;
}

Expected<JsonSchema> JsonSchema::parseText(const std::string& text) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return makeError("JSON Schema is not valid JSON");
  return parse(doc);
}

Expected<void> JsonSchema::validate(const nlohmann::json& document) const {
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter adapter(document);
  if (validator.validate(*schema_, adapter, &results)) return {};
  // valijson reports every enclosing schema too; the deepest error names the value at fault.
  std::string message;
  std::size_t depth = 0;
  valijson::ValidationResults::Error error;
  while (results.popError(error)) {
    if (!message.empty() && error.context.size() <= depth) continue;
    depth = error.context.size();
    std::string path;
    for (const auto& part : error.context) {
      if (part == "<root>") continue;
      std::string p = part;
      if (p.size() >= 2 && p.front() == '[' && p.back() == ']') {
        p = p.substr(1, p.size() - 2);
        if (p.size() >= 2 && p.front() == '"') p = p.substr(1, p.size() - 2);
      }
      path += (path.empty() ? "" : ".") + p;
    }
    message = (path.empty() ? "(document)" : path) + ": " + error.description;
  }
  return makeError(message);
}

}  // namespace eventflow::plugin
