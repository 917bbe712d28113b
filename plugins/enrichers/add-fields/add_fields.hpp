#pragma once

#include <string>
#include <vector>

#include <eventflow/plugin.hpp>

#include "common/field_path.hpp"

namespace eventflow::plugins {

/// Sets configured (dotted) fields in the event body. String values may hold
/// ${now}, ${host} and ${env:NAME}; host and env are resolved at construction,
/// so only ${now} is left for each event.
class AddFieldsEnricher final : public Enricher {
 public:
  AddFieldsEnricher(const nlohmann::json& config, Context& context);
  Result enrich(Event& event) override;

 private:
  struct Field {
    std::string name;
    FieldPath path;
    nlohmann::json value;             // used when `pieces` is empty
    std::vector<std::string> pieces;  // the text around each ${now}, when there is one
  };
  std::vector<Field> fields_;
  bool needs_now_ = false;
};

}  // namespace eventflow::plugins
