#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <set>
#include <sstream>
#include <thread>

#include "plugin_test.hpp"
#include "schema_check.hpp"
#include "stdout.hpp"

namespace eventflow::plugins {
namespace {

using test::FakeContext;
using test::makeEvent;
using test::writeBatch;

// A pipe standing in for standard output, drained by a thread.
class Pipe {
 public:
  Pipe() {
    EXPECT_EQ(::pipe(fds_), 0);
    reader_ = std::thread([this] {
      char buffer[4096];
      ssize_t n;
      while ((n = ::read(fds_[0], buffer, sizeof buffer)) > 0) text_.append(buffer, static_cast<std::size_t>(n));
    });
  }
  ~Pipe() { close(); }
  int writeEnd() const { return fds_[1]; }
  // Everything written, once the write end is closed.
  const std::string& close() {
    if (fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
    if (reader_.joinable()) reader_.join();
    if (fds_[0] >= 0) ::close(fds_[0]);
    fds_[0] = -1;
    return text_;
  }

 private:
  int fds_[2] = {-1, -1};
  std::thread reader_;
  std::string text_;
};

TEST(StdoutSink, WritesOneJsonLinePerEvent) {
  FakeContext context;
  StdoutSink sink(nlohmann::json::object(), context);
  Pipe pipe;
  sink.setDescriptor(pipe.writeEnd());
  std::vector<Event> batch;
  for (int n = 0; n < 3; ++n) batch.push_back(makeEvent({{"event_type", "t"}, {"n", n}, {"s", "a\nb"}}));
  for (const auto& r : writeBatch(sink, batch)) EXPECT_TRUE(r.isOk()) << r.reason();
  EXPECT_TRUE(sink.flush().isOk());
  std::istringstream lines(pipe.close());
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    const auto doc = nlohmann::json::parse(line);
    EXPECT_EQ(doc["n"], n);
    EXPECT_EQ(doc["s"], "a\nb");
  }
  EXPECT_EQ(n, 3);
}

TEST(StdoutSink, InstancesOnSeveralThreadsNeverInterleaveLines) {
  FakeContext context;
  Pipe pipe;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      StdoutSink sink(nlohmann::json::object(), context);
      sink.setDescriptor(pipe.writeEnd());
      for (int b = 0; b < 50; ++b) {
        std::vector<Event> batch;
        for (int i = 0; i < 20; ++i)
          batch.push_back(makeEvent({{"event_type", "t"}, {"n", t * 1000 + b * 20 + i}, {"pad", std::string(300, 'x')}}));
        for (const auto& r : writeBatch(sink, batch)) EXPECT_TRUE(r.isOk());
      }
    });
  for (auto& t : threads) t.join();
  std::istringstream lines(pipe.close());
  std::set<int> seen;
  for (std::string line; std::getline(lines, line);) seen.insert(nlohmann::json::parse(line).at("n").get<int>());
  EXPECT_EQ(seen.size(), 4000u);
}

TEST(StdoutSink, AClosedOutputIsARetryNotACrash) {
  std::signal(SIGPIPE, SIG_IGN);  // as the host does
  FakeContext context;
  StdoutSink sink(nlohmann::json::object(), context);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  sink.setDescriptor(fds[1]);
  std::vector<Event> batch{makeEvent({{"event_type", "t"}})};
  const auto results = writeBatch(sink, batch);
  ::close(fds[1]);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status(), Result::Status::retry);
  EXPECT_EQ(results[0].errorType(), "sink_unavailable");
  EXPECT_NE(results[0].reason().find("Broken pipe"), std::string::npos) << results[0].reason();
}

TEST(StdoutSink, TakesNoConfig) {
  FakeContext context;
  EXPECT_NO_THROW(StdoutSink(nullptr, context));
  EXPECT_THROW(StdoutSink({{"pretty", true}}, context), std::invalid_argument);
  const test::SchemaCheck schema(kStdoutSinkConfigSchema);
  EXPECT_TRUE(schema.valid(nlohmann::json::object()));
  EXPECT_NE(schema.errors({{"pretty", true}}).find("pretty"), std::string::npos) << schema.errors({{"pretty", true}});
}

}  // namespace
}  // namespace eventflow::plugins
