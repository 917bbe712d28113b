#include "lua_json.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

#include "base/utf8.hpp"

namespace eventflow::plugins::lua {
namespace {

using Json = nlohmann::json;

// Their addresses are the keys: of the array metatable in the registry, and
// of the real table in a read-only proxy's metatable.
const char kArrayMetatableKey = 0;
const char kReadOnlyKey = 0;

// `depth` counts the tables around `value`, itself included: the body is 1.
void push(lua_State* L, const Json& value, int depth) {
  if (value.is_structured() && depth > kMaxDepth)
    luaL_error(L, "the event is nested deeper than %d levels", kMaxDepth);
  // Two slots per level (a table and a key or value); Lua gives a C function
  // only LUA_MINSTACK (20) unless asked.
  luaL_checkstack(L, 3, "the event is nested too deep");
  switch (value.type()) {
    case Json::value_t::null:
      lua_pushlightuserdata(L, nullptr);
      return;
    case Json::value_t::boolean:
      lua_pushboolean(L, value.get<bool>() ? 1 : 0);
      return;
    case Json::value_t::number_integer:
      lua_pushinteger(L, value.get<std::int64_t>());
      return;
    case Json::value_t::number_unsigned: {
      const auto u = value.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<lua_Integer>::max()))
        luaL_error(L, "an integer is beyond Lua's 64-bit integers");
      lua_pushinteger(L, static_cast<lua_Integer>(u));
      return;
    }
    case Json::value_t::number_float:
      lua_pushnumber(L, value.get<double>());
      return;
    case Json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      lua_pushlstring(L, s.data(), s.size());
      return;
    }
    case Json::value_t::array: {
      lua_createtable(L, static_cast<int>(value.size()), 0);
      lua_Integer i = 0;
      for (const auto& element : value) {
        push(L, element, depth + 1);
        lua_rawseti(L, -2, ++i);
      }
      pushArrayMetatable(L);
      lua_setmetatable(L, -2);
      return;
    }
    case Json::value_t::object:
      lua_createtable(L, 0, static_cast<int>(value.size()));
      for (const auto& [key, element] : value.items()) {
        lua_pushlstring(L, key.data(), key.size());
        push(L, element, depth + 1);
        lua_rawset(L, -3);
      }
      return;
    case Json::value_t::binary:
    case Json::value_t::discarded:
      break;
  }
  luaL_error(L, "the event holds a value with no Lua form");
}

