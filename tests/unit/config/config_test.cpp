#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "config/config.hpp"

namespace fs = std::filesystem;
using namespace eventflow;

namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("eventflow-config-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "pipelines");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

  fs::path dir_;
};

const char* const kPipeline = R"(pipeline: purchases
match: { event_types: [purchase] }
concurrency: 3
retry: { max_attempts: 4, initial_backoff: 100ms, multiplier: 3, max_backoff: 10s, jitter: none }
stages:
  - validator: required-fields
    config: { fields: [user_id] }
  - enricher: add-fields
    config: { fields: { source: web, count: 3, flag: true, quoted: "42" } }
  - sink: sqlite
)";

}  // namespace

TEST_F(ConfigTest, DefaultsApplyAndRelativePathsFollowTheConfigFile) {
  const auto file = write("eventflow.yaml", "store: { url: \"sqlite://data/ef.db\" }\nplugins: { paths: [plugins] }\n");
  auto cfg = config::loadHostConfig(file);
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->server.listen, "127.0.0.1:8000");
  EXPECT_EQ(cfg->server.max_body_bytes, 1048576u);
  EXPECT_EQ(cfg->store.url, "sqlite://" + (dir_ / "data/ef.db").string());
  ASSERT_EQ(cfg->plugin_paths.size(), 1u);
  EXPECT_EQ(cfg->plugin_paths[0], (dir_ / "plugins").string());
  EXPECT_EQ(cfg->shutdown_timeout.count(), 30000);
}

TEST_F(ConfigTest, UnknownKeyNamesFileLineAndColumn) {
  const auto file = write("eventflow.yaml", "server:\n  listen: \"127.0.0.1:9000\"\n  max_bdy_bytes: 10\n");
  auto cfg = config::loadHostConfig(file);
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find(file + ":3:3: unknown key 'max_bdy_bytes' in server"), std::string::npos)
      << cfg.error().message;
}

// yaml-cpp keeps a repeated key and a lookup takes the first: a section
// appended to a file would be ignored without a word.
TEST_F(ConfigTest, AKeyGivenTwiceIsRefusedNamingBothLines) {
  const auto host = write("eventflow.yaml", "retention: { done: 2s }\nlogging: { level: info }\nretention: { done: 1h }\n");
  auto cfg = config::loadHostConfig(host);
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find(host + ":3:1: key 'retention' is given twice in the host config (first at line 1)"),
            std::string::npos)
      << cfg.error().message;
  const auto nested = write("nested.yaml", "server:\n  listen: \"127.0.0.1:9000\"\n  listen: \"0.0.0.0:9000\"\n");
  cfg = config::loadHostConfig(nested);
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find(nested + ":3:3: key 'listen' is given twice in server (first at line 2)"),
            std::string::npos)
      << cfg.error().message;
  const auto pipeline = write("pipelines/p.yaml", std::string(kPipeline) + "concurrency: 9\n");
  auto spec = config::loadPipelineFile(pipeline);
  ASSERT_FALSE(spec);
  EXPECT_NE(spec.error().message.find("key 'concurrency' is given twice in a pipeline (first at line 3)"),
            std::string::npos)
      << spec.error().message;
}

TEST_F(ConfigTest, BrokenYamlNamesLineAndColumn) {
  const auto file = write("eventflow.yaml", "server:\n  listen: [unclosed\n");
  auto cfg = config::loadHostConfig(file);
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find(file + ":"), std::string::npos);
  EXPECT_NE(cfg.error().message.find("invalid YAML"), std::string::npos) << cfg.error().message;
}

TEST_F(ConfigTest, WrongTypesAreReportedEachWithItsPlace) {
  const auto file = write("eventflow.yaml", "server: { max_body_bytes: lots }\nqueue: { type: kafka }\nshutdown_timeout: soon\n");
  auto cfg = config::loadHostConfig(file);
  ASSERT_FALSE(cfg);
  const auto& m = cfg.error().message;
  EXPECT_NE(m.find(file + ":1:27: 'max_body_bytes' must be a whole number"), std::string::npos) << m;
  EXPECT_NE(m.find("queue 'type' must be embedded or redis"), std::string::npos) << m;
  EXPECT_NE(m.find(file + ":3:19: 'shutdown_timeout' must be a duration"), std::string::npos) << m;
}

