#include "lua_script.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "base/utf8.hpp"
#include "lua_json.hpp"

namespace eventflow::plugins {
namespace {

using Budget = LuaEnricher::Budget;

constexpr int kDefaultInstructions = 1'000'000;  // ~4 ms of `while true do end`; the 5-line benchmark script runs 13
// A 0.95 MB body of 10,000 small objects fits in a 3 MiB state (the default
// server.max_body_bytes is 1 MiB); the rest is room for what a script keeps.
constexpr std::size_t kDefaultMemory = 32u << 20;
constexpr std::size_t kMaxScriptBytes = 1u << 20;
// Reasons end up in the DLQ and its listing; a script's own text is cut here.
constexpr std::size_t kMaxReasonBytes = 1024;

// Trusted set-up code, run before the sandbox is closed: array() and the
// read-only view of params. It keeps what it needs in locals.
constexpr std::string_view kPrelude = R"lua(
local array_mt, real_key = ...
local next, setmetatable, error, type = next, setmetatable, error, type
local function array(t)
  return setmetatable(t or {}, array_mt)
end
local function readonly(real)
  for k, v in next, real do
    if type(v) == "table" then real[k] = readonly(v) end
  end
  local proxy = {}
  return setmetatable(proxy, {
    [real_key] = real,
    __index = real,
    __newindex = function() error("params is read-only", 2) end,
    __len = function() return #real end,
    __pairs = function() return function(_, k) return next(real, k) end, proxy, nil end,
    __metatable = "read-only",
  })
end
return array, readonly
)lua";

Budget& budgetOf(lua_State* L) {
  void* budget = nullptr;
  lua_getallocf(L, &budget);
  return *static_cast<Budget*>(budget);
}

void onCount(lua_State* L, lua_Debug*) {
  budgetOf(L).over_instructions = true;
  // From here every instruction fails, so a pcall in the script cannot catch
  // the error and carry on: the call unwinds to the host.
  lua_sethook(L, &onCount, LUA_MASKCOUNT, 1);
  luaL_error(L, "script_budget");
}

void* allocate(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
  Budget& budget = *static_cast<Budget*>(ud);
  const std::size_t old = ptr != nullptr ? osize : 0;  // without a block, osize is a type tag
  if (nsize == 0) {
    std::free(ptr);
    budget.used -= old;
    return nullptr;
  }
  // Counted even when the script catches the memory error with pcall: the
  // event is rejected when the call ends either way.
  if (nsize > old && budget.used - old + nsize > budget.cap) {
    ++budget.refusals;
    budget.refused_ptr = ptr;
    budget.refused_size = nsize;
    return nullptr;
  }
  void* block = std::realloc(ptr, nsize);
  if (block == nullptr) return nullptr;
  if (nsize > old) {
    // Lua's second try of a refused request, after collecting everything it
    // could, fitting means the state was full of garbage, not over its cap.
    // The collection in between only frees and shrinks, so any growth ends
    // the retry window.
    if (budget.refused_size == nsize && budget.refused_ptr == ptr) --budget.refusals;
    budget.refused_size = 0;
  }
  budget.used = budget.used - old + nsize;
  return block;
}

// load(chunk [, chunkname [, mode [, env]]]) with mode forced to "t":
// bytecode can break the VM's invariants, text cannot.
int textOnlyLoad(lua_State* L) {
  if (lua_gettop(L) < 3) lua_settop(L, 3);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

// setmetatable refusing a metatable with __gc, which marks the table for a
// finalizer: Lua runs finalizers with hooks off, so one that loops would
// never meet the instruction budget. A __gc added after setmetatable marks
// nothing, so checking here is enough.
int noFinalizerSetmetatable(lua_State* L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "setmetatable: __gc is not allowed in the sandbox (finalizers escape the budgets)");
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

int writeBytecode(lua_State*, const void* data, std::size_t size, void* out) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(data), size);
  return 0;
}

