// The lua enricher as the host runs it: the real module, loaded with dlopen,
// created through its descriptor. Every hostile script must end as a reject
// of its own event, and the next event on the same instance must pass.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include <eventflow/testing.hpp>
#include "plugin_module.hpp"

namespace eventflow {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::makeEvent;

const EventflowPluginDescriptor& descriptor() {
  static const EventflowPluginDescriptor& loaded = test::moduleDescriptor(EVENTFLOW_LUA_PLUGIN);
  return loaded;
}

// The module's enricher, with a shorthand for running one body.
class Lua : public test::EnricherModule {
 public:
  explicit Lua(const Json& config, fs::path base = {}) : EnricherModule(descriptor(), config, std::move(base)) {}
  using EnricherModule::run;
  // Runs `body` and hands back what the script made of it.
  Result run(const Json& body, Json* out = nullptr) {
    Event event = makeEvent(body);
    Result result = run(event);
    if (out != nullptr) *out = event.body;
    return result;
  }
};

Json script(const std::string& text, Json extra = Json::object()) {
  extra["script"] = text;
  return extra;
}

// A reject of `error_type` whose reason holds `fragment`.
void expectReject(const Result& r, const std::string& error_type, const std::string& fragment) {
  EXPECT_EQ(r.status(), Result::Status::reject) << r.reason();
  EXPECT_EQ(r.errorType(), error_type) << r.reason();
  EXPECT_NE(r.reason().find(fragment), std::string::npos) << r.reason();
}

// The five-line script of the benchmark: rename, add, reject on a negative.
const char* const kFiveLines = R"lua(function process(event)
  event.customer = event.user_id; event.user_id = nil
  event.source = params.source
  if (event.properties.amount or 0) < 0 then return false, "negative amount" end
end)lua";

TEST(Lua, RenamesAddsAndRejectsAsTheScriptSays) {
  Lua lua(script(kFiveLines, {{"params", {{"source", "web"}}}}));
  ASSERT_TRUE(lua.created()) << lua.error();
  Json out;
  ASSERT_TRUE(lua.run({{"event_type", "purchase"}, {"user_id", "u1"}, {"properties", {{"amount", 5}}}}, &out).isOk());
  EXPECT_EQ(out["customer"], "u1");
  EXPECT_FALSE(out.contains("user_id")) << out;
  EXPECT_EQ(out["source"], "web");
  EXPECT_EQ(out["properties"]["amount"], 5);

  const Result rejected = lua.run({{"event_type", "purchase"}, {"user_id", "u1"}, {"properties", {{"amount", -5}}}});
  EXPECT_EQ(rejected.status(), Result::Status::reject);
  EXPECT_EQ(rejected.reason(), "negative amount");
  EXPECT_EQ(rejected.errorType(), "rejected");
}