TEST_F(ConfigTest, EnvironmentOverridesTheFile) {
  const auto file = write("eventflow.yaml", "store: { url: \"sqlite:///tmp/a.db\" }\n");
  ::setenv("EVENTFLOW_STORE_URL", "sqlite:///tmp/from-env.db", 1);
  ::setenv("EVENTFLOW_SERVER_LISTEN", "127.0.0.1:9999", 1);
  auto cfg = config::loadHostConfig(file);
  ::unsetenv("EVENTFLOW_STORE_URL");
  ::unsetenv("EVENTFLOW_SERVER_LISTEN");
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->store.url, "sqlite:///tmp/from-env.db");
  EXPECT_EQ(cfg->server.listen, "127.0.0.1:9999");
}

TEST_F(ConfigTest, SecretsComeFromFileVariables) {
  const auto secret = write("url.txt", "sqlite:///tmp/secret.db\n");
  const auto file = write("eventflow.yaml", "{}\n");
  ::setenv("EVENTFLOW_STORE_URL_FILE", secret.c_str(), 1);
  auto cfg = config::loadHostConfig(file);
  ::unsetenv("EVENTFLOW_STORE_URL_FILE");
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->store.url, "sqlite:///tmp/secret.db");
}

TEST_F(ConfigTest, PipelineFileIsReadIntoTypedSpec) {
  const auto file = write("pipelines/purchases.yaml", kPipeline);
  auto spec = config::loadPipelineFile(file);
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->name, "purchases");
  EXPECT_EQ(spec->event_types, std::vector<std::string>{"purchase"});
  EXPECT_EQ(spec->concurrency, 3u);
  EXPECT_EQ(spec->retry.max_attempts, 4u);
  EXPECT_EQ(spec->retry.initial_backoff.count(), 100);
  EXPECT_EQ(spec->retry.max_backoff.count(), 10000);
  EXPECT_FALSE(spec->retry.full_jitter);
  ASSERT_EQ(spec->stages.size(), 3u);
  EXPECT_EQ(spec->stages[1].kind, Kind::enricher);
  const auto& fields = spec->stages[1].config["fields"];
  EXPECT_EQ(fields["source"], "web");
  EXPECT_EQ(fields["count"], 3);
  EXPECT_EQ(fields["flag"], true);
  EXPECT_EQ(fields["quoted"], "42");  // quoted stays a string
  EXPECT_EQ(spec->dir, (dir_ / "pipelines").string());
}

TEST_F(ConfigTest, StageWithUnknownKeyAndTwoKindsIsRefused) {
  const auto file = write("pipelines/bad.yaml",
                          "pipeline: bad\nmatch: { event_types: [x] }\nstages:\n  - validator: a\n    sink: b\n"
                          "  - sink: c\n    confg: {}\n");
  auto spec = config::loadPipelineFile(file);
  ASSERT_FALSE(spec);
  const auto& m = spec.error().message;
  EXPECT_NE(m.find(file + ":4:5: a stage names exactly one of validator, enricher or sink"), std::string::npos) << m;
  EXPECT_NE(m.find(file + ":7:5: unknown key 'confg' in a stage"), std::string::npos) << m;
}

TEST_F(ConfigTest, StagesOutOfOrderAndMissingSinkAreRefused) {
  const auto file = write("pipelines/bad.yaml",
                          "pipeline: bad\nmatch: { event_types: [x] }\nstages:\n  - enricher: a\n  - validator: b\n");
  auto spec = config::loadPipelineFile(file);
  ASSERT_FALSE(spec);
  EXPECT_NE(spec.error().message.find("validators, then enrichers, then sinks"), std::string::npos);
  EXPECT_NE(spec.error().message.find("at least one sink"), std::string::npos);
}

TEST_F(ConfigTest, AnEventTypeRoutedTwiceIsAConfigError) {
  write("pipelines/a.yaml", "pipeline: a\nmatch: { event_types: [purchase] }\nstages: [{sink: s}]\n");
  write("pipelines/b.yaml", "pipeline: b\nmatch: { event_types: [purchase, refund] }\nstages: [{sink: s}]\n");
  auto specs = config::loadPipelines({(dir_ / "pipelines").string()});
  ASSERT_FALSE(specs);
  EXPECT_NE(specs.error().message.find("event type 'purchase' is already routed by " + (dir_ / "pipelines/a.yaml").string()),
            std::string::npos)
      << specs.error().message;
}

