#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <eventflow/plugin.hpp>

#include "common/field_path.hpp"

namespace eventflow::plugins {

/// Rejects an event whose timestamp field is missing, not RFC 3339, older
/// than received_at - max_age or later than now + max_future (each bound only
/// when configured; received_at falls back to now when unset).
class TimeWindowValidator final : public Validator {
 public:
  TimeWindowValidator(const nlohmann::json& config, Context& context);
  Result check(const Event& event) override;

 private:
  struct Bound {
    std::string text;  // as configured, for messages
    std::chrono::milliseconds duration;
  };
  std::string field_name_;
  FieldPath field_;
  std::optional<Bound> max_age_;
  std::optional<Bound> max_future_;
};

}  // namespace eventflow::plugins