TEST(Lua, RetryAndBadReturnValues) {
  Lua lua(script(R"lua(function process(event)
  if event.mode == "retry" then return "retry", "backend busy" end
  if event.mode == "true" then return true end
  if event.mode == "bare" then return false end
  return 42
end)lua"));
  ASSERT_TRUE(lua.created()) << lua.error();
  const Result retry = lua.run({{"mode", "retry"}});
  EXPECT_EQ(retry.status(), Result::Status::retry);
  EXPECT_EQ(retry.reason(), "backend busy");
  EXPECT_TRUE(lua.run({{"mode", "true"}}).isOk());
  const Result bare = lua.run({{"mode", "bare"}});
  EXPECT_EQ(bare.status(), Result::Status::reject);
  EXPECT_EQ(bare.reason(), "the lua script rejected the event");
  expectReject(lua.run({{"mode", "other"}}), "script_error", "process returned 42");
}

TEST(Lua, ARuntimeErrorRejectsNamingTheLine) {
  Lua lua(script("function process(event)\n  local x = nil\n  return x.field\nend"));
  ASSERT_TRUE(lua.created()) << lua.error();
  expectReject(lua.run({{"event_type", "t"}}), "script_error", "script:3: attempt to index a nil value");
}

TEST(Lua, CreateRefusesASyntaxErrorAMissingProcessAndATopLevelErrorNamingTheLine) {
  Lua syntax(script("function process(event)\n  event.x = \nend"));
  EXPECT_FALSE(syntax.created());
  EXPECT_NE(syntax.error().find("lua: script:3:"), std::string::npos) << syntax.error();

  Lua missing(script("function proces(event) end"));
  EXPECT_FALSE(missing.created());
  EXPECT_NE(missing.error().find("the script defines no function process(event)"), std::string::npos)
      << missing.error();

  Lua top(script("local t = nil\nlocal v = t.x\nfunction process(event) end"));
  EXPECT_FALSE(top.created());
  EXPECT_NE(top.error().find("lua: script:2: attempt to index a nil value"), std::string::npos) << top.error();

  Lua spin(script("while true do end\nfunction process(event) end"));
  EXPECT_FALSE(spin.created());
  EXPECT_NE(spin.error().find("script_budget"), std::string::npos) << spin.error();

  Lua bytecode(script("\x1bLua"));
  EXPECT_FALSE(bytecode.created());
  EXPECT_NE(bytecode.error().find("attempt to load a binary chunk"), std::string::npos) << bytecode.error();
}

TEST(Lua, ReadsTheScriptFromAFileRelativeToThePipeline) {
  const fs::path dir = fs::temp_directory_path() / ("eventflow-lua-" + std::to_string(::getpid()));
  fs::create_directories(dir / "scripts");
  std::ofstream(dir / "scripts" / "tag.lua") << "function process(event)\n  event.tag = params.tag .. nil\nend\n";
  Lua lua(Json{{"file", "scripts/tag.lua"}, {"params", {{"tag", "x"}}}}, dir);
  ASSERT_TRUE(lua.created()) << lua.error();
  const Result r = lua.run({{"event_type", "t"}});
  EXPECT_NE(r.reason().find("scripts/tag.lua:2: attempt to concatenate a nil value"), std::string::npos)
      << r.reason();

  Lua missing(Json{{"file", "scripts/none.lua"}}, dir);
  EXPECT_FALSE(missing.created());
  EXPECT_NE(missing.error().find("cannot read the script " + (dir / "scripts/none.lua").string()), std::string::npos)
      << missing.error();
  fs::remove_all(dir);

  Lua both(Json{{"file", "a.lua"}, {"script", "function process() end"}});
  EXPECT_FALSE(both.created());
  EXPECT_NE(both.error().find("either inline as 'script' or as a 'file'"), std::string::npos) << both.error();
}

TEST(Lua, MaxMemoryTakesBytesOrUnits) {
  EXPECT_TRUE(Lua(script("function process() end", {{"max_memory", "8MiB"}})).created());
  EXPECT_TRUE(Lua(script("function process() end", {{"max_memory", 2097152}})).created());
  Lua bad(script("function process() end", {{"max_memory", "8MB"}}));
  EXPECT_FALSE(bad.created());
  EXPECT_NE(bad.error().find("max_memory '8MB' is not a byte count"), std::string::npos) << bad.error();
  Lua small(script("function process() end", {{"max_memory", "512KiB"}}));
  EXPECT_NE(small.error().find("at least 1MiB"), std::string::npos) << small.error();
}

TEST(Lua, ParamsAreReadOnlyButReadLikeATable) {
  Lua lua(script(R"lua(function process(event)
  local seen = {}
  for k, v in pairs(params.limits) do seen[#seen + 1] = k .. "=" .. v end
  table.sort(seen)
  event.seen = table.concat(seen, ",")
  local tags = {}
  for i, t in ipairs(params.tags) do tags[i] = t end
  event.tags = tags
  event.count = #params.tags
  event.copied = params.tags
  event.meta = getmetatable(params)
  if event.try == "write" then params.limits.max = 1 end
  if event.try == "insert" then table.insert(params.tags, "c") end
  if event.try == "unlock" then setmetatable(params, nil) end
  if event.try == "rawset" then rawset(params, "x", 1) end
end)lua",
                 {{"params", {{"limits", {{"max", 10}, {"min", 1}}}, {"tags", {"a", "b"}}}}}));
  ASSERT_TRUE(lua.created()) << lua.error();
  Json out;
  ASSERT_TRUE(lua.run({{"event_type", "t"}}, &out).isOk());
  EXPECT_EQ(out["seen"], "max=10,min=1");
  EXPECT_EQ(out["tags"], Json({"a", "b"}));
  EXPECT_EQ(out["count"], 2);
  EXPECT_EQ(out["copied"], Json({"a", "b"})) << "a read-only view converts as the table behind it";
  EXPECT_EQ(out["meta"], "read-only");

  for (const std::string attempt : {"write", "insert"}) {
    const Result r = lua.run({{"try", attempt}});
    EXPECT_EQ(r.errorType(), "script_error") << attempt;
    EXPECT_NE(r.reason().find("params is read-only"), std::string::npos) << attempt << ": " << r.reason();
  }
  EXPECT_NE(lua.run({{"try", "unlock"}}).reason().find("cannot change a protected metatable"), std::string::npos);
  EXPECT_NE(lua.run({{"try", "rawset"}}).reason().find("global 'rawset'"), std::string::npos);
}

// ---- JSON <-> Lua -------------------------------------------------------

TEST(Lua, ABodyTheScriptLeavesAloneComesBackExactly) {
  Lua lua(script("function process(event) end"));
  ASSERT_TRUE(lua.created()) << lua.error();
  const Json body = Json::parse(R"({
    "event_type": "t", "empty_object": {}, "empty_array": [], "nested": [[], [{}], {"a": [1, [2, [3]]]}],
    "int": 42, "negative": -7, "float": 1.0, "small": 0.1, "huge": 1e300, "max": 9223372036854775807,
    "min": -9223372036854775808, "text": "h\u00e9llo \u2713 \ud83d\ude00", "nul": "a\u0000b", "null": null,
    "with_nulls": [1, null, 3], "flags": [true, false], "numeric_key": {"1": "one", "2": "two"}
  })");
  Json out;
  ASSERT_TRUE(lua.run(body, &out).isOk());
  Json expected = body;
  expected["event_id"] = out["event_id"];
  EXPECT_EQ(out.dump(), expected.dump());
}