TEST_F(ConfigTest, TwoCatchAllsAreAConfigError) {
  write("pipelines/a.yaml", "pipeline: a\nmatch: \"*\"\nstages: [{sink: s}]\n");
  write("pipelines/b.yaml", "pipeline: b\nmatch: { event_types: \"*\" }\nstages: [{sink: s}]\n");
  auto specs = config::loadPipelines({(dir_ / "pipelines").string()});
  ASSERT_FALSE(specs);
  EXPECT_NE(specs.error().message.find("a second catch-all"), std::string::npos) << specs.error().message;
}

TEST_F(ConfigTest, DlqReplayRateFromFileAndEnvironmentAndNeverZero) {
  EXPECT_EQ(config::loadHostConfig(write("default.yaml", "{}\n"))->dlq.replay_rate, 1000u);
  const auto file = write("eventflow.yaml", "dlq: { replay_rate: 250 }\n");
  EXPECT_EQ(config::loadHostConfig(file)->dlq.replay_rate, 250u);
  ::setenv("EVENTFLOW_DLQ_REPLAY_RATE", "40", 1);
  auto from_env = config::loadHostConfig(file);
  ::unsetenv("EVENTFLOW_DLQ_REPLAY_RATE");
  ASSERT_TRUE(from_env) << from_env.error().message;
  EXPECT_EQ(from_env->dlq.replay_rate, 40u);
  const auto zero = write("zero.yaml", "dlq: { replay_rate: 0 }\n");
  auto bad = config::loadHostConfig(zero);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find(zero + ":1:21: 'replay_rate' must be a whole number >= 1"), std::string::npos)
      << bad.error().message;
  auto unknown = config::loadHostConfig(write("unknown.yaml", "dlq: { rate: 5 }\n"));
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown key 'rate' in dlq"), std::string::npos) << unknown.error().message;
}

TEST_F(ConfigTest, IngestMetricsAndLimitsKeys) {
  auto c = config::loadHostConfig(write("a.yaml", "ingest: { naive_timestamps: reject }\n"
                                                  "metrics: { max_label_values: 50 }\n"
                                                  "limits: { max_rss: 512MiB }\n"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->ingest.naive_timestamps, "reject");
  EXPECT_EQ(c->metrics.max_label_values, 50u);
  EXPECT_EQ(c->limits.max_rss, 512ull << 20);
  auto d = config::loadHostConfig(write("d.yaml", "server: { listen: \"127.0.0.1:1\" }\n"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->ingest.naive_timestamps, "utc");
  EXPECT_EQ(d->metrics.max_label_values, 1000u);
  EXPECT_EQ(d->limits.max_rss, 0u);

  auto bad = config::loadHostConfig(write("b.yaml", "ingest: { naive_timestamps: local }\n"
                                                    "metrics: { max_label_values: 0 }\n"
                                                    "limits: { max_rss: 12 parsecs }\n"));
  ASSERT_FALSE(bad);
  const auto& m = bad.error().message;
  EXPECT_NE(m.find("b.yaml:1:"), std::string::npos) << m;
  EXPECT_NE(m.find("naive_timestamps' must be utc or reject"), std::string::npos) << m;
  EXPECT_NE(m.find("b.yaml:2:"), std::string::npos) << m;
  EXPECT_NE(m.find("b.yaml:3:"), std::string::npos) << m;
  EXPECT_NE(m.find("'max_rss' must be a size"), std::string::npos) << m;
}

// The limits of issue 11: defaults, the file, the environment, and the checks both pass.
TEST_F(ConfigTest, JsonDepthAndConnectionLimitsAreReadAndChecked) {
  auto defaults = config::loadHostConfig(write("eventflow.yaml", "{}\n"));
  ASSERT_TRUE(defaults) << defaults.error().message;
  EXPECT_EQ(defaults->server.max_json_depth, 64u);
  EXPECT_EQ(defaults->server.max_connections, 10000u);

  auto set = config::loadHostConfig(write("eventflow.yaml", "server: { max_json_depth: 16, max_connections: 50 }\n"));
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->server.max_json_depth, 16u);
  EXPECT_EQ(set->server.max_connections, 50u);

  const auto file = write("eventflow.yaml", "server: { max_json_depth: 100000, max_connections: 0 }\n");
  auto bad = config::loadHostConfig(file);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find(file + ":1:27: 'max_json_depth' must be at most 1000"), std::string::npos)
      << bad.error().message;
  EXPECT_NE(bad.error().message.find("'max_connections' must be a whole number >= 1"), std::string::npos)
      << bad.error().message;

  ::setenv("EVENTFLOW_SERVER_MAX_JSON_DEPTH", "0", 1);
  ::setenv("EVENTFLOW_SERVER_MAX_CONNECTIONS", "200", 1);
  auto env = config::loadHostConfig(write("eventflow.yaml", "{}\n"));
  ::unsetenv("EVENTFLOW_SERVER_MAX_JSON_DEPTH");
  ::unsetenv("EVENTFLOW_SERVER_MAX_CONNECTIONS");
  ASSERT_FALSE(env);
  EXPECT_NE(env.error().message.find("'max_json_depth' must be a whole number >= 1"), std::string::npos)
      << env.error().message;
}

