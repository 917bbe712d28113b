#pragma once

#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <eventflow/plugin.hpp>

#include "common/field_path.hpp"

namespace eventflow::plugins {

enum class ClassifyOp : std::uint8_t { eq, ne, gt, gte, lt, lte, in, exists, matches };

/// Sets one (dotted) field from the first rule whose condition holds, else
/// from `default` when given. A missing field satisfies only `exists: false`;
/// gt/gte/lt/lte hold only when both sides are numbers; `matches` searches
/// (ECMAScript regex) and holds only for strings.
class ClassifyEnricher final : public Enricher {
 public:
  ClassifyEnricher(const nlohmann::json& config, Context& context);
  Result enrich(Event& event) override;

 private:
  struct Rule {
    FieldPath field;
    ClassifyOp op;
    nlohmann::json operand;
    std::optional<std::regex> pattern;
    nlohmann::json value;
  };
  static bool holds(const Rule& rule, const nlohmann::json* actual);

  std::string field_name_;
  FieldPath field_;
  std::vector<Rule> rules_;
  std::optional<nlohmann::json> default_;
};

}  // namespace eventflow::plugins
