#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

#include "metrics/metrics.hpp"

using eventflow::metrics::Metrics;

namespace {

// The distinct values `label` takes in the exposition's lines of `metric`.
std::set<std::string> labelValues(const std::string& text, const std::string& metric, const std::string& label) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(metric + "{", 0) != 0) continue;
    const auto at = line.find(label + "=\"");
    if (at == std::string::npos) continue;
    const auto start = at + label.size() + 2;
    out.insert(line.substr(start, line.find('"', start) - start));
  }
  return out;
}

}  // namespace

TEST(Metrics, ValuesPastMaxLabelValuesAreCountedAsOther) {
  Metrics m("test", 3);
  for (int i = 0; i < 20; ++i) m.received("all", "type" + std::to_string(i)).Increment();
  m.received("all", "type1").Increment();  // an admitted value keeps its own series
  const auto text = m.serialize();
  const auto values = labelValues(text, "eventflow_events_received_total", "event_type");
  EXPECT_EQ(values, (std::set<std::string>{"type0", "type1", "type2", "__other__"}));
  EXPECT_NE(text.find(R"(eventflow_events_received_total{event_type="__other__",pipeline="all"} 17)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(eventflow_events_received_total{event_type="type1",pipeline="all"} 2)"), std::string::npos);
}

TEST(Metrics, ExposesTheStandardProcessMetrics) {
  Metrics m("test");
  const auto text = m.serialize();
  for (const char* name : {"process_resident_memory_bytes ", "process_virtual_memory_bytes ", "process_open_fds ",
                           "process_max_fds ", "process_cpu_seconds_total ", "process_start_time_seconds "})
    EXPECT_NE(text.find(std::string("\n") + name), std::string::npos) << name;
  EXPECT_GT(Metrics::residentBytes(), 1u << 20);
}