TEST_F(ConfigTest, ApiKeysMayCarryTheMetricsScope) {
  const std::string sha(64, 'a');
  auto cfg = config::loadHostConfig(
      write("eventflow.yaml", "server: { api_keys: [{ name: prom, sha256: \"" + sha + "\", scopes: [metrics] }] }\n"));
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->server.api_keys.at(0).scopes, std::vector<std::string>{"metrics"});
}

TEST_F(ConfigTest, DlqMaxPageBytesIsReadAndChecked) {
  auto defaults = config::loadHostConfig(write("eventflow.yaml", "{}\n"));
  ASSERT_TRUE(defaults) << defaults.error().message;
  EXPECT_EQ(defaults->dlq.max_page_bytes, 8u << 20);
  auto set = config::loadHostConfig(write("eventflow.yaml", "dlq: { max_page_bytes: 65536 }\n"));
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->dlq.max_page_bytes, 65536u);
  ::setenv("EVENTFLOW_DLQ_MAX_PAGE_BYTES", "12", 1);
  auto env = config::loadHostConfig(write("eventflow.yaml", "{}\n"));
  ::unsetenv("EVENTFLOW_DLQ_MAX_PAGE_BYTES");
  ASSERT_FALSE(env);
  EXPECT_NE(env.error().message.find("'max_page_bytes' must be a whole number >= 1024"), std::string::npos)
      << env.error().message;
}

// Nine levels of nine aliases is 9^9 nodes once expanded, in a 1 KB file.
TEST_F(ConfigTest, AFileThatExpandsPastTheNodeLimitIsRefusedWithItsPlace) {
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    const std::string p = "*a" + std::to_string(i - 1);
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + p + ", " + p + ", " + p + ", " + p + ", " +
            p + ", " + p + ", " + p + ", " + p + ", " + p + "]\n";
  }
  const auto pipeline = write("pipelines/bomb.yaml", "pipeline: bomb\nmatch: { event_types: [x] }\nstages:\n"
                                                     "  - sink: s\n    config:\n      " +
                                                         [&] {
                                                           std::string indented;
                                                           for (char c : yaml) indented += c == '\n' ? std::string("\n      ") : std::string(1, c);
                                                           return indented;
                                                         }() + "\n");
  auto spec = config::loadPipelineFile(pipeline);
  ASSERT_FALSE(spec);
  EXPECT_NE(spec.error().message.find(pipeline + ":"), std::string::npos) << spec.error().message;
  EXPECT_NE(spec.error().message.find("expands to more than 100000 YAML nodes (aliases counted)"), std::string::npos)
      << spec.error().message;

  const auto host = write("eventflow.yaml", yaml);
  auto cfg = config::loadHostConfig(host);
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find(host + ":"), std::string::npos) << cfg.error().message;
  EXPECT_NE(cfg.error().message.find("more than 100000 YAML nodes"), std::string::npos) << cfg.error().message;

  // Aliases as such are fine.
  auto small = config::loadHostConfig(write("small.yaml", "x: &p [/a, /b]\nplugins: { paths: *p }\n"));
  ASSERT_FALSE(small);
  EXPECT_EQ(small.error().message.find("YAML nodes"), std::string::npos) << small.error().message;
}