// What openState (run protected) needs and reports.
struct Open {
  const nlohmann::json* params;
  std::string_view code;
  const char* chunk_name;
  bool compile;            // code is text to compile (and dump), else bytecode we dumped
  std::string* bytecode;   // receives the dump when compiling
  enum class Phase : std::uint8_t { sandbox, compile, run, ready } phase = Phase::sandbox;
  int process_ref = LUA_NOREF;
};

void openLibrary(lua_State* L, const char* name, lua_CFunction open) {
  luaL_requiref(L, name, open, 1);
  lua_pop(L, 1);
}

void removeGlobal(lua_State* L, const char* name) {
  lua_pushnil(L);
  lua_setglobal(L, name);
}

int openState(lua_State* L) {
  auto& open = *static_cast<Open*>(lua_touserdata(L, 1));
  openLibrary(L, LUA_GNAME, luaopen_base);
  openLibrary(L, LUA_STRLIBNAME, luaopen_string);
  openLibrary(L, LUA_TABLIBNAME, luaopen_table);
  openLibrary(L, LUA_MATHLIBNAME, luaopen_math);
  openLibrary(L, LUA_UTF8LIBNAME, luaopen_utf8);
  lua::registerArrayMetatable(L);

  if (luaL_loadbufferx(L, kPrelude.data(), kPrelude.size(), "=sandbox", "t") != LUA_OK) return lua_error(L);
  lua::pushArrayMetatable(L);
  lua_pushlightuserdata(L, const_cast<void*>(lua::readOnlyKey()));
  lua_call(L, 2, 2);
  lua_setglobal(L, "readonly_");  // popped again below
  lua_setglobal(L, "array");
  lua_getglobal(L, "readonly_");
  lua::pushJson(L, *open.params);
  lua_call(L, 1, 1);
  lua_setglobal(L, "params");
  removeGlobal(L, "readonly_");
  lua_pushlightuserdata(L, nullptr);
  lua_setglobal(L, "null");

  // The base library's ways out of the sandbox, and rawset, which would
  // write through the read-only params.
  for (const char* name : {"dofile", "loadfile", "collectgarbage", "print", "rawset"}) removeGlobal(L, name);
  lua_getglobal(L, "load");
  lua_pushcclosure(L, &textOnlyLoad, 1);
  lua_setglobal(L, "load");
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, &noFinalizerSetmetatable, 1);
  lua_setglobal(L, "setmetatable");
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);

  open.phase = Open::Phase::compile;
  if (luaL_loadbufferx(L, open.code.data(), open.code.size(), open.chunk_name, open.compile ? "t" : "b") != LUA_OK)
    return lua_error(L);
  if (open.compile) lua_dump(L, &writeBytecode, open.bytecode, 0);  // keeps line numbers for errors
  open.phase = Open::Phase::run;
  lua_call(L, 0, 0);
  open.phase = Open::Phase::ready;
  if (lua_getglobal(L, "process") != LUA_TFUNCTION)
    return luaL_error(L, "the script defines no function process(event)");
  open.process_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

// What process(event) is called with and what came out of it.
struct Call {
  const nlohmann::json* body;
  int process_ref;
  bool converted = false;
};

int runProcess(lua_State* L) {
  auto& call = *static_cast<Call*>(lua_touserdata(L, 1));
  lua::pushJson(L, *call.body);  // 2: the event, kept to read back
  call.converted = true;
  lua_rawgeti(L, LUA_REGISTRYINDEX, call.process_ref);
  lua_pushvalue(L, 2);
  lua_call(L, 1, 2);  // 3, 4: what process returned
  return 3;
}

// Text from the script for a reason: valid UTF-8 without NUL (the store keeps
// reasons as text), and at most kMaxReasonBytes.
std::string reasonText(std::string_view text) {
  std::string out;
  const std::size_t end = std::min(text.size(), kMaxReasonBytes);
  for (std::size_t i = 0; i < end;) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t length = c >= 0x80 ? utf8::sequenceLength(text, i) : 1;
    if (length == 0 || c == 0 || i + length > end) {
      out += '?';
      ++i;
      continue;
    }
    out.append(text.substr(i, length));
    i += length;
  }
  if (text.size() > end) out += "...";
  return out;
}

