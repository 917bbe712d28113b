// Plugin isolation (issue 14) without a plugin child: the stage keys as read
// from a pipeline file, hostile ones refused with file:line:col, the framing
// on canned bytes, and the seccomp: strict filter in a forked process.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.hpp"
#include "isolation/channel.hpp"
#include "isolation/seccomp.hpp"

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

TEST(IsolationConfig, SeccompIsTheLongFormsKeyAndAStageReplacesThePipelinesIsolationWhole) {
  auto spec = readPipeline(pipeline("isolation: { mode: process, seccomp: strict }\n",
                                    "    isolation: process\n"));
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_TRUE(spec->stages[0].isolation.process);
  EXPECT_TRUE(spec->stages[0].isolation.seccomp) << "the pipeline's default";
  EXPECT_TRUE(spec->stages[1].isolation.process);
  EXPECT_FALSE(spec->stages[1].isolation.seccomp) << "the short form is seccomp: off";
  EXPECT_FALSE(spec->stages[2].isolation.seccomp) << "never on a sink";

  auto stage = readPipeline(pipeline("", "    isolation: { mode: process, seccomp: strict }\n"));
  ASSERT_TRUE(stage) << stage.error().message;
  EXPECT_TRUE(stage->stages[1].isolation.seccomp);
  EXPECT_FALSE(stage->stages[0].isolation.process);
  auto off = readPipeline(pipeline("", "    isolation: { mode: process, seccomp: off }\n"));
  ASSERT_TRUE(off) << off.error().message;
  EXPECT_TRUE(off->stages[1].isolation.process);
  EXPECT_FALSE(off->stages[1].isolation.seccomp);
}

TEST(IsolationConfig, HostileSeccompValuesAreRefusedNamingTheKeyAndItsLine) {
  struct Case {
    std::string stage;
    std::string expect;
    std::string line;  // where the message must point: the stage's key is on line 6
  };
  for (const auto& c : std::vector<Case>{
           {"    isolation: { mode: process, seccomp: lax }\n", "'seccomp' must be off or strict", ":6:"},
           {"    isolation: { mode: process, seccomp: [strict] }\n", "'seccomp' must be off or strict", ":6:"},
           {"    isolation: { mode: process, seccomp: true }\n", "'seccomp' must be off or strict", ":6:"},
           {"    isolation: { mode: inline, seccomp: strict }\n", "'seccomp: strict' needs 'mode: process'", ":6:"},
           {"    isolation: { seccomp: strict }\n", "'isolation' needs 'mode'", ":6:"},
           {"    isolation: { mode: thread }\n", "'isolation.mode' must be inline or process", ":6:"},
           {"    isolation: { mode: process, seccomp: strict, filter: all }\n", "unknown key 'filter' in isolation", ":6:"},
           {"    isolation: {}\n", "'isolation' needs 'mode'", ":6:"},
       }) {
    auto spec = readPipeline(pipeline("", c.stage));
    ASSERT_FALSE(spec) << c.stage;
    EXPECT_NE(spec.error().message.find(c.expect), std::string::npos) << c.stage << spec.error().message;
    EXPECT_NE(spec.error().message.find(".yaml" + c.line), std::string::npos) << spec.error().message;
  }
  auto sink = readPipeline("pipeline: p\nmatch: { event_types: [t] }\nstages:\n  - sink: sqlite\n"
                           "    isolation: { mode: process, seccomp: strict }\n");
  ASSERT_FALSE(sink);
  EXPECT_NE(sink.error().message.find("not sinks"), std::string::npos) << sink.error().message;
}

namespace {

// Forks; the child installs the filter on one end of a socketpair, runs
// `body`, and exits 0. Returns the child's wait status.
template <class F>
int underStrictFilter(F&& body) {
  int pair[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!isolation::installStrictFilter(pair[1]).empty()) ::_exit(3);
    body(pair[1]);
    ::_exit(0);
  }
  ::close(pair[1]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(pair[0]);
  return status;
}

}  // namespace

TEST(IsolationSeccomp, ComputingAllocatingAndTheChannelAreAllowed) {
  const int status = underStrictFilter([](int channel) {
    std::vector<std::string> kept;
    for (int i = 0; i < 2000; ++i) kept.emplace_back(std::string(1 << (i % 20), 'x'));  // small and mmap-sized
    const std::string frame = nlohmann::json{{"n", kept.size()}}.dump();
    if (!isolation::writeAll(channel, frame)) ::_exit(4);
    if (::write(2, "", 0) != 0) ::_exit(5);
    (void)::getpid();
  });
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(IsolationSeccomp, ASocketExecOrFileOpenKillsWithSigsysButAbortIsStillSigabrt) {
  for (const auto& [what, call] : std::vector<std::pair<const char*, void (*)(int)>>{
           {"socket", [](int) { (void)::socket(AF_INET, SOCK_STREAM, 0); }},
           {"execve", [](int) {
              char* const argv[] = {const_cast<char*>("true"), nullptr};
              ::execv("/bin/true", argv);
            }},
           {"open", [](int) { (void)::fopen("/etc/hostname", "r"); }},
           {"fork", [](int) { (void)::fork(); }},
           {"read of another fd", [](int) {
              char c;
              (void)::read(0, &c, 1);
            }},
       }) {
    const int status = underStrictFilter(call);
    ASSERT_TRUE(WIFSIGNALED(status)) << what << ": exited " << WEXITSTATUS(status);
    EXPECT_EQ(WTERMSIG(status), SIGSYS) << what;
  }
  const int aborted = underStrictFilter([](int) { std::abort(); });
  ASSERT_TRUE(WIFSIGNALED(aborted));
  EXPECT_EQ(WTERMSIG(aborted), SIGABRT) << "abort() signals itself: allowed, so the host names SIGABRT";
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
