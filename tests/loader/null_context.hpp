#pragma once
// A Context that does nothing, for creating plugin instances in tests.

#include <eventflow/plugin.hpp>

namespace eventflow::testing {

class NullContext final : public Context {
 public:
  void log(LogLevel, std::string_view) override {}
  void count(std::string_view, double) override {}
  void observe(std::string_view, double) override {}
  std::string resolvePath(std::string_view p) const override { return std::string(p); }
  std::string setting(std::string_view) const override { return {}; }
};

}  // namespace eventflow::testing
