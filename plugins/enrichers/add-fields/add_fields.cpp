#include "add_fields.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include <eventflow/time.hpp>

namespace eventflow::plugins {
namespace {

std::string hostName() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0)
    throw std::system_error(errno, std::generic_category(), "add-fields: gethostname failed");
  return buf;
}

// Splits `text` at each ${now} after substituting ${host} and ${env:NAME}, so
// one piece means the value is constant.
std::vector<std::string> parseTemplate(std::string_view text, const std::string& field,
                                       std::optional<std::string>& host) {
  std::vector<std::string> pieces(1);
  std::size_t pos = 0;
  while (true) {
    const std::size_t open = text.find("${", pos);
    pieces.back() += text.substr(pos, open == std::string_view::npos ? text.npos : open - pos);
    if (open == std::string_view::npos) return pieces;
    const std::size_t close = text.find('}', open + 2);
    if (close == std::string_view::npos)
      throw std::invalid_argument("add-fields: field '" + field + "' has an unterminated ${");
    const std::string_view name = text.substr(open + 2, close - open - 2);
    if (name == "now") {
      pieces.emplace_back();
    } else if (name == "host") {
      if (!host) host = hostName();
      pieces.back() += *host;
    } else if (name.starts_with("env:") && name.size() > 4) {
      // As in a shell: ${env:NAME:-default} when NAME is unset or empty. A
      // bare unset NAME is a mistake (a typo, a missing export), not "".
      const std::string_view spec = name.substr(4);
      const std::size_t dash = spec.find(":-");
      const std::string var(spec.substr(0, dash));
      const char* value = var.empty() ? nullptr : std::getenv(var.c_str());
      if (dash != std::string_view::npos) {
        pieces.back() += value && *value ? std::string_view(value) : spec.substr(dash + 2);
      } else if (value) {
        pieces.back() += value;
      } else {
        throw std::invalid_argument("add-fields: field '" + field + "' uses ${env:" + var + "}, but " + var +
                                    " is not set; set it, or give a default: ${env:" + var + ":-default}");
      }
    } else {
      throw std::invalid_argument("add-fields: field '" + field + "' uses ${" + std::string(name) +
                                  "}; known placeholders are ${now}, ${host}, ${env:NAME} and ${env:NAME:-default}");
    }
    pos = close + 1;
  }
}

bool isPrefix(const FieldPath& prefix, const FieldPath& path) {
  return prefix.size() < path.size() && std::equal(prefix.begin(), prefix.end(), path.begin());
}

}  // namespace

AddFieldsEnricher::AddFieldsEnricher(const nlohmann::json& config, Context&) {
  const auto it = config.find("fields");
  if (it == config.end() || !it->is_object() || it->empty())
    throw std::invalid_argument("add-fields: 'fields' must be a non-empty object of name: value");
  std::optional<std::string> host;
  for (const auto& [name, value] : it->items()) {
    Field field{name, {}, value, {}};
    try {
      field.path = parseFieldPath(name);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("add-fields: ") + e.what());
    }
    if (value.is_string()) {
      auto pieces = parseTemplate(value.get_ref<const std::string&>(), name, host);
      if (pieces.size() == 1) {
        field.value = std::move(pieces.front());
      } else {
        field.pieces = std::move(pieces);
        needs_now_ = true;
      }
    }
    fields_.push_back(std::move(field));
  }
  // Fields are applied in key order, so "a" lands before "a.b"; a non-object
  // "a" would make every event fail, which is a config error.
  for (const auto& outer : fields_)
    for (const auto& inner : fields_)
      if (isPrefix(outer.path, inner.path) && (!outer.pieces.empty() || !outer.value.is_object()))
        throw std::invalid_argument("add-fields: field '" + inner.name + "' lies inside '" + outer.name +
                                    "', which is not an object");
}

Result AddFieldsEnricher::enrich(Event& event) {
  const std::string now = needs_now_ ? formatRfc3339(std::chrono::system_clock::now()) : std::string();
  for (const auto& field : fields_) {
    nlohmann::json* slot = makeField(event.body, field.path);
    if (slot == nullptr)
      return Result::reject("add-fields: cannot set '" + field.name + "': a parent of it is not an object",
                            "enrichment");
    if (field.pieces.empty()) {
      *slot = field.value;
      continue;
    }
    std::string text = field.pieces.front();
    for (std::size_t i = 1; i < field.pieces.size(); ++i) {
      text += now;
      text += field.pieces[i];
    }
    *slot = std::move(text);
  }
  return Result::ok();
}

}  // namespace eventflow::plugins
