#pragma once
// JSON ⇄ Lua values for the lua enricher, defined so that a body the script
// leaves alone comes back byte for byte the same:
//
//   JSON            Lua
//   object          table with string keys (no metatable)
//   array           table with keys 1..n and the array metatable
//   integer         integer subtype (int64); an unsigned above 2^63-1 is refused
//   float           float subtype (1.0 stays 1.0)
//   string          string (bytes; must be UTF-8 on the way back)
//   true / false    boolean
//   null            the light userdata `null`
//
// Back from Lua, a table with the array metatable must have exactly the keys
// 1..n; any other table is an array when its keys are exactly 1..n, an object
// when they are all strings, and empty means {}. Mixed, sparse, float or other
// keys, functions, NaN and infinities are refused, naming the path. A
// read-only proxy (params) converts as the table behind it.

#include <optional>
#include <string>

#include <lua.hpp>
#include <nlohmann/json.hpp>

namespace eventflow::plugins::lua {

/// Deepest nesting converted either way. Ingest refuses documents nested
/// deeper than server.max_json_depth (64 by default), so a body the host
/// accepted fits with room to spare; a table that contains itself stops here.
inline constexpr int kMaxDepth = 128;

/// Creates the array metatable in the registry; once per state, before any
/// conversion.
void registerArrayMetatable(lua_State* L);
/// Pushes the array metatable.
void pushArrayMetatable(lua_State* L);

/// The key (a light userdata) under which the metatable of a read-only proxy
/// holds the table it shows; toJson converts that table in the proxy's place.
const void* readOnlyKey();

/// Pushes `value` as a Lua value. Raises a Lua error (so call it inside a
/// protected call) when it nests deeper than kMaxDepth or holds an unsigned
/// integer above 2^63-1, or when the state runs out of memory.
void pushJson(lua_State* L, const nlohmann::json& value);

/// Why `value` cannot be pushed, naming the path below `root`; nullopt when it
/// can. Walks the document, so only for building the message after pushJson
/// failed.
std::optional<std::string> whyNotPushable(const nlohmann::json& value, const std::string& root);

/// Converts the Lua value at `index` into `out`. Never raises a Lua error and
/// never allocates in the state. Returns the reason, naming the path below
/// `root`, when the value has no JSON form.
std::optional<std::string> toJson(lua_State* L, int index, nlohmann::json& out, const std::string& root);

}  // namespace eventflow::plugins::lua
