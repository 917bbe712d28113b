#pragma once

#include <string>
#include <vector>

#include <eventflow/plugin.hpp>

#include "common/field_path.hpp"

namespace eventflow::plugins {

/// Rejects an event whose body lacks any of the configured dotted fields, or
/// holds null there.
class RequiredFieldsValidator final : public Validator {
 public:
  RequiredFieldsValidator(const nlohmann::json& config, Context& context);
  Result check(const Event& event) override;

 private:
  struct Field {
    std::string name;
    FieldPath path;
  };
  std::vector<Field> fields_;
};

}  // namespace eventflow::plugins