// The value at `index` for a message, without touching the state (no
// tostring, which may allocate outside a protected call).
std::string describe(lua_State* L, int index) {
  switch (lua_type(L, index)) {
    case LUA_TSTRING: {
      std::size_t size = 0;
      const char* data = lua_tolstring(L, index, &size);
      return reasonText({data, size});
    }
    case LUA_TNUMBER:
      return lua_isinteger(L, index) ? std::to_string(lua_tointeger(L, index))
                                     : nlohmann::json(lua_tonumber(L, index)).dump();
    case LUA_TBOOLEAN: return lua_toboolean(L, index) ? "true" : "false";
    case LUA_TNIL: return "nil";
    default: return std::string("a ") + lua_typename(L, lua_type(L, index));
  }
}

std::size_t parseMemory(const nlohmann::json& value) {
  if (value.is_number_unsigned()) return value.get<std::size_t>();
  const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string unit = text.substr(digits);
  const int shift = unit.empty() ? 0 : unit == "KiB" ? 10 : unit == "MiB" ? 20 : unit == "GiB" ? 30 : -1;
  if (digits == 0 || digits > 12 || shift < 0)
    throw std::invalid_argument("lua: max_memory '" + text + "' is not a byte count such as 33554432, 512KiB or 32MiB");
  return std::stoull(text.substr(0, digits)) << shift;
}

std::string readScript(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw std::invalid_argument("lua: cannot read the script " + path + ": " + ec.message());
  if (size > kMaxScriptBytes)
    throw std::invalid_argument("lua: the script " + path + " is " + std::to_string(size) + " bytes; the limit is " +
                                std::to_string(kMaxScriptBytes));
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) throw std::invalid_argument("lua: cannot read the script " + path);
  return text.str();
}

}  // namespace

LuaEnricher::LuaEnricher(const nlohmann::json& config, Context& context) : context_(context) {
  if (!config.is_object()) throw std::invalid_argument("lua: config must be an object");
  const bool inline_script = config.contains("script");
  // Checked here, not with oneOf in the schema, whose refusal names neither key.
  if (inline_script == config.contains("file"))
    throw std::invalid_argument("lua: give the script either inline as 'script' or as a 'file', not both");
  if (inline_script) {
    source_ = config.at("script").get<std::string>();
    chunk_name_ = "=script";
  } else {
    const auto file = config.at("file").get<std::string>();
    source_ = readScript(context.resolvePath(file));
    chunk_name_ = "=" + file;
  }
  params_ = config.value("params", nlohmann::json::object());
  const auto instructions = config.value("max_instructions", static_cast<std::int64_t>(kDefaultInstructions));
  if (instructions < 1000 || instructions > std::numeric_limits<int>::max())
    throw std::invalid_argument("lua: max_instructions must be between 1000 and 2147483647");
  max_instructions_ = static_cast<int>(instructions);
  budget_.cap = config.contains("max_memory") ? parseMemory(config.at("max_memory")) : kDefaultMemory;
  if (budget_.cap < (1u << 20)) throw std::invalid_argument("lua: max_memory must be at least 1MiB");

  if (auto failed = open(true)) throw std::invalid_argument("lua: " + *failed);
  source_.clear();
}

LuaEnricher::~LuaEnricher() { close(); }

void LuaEnricher::close() {
  if (state_ != nullptr) lua_close(state_);
  state_ = nullptr;
  process_ref_ = LUA_NOREF;
}

