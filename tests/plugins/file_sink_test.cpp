#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "plugin_test.hpp"
#include "file.hpp"
#include "schema_check.hpp"
#include "temp_dir.hpp"

namespace eventflow::plugins {
namespace {

using test::FakeContext;
using test::eventId;
using test::makeEvent;
using test::writeBatch;
namespace fs = std::filesystem;

// Events n..n+count-1, each about 90 bytes as a line.
std::vector<Event> events(int first, int count) {
  std::vector<Event> out;
  for (int n = first; n < first + count; ++n)
    out.push_back(makeEvent({{"event_type", "t"}, {"n", n}}, eventId(n)));
  return out;
}

std::vector<std::string> lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

const std::regex kRotated(R"(events-(\d{8}T\d{6}Z)(\.(\d+))?\.ndjson)");

std::vector<fs::path> rotatedFiles(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& entry : fs::directory_iterator(dir))
    if (std::regex_match(entry.path().filename().string(), kRotated)) out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

class FileSinkTest : public ::testing::Test {
 protected:
  nlohmann::json config(nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json c = {{"path", "out/events.ndjson"}};
    c.update(extra);
    return c;
  }
  fs::path active() const { return dir_ / "out/events.ndjson"; }
  // Every event number in the rotated files and the active one, in write
  // order (rotated oldest first).
  std::vector<int> numbersOnDisk() const {
    std::vector<int> out;
    auto files = rotatedFiles(dir_ / "out");
    std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
      const auto key = [](const fs::path& p) {
        const std::string name = p.filename().string();
        std::smatch m;
        std::regex_match(name, m, kRotated);
        return std::make_pair(m[1].str(), m[3].matched ? std::stoi(m[3].str()) : 0);
      };
      return key(a) < key(b);
    });
    files.push_back(active());
    for (const auto& f : files)
      for (const auto& line : lines(f)) out.push_back(nlohmann::json::parse(line).at("n").get<int>());
    return out;
  }
  std::string refused(const nlohmann::json& c) { return test::refusal<FileSink>(c, context_); }

  test::TempDir dir_;
  FakeContext context_{dir_.path()};
};

TEST_F(FileSinkTest, WritesOneJsonLinePerEventAndCreatesTheFolder) {
  FileSink sink(config(), context_);
  auto batch = events(0, 3);
  batch[1].body["text"] = "line\nbreak \xff";  // a newline stays escaped; a bad byte becomes U+FFFD
  for (const auto& r : writeBatch(sink, batch)) EXPECT_TRUE(r.isOk()) << r.reason();
  ASSERT_TRUE(sink.flush().isOk());
  const auto written = lines(active());
  ASSERT_EQ(written.size(), 3u);
  const auto second = nlohmann::json::parse(written[1]);
  EXPECT_EQ(second["event_id"], eventId(1));
  EXPECT_EQ(second["text"], "line\nbreak \xEF\xBF\xBD");
  EXPECT_EQ(fs::status(active()).permissions() & fs::perms::others_all, fs::perms::none);
}

TEST_F(FileSinkTest, RotatesBySizeIntoTimestampedFilesWithoutLosingOrSplittingLines) {
  FileSink sink(config({{"max_bytes", 300}}), context_);
  for (int batch = 0; batch < 5; ++batch) {
    auto some = events(batch * 7, 7);
    for (const auto& r : writeBatch(sink, some)) ASSERT_TRUE(r.isOk()) << r.reason();
    ASSERT_TRUE(sink.flush().isOk());
  }
  const auto rotated = rotatedFiles(dir_ / "out");
  EXPECT_GE(rotated.size(), 5u);
  for (const auto& f : rotated) EXPECT_LE(fs::file_size(f), 300u) << f;
  std::vector<int> expected(35);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(numbersOnDisk(), expected);
  EXPECT_EQ(context_.counts["file_rotations"], static_cast<double>(rotated.size()));
}

TEST_F(FileSinkTest, KeepsOnlyTheNewestRotatedFiles) {
  FileSink sink(config({{"max_bytes", 100}, {"keep", 2}}), context_);
  for (int n = 0; n < 12; ++n) {
    auto one = events(n, 1);
    ASSERT_TRUE(writeBatch(sink, one).front().isOk());
  }
  const auto rotated = rotatedFiles(dir_ / "out");
  ASSERT_EQ(rotated.size(), 2u);
  // One line per file at this size: the two kept are the two written last
  // before the active file's.
  EXPECT_EQ(numbersOnDisk(), (std::vector<int>{9, 10, 11}));
}

