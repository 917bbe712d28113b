#include "classify.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace eventflow::plugins {
namespace {

using Op = ClassifyOp;

constexpr std::array<std::pair<std::string_view, Op>, 9> kOps{{{"eq", Op::eq},
                                                              {"ne", Op::ne},
                                                              {"gt", Op::gt},
                                                              {"gte", Op::gte},
                                                              {"lt", Op::lt},
                                                              {"lte", Op::lte},
                                                              {"in", Op::in},
                                                              {"exists", Op::exists},
                                                              {"matches", Op::matches}}};

std::invalid_argument configError(const std::string& where, const std::string& what) {
  return std::invalid_argument("classify: " + where + " " + what);
}

std::string pathText(const nlohmann::json& object, const char* key, const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_string()) throw configError(where + "." + key, "must be a field path string");
  return it->get<std::string>();
}

FieldPath parsePath(const std::string& text, const std::string& where) {
  try {
    return parseFieldPath(text);
  } catch (const std::invalid_argument& e) {
    throw configError(where, e.what());
  }
}

Op parseOp(const nlohmann::json& when, const std::string& where) {
  const auto it = when.find("op");
  if (it != when.end() && it->is_string())
    for (const auto& [name, op] : kOps)
      if (name == it->get_ref<const std::string&>()) return op;
  throw configError(where, (it == when.end() ? std::string("missing") : it->dump()) +
                               " is not one of eq, ne, gt, gte, lt, lte, in, exists, matches");
}

}  // namespace

ClassifyEnricher::ClassifyEnricher(const nlohmann::json& config, Context&) {
  if (!config.is_object()) throw std::invalid_argument("classify: config must be an object");
  field_name_ = pathText(config, "field", "config");
  field_ = parsePath(field_name_, "config.field");
  if (const auto it = config.find("default"); it != config.end()) default_ = *it;

  const auto rules = config.find("rules");
  if (rules == config.end() || !rules->is_array()) throw configError("'rules'", "must be an array");
  for (std::size_t i = 0; i < rules->size(); ++i) {
    const std::string where = "rules[" + std::to_string(i) + "]";
    const nlohmann::json& rule = (*rules)[i];
    if (!rule.is_object() || !rule.contains("value") || !rule.contains("when") || !rule.at("when").is_object())
      throw configError(where, "must be an object with 'when' (an object) and 'value'");
    const nlohmann::json& when = rule.at("when");
    const std::string at = where + ".when";
    const bool has_operand = when.contains("value");
    Rule parsed{parsePath(pathText(when, "field", at), at + ".field"), parseOp(when, at + ".op"),
                has_operand ? when.at("value") : nlohmann::json(), std::nullopt, rule.at("value")};

    switch (parsed.op) {
      case Op::eq:
      case Op::ne:
        if (!has_operand) throw configError(at, "needs a 'value' to compare with");
        break;
      case Op::gt:
      case Op::gte:
      case Op::lt:
      case Op::lte:
        if (!parsed.operand.is_number()) throw configError(at + ".value", "must be a number");
        break;
      case Op::in:
        if (!parsed.operand.is_array()) throw configError(at + ".value", "must be an array for 'in'");
        break;
      case Op::exists:
        if (!has_operand) parsed.operand = true;
        if (!parsed.operand.is_boolean()) throw configError(at + ".value", "must be true or false for 'exists'");
        break;
      case Op::matches:
        if (!parsed.operand.is_string()) throw configError(at + ".value", "must be a regex string for 'matches'");
        try {
          parsed.pattern.emplace(parsed.operand.get<std::string>(), std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
          throw configError(at + ".value", std::string("is not a valid regex: ") + e.what());
        }
        break;
    }
    rules_.push_back(std::move(parsed));
  }
}

bool ClassifyEnricher::holds(const Rule& rule, const nlohmann::json* actual) {
  if (rule.op == Op::exists) return (actual != nullptr && !actual->is_null()) == rule.operand.get<bool>();
  if (actual == nullptr) return false;
  const bool numbers = actual->is_number() && rule.operand.is_number();
  switch (rule.op) {
    case Op::eq: return *actual == rule.operand;
    case Op::ne: return *actual != rule.operand;
    case Op::gt: return numbers && actual->get<double>() > rule.operand.get<double>();
    case Op::gte: return numbers && actual->get<double>() >= rule.operand.get<double>();
    case Op::lt: return numbers && actual->get<double>() < rule.operand.get<double>();
    case Op::lte: return numbers && actual->get<double>() <= rule.operand.get<double>();
    case Op::in: return std::find(rule.operand.begin(), rule.operand.end(), *actual) != rule.operand.end();
    case Op::matches:
      return actual->is_string() && std::regex_search(actual->get_ref<const std::string&>(), *rule.pattern);
    case Op::exists: break;
  }
  return false;
}

Result ClassifyEnricher::enrich(Event& event) {
  const nlohmann::json* chosen = default_ ? &*default_ : nullptr;
  for (const auto& rule : rules_) {
    if (holds(rule, findField(event.body, rule.field))) {
      chosen = &rule.value;
      break;
    }
  }
  if (chosen == nullptr) return Result::ok();
  nlohmann::json* slot = makeField(event.body, field_);
  if (slot == nullptr)
    return Result::reject("classify: cannot set '" + field_name_ + "': a parent of it is not an object",
                          "enrichment");
  *slot = *chosen;
  return Result::ok();
}

}  // namespace eventflow::plugins