// A fresh state with the sandbox, the script loaded and run, and process
// found; the reason when any of that fails.
std::optional<std::string> LuaEnricher::open(bool compile) {
  close();
  budget_ = Budget{.cap = budget_.cap};
  state_ = lua_newstate(&allocate, &budget_);
  if (state_ == nullptr) return "cannot create a Lua state within max_memory";
  resetBudget();

  Open open{.params = &params_,
            .code = compile ? std::string_view(source_) : std::string_view(bytecode_),
            .chunk_name = chunk_name_.c_str(),
            .compile = compile,
            .bytecode = &bytecode_};
  lua_pushcfunction(state_, &openState);
  lua_pushlightuserdata(state_, &open);
  const int status = lua_pcall(state_, 1, 0, 0);
  std::optional<std::string> failed;
  if (overBudget(status)) {
    failed = open.phase == Open::Phase::run ? "the script's top level: " + budgetReason()
                                            : "the script does not fit in max_memory (" + std::to_string(budget_.cap) +
                                                  " bytes)";
  } else if (status != LUA_OK) {
    failed = describe(state_, -1);
  }
  if (failed) {
    close();
    return failed;
  }
  process_ref_ = open.process_ref;
  return std::nullopt;
}

void LuaEnricher::resetBudget() {
  budget_.over_instructions = false;
  budget_.refusals = 0;
  budget_.refused_size = 0;
  lua_sethook(state_, &onCount, LUA_MASKCOUNT, max_instructions_);  // a fresh count, and not sticky
}

bool LuaEnricher::overBudget(int status) const {
  return budget_.over_instructions || budget_.refusals > 0 || status == LUA_ERRMEM;
}

std::string LuaEnricher::budgetReason() const {
  if (budget_.over_instructions)
    return "script_budget: the script ran more than " + std::to_string(max_instructions_) +
           " instructions (max_instructions)";
  return "script_budget: the script's state needed more than " + std::to_string(budget_.cap) +
         " bytes (max_memory)";
}

Result LuaEnricher::enrich(Event& event) {
  if (state_ == nullptr) {
    if (auto failed = open(false)) return Result::retry("lua: cannot restart the script: " + *failed, "script_budget");
  }
  resetBudget();
  Call call{.body = &event.body, .process_ref = process_ref_};
  lua_pushcfunction(state_, &runProcess);
  lua_pushlightuserdata(state_, &call);
  const int status = lua_pcall(state_, 1, 3, 0);
  Result result = finish(status, call.converted, event);
  if (state_ != nullptr) lua_settop(state_, 0);
  return result;
}

Result LuaEnricher::finish(int status, bool converted, Event& event) {
  if (overBudget(status)) {
    std::string reason = "lua: " + budgetReason();
    context_.count("script_budget");
    // The script may have been stopped anywhere, its globals half changed:
    // the next event gets a state as the script first saw it.
    close();
    return Result::reject(std::move(reason), "script_budget");
  }
  if (status != LUA_OK) {
    if (!converted) {
      const auto why = lua::whyNotPushable(event.body, "event");
      return Result::reject("lua: " + (why ? *why : describe(state_, -1)), "unconvertible");
    }
    return Result::reject("lua: " + describe(state_, -1), "script_error");
  }

  // The stack: the event table, then what process returned.
  const int verdict = lua_type(state_, 2);
  if (verdict == LUA_TNIL || (verdict == LUA_TBOOLEAN && lua_toboolean(state_, 2))) {
    nlohmann::json body;
    if (auto why = lua::toJson(state_, 1, body, "event")) return Result::reject("lua: " + *why, "script_error");
    if (!body.is_object()) return Result::reject("lua: the event is no longer an object", "script_error");
    event.body = std::move(body);
    return Result::ok();
  }
  const bool has_reason = lua_type(state_, 3) == LUA_TSTRING;
  if (verdict == LUA_TBOOLEAN)
    return Result::reject(has_reason ? describe(state_, 3) : "the lua script rejected the event");
  if (verdict == LUA_TSTRING && describe(state_, 2) == "retry")
    return Result::retry(has_reason ? describe(state_, 3) : "the lua script asked for a retry");
  return Result::reject("lua: process returned " + describe(state_, 2) +
                            "; expected nothing, true, false and a reason, or \"retry\" and a reason",
                        "script_error");
}

}  // namespace eventflow::plugins
