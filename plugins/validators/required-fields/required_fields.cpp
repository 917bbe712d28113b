#include "required_fields.hpp"

#include <stdexcept>

namespace eventflow::plugins {

RequiredFieldsValidator::RequiredFieldsValidator(const nlohmann::json& config, Context&) {
  const auto it = config.find("fields");
  if (it == config.end() || !it->is_array() || it->empty())
    throw std::invalid_argument("required-fields: 'fields' must be a non-empty array of field paths");
  for (const auto& field : *it) {
    if (!field.is_string())
      throw std::invalid_argument("required-fields: every entry of 'fields' must be a string, not " +
                                  field.dump());
    const auto& name = field.get_ref<const std::string&>();
    try {
      fields_.push_back({name, parseFieldPath(name)});
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("required-fields: ") + e.what());
    }
  }
}

Result RequiredFieldsValidator::check(const Event& event) {
  for (const auto& field : fields_) {
    const nlohmann::json* value = findField(event.body, field.path);
    if (value == nullptr || value->is_null())
      return Result::reject("missing required field '" + field.name + "'", error_type::kValidation);
  }
  return Result::ok();
}

}  // namespace eventflow::plugins
