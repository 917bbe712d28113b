// eventflow produce's mixed load and its --report json against a real
// embedded host (issue 13): the report's fields are there and agree with
// each other and with the host's database. No timing values are asserted.

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>

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

// Answers produce's posts with 202 one connection at a time, counting the
// connections it accepted, the requests it read and those that asked for
// "Connection: close" (after which it answers so and closes). Only here to
// watch produce's side of the wire: what the host does is the test below.
class ConnectionCounter {
 public:
  ConnectionCounter() : server_(Poco::Net::SocketAddress("127.0.0.1", 0)), thread_([this] { run(); }) {}
  ~ConnectionCounter() {
    stop_ = true;
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.address().port()); }
  int connections() const { return connections_; }
  int requests() const { return requests_; }
  int closing() const { return closing_; }

 private:
  void run() {
    while (!stop_) {
      if (!server_.poll(Poco::Timespan(0, 50'000), Poco::Net::Socket::SELECT_READ)) continue;
      Poco::Net::StreamSocket client = server_.acceptConnection();
      ++connections_;
      client.setReceiveTimeout(Poco::Timespan(5, 0));
      std::string in;
      bool open = true;
      while (open && !stop_) {
        std::size_t head_end;
        while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
          char buf[4096];
          int n = 0;
          try {
            n = client.receiveBytes(buf, sizeof buf);
          } catch (const Poco::Exception&) {
          }
          if (n <= 0) break;
          in.append(buf, static_cast<std::size_t>(n));
        }
        if (head_end == std::string::npos) break;  // the client closed (or went quiet)
        const std::string head = in.substr(0, head_end);
        const auto cl = head.find("Content-Length: ");
        const std::size_t length = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 16));
        while (in.size() < head_end + 4 + length) {
          char buf[4096];
          const int n = client.receiveBytes(buf, sizeof buf);
          if (n <= 0) break;
          in.append(buf, static_cast<std::size_t>(n));
        }
        in.erase(0, head_end + 4 + length);
        ++requests_;
        const bool close = head.find("\r\nConnection: close") != std::string::npos;
        closing_ += close ? 1 : 0;
        const std::string body = R"({"status":"accepted"})";
        const std::string answer = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: " +
                                   std::to_string(body.size()) + (close ? "\r\nConnection: close" : "") + "\r\n\r\n" +
                                   body;
        client.sendBytes(answer.data(), static_cast<int>(answer.size()));
        open = !close;
      }
      client.close();
    }
  }

  Poco::Net::ServerSocket server_;
  std::atomic<int> connections_{0}, requests_{0}, closing_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(Produce, CloseMakesANewConnectionForEveryRequest) {
  {
    ConnectionCounter counter;
    const auto run = runCommand({EVENTFLOW_BINARY, "produce", "--url", counter.url(), "--count", "20",
                                 "--concurrency", "1", "--close", "--report", "json"});
    ASSERT_EQ(run.exit_code, 0) << run.describe();
    EXPECT_EQ(onlyObject(run.out)["keep_alive"], false) << run.out;
    EXPECT_EQ(counter.requests(), 20);
    EXPECT_EQ(counter.connections(), 20) << "one connection per request";
    EXPECT_EQ(counter.closing(), 20) << "each request says Connection: close";
  }
  ConnectionCounter counter;
  const auto run = runCommand({EVENTFLOW_BINARY, "produce", "--url", counter.url(), "--count", "20",
                               "--concurrency", "1", "--report", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  EXPECT_EQ(onlyObject(run.out)["keep_alive"], true) << run.out;
  EXPECT_EQ(counter.requests(), 20);
  EXPECT_EQ(counter.connections(), 1) << "by default the connection is kept";
  EXPECT_EQ(counter.closing(), 0);
}

// The host answers a client without keep-alive and closes its end after
// each answer; every post is taken and ends processed.
TEST(Produce, ClientsWithoutKeepAliveAreAnsweredAndTheirEventsProcessed) {
  HostProcess host("produce-close");
  ASSERT_TRUE(host.start()) << host.readLog();
  const auto run = runCommand({EVENTFLOW_BINARY, "produce", "--url", url(host), "--count", "60", "--concurrency", "4",
                               "--close", "--wait", "--wait-timeout", "120", "--report", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  const auto r = onlyObject(run.out);
  ASSERT_TRUE(r.is_object()) << run.describe();
  EXPECT_EQ(r["requests"], 60);
  EXPECT_EQ(r["accepted_events"], 60);
  EXPECT_EQ(r["failed_requests"], 0);
  EXPECT_EQ(r["end_to_end"]["processed"], 60) << run.out;
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'done'"), 60);
}

// A mistyped --url: produce --count used to try the missing host for ever.
// Each refused connection is one failed request of the count, and the
// reason is said once.
TEST(Produce, AHostThatIsNotThereEndsACountedRunAndIsNamed) {
  const auto run = runCommand({EVENTFLOW_BINARY, "produce", "--url", "http://127.0.0.1:1", "--count", "3",
                               "--concurrency", "2", "--report", "json"});
  EXPECT_EQ(run.exit_code, 1) << run.describe();
  const std::string line = "eventflow produce: cannot connect to 127.0.0.1:1: ";
  const auto said = run.err.find(line);
  ASSERT_NE(said, std::string::npos) << run.err;
  EXPECT_EQ(run.err.find(line, said + line.size()), std::string::npos) << "said once: " << run.err;
  const auto r = onlyObject(run.out);
  ASSERT_TRUE(r.is_object()) << run.describe();
  EXPECT_EQ(r["requests"], 3) << run.out;
  EXPECT_EQ(r["failed_requests"], 3) << run.out;
  EXPECT_EQ(r["accepted_events"], 0) << run.out;
  EXPECT_EQ(r["latency_ms"]["max"], 0) << "no answer, no latency: " << run.out;
}

// Values no load can have are refused at once, each naming itself, instead
// of one message for all of them, a hang opening a hundred million sockets,
// or a body of a hundred million events built in memory.
TEST(Produce, RefusesImpossibleLoadsNamingTheOption) {
  const std::string url = "http://127.0.0.1:1";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--duration", "-1"}, "--duration must be 0 or more, not -1"},
      {{"--count", "-5"}, "--count must be 0 or more, not -5"},
      {{"--wait-timeout", "-2"}, "--wait-timeout must be 0 or more, not -2"},
      {{"--concurrency", "0"}, "--concurrency must be at least 1, not 0"},
      {{"--batch", "0"}, "--batch must be at least 1, not 0"},
      {{"--batch", "100000000"}, "--batch must be at most 100000 events, not 100000000"},
      {{"--concurrency", "100000000"}, "--concurrency 100000000 is more connections than this process may open"},
  };
  for (const auto& [options, expected] : cases) {
    std::vector<std::string> command{EVENTFLOW_BINARY, "produce", "--url", url, "--count", "1"};
    command.insert(command.end(), options.begin(), options.end());
    const auto r = runCommand(command);
    SCOPED_TRACE(options.front() + " " + options.back());
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("cannot connect"), std::string::npos) << "it ran: " << r.err;
  }
  const auto nourl = runCommand({EVENTFLOW_BINARY, "produce", "--count", "1"});
  EXPECT_EQ(nourl.exit_code, 2) << nourl.describe();
  EXPECT_NE(nourl.err.find("--url is required"), std::string::npos) << nourl.err;
  // TLS files that cannot be read are named with the reason, not "asio.ssl error".
  const auto cacert = runCommand({EVENTFLOW_BINARY, "produce", "--url", "https://127.0.0.1:1", "--cacert",
                                  "/nonexistent/ca.pem", "--count", "1"});
  EXPECT_EQ(cacert.exit_code, 2) << cacert.describe();
  EXPECT_NE(cacert.err.find("--cacert: cannot read /nonexistent/ca.pem: No such file or directory"), std::string::npos)
      << cacert.err;
  const auto key = runCommand({EVENTFLOW_BINARY, "produce", "--url", "https://127.0.0.1:1", "--insecure", "--cert",
                               "/nonexistent/client.pem", "--key", "/nonexistent/client.key", "--count", "1"});
  EXPECT_EQ(key.exit_code, 2) << key.describe();
  EXPECT_NE(key.err.find("--cert: cannot read /nonexistent/client.pem"), std::string::npos) << key.err;
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
  EXPECT_NE(no_value.err.find("--report needs a value"), std::string::npos) << no_value.err;
  // A misspelt flag last on the line is unknown, not an option wanting a value.
  const auto misspelt = runCommand({EVENTFLOW_BINARY, "produce", "--url", "http://127.0.0.1:1", "--wat"});
  EXPECT_EQ(misspelt.exit_code, 2) << misspelt.describe();
  EXPECT_NE(misspelt.err.find("unknown option --wat"), std::string::npos) << misspelt.err;
  EXPECT_NE(misspelt.err.find("--wait"), std::string::npos) << "did you mean: " << misspelt.err;
}