bool validUtf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const std::size_t length = utf8::sequenceLength(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

// Converts Lua values; on failure `path` is the place below the root (".a[2]")
// and `what` why, built only on the way out of a failure.
class ToJson {
 public:
  explicit ToJson(lua_State* L) : L_(L) {}

  bool value(int index, Json& out, int depth) {
    switch (lua_type(L_, index)) {
      case LUA_TNIL:
        out = nullptr;
        return true;
      case LUA_TBOOLEAN:
        out = lua_toboolean(L_, index) != 0;
        return true;
      case LUA_TNUMBER: {
        if (lua_isinteger(L_, index)) {
          out = static_cast<std::int64_t>(lua_tointeger(L_, index));
          return true;
        }
        const double d = lua_tonumber(L_, index);
        if (!std::isfinite(d)) return fail(std::isnan(d) ? "is NaN, which JSON has no number for"
                                                         : "is infinite, which JSON has no number for");
        out = d;
        return true;
      }
      case LUA_TSTRING: {
        std::size_t size = 0;
        const char* data = lua_tolstring(L_, index, &size);  // a string already: no conversion, no allocation
        if (!validUtf8({data, size})) return fail("is a string that is not valid UTF-8");
        out = std::string(data, size);
        return true;
      }
      case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L_, index) == nullptr) {
          out = nullptr;
          return true;
        }
        break;
      case LUA_TTABLE:
        return table(lua_absindex(L_, index), out, depth);
      default:
        break;
    }
    return fail(std::string("is a ") + lua_typename(L_, lua_type(L_, index)) +
                "; only tables, strings, numbers, booleans and null have a JSON form");
  }

  std::string path;
  std::string what;

 private:
  bool fail(std::string why) {
    what = std::move(why);
    return false;
  }

  bool table(int index, Json& out, int depth) {
    if (depth > kMaxDepth)
      return fail("is nested deeper than " + std::to_string(kMaxDepth) + " levels (a table that contains itself?)");
    if (!lua_checkstack(L_, 4)) return fail("is nested too deep");
    bool marked = false;
    if (lua_getmetatable(L_, index)) {
      if (lua_rawgetp(L_, -1, &kReadOnlyKey) == LUA_TTABLE) {
        const bool ok = table(lua_absindex(L_, -1), out, depth);
        lua_pop(L_, 2);
        return ok;
      }
      lua_pop(L_, 1);
      lua_rawgetp(L_, LUA_REGISTRYINDEX, &kArrayMetatableKey);
      marked = lua_rawequal(L_, -1, -2) != 0;
      lua_pop(L_, 2);
    }

    // One pass to learn the shape: which kinds of keys, how many, the largest.
    lua_Integer count = 0;
    lua_Integer largest = 0;
    bool strings = false;
    bool integers = false;
    lua_pushnil(L_);
    while (lua_next(L_, index) != 0) {
      const int key_type = lua_type(L_, -2);
      if (key_type == LUA_TSTRING) {
        strings = true;
      } else if (key_type == LUA_TNUMBER && lua_isinteger(L_, -2) && lua_tointeger(L_, -2) >= 1) {
        integers = true;
        largest = std::max(largest, lua_tointeger(L_, -2));
      } else {
        const std::string key = key_type == LUA_TNUMBER ? Json(lua_tonumber(L_, -2)).dump()
                                                        : std::string("of type ") + lua_typename(L_, key_type);
        lua_pop(L_, 2);
        return fail("has the key " + key + "; JSON has string keys and arrays indices 1..n");
      }
      ++count;
      lua_pop(L_, 1);
    }

    if (strings && (integers || marked))
      return fail(marked ? "is an array but has string keys" : "mixes string keys and integer keys");
    if (integers || marked) {
      if (largest != count)
        return fail("is a sparse array: " + std::to_string(count) + " elements but index " + std::to_string(largest) +
                    "; JSON arrays have no holes");
      out = Json::array();
      auto& array = out.get_ref<Json::array_t&>();
      array.resize(static_cast<std::size_t>(count));
      for (lua_Integer i = 1; i <= count; ++i) {
        lua_rawgeti(L_, index, i);
        const bool ok = value(-1, array[static_cast<std::size_t>(i - 1)], depth + 1);
        lua_pop(L_, 1);
        if (!ok) {
          path.insert(0, "[" + std::to_string(i) + "]");
          return false;
        }
      }
      return true;
    }

    out = Json::object();
    auto& object = out.get_ref<Json::object_t&>();
    lua_pushnil(L_);
    while (lua_next(L_, index) != 0) {
      std::size_t size = 0;
      const char* data = lua_tolstring(L_, -2, &size);  // a string key: no conversion
      std::string key(data, size);
      const bool ok = validUtf8(key) ? value(-1, object[key], depth + 1) : fail("is a key that is not valid UTF-8");
      lua_pop(L_, 1);
      if (!ok) {
        lua_pop(L_, 1);
        path.insert(0, "." + key);
        return false;
      }
    }
    return true;
  }

  lua_State* L_;
};

std::optional<std::string> whyNot(const Json& value, const std::string& at, int depth) {
  if (value.is_structured() && depth > kMaxDepth) return at + " is nested deeper than " + std::to_string(kMaxDepth) + " levels";
  if (value.is_number_unsigned() &&
      value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<lua_Integer>::max()))
    return at + " is " + value.dump() + ", beyond Lua's 64-bit integers (up to 9223372036854775807)";
  if (value.is_array()) {
    std::size_t i = 0;
    for (const auto& element : value)
      if (auto why = whyNot(element, at + "[" + std::to_string(++i) + "]", depth + 1)) return why;
  } else if (value.is_object()) {
    for (const auto& [key, element] : value.items())
      if (auto why = whyNot(element, at + "." + key, depth + 1)) return why;
  }
  return std::nullopt;
}

}  // namespace

void registerArrayMetatable(lua_State* L) {
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__name");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kArrayMetatableKey);
}

const void* readOnlyKey() { return &kReadOnlyKey; }

void pushArrayMetatable(lua_State* L) { lua_rawgetp(L, LUA_REGISTRYINDEX, &kArrayMetatableKey); }

void pushJson(lua_State* L, const nlohmann::json& value) { push(L, value, 1); }

std::optional<std::string> whyNotPushable(const nlohmann::json& value, const std::string& root) {
  return whyNot(value, root, 1);
}

std::optional<std::string> toJson(lua_State* L, int index, nlohmann::json& out, const std::string& root) {
  ToJson walker(L);
  if (walker.value(index, out, 1)) return std::nullopt;
  return root + walker.path + " " + walker.what;
}

}  // namespace eventflow::plugins::lua