TEST_F(ConfigTest, ListenNeedsAHostAndAPortThatExist) {
  for (const std::string bad : {"127.0.0.1:99999", "999.1.1.1:80", ":", ":8000", "127.0.0.1:", "127.0.0.1:http",
                                "::1:80", "[::zz]:80", "bad_host!:80"}) {
    const auto file = write("eventflow.yaml", "server:\n  listen: \"" + bad + "\"\n");
    auto cfg = config::loadHostConfig(file);
    ASSERT_FALSE(cfg) << bad;
    EXPECT_NE(cfg.error().message.find(file + ":2:11: server.listen '" + bad + "': "), std::string::npos)
        << cfg.error().message;
  }
  for (const std::string good : {"127.0.0.1:8000", "0.0.0.0:1", "[::1]:8000", "localhost:65535", "ingest.example.org:80",
                                 "127.0.0.1:0"}) {
    auto cfg = config::loadHostConfig(write("eventflow.yaml", "server:\n  listen: \"" + good + "\"\n"));
    EXPECT_TRUE(cfg) << good << ": " << cfg.error().message;
  }
  // An override from the environment gets the same check, naming the key.
  ::setenv("EVENTFLOW_SERVER_LISTEN", "127.0.0.1:99999", 1);
  auto env = config::loadHostConfig(write("env.yaml", "{}\n"));
  ::unsetenv("EVENTFLOW_SERVER_LISTEN");
  ASSERT_FALSE(env);
  EXPECT_NE(env.error().message.find("(from environment): server.listen '127.0.0.1:99999': port"), std::string::npos)
      << env.error().message;
}

TEST_F(ConfigTest, DurationsAreFiniteNumbersWithAUnitAndBounded) {
  for (const std::string bad : {"nan", "inf", "-inf", "1e300s", "1e3s", "infs", "0x10s", "366d", "99999999999999s", "-5s",
                                // past int64 milliseconds: the SDK's parseDuration overflowed (found by
                                // scripts/fuzz) and the negative result passed the 365d bound
                                "999999999999d", "999999999999.5d"}) {
    const auto file = write("eventflow.yaml", "shutdown_timeout: \"" + bad + "\"\nrelay: { republish_after: " + bad + " }\n");
    auto cfg = config::loadHostConfig(file);
    ASSERT_FALSE(cfg) << bad;
    EXPECT_NE(cfg.error().message.find(file + ":1:19: 'shutdown_timeout' must be a duration"), std::string::npos)
        << cfg.error().message;
    EXPECT_NE(cfg.error().message.find("'republish_after' must be a duration"), std::string::npos)
        << cfg.error().message;
  }
  auto ok = config::loadHostConfig(write("ok.yaml", "shutdown_timeout: 1.5s\nrelay: { republish_after: 365d }\n"));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->shutdown_timeout.count(), 1500);
  const auto pipeline = write("pipelines/p.yaml", "pipeline: p\nmatch: { event_types: [x] }\n"
                                                  "retry: { initial_backoff: nan, max_backoff: 1e300s, multiplier: .nan }\n"
                                                  "stages: [{sink: s}]\n");
  auto spec = config::loadPipelineFile(pipeline);
  ASSERT_FALSE(spec);
  EXPECT_NE(spec.error().message.find("'initial_backoff' must be a duration"), std::string::npos) << spec.error().message;
  EXPECT_NE(spec.error().message.find("'max_backoff' must be a duration"), std::string::npos) << spec.error().message;
  EXPECT_NE(spec.error().message.find("'multiplier' must be a number"), std::string::npos) << spec.error().message;
}

TEST_F(ConfigTest, FileVariablesReadOnlySmallRegularFiles) {
  const auto file = write("eventflow.yaml", "{}\n");
  const std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto big = write("big.txt", std::string(64 * 1024 + 1, 'x'));
  const auto fits = write("fits.txt", "sqlite:///tmp/" + std::string(64 * 1024 - 20, 'y') + "\n");
  const std::vector<std::pair<std::string, std::string>> cases{{fifo, "not a regular file"},
                                                               {"/dev/zero", "not a regular file"},
                                                               {dir_.string(), "not a regular file"},
                                                               {big, "larger than 64 KiB"},
                                                               {(dir_ / "nowhere").string(), "cannot open"}};
  for (const auto& [path, why] : cases) {
    ::setenv("EVENTFLOW_STORE_URL_FILE", path.c_str(), 1);
    auto cfg = config::loadHostConfig(file);  // returns at once: a FIFO is not waited on
    ::unsetenv("EVENTFLOW_STORE_URL_FILE");
    ASSERT_FALSE(cfg) << path;
    EXPECT_NE(cfg.error().message.find("EVENTFLOW_STORE_URL_FILE=" + path + ": " + why), std::string::npos)
        << cfg.error().message;
  }
  ::setenv("EVENTFLOW_STORE_URL_FILE", fits.c_str(), 1);
  auto cfg = config::loadHostConfig(file);
  ::unsetenv("EVENTFLOW_STORE_URL_FILE");
  EXPECT_TRUE(cfg) << cfg.error().message;
}

