// eventflow produce's mixed load and its --report json against a real
// embedded host (issue 13): the report's fields are there and agree with
// each other and with the host's database. No timing values are asserted.

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "host_process.hpp"

using eventflow::testing::HostProcess;
using eventflow::testing::runCommand;

namespace {

std::string url(const HostProcess& host) { return "http://127.0.0.1:" + std::to_string(host.port()); }

// stdout must be exactly one JSON object (and a newline), nothing else.
nlohmann::json onlyObject(const std::string& out) {
  const auto j = nlohmann::json::parse(out, nullptr, false);
  return j.is_object() ? j : nlohmann::json();
}

}  // namespace

TEST(Produce, MixedLoadReportsEveryFieldAndEveryAcceptedEventEndsTerminal) {
  HostProcess host("produce-mix");
  ASSERT_TRUE(host.start()) << host.readLog();
  const auto run = runCommand({EVENTFLOW_BINARY, "produce", "--url", url(host), "--mix", "--duration", "2",
                               "--concurrency", "4", "--report", "json", "--wait-timeout", "300"});
  const auto r = onlyObject(run.out);
  ASSERT_TRUE(r.is_object()) << run.describe();

  for (const char* key : {"mode", "url", "concurrency", "batch", "seconds", "requests", "requests_per_s",
                          "failed_requests", "accepted_events", "accepted_events_per_s", "invalid_accepted", "status",
                          "status_503", "status_429", "latency_ms", "end_to_end"})
    EXPECT_TRUE(r.contains(key)) << key << " missing: " << run.out;
  for (const char* key : {"p50", "p95", "p99", "max"}) EXPECT_TRUE(r["latency_ms"].contains(key)) << key;
  ASSERT_TRUE(r["end_to_end"].is_object()) << "--mix waits: " << run.out;
  for (const char* key : {"terminal", "processed", "dead", "seconds", "events_per_s", "drain_seconds"})
    EXPECT_TRUE(r["end_to_end"].contains(key)) << key << " missing: " << run.out;
  EXPECT_EQ(r["mode"], "mix");
  EXPECT_EQ(r["batch"], 1) << "mixed load posts single events";

  // Every request is counted under exactly one status; single posts: each 202 is one event.
  std::uint64_t by_status = 0;
  for (const auto& item : r["status"].items()) by_status += item.value().get<std::uint64_t>();
  EXPECT_EQ(by_status, r["requests"].get<std::uint64_t>()) << run.out;
  EXPECT_EQ(r["status"].value("202", 0u), r["accepted_events"].get<std::uint64_t>()) << run.out;
  EXPECT_EQ(r["status"].size(), 1u) << "timestamps with offsets and naive ones are all accepted: " << run.out;
  EXPECT_EQ(r["failed_requests"], 0) << run.out;
  EXPECT_EQ(r["status_503"], 0);
  EXPECT_EQ(r["status_429"], 0);
  EXPECT_EQ(run.exit_code, 0) << run.describe();

  const auto accepted = r["accepted_events"].get<std::uint64_t>();
  ASSERT_GE(accepted, 48u) << "two seconds of load make at least one invalid purchase: " << run.out;
  const auto& e2e = r["end_to_end"];
  EXPECT_EQ(e2e["terminal"], true) << run.out;
  EXPECT_EQ(e2e["processed"].get<std::uint64_t>() + e2e["dead"].get<std::uint64_t>(), accepted)
      << "accepted = terminal after the wait: " << run.out;
  EXPECT_GE(r["invalid_accepted"].get<std::uint64_t>(), 1u);
  EXPECT_EQ(e2e["dead"], r["invalid_accepted"]) << "the shipped pipelines refuse exactly the invalid purchases";
  EXPECT_GE(e2e["drain_seconds"].get<double>(), 0.0);
  EXPECT_GE(e2e["seconds"].get<double>(), r["seconds"].get<double>()) << "end to end includes the load";
  const auto& l = r["latency_ms"];
  EXPECT_LE(l["p50"].get<double>(), l["p95"].get<double>());
  EXPECT_LE(l["p95"].get<double>(), l["p99"].get<double>());
  EXPECT_LE(l["p99"].get<double>(), l["max"].get<double>());

  // The host agrees.
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events"), static_cast<Poco::Int64>(accepted));
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'done'"), e2e["processed"].get<Poco::Int64>());
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'dead'"), e2e["dead"].get<Poco::Int64>());
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'dead' AND event_type <> 'purchase'"), 0)
      << "only purchases are made invalid";
}

