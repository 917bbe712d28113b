// Plugin isolation (issue 14) without a child: the stage keys as read from a
// pipeline file, hostile ones refused with file:line:col, and the framing on
// canned bytes.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.hpp"
#include "isolation/channel.hpp"

namespace fs = std::filesystem;
using namespace eventflow;

namespace {

Expected<config::PipelineSpec> readPipeline(const std::string& yaml) {
  const fs::path file = fs::temp_directory_path() / ("eventflow-isolation-unit-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(file) << yaml;
  auto spec = config::loadPipelineFile(file.string());
  fs::remove(file);
  return spec;
}

std::string pipeline(const std::string& top, const std::string& stage) {
  return "pipeline: p\nmatch: { event_types: [t] }\n" + top +
         "stages:\n  - validator: required-fields\n  - enricher: add-fields\n" + stage + "  - sink: sqlite\n";
}

}  // namespace

TEST(IsolationConfig, InlineByDefaultAndTheStageOverridesThePipeline) {
  auto plain = readPipeline(pipeline("", ""));
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_FALSE(plain->stages[1].isolation.process);

  auto spec = readPipeline(pipeline("isolation: process\nlimits: { memory: 64MiB }\n",
                                    "    isolation: inline\n    limits: { call_timeout: 250ms }\n"));
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_TRUE(spec->stages[0].isolation.process) << "the pipeline's default";
  EXPECT_EQ(spec->stages[0].isolation.memory, 64u << 20);
  EXPECT_FALSE(spec->stages[1].isolation.process) << "the stage's own";
  EXPECT_EQ(spec->stages[1].isolation.memory, 64u << 20) << "limits not given by the stage come from the pipeline";
  EXPECT_EQ(spec->stages[1].isolation.call_timeout, std::chrono::milliseconds(250));
}

TEST(IsolationConfig, HostileValuesAreRefusedNamingTheKeyAndItsPlace) {
  struct Case {
    std::string stage;
    std::string expect;
  };
  for (const auto& c : std::vector<Case>{
           {"    isolation: thread\n", "'isolation' must be inline or process"},
           {"    isolation: [process]\n", "'isolation' must be inline or process"},
           {"    isolation: process\n    limits: { memory: lots }\n", "'memory' must be a size"},
           {"    isolation: process\n    limits: { memory: 1MiB }\n", "'memory' must be at least 16MiB"},
           {"    isolation: process\n    limits: { call_timeout: forever }\n", "'call_timeout' must be a duration"},
           {"    isolation: process\n    limits: { call_timeout: 0s }\n", "'call_timeout' must be at least 1ms"},
           {"    isolation: process\n    limits: { cpu: 2 }\n", "cpu"},
           {"    limits: 5\n", "limits"},
       }) {
    auto spec = readPipeline(pipeline("", c.stage));
    ASSERT_FALSE(spec) << c.stage;
    EXPECT_NE(spec.error().message.find(c.expect), std::string::npos) << spec.error().message;
    EXPECT_NE(spec.error().message.find(".yaml:"), std::string::npos) << spec.error().message;
  }
  auto sink = readPipeline("pipeline: p\nmatch: { event_types: [t] }\nstages:\n  - sink: sqlite\n    isolation: process\n");
  ASSERT_FALSE(sink);
  EXPECT_NE(sink.error().message.find("not sinks"), std::string::npos) << sink.error().message;
}

TEST(IsolationChannel, FramesSplitAnywhereComeBackWhole) {
  std::string bytes;
  isolation::appendFrame(bytes, isolation::Frame::answer, "[0,0]");
  isolation::appendFrame(bytes, isolation::Frame::log, "");
  isolation::FrameReader reader;
  for (char c : bytes) reader.feed(std::string_view(&c, 1));
  auto a = reader.next();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->first, isolation::Frame::answer);
  EXPECT_EQ(a->second, "[0,0]");
  auto b = reader.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->first, isolation::Frame::log);
  EXPECT_FALSE(reader.next());
  EXPECT_FALSE(reader.broken());
}

TEST(IsolationChannel, AnOversizedOrUnknownFrameBreaksTheReader) {
  isolation::FrameReader huge;
  huge.feed(std::string("\xff\xff\xff\xff" "A", 5));
  EXPECT_FALSE(huge.next());
  EXPECT_TRUE(huge.broken());
  isolation::FrameReader unknown;
  unknown.feed(std::string("\x01\x00\x00\x00" "Zx", 6));
  EXPECT_FALSE(unknown.next());
  EXPECT_TRUE(unknown.broken());
}

TEST(IsolationChannel, ResultsMustBeOnePerEventAndWellFormed) {
  Event a, b;
  a.body = {{"x", 1}};
  b.body = {{"y", 2}};
  std::vector<Event*> events{&a, &b};
  std::vector<Result> results;
  EXPECT_TRUE(isolation::decodeResults(R"([[0,{"x":2}],[2,"busy","transient"]])", events, results));
  EXPECT_EQ(a.body["x"], 2) << "an enricher's change comes back";
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0].isOk());
  EXPECT_EQ(results[1].status(), Result::Status::retry);
  EXPECT_EQ(results[1].errorType(), "transient");
  for (const char* bad : {"[0]", "[0,0,0]", "{}", "not json", R"([0,[7,"x","y"]])", R"([0,[1,2,3]])", "[0,\"ok\"]"})
    EXPECT_FALSE(isolation::decodeResults(bad, events, results)) << bad;

  std::vector<Event> decoded;
  std::string error;
  EXPECT_FALSE(isolation::decodeEvents("[{\"i\":1}]", decoded, error));
  EXPECT_FALSE(isolation::decodeEvents("{}", decoded, error));
  a.id = "id-a";
  a.attempt = 3;
  a.received_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1234567));
  ASSERT_TRUE(isolation::decodeEvents(isolation::encodeEvents(events), decoded, error)) << error;
  ASSERT_EQ(decoded.size(), 2u);
  EXPECT_EQ(decoded[0].id, "id-a");
  EXPECT_EQ(decoded[0].attempt, 3u);
  EXPECT_EQ(decoded[0].received_at, a.received_at);
  EXPECT_EQ(decoded[1].body, b.body);
}