TEST_F(ConfigTest, AFolderOrANonScalarKeyIsOneMessageNamingTheFile) {
  auto folder = config::loadHostConfig(dir_.string());
  ASSERT_FALSE(folder);
  EXPECT_EQ(folder.error().message, dir_.string() + ": is a folder, not a YAML file");

  const auto file = write("eventflow.yaml", "server:\n  ? [listen]\n  : x\n");
  auto cfg = config::loadHostConfig(file);
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find(file + ":2:5: a mapping key must be a plain value"), std::string::npos)
      << cfg.error().message;
  const auto pipeline = write("pipelines/p.yaml", "pipeline: p\nmatch: { event_types: [x] }\n"
                                                  "stages:\n  - sink: s\n    config: { {a: 1}: 2 }\n");
  auto spec = config::loadPipelineFile(pipeline);
  ASSERT_FALSE(spec);
  EXPECT_NE(spec.error().message.find(pipeline + ":5:15: a mapping key must be a plain value"), std::string::npos)
      << spec.error().message;
}

// The embedded queue is bounded by the memory its waiting events hold, and by
// their count only when max_depth is given; Redis by count alone.
TEST_F(ConfigTest, TheEmbeddedQueueIsBoundedByBytesAndByCountOnlyWhenMaxDepthIsGiven) {
  auto plain = config::loadHostConfig(write("plain.yaml", "queue: { type: embedded }\n"));
  ASSERT_TRUE(plain) << plain.error().message;
  auto bounds = config::queueBounds(plain->queue);
  EXPECT_EQ(bounds.max_bytes, 64u << 20);
  EXPECT_EQ(bounds.max_depth, std::numeric_limits<std::size_t>::max()) << "no count bound unless one is given";

  auto both = config::loadHostConfig(write("both.yaml", "queue: { type: embedded, max_depth: 500, max_bytes: 8MiB }\n"));
  ASSERT_TRUE(both) << both.error().message;
  bounds = config::queueBounds(both->queue);
  EXPECT_EQ(bounds.max_depth, 500u);
  EXPECT_EQ(bounds.max_bytes, 8u << 20);

  auto redis = config::loadHostConfig(write("redis.yaml", "queue: { type: redis }\n"));
  ASSERT_TRUE(redis) << redis.error().message;
  bounds = config::queueBounds(redis->queue);
  EXPECT_EQ(bounds.max_depth, 100000u);
  EXPECT_EQ(bounds.max_bytes, std::numeric_limits<std::uint64_t>::max());
}

TEST_F(ConfigTest, QueueMaxBytesFromTheEnvironmentAndItsErrorsNamed) {
  ::setenv("EVENTFLOW_QUEUE_MAX_BYTES", "2MiB", 1);
  auto env = config::loadHostConfig(write("env.yaml", "queue: { type: embedded }\n"));
  ::unsetenv("EVENTFLOW_QUEUE_MAX_BYTES");
  ASSERT_TRUE(env) << env.error().message;
  EXPECT_EQ(config::queueBounds(env->queue).max_bytes, 2u << 20);

  const auto redis_file = write("redis.yaml", "queue:\n  type: redis\n  max_bytes: 1GiB\n");
  auto redis = config::loadHostConfig(redis_file);
  ASSERT_FALSE(redis);
  EXPECT_NE(redis.error().message.find(redis_file + ":3:14: queue 'max_bytes' bounds the embedded queue only"),
            std::string::npos)
      << redis.error().message;

  const auto tiny_file = write("tiny.yaml", "queue: { max_bytes: 100 }\n");
  auto tiny = config::loadHostConfig(tiny_file);
  ASSERT_FALSE(tiny);
  EXPECT_NE(tiny.error().message.find("queue 'max_bytes' must be at least 1KiB"), std::string::npos)
      << tiny.error().message;

  auto words = config::loadHostConfig(write("words.yaml", "queue: { max_bytes: plenty }\n"));
  ASSERT_FALSE(words);
  EXPECT_NE(words.error().message.find("'max_bytes' must be a size"), std::string::npos) << words.error().message;
}