TEST(Produce, JsonReportWithoutWaitHasNoEndToEnd) {
  HostProcess host("produce-json");
  ASSERT_TRUE(host.start()) << host.readLog();
  const auto run = runCommand({EVENTFLOW_BINARY, "produce", "--url", url(host), "--count", "30", "--concurrency", "3",
                               "--batch", "10", "--report", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  const auto r = onlyObject(run.out);
  ASSERT_TRUE(r.is_object()) << run.describe();
  EXPECT_EQ(r["mode"], "plain");
  EXPECT_EQ(r["requests"], 3);
  EXPECT_EQ(r["accepted_events"], 30);
  EXPECT_EQ(r["invalid_accepted"], 0);
  EXPECT_TRUE(r["end_to_end"].is_null()) << run.out;
}

// A batch is answered 202 when any of its events was taken, the others with
// their own 503 once their pipeline's queue is full. produce counted every
// event of a 202 as accepted, so --wait waited for events the host had
// refused (a 20 s batch run against the embedded host: 1,369,500 "accepted",
// 1,041,104 stored, and the wait ran out).
TEST(Produce, BatchEventsRefusedOneByOneAreNotCountedAccepted) {
  HostProcess host("produce-refused");
  std::ofstream(host.config(), std::ios::app) << "queue: { type: embedded, max_depth: 10 }\n";
  ASSERT_TRUE(host.start()) << host.readLog();
  const auto run = runCommand({EVENTFLOW_BINARY, "produce", "--url", url(host), "--batch", "100", "--count", "2000",
                               "--concurrency", "4", "--invalid-every", "7", "--wait", "--wait-timeout", "120",
                               "--report", "json"});
  const auto r = onlyObject(run.out);
  ASSERT_TRUE(r.is_object()) << run.describe();
  const auto accepted = r["accepted_events"].get<std::uint64_t>();
  const auto refused = r["refused_events"].get<std::uint64_t>();
  ASSERT_GT(refused, 0u) << "a queue of 10 refuses some of 100 events at once: " << run.out;
  EXPECT_EQ(r["refused_status"].value("503", 0u), refused) << run.out;
  const std::uint64_t in_failed_requests = 100 * r["failed_requests"].get<std::uint64_t>();
  EXPECT_EQ(accepted + refused + in_failed_requests, 2000u) << run.out;
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events"), static_cast<Poco::Int64>(accepted)) << run.out;
  ASSERT_TRUE(r["end_to_end"].is_object()) << run.out;
  EXPECT_EQ(r["end_to_end"]["terminal"], true) << "the wait is for the accepted events only: " << run.out;
  EXPECT_EQ(r["end_to_end"]["dead"], r["invalid_accepted"]) << "invalid events counted item by item: " << run.out;
  EXPECT_EQ(run.exit_code, 1) << "refused events are a failure of the run: " << run.describe();
}

TEST(Produce, RefusesBadReportAndMixOptionsNamingThem) {
  const auto format = runCommand({EVENTFLOW_BINARY, "produce", "--url", "http://127.0.0.1:1", "--report", "yaml"});
  EXPECT_EQ(format.exit_code, 2) << format.describe();
  EXPECT_NE(format.err.find("--report must be text or json, not 'yaml'"), std::string::npos) << format.err;
  EXPECT_TRUE(format.out.empty()) << format.out;
  const auto invalid = runCommand({EVENTFLOW_BINARY, "produce", "--url", "http://127.0.0.1:1", "--mix",
                                   "--invalid-every", "-3"});
  EXPECT_EQ(invalid.exit_code, 2) << invalid.describe();
  EXPECT_NE(invalid.err.find("--invalid-every"), std::string::npos) << invalid.err;
  const auto no_value = runCommand({EVENTFLOW_BINARY, "produce", "--url", "http://127.0.0.1:1", "--report"});
  EXPECT_EQ(no_value.exit_code, 2) << no_value.describe();
}
