#include "json_schema.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <vector>

// valijson must throw, never abort(): the build defines this for every user
// (eventflow_valijson in the top CMakeLists.txt).
#if !defined(VALIJSON_USE_EXCEPTIONS) || !VALIJSON_USE_EXCEPTIONS
#error "link eventflow_valijson: valijson without VALIJSON_USE_EXCEPTIONS aborts on a bad schema"
#endif

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace eventflow::plugins {
namespace {

nlohmann::json readSchemaFile(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("json-schema: cannot read schema file " + file);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("json-schema: schema file " + file + " is not valid JSON: " + e.what());
  }
}

// valijson names each step "[key]" or "[index]"; walking the document tells
// which, so the path reads like "properties.items[2].sku".
std::string errorPath(const std::vector<std::string>& context, const nlohmann::json& body) {
  std::string path;
  const nlohmann::json* node = &body;
  for (std::size_t i = 1; i < context.size(); ++i) {
    std::string_view step = context[i];
    if (step.size() >= 2 && step.front() == '[' && step.back() == ']') step = step.substr(1, step.size() - 2);
    if (node != nullptr && node->is_array()) {
      path += '[';
      path += step;
      path += ']';
      std::size_t index = 0;
      for (const char c : step) index = index * 10 + static_cast<std::size_t>(c - '0');
      node = index < node->size() ? &(*node)[index] : nullptr;
    } else {
      if (!path.empty()) path += '.';
      path += step;
      if (node != nullptr && node->is_object()) {
        const auto it = node->find(std::string(step));
        node = it != node->end() ? &*it : nullptr;
      } else {
        node = nullptr;
      }
    }
  }
  return path.empty() ? "(body)" : path;
}

}  // namespace

JsonSchemaValidator::JsonSchemaValidator(const nlohmann::json& config, Context& context)
    : schema_(std::make_unique<valijson::Schema>()),
      validator_(std::make_unique<valijson::Validator>()) {
  const auto it = config.find("schema");
  if (it == config.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    throw std::invalid_argument("json-schema: 'schema' must name a JSON Schema file");
  file_ = context.resolvePath(it->get_ref<const std::string&>());
  const nlohmann::json document = readSchemaFile(file_);
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    parser.populateSchema(valijson::adapters::NlohmannJsonAdapter(document), *schema_);
  } catch (const std::exception& e) {
    throw std::runtime_error("json-schema: schema file " + file_ + " is not a usable draft 7 schema: " +
                             e.what());
  }
}

JsonSchemaValidator::~JsonSchemaValidator() = default;

Result JsonSchemaValidator::check(const Event& event) {
  valijson::ValidationResults results;
  try {
    if (validator_->validate(*schema_, valijson::adapters::NlohmannJsonAdapter(event.body), &results))
      return Result::ok();
  } catch (const std::exception& e) {
    // A schema valijson accepted but cannot apply (e.g. a bad regex) fails every event alike.
    return Result::reject("schema " + file_ + " cannot be applied: " + e.what(), error_type::kValidation);
  }
  valijson::ValidationResults::Error first;
  if (!results.popError(first)) return Result::reject("does not match schema " + file_, error_type::kValidation);
  return Result::reject(errorPath(first.context, event.body) + ": " + first.description, error_type::kValidation);
}

}  // namespace eventflow::plugins
