#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <eventflow/plugin.hpp>
#include <lua.hpp>

namespace eventflow::plugins {

/// Runs a user's Lua 5.4 script on each event: `function process(event)`
/// gets the body as a table (see lua_json.hpp for the mapping), changes it in
/// place and returns nothing (ok), `false, "reason"` (reject) or
/// `"retry", "reason"`. The script is compiled once, at construction, where a
/// syntax error, an error at its top level or a missing `process` refuses the
/// config naming the line.
///
/// Each instance owns one sandboxed state (the host never calls an instance
/// from two threads): no io, os, package/require, debug, coroutine, dofile,
/// loadfile, print, collectgarbage, rawset or string.dump; `load` takes
/// text only and `setmetatable` refuses `__gc` (finalizers run with hooks
/// off, out of reach of the instruction budget). Each call may run `max_instructions` VM instructions and the
/// state may hold `max_memory` bytes; going over either rejects the event
/// with error_type `script_budget` and replaces the state with a fresh one.
class LuaEnricher final : public Enricher {
 public:
  LuaEnricher(const nlohmann::json& config, Context& context);
  ~LuaEnricher() override;
  LuaEnricher(const LuaEnricher&) = delete;
  LuaEnricher& operator=(const LuaEnricher&) = delete;

  Result enrich(Event& event) override;

  /// What the allocator and the count hook share with the instance; public
  /// only so that those two C callbacks can reach it.
  struct Budget {
    std::size_t used = 0;
    std::size_t cap = 0;
    // Requests refused for the cap in this call, less those that fit when Lua
    // asked again after its emergency collection (the last refused request
    // is remembered to recognise that retry).
    int refusals = 0;
    const void* refused_ptr = nullptr;
    std::size_t refused_size = 0;
    bool over_instructions = false;
  };

 private:
  std::optional<std::string> open(bool compile);
  void close();
  Result finish(int status, bool converted, Event& event);
  bool overBudget(int status) const;
  std::string budgetReason() const;
  void resetBudget();

  Context& context_;
  std::string chunk_name_;
  std::string source_;    // the text, until it is compiled
  std::string bytecode_;  // the compiled script, loaded into every new state
  nlohmann::json params_;
  int max_instructions_;
  Budget budget_;
  lua_State* state_ = nullptr;
  int process_ref_ = LUA_NOREF;
};

}  // namespace eventflow::plugins