TEST(Lua, ValuesArriveAsTheirLuaTypes) {
  Lua lua(script(R"lua(function process(e)
  e.r = {
    int = math.type(e.int), float = math.type(e.float), null = e.null == null,
    array_len = #e.arr, array_is_marked = getmetatable(e.arr) ~= nil, object_key = e.obj["1"],
    object_int_key = e.obj[1] == nil, hole = e.arr[2] == null, bool = type(e.b),
  }
end)lua"));
  ASSERT_TRUE(lua.created()) << lua.error();
  Json out;
  ASSERT_TRUE(lua.run({{"int", 3}, {"float", 3.5}, {"null", nullptr}, {"arr", {1, nullptr, 3}},
                       {"obj", {{"1", "one"}}}, {"b", true}},
                      &out)
                  .isOk());
  EXPECT_EQ(out["r"], Json({{"int", "integer"}, {"float", "float"}, {"null", true}, {"array_len", 3},
                            {"array_is_marked", true}, {"object_key", "one"}, {"object_int_key", true},
                            {"hole", true}, {"bool", "boolean"}}));
}

TEST(Lua, TablesTheScriptMakesConvertByTheirKeys) {
  Lua lua(script(R"lua(function process(e)
  e.empty = {}
  e.empty_array = array()
  e.list = {1, 2, 3}
  e.record = {a = 1}
  e.quotient = 10 / 2
  e.floor = 10 // 2
  e.cleared_array = e.arr; for i = #e.arr, 1, -1 do table.remove(e.arr) end
  e.cleared_object = e.obj; e.obj.k = nil
  e.appended = e.more; table.insert(e.more, "z")
  e.user_id = nil
  e.null_field = null
end)lua"));
  ASSERT_TRUE(lua.created()) << lua.error();
  Json out;
  ASSERT_TRUE(lua.run({{"arr", {1, 2}}, {"obj", {{"k", 1}}}, {"more", {"y"}}, {"user_id", "u"}}, &out).isOk());
  EXPECT_EQ(out["empty"].dump(), "{}");
  EXPECT_EQ(out["empty_array"].dump(), "[]");
  EXPECT_EQ(out["list"].dump(), "[1,2,3]");
  EXPECT_EQ(out["record"].dump(), R"({"a":1})");
  EXPECT_EQ(out["quotient"].dump(), "5.0");
  EXPECT_EQ(out["floor"].dump(), "5");
  EXPECT_EQ(out["cleared_array"].dump(), "[]");
  EXPECT_EQ(out["cleared_object"].dump(), "{}");
  EXPECT_EQ(out["appended"], Json({"y", "z"}));
  EXPECT_FALSE(out.contains("user_id"));
  EXPECT_TRUE(out.contains("null_field") && out["null_field"].is_null()) << out;
}

TEST(Lua, ValuesWithoutAJsonFormRejectNamingThePath) {
  Lua lua(script(R"lua(function process(e)
  local m = e.mode
  if m == "sparse" then e.p.list = {[1] = "a", [3] = "c"}
  elseif m == "mixed" then e.p.t = {1, 2, x = 3}
  elseif m == "float_key" then e.p.t = {[1.5] = 1}
  elseif m == "function" then e.p.arr[2] = print or function() end
  elseif m == "nan" then e.p.v = 0/0
  elseif m == "inf" then e.p.v = math.huge
  elseif m == "utf8" then e.p.s = "bad \255"
  elseif m == "cycle" then e.p.self = e
  elseif m == "array_string_key" then e.p.arr.x = 1
  end
end)lua"));
  ASSERT_TRUE(lua.created()) << lua.error();
  const std::pair<const char*, const char*> cases[] = {
      {"sparse", "event.p.list is a sparse array: 2 elements but index 3"},
      {"mixed", "event.p.t mixes string keys and integer keys"},
      {"float_key", "event.p.t has the key 1.5"},
      {"function", "event.p.arr[2] is a function"},
      {"nan", "event.p.v is NaN"},
      {"inf", "event.p.v is infinite"},
      {"utf8", "event.p.s is a string that is not valid UTF-8"},
      {"cycle", "is nested deeper than 128 levels"},
      {"array_string_key", "event.p.arr is an array but has string keys"},
  };
  for (const auto& [mode, message] : cases) {
    SCOPED_TRACE(mode);
    expectReject(lua.run({{"mode", mode}, {"p", {{"arr", {1, 2}}}}}), "script_error", message);
  }
}

TEST(Lua, ABodyLuaCannotHoldIsRejectedAsUnconvertible) {
  Lua lua(script("function process(e) e.touched = true end"));
  ASSERT_TRUE(lua.created()) << lua.error();
  Json big = {{"p", {{"big", 18446744073709551615ULL}}}};
  const Result r = lua.run(big);
  EXPECT_EQ(r.errorType(), "unconvertible");
  EXPECT_NE(r.reason().find("event.p.big is 18446744073709551615, beyond Lua's 64-bit integers"), std::string::npos)
      << r.reason();

  Json deep = Json::object();
  Json* at = &deep;
  for (int i = 0; i < 128; ++i) at = &((*at)["d"] = Json::object());  // the body and 128 more: 129 levels
  const Result d = lua.run(deep);
  EXPECT_EQ(d.errorType(), "unconvertible");
  EXPECT_NE(d.reason().find("nested deeper than 128 levels"), std::string::npos) << d.reason();

  Json ok_deep = Json::object();
  at = &ok_deep;
  for (int i = 0; i < 127; ++i) at = &((*at)["d"] = Json::object());  // 128 levels: fits
  Json out;
  ASSERT_TRUE(lua.run(ok_deep, &out).isOk());
  EXPECT_EQ(out["touched"], true);
}

// ---- the sandbox --------------------------------------------------------

TEST(Lua, TheSandboxHasNoWayOut) {
  Lua lua(script(R"lua(function process(e)
  local present = {}
  for _, name in ipairs({"io", "os", "require", "package", "debug", "dofile", "loadfile", "collectgarbage",
                         "print", "rawset", "coroutine"}) do
    if _G[name] ~= nil then present[#present + 1] = name end
  end
  if string.dump ~= nil then present[#present + 1] = "string.dump" end
  e.present = array(present)
  e.text_load = load("return 1 + 1")()
end)lua"));
  ASSERT_TRUE(lua.created()) << lua.error();
  Json out;
  ASSERT_TRUE(lua.run({{"event_type", "t"}}, &out).isOk());
  EXPECT_EQ(out["present"].dump(), "[]");
  EXPECT_EQ(out["text_load"], 2);
}

struct Hostile {
  const char* name;
  const char* body;  // the inside of process(event)
  const char* error_type;
  const char* message;
};

// The hostile scripts of issue 17, each under the default budgets.
const Hostile kHostile[] = {
    {"endless loop", "while true do end", "script_budget", "more than 1000000 instructions"},
    {"growing table", "local t = {} while true do t[#t + 1] = {} end", "script_budget", ""},
    {"huge string", "local s = string.rep(\"x\", 1e9)", "script_budget", "max_memory"},
    {"os.execute", "os.execute(\"id\")", "script_error", "script:2: attempt to index a nil value (global 'os')"},
    {"io.open", "io.open(\"/etc/passwd\")", "script_error", "script:2: attempt to index a nil value (global 'io')"},
    {"require", "require(\"ffi\")", "script_error", "script:2: attempt to call a nil value (global 'require')"},
    {"string.dump", "load(string.dump(function() end))", "script_error", "attempt to call a nil value (field 'dump')"},
    {"binary chunk", "local f, err = load(\"\\27LuaT\\0\") if not f then error(err) end", "script_error",
     "attempt to load a binary chunk (mode is 't')"},
    {"Lua recursion", "local function f(n) return f(n + 1) + 1 end f(1)", "", ""},
    {"C recursion via __index",
     "local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x", "script_error",
     "stack overflow"},
    {"C recursion via gsub", "local function f(s) return (s:gsub(\".\", f)) end f(\"ab\")", "script_error",
     "stack overflow"},
    {"budget swallowed by pcall", "while true do pcall(function() while true do end end) end", "script_budget",
     "instructions"},
    {"memory error swallowed by pcall", "local ok = pcall(string.rep, \"x\", 1e9) event.ok = ok", "script_budget",
     "max_memory"},
};

TEST(Lua, EveryHostileScriptIsACleanRejectAndTheNextEventPasses) {
  for (const auto& h : kHostile) {
    SCOPED_TRACE(h.name);
    const std::string text = std::string("function process(event)\n  if event.hostile then ") + h.body +
                             " end\n  event.fine = true\nend";
    Lua lua(script(text));
    ASSERT_TRUE(lua.created()) << lua.error();
    const Result r = lua.run({{"hostile", true}});
    EXPECT_EQ(r.status(), Result::Status::reject) << r.reason();
    if (*h.error_type != '\0') EXPECT_EQ(r.errorType(), h.error_type) << r.reason();
    else EXPECT_TRUE(r.errorType() == "script_error" || r.errorType() == "script_budget") << r.errorType();
    EXPECT_NE(r.reason().find(h.message), std::string::npos) << r.reason();
    Json out;
    const Result next = lua.run({{"hostile", false}}, &out);
    EXPECT_TRUE(next.isOk()) << next.reason();
    EXPECT_EQ(out["fine"], true);
  }
}

// One event through `body` (the inside of process) with the instruction
// budget out of the way, so that what stops it is the other limit.
Result withoutInstructionLimit(const std::string& body, const char* max_memory) {
  Lua lua(script("function process(event)\n  " + body + "\nend",
                 {{"max_instructions", 2000000000}, {"max_memory", max_memory}}));
  if (!lua.created()) return Result::reject(lua.error(), "create");
  return lua.run({{"event_type", "t"}});
}

TEST(Lua, DeepLuaRecursionEndsInAStackOverflowNamingTheLine) {
  // Memory raised too, so that Lua's own stack limit (LUAI_MAXSTACK) stops it.
  const Result r = withoutInstructionLimit("local function f(n) return f(n + 1) + 1 end f(1)", "1GiB");
  EXPECT_EQ(r.errorType(), "script_error");
  EXPECT_NE(r.reason().find("script:2: stack overflow"), std::string::npos) << r.reason();
}

TEST(Lua, AGrowingTableHitsMaxMemoryWhenInstructionsAllowIt) {
  const Result r = withoutInstructionLimit("local t = {} while true do t[#t + 1] = {} end", "4MiB");
  EXPECT_EQ(r.errorType(), "script_budget");
  EXPECT_NE(r.reason().find("needed more than 4194304 bytes (max_memory)"), std::string::npos) << r.reason();
}

TEST(Lua, ABudgetOverrunStartsTheScriptAfresh) {
  // Globals survive between events on one state, and not past a budget overrun.
  Lua lua(script(R"lua(count = 0
function process(event)
  count = count + 1
  event.count = count
  if event.spin then while true do end end
end)lua"));
  ASSERT_TRUE(lua.created()) << lua.error();
  Json out;
  ASSERT_TRUE(lua.run({{"event_type", "t"}}, &out).isOk());
  ASSERT_TRUE(lua.run({{"event_type", "t"}}, &out).isOk());
  EXPECT_EQ(out["count"], 2);
  EXPECT_EQ(lua.run({{"spin", true}}).errorType(), "script_budget");
  ASSERT_TRUE(lua.run({{"event_type", "t"}}, &out).isOk());
  EXPECT_EQ(out["count"], 1);
}

TEST(Lua, StateThatLeaksAcrossEventsIsCappedAndRestarted) {
  Lua lua(script(R"lua(kept = {}
function process(event)
  kept[#kept + 1] = string.rep("x", 100000)
  event.kept = #kept
end)lua",
                 {{"max_memory", "2MiB"}}));
  ASSERT_TRUE(lua.created()) << lua.error();
  Json out;
  int passed = 0;
  Result r = Result::ok();
  while ((r = lua.run({{"event_type", "t"}}, &out)).isOk() && passed < 100) ++passed;
  EXPECT_EQ(r.errorType(), "script_budget") << r.reason();
  EXPECT_GT(passed, 5);
  EXPECT_LT(passed, 21) << "2 MiB holds about 20 strings of 100 kB";
  ASSERT_TRUE(lua.run({{"event_type", "t"}}, &out).isOk());
  EXPECT_EQ(out["kept"], 1);
}

TEST(Lua, FinalizersAreRefusedSinceTheyWouldRunOutsideTheBudget) {
  // Lua runs __gc with hooks off: a looping finalizer would hang the worker.
  Lua direct(script(R"lua(function process(event)
  setmetatable({}, {__gc = function() while true do end end})
end)lua"));
  ASSERT_TRUE(direct.created()) << direct.error();
  const Result r = direct.run({{"event_type", "t"}});
  EXPECT_EQ(r.errorType(), "script_error");
  EXPECT_NE(r.reason().find("script:2: setmetatable: __gc is not allowed"), std::string::npos) << r.reason();

  // A __gc added after setmetatable marks nothing for finalization.
  Lua later(script(R"lua(function process(event)
  local mt = {} setmetatable({}, mt) mt.__gc = function() while true do end end
  local garbage = {} for i = 1, 2000 do garbage[i] = {i} end
  event.fine = true
end)lua"));
  ASSERT_TRUE(later.created()) << later.error();
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(later.run({{"event_type", "t"}}).isOk());
  // ~Lua closes the state, which would run any pending finalizer.
}

}  // namespace
}  // namespace eventflow