TEST_F(FileSinkTest, RotatesByAgeAtTheNextWrite) {
  FileSink sink(config({{"max_age", "1s"}}), context_);
  int n = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (rotatedFiles(dir_ / "out").empty() && std::chrono::steady_clock::now() < deadline) {
    auto one = events(n++, 1);
    ASSERT_TRUE(writeBatch(sink, one).front().isOk());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(rotatedFiles(dir_ / "out").size(), 1u);
  EXPECT_GE(n, 10) << "not before a second had passed";
  EXPECT_EQ(lines(active()).size(), 1u);
}

TEST_F(FileSinkTest, RotatedNamesCarryTheUtcRotationTime) {
  const auto when = std::chrono::system_clock::time_point(std::chrono::seconds(1796516100));  // 2026-12-06T00:15:00Z
  EXPECT_EQ(file_sink::rotatedName("/var/log/ef/events.ndjson", when, 0), "/var/log/ef/events-20261206T001500Z.ndjson");
  EXPECT_EQ(file_sink::rotatedName("/var/log/ef/events.ndjson", when, 2), "/var/log/ef/events-20261206T001500Z.2.ndjson");
  EXPECT_EQ(file_sink::rotatedName("/tmp/raw", when, 0), "/tmp/raw-20261206T001500Z");
}

TEST_F(FileSinkTest, InstancesOnOneFileNeverInterleaveLines) {
  std::vector<std::unique_ptr<FileSink>> sinks;
  for (int i = 0; i < 4; ++i) sinks.push_back(std::make_unique<FileSink>(config({{"max_bytes", 20000}}), context_));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int b = 0; b < 25; ++b) {
        auto batch = events(t * 1000 + b * 20, 20);
        for (const auto& r : writeBatch(*sinks[t], batch)) EXPECT_TRUE(r.isOk());
        EXPECT_TRUE(sinks[t]->flush().isOk());
      }
    });
  for (auto& t : threads) t.join();
  auto numbers = numbersOnDisk();  // throws on a torn line
  EXPECT_EQ(numbers.size(), 2000u);
  EXPECT_EQ(std::set<int>(numbers.begin(), numbers.end()).size(), 2000u);
}

TEST_F(FileSinkTest, AFailedWriteOkaysTheWholeLinesAndCutsATornOneOff) {
  FileSink sink(config(), context_);
  auto batch = events(0, 20);
  // The file size limit makes write(2) stop short with EFBIG part way into
  // line 10, as a full disk would.
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ::getrlimit(RLIMIT_FSIZE, &old);
  rlimit small = old;
  small.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const auto results = writeBatch(sink, batch);
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::size_t ok = 0;
  while (ok < results.size() && results[ok].isOk()) ++ok;
  EXPECT_GT(ok, 0u);
  EXPECT_LT(ok, results.size());
  for (std::size_t i = ok; i < results.size(); ++i) {
    EXPECT_EQ(results[i].status(), Result::Status::retry);
    EXPECT_EQ(results[i].errorType(), "sink_unavailable");
    EXPECT_NE(results[i].reason().find("cannot write: File too large"), std::string::npos) << results[i].reason();
  }
  EXPECT_EQ(lines(active()).size(), ok) << "no torn line left";
  // The retry of the rest appends after the last whole line.
  std::vector<Event> rest(batch.begin() + static_cast<long>(ok), batch.end());
  for (const auto& r : writeBatch(sink, rest)) EXPECT_TRUE(r.isOk()) << r.reason();
  std::vector<int> expected(20);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(numbersOnDisk(), expected);
}

TEST_F(FileSinkTest, ValidateOnlyTouchesNothing) {
  FakeContext validating(dir_.path(), {{"validate_only", "1"}});
  FileSink sink(config(), validating);
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(FileSinkTest, RefusesBadConfigsNamingTheKey) {
  EXPECT_NE(refused({{"path", ""}}).find("path is required"), std::string::npos);
  EXPECT_NE(refused(config({{"max_bytes", 0}})).find("max_bytes must be a positive integer"), std::string::npos);
  EXPECT_NE(refused(config({{"max_age", "soon"}})).find("max_age \"soon\" is not a duration"), std::string::npos);
  EXPECT_NE(refused(config({{"max_age", "100ms"}})).find("from 1s"), std::string::npos);
  EXPECT_NE(refused(config({{"keep", -1}})).find("keep must be a count"), std::string::npos);
  FileSink first(config({{"max_bytes", 1000}}), context_);
  EXPECT_NE(refused(config({{"max_bytes", 2000}})).find("another stage writes"), std::string::npos);
}

TEST_F(FileSinkTest, SchemaRefusesBadShapes) {
  const test::SchemaCheck schema(kFileSinkConfigSchema);
  EXPECT_TRUE(schema.valid({{"path", "a.ndjson"}, {"max_bytes", 1000000}, {"max_age", "1h"}, {"keep", 7}}));
  EXPECT_FALSE(schema.valid(nlohmann::json::object()));
  EXPECT_FALSE(schema.valid({{"path", "a"}, {"max_bytes", "1MB"}}));
  EXPECT_FALSE(schema.valid({{"path", "a"}, {"max_age", "an hour"}}));
  EXPECT_FALSE(schema.valid({{"path", "a"}, {"keep", -1}}));
  EXPECT_FALSE(schema.valid({{"path", "a"}, {"rotate", true}}));
}

}  // namespace
}  // namespace eventflow::plugins
