// Micro-benchmark of the lua enricher (issue 17: a 5-line script adds at most
// 3 us per event at the median). Not a test: speed targets stay out of ctest.
// Times each enrich() call of the real module on 100,000 events shaped as
// `eventflow produce` sends purchases, and prints the percentiles.
//
//   build/bin/eventflow_lua_bench [events]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "plugin_module.hpp"

namespace {

using eventflow::Event;
using Json = nlohmann::json;

const char* const kFiveLines = R"lua(function process(event)
  event.customer = event.user_id; event.user_id = nil
  event.source = "web"
  if event.properties.amount < 0 then return false, "negative amount" end
end)lua";

void measure(const char* name, const char* script, std::size_t events) {
  const auto& descriptor = eventflow::test::moduleDescriptor(EVENTFLOW_LUA_PLUGIN);
  eventflow::test::EnricherModule lua(descriptor, Json{{"script", script}});
  if (!lua.created()) {
    std::fprintf(stderr, "%s: %s\n", name, lua.error().c_str());
    std::exit(1);
  }
  std::vector<double> ns;
  ns.reserve(events);
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < events; ++i) {
    Event event;
    event.id = "0193a5c2-7d4e-7b21-9f3a-" + std::to_string(100000000000 + i);
    event.type = "purchase";
    event.body = {{"event_id", event.id},
                  {"event_type", "purchase"},
                  {"user_id", "user_" + std::to_string(i)},
                  {"timestamp", "2026-01-01T00:00:00Z"},
                  {"correlation_id", "c-" + std::to_string(i)},
                  {"properties", {{"amount", i % 10 == 0 ? -1.0 : 10.5 + static_cast<double>(i)}, {"currency", "USD"}}},
                  {"processed_by", "eventflow"},
                  {"processing_timestamp", "2026-01-01T00:00:00.123Z"}};
    const auto start = std::chrono::steady_clock::now();
    const auto result = lua.run(event);
    ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count());
    rejected += result.isOk() ? 0 : 1;
  }
  std::sort(ns.begin(), ns.end());
  const auto at = [&](double q) { return ns[static_cast<std::size_t>(q * static_cast<double>(ns.size() - 1))] / 1000; };
  std::printf("%-28s %zu events (%zu rejected): median %.2f us, p90 %.2f us, p99 %.2f us, max %.1f us\n", name,
              events, rejected, at(0.5), at(0.9), at(0.99), ns.back() / 1000);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t events = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  measure("five-line script", kFiveLines, events);
  measure("empty process (conversion)", "function process(event) end", events);
  return 0;
}
