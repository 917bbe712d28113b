#include "plugin/schema.hpp"

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

#include "base/suggest.hpp"

namespace eventflow::plugin {
namespace {

std::string join(const std::string& path, const std::string& part) { return path.empty() ? part : path + "." + part; }

// valijson says only "could not be validated using 'properties' or
// 'additionalProperties'"; a user wants the key's name and what was meant.
// Follows "properties" and "items" (not $ref or combinators: the built-in
// plugins' schemas do not need them, and valijson still checks the rest).
void unknownKeys(const nlohmann::json& schema, const nlohmann::json& doc, const std::string& path,
                 std::vector<JsonSchema::Problem>& out) {
  if (!schema.is_object()) return;
  if (doc.is_object()) {
    const auto props = schema.find("properties");
    const bool closed = schema.value("additionalProperties", nlohmann::json(true)) == nlohmann::json(false);
    std::vector<std::string> allowed;
    if (props != schema.end() && props->is_object())
      for (const auto& [k, v] : props->items()) allowed.push_back(k);
    for (const auto& [key, value] : doc.items()) {
      if (props != schema.end() && props->is_object() && props->contains(key)) {
        unknownKeys((*props)[key], value, join(path, key), out);
      } else if (closed) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        out.push_back({join(path, key), "unknown key '" + key + "'" + didYouMean(key, allowed) +
                                            (list.empty() ? "" : " (expected one of: " + list + ")")});
      }
    }
  } else if (doc.is_array()) {
    const auto items = schema.find("items");
    if (items == schema.end() || !items->is_object()) return;
    for (std::size_t i = 0; i < doc.size(); ++i) unknownKeys(*items, doc[i], join(path, std::to_string(i)), out);
  }
}

}  // namespace

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
  result.document_ = std::make_shared<const nlohmann::json>(document);
  return result;
}

Expected<JsonSchema> JsonSchema::parseText(const std::string& text) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return makeError("JSON Schema is not valid JSON");
  return parse(doc);
}

Expected<void> JsonSchema::validate(const nlohmann::json& document) const {
  const auto found = problems(document);
  if (found.empty()) return {};
  std::string message;
  for (const auto& p : found)
    message += (message.empty() ? "" : "\n") + (p.path.empty() ? "(document)" : p.path) + ": " + p.message;
  return makeError(message);
}

std::vector<JsonSchema::Problem> JsonSchema::problems(const nlohmann::json& document) const {
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter adapter(document);
  if (validator.validate(*schema_, adapter, &results)) return {};
  std::vector<Problem> out;
  if (document_) unknownKeys(*document_, document, "", out);
  if (!out.empty()) return out;
  // valijson reports every enclosing schema too; the deepest error names the value at fault.
  Problem deepest;
  bool first = true;
  std::size_t depth = 0;
  valijson::ValidationResults::Error error;
  while (results.popError(error)) {
    if (!first && error.context.size() <= depth) continue;
    first = false;
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
    deepest = {path, error.description};
  }
  return {deepest};
}

}  // namespace eventflow::plugin
