// Graceful shutdown under load (issue 18, G7): a pipeline whose webhook sink
// takes 50 ms per event, four clients posting flat out, SIGTERM. Each process
// must exit 0 within shutdown_timeout + 1 s of the signal, and after a restart
// every accepted event must be terminal exactly once, soon.

#include <gtest/gtest.h>

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/UUIDGenerator.h>

#include <atomic>
#include <iostream>
#include <mutex>
#include <regex>

#include "backends.hpp"
#include "cluster.hpp"

using namespace eventflow::testing;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

// The slow webhook: every request takes `delay` (50 ms), then 200.
class SlowWebhook {
 public:
  explicit SlowWebhook(std::chrono::milliseconds delay = 50ms) : delay_(delay) {
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(32);
    params->setMaxQueued(256);
    params->setKeepAlive(true);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(requests_, delay_), Poco::Net::ServerSocket(0), params);
    server_->start();
  }
  ~SlowWebhook() { server_->stopAll(true); }
  std::uint16_t port() const { return server_->port(); }
  long requests() const { return requests_; }

 private:
  struct Handler final : Poco::Net::HTTPRequestHandler {
    Handler(std::atomic<long>& n, std::chrono::milliseconds delay) : n_(n), delay_(delay) {}
    void handleRequest(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) override {
      std::string body;
      Poco::StreamCopier::copyToString(request.stream(), body);
      ++n_;
      std::this_thread::sleep_for(delay_);
      response.setContentLength(0);
      response.send();
    }
    std::atomic<long>& n_;
    std::chrono::milliseconds delay_;
  };
  struct Factory final : Poco::Net::HTTPRequestHandlerFactory {
    Factory(std::atomic<long>& n, std::chrono::milliseconds delay) : n_(n), delay_(delay) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
      return new Handler(n_, delay_);
    }
    std::atomic<long>& n_;
    std::chrono::milliseconds delay_;
  };
  std::chrono::milliseconds delay_;
  std::atomic<long> requests_{0};
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

// The shipped pipelines in `dir`, their sinks `sink`; purchases go to the
// slow webhook first, by four workers, and signups to the flaky fixture sink,
// which fails the first attempt of every other one (see Load): its retry
// waits 2 s, so some are always waiting on their timer.
void slowPurchases(const fs::path& dir, const std::string& sink, std::uint16_t webhook) {
  fs::create_directories(dir);
  if (!fs::exists(dir / "schemas"))
    fs::copy(fs::path(EVENTFLOW_PIPELINES_DIR) / "schemas", dir / "schemas", fs::copy_options::recursive);
  for (const auto& entry : fs::directory_iterator(EVENTFLOW_PIPELINES_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    std::ofstream(dir / entry.path().filename()) << std::regex_replace(ss.str(), std::regex("sink: sqlite"), "sink: " + sink);
  }
  std::ofstream(dir / "purchases.yaml")
      << "pipeline: purchases\nmatch: { event_types: [purchase] }\nconcurrency: 4\n"
         "retry: { max_attempts: 5, initial_backoff: 200ms, multiplier: 2.0, max_backoff: 30s, jitter: full }\n"
         "stages:\n  - validator: json-schema\n    config: { schema: schemas/purchase.schema.json }\n"
         "  - sink: http\n    config: { url: \"http://127.0.0.1:" << webhook << "/hook\", timeout: 5s }\n"
         "  - sink: " << sink << "\n    config: { table: processed_events }\n";
  std::ofstream(dir / "signups.yaml")
      << "pipeline: signups\nmatch: { event_types: [user_signup] }\nconcurrency: 2\n"
         "retry: { max_attempts: 5, initial_backoff: 2s, multiplier: 1.0, jitter: none }\n"
         "stages:\n  - validator: json-schema\n    config: { schema: schemas/user_signup.schema.json }\n"
         "  - sink: flaky\n    config: { log: flaky.log, fail: true }\n"
         "  - sink: " << sink << "\n    config: { table: processed_events }\n";
}

// Four clients posting mixed events to `port` as fast as they are answered;
// keeps the ids that got a 202 and counts answers a client must not get.
class Load {
 public:
  explicit Load(std::uint16_t port) {
    for (int t = 0; t < 4; ++t)
      threads_.emplace_back([this, port, t] {
        for (int i = t; !stop_; i += 4) {
          const std::string id = uuid();
          auto event = validEvent(i, id);
          if (i % 8 == 1) event["fail_times"] = 1;  // every other signup
          const auto r = http(port, "POST", "/events", event.dump());
          if (r.status == 202) {
            std::lock_guard lock(mutex_);
            accepted_.push_back(id);
          } else if (r.status == 0) {
            std::this_thread::sleep_for(10ms);  // the host is down
          } else if (r.status != 503 || !r.headers.count("Retry-After")) {
            ++unexpected_;
          }
        }
      });
  }
  std::vector<std::string> stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
    return accepted_;
  }
  std::size_t count() {
    std::lock_guard lock(mutex_);
    return accepted_.size();
  }
  long unexpected() const { return unexpected_; }
  ~Load() {
    if (!threads_.empty()) stop();
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<long> unexpected_{0};
  std::mutex mutex_;
  std::vector<std::string> accepted_;
  std::vector<std::thread> threads_;
};

// Waits (bounded) until the load has `accepted` 202s and the webhook `requests`.
void waitForLoad(Load& load, std::size_t accepted, const SlowWebhook& hook, long requests) {
  const auto deadline = SteadyClock::now() + 60s;
  while (SteadyClock::now() < deadline && (load.count() < accepted || hook.requests() < requests))
    std::this_thread::sleep_for(20ms);
}

// Entries of `stream` delivered to a consumer and not acknowledged.
long long pendingEntries(const std::string& redis, const std::string& stream) {
  FILE* out = ::popen(("redis-cli -u " + redis + " XPENDING " + stream + " eventflow 2>&1").c_str(), "r");
  if (!out) return -1;
  char line[256] = {};
  const bool read = std::fgets(line, sizeof line, out) != nullptr;
  ::pclose(out);
  return read ? std::atoll(line) : -1;
}

// The host's closing log line, with the phases of its shutdown, for the record.
void printPhases(const std::string& log, const std::string& who, SteadyClock::duration took) {
  const auto at = log.rfind("\"eventflow stopped\"");
  const auto begin = log.rfind('\n', at) + 1;
  std::cout << who << ": exited " << std::chrono::duration<double>(took).count() << " s after SIGTERM; "
            << (at == std::string::npos ? "no phases logged" : log.substr(begin, log.find('\n', at) - begin)) << "\n";
}

// Consumers of `stream`'s group.
long long consumers(const std::string& redis, const std::string& stream) {
  FILE* out = ::popen(("redis-cli -u " + redis + " XINFO CONSUMERS " + stream + " eventflow 2>&1").c_str(), "r");
  if (!out) return -1;
  long long n = 0;
  char line[512];
  while (std::fgets(line, sizeof line, out)) n += std::string(line) == "name\n";
  ::pclose(out);
  return n;
}

std::string idList(const std::vector<std::string>& ids) {
  std::string out;
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? ",'" : "'") + ids[i] + "'";
  return out;
}

// The acceptance bound: shutdown_timeout (5 s here) + 1 s from the signal.
constexpr auto kShutdownTimeout = 5s;
constexpr auto kBound = kShutdownTimeout + 1s;

}  // namespace

TEST(Shutdown, AllRoleUnderLoadExitsWithinShutdownTimeoutAndTheRestartFinishesEverything) {
  SlowWebhook hook;
  const fs::path pipelines = fs::temp_directory_path() / ("eventflow-shutdown-all-" + std::to_string(::getpid()));
  slowPurchases(pipelines, "sqlite", hook.port());
  HostProcess host("shutdown-all", pipelines.string(), {}, {EVENTFLOW_FAULT_FIXTURE_DIR});
  {
    std::ifstream in(host.config());
    std::stringstream ss;
    ss << in.rdbuf();
    std::ofstream(host.config()) << std::regex_replace(ss.str(), std::regex("shutdown_timeout: 10s"), "shutdown_timeout: 5s")
                                 << "queue: { max_depth: 400 }\n";
  }
  ASSERT_TRUE(host.start()) << host.readLog();
  Load load(host.port());
  // A backlog of purchases in hand: the webhook busy, the other pipelines flowing.
  waitForLoad(load, 2000, hook, 60);
  const auto signalled = SteadyClock::now();
  const int code = host.terminate(20s);
  const auto took = SteadyClock::now() - signalled;
  const auto accepted = load.stop();
  EXPECT_EQ(code, 0) << host.readLog();
  EXPECT_LE(took, kBound) << std::chrono::duration<double>(took).count() << " s\n" << host.readLog();
  EXPECT_NE(host.readLog().find("\"worker_drain_s\""), std::string::npos) << "the phases of the shutdown are logged";
  printPhases(host.readLog(), "all", took);
  EXPECT_EQ(load.unexpected(), 0);

  // What was not finished is handed back: the next start finishes it, once.
  ASSERT_TRUE(host.start()) << host.readLog();
  const auto deadline = SteadyClock::now() + 60s;
  while (SteadyClock::now() < deadline &&
         host.count("SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead')") != 0)
    std::this_thread::sleep_for(100ms);
  ASSERT_FALSE(accepted.empty());
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead')"), 0);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE state = 'done' AND event_id IN (" + idList(accepted) + ")"),
            static_cast<Poco::Int64>(accepted.size()));
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM processed_events WHERE event_id IN (" + idList(accepted) + ")"),
            static_cast<Poco::Int64>(accepted.size()));
  EXPECT_EQ(host.terminate(20s), 0);
  fs::remove_all(pipelines);
}

TEST(Shutdown, WorkerAndApiUnderLoadExitWithinShutdownTimeoutAndTheRestartFinishesEverythingWithin30s) {
  const std::string pg = freshDatabase("shutdown_cluster");
  ASSERT_FALSE(pg.empty());
  SlowWebhook hook;
  // claim_idle and republish_after at their defaults: nothing may wait for them.
  Cluster cluster("shutdown-cluster", pg, redisUrl(), "30s", "30s");
  slowPurchases(cluster.dir() / "pipelines", "postgres", hook.port());
  cluster.use(cluster.dir() / "pipelines", EVENTFLOW_FAULT_FIXTURE_DIR);
  cluster.shutdownTimeout("5s");
  // Bounds the purchases' backlog (at 80 events/s) so that it can be worked off in the 30 s.
  cluster.queueExtra(", max_depth: 400");
  const auto api_port = cluster.add("api");
  const auto worker_port = cluster.add("worker");
  Load load(api_port);
  waitForLoad(load, 2000, hook, 60);

  auto stop = [&](ChildProcess& p, const char* role) {
    const auto signalled = SteadyClock::now();
    p.kill(SIGTERM);
    const int code = p.wait(20s);
    const auto took = SteadyClock::now() - signalled;
    EXPECT_EQ(code, 0) << role << "\n" << p.output();
    EXPECT_LE(took, kBound) << role << ": " << std::chrono::duration<double>(took).count() << " s\n" << p.output();
    EXPECT_NE(p.output().find("\"worker_drain_s\""), std::string::npos) << role;
    printPhases(p.output(), role, took);
  };
  stop(*cluster.processes()[1], "worker");
  // It was the only worker: nothing may be left pending under its consumers,
  // neither read and not started, nor retries waiting on their timer.
  for (const char* pipeline : {"purchases", "signups", "activity"}) {
    EXPECT_EQ(pendingEntries(redisUrl(), cluster.prefix() + pipeline), 0) << pipeline;
    EXPECT_EQ(consumers(redisUrl(), cluster.prefix() + pipeline), 0) << pipeline << ": its consumers are deleted";
  }
  // Clients go on posting to the api meanwhile.
  const std::size_t before = load.count();
  // (Until the queues reach max_depth: then the api answers 503.)
  const auto deadline_posting = SteadyClock::now() + 10s;
  while (SteadyClock::now() < deadline_posting && load.count() < before + 100) std::this_thread::sleep_for(20ms);
  stop(*cluster.processes()[0], "api");
  const auto accepted = load.stop();
  EXPECT_EQ(load.unexpected(), 0);
  ASSERT_FALSE(accepted.empty());

  const auto restarted = SteadyClock::now();
  cluster.add("api", api_port);
  cluster.add("worker", worker_port);
  long long unfinished = -1;
  while (SteadyClock::now() < restarted + 30s) {
    unfinished = pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead')");
    if (unfinished == 0) break;
    std::this_thread::sleep_for(250ms);
  }
  std::cout << "terminal " << std::chrono::duration<double>(SteadyClock::now() - restarted).count()
            << " s after the restart\n";
  EXPECT_EQ(unfinished, 0) << "events not terminal 30 s after the restart; "
                           << pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead') AND attempts = 0")
                           << " of them never attempted";
  expectAcceptedDoneOnce(pg, accepted);
}

namespace {

// The sum of `field` over the host's "claimed entries from stopped consumers" lines.
long long claimed(const std::string& log, const std::string& field) {
  long long n = 0;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find("claimed entries from stopped consumers") == std::string::npos) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains(field)) n += std::atoll(j[field].get<std::string>().c_str());
  }
  return n;
}

}  // namespace

TEST(Shutdown, ACrashedWorkersEntriesAreClaimedAndOnlyThoseInHandRunOneAtATime) {
  const std::string pg = freshDatabase("shutdown_crash");
  ASSERT_FALSE(pg.empty());
  SlowWebhook hook;
  Cluster cluster("shutdown-crash", pg, redisUrl(), "2s", "30s");
  slowPurchases(cluster.dir() / "pipelines", "postgres", hook.port());
  cluster.use(cluster.dir() / "pipelines", EVENTFLOW_FAULT_FIXTURE_DIR);
  cluster.queueExtra(", max_depth: 400");
  const auto api = cluster.add("api");
  const auto worker_port = cluster.add("worker");
  Load load(api);
  waitForLoad(load, 2000, hook, 60);
  // Dies with batches in hand and signups' retries waiting on their timer.
  cluster.processes()[1]->kill(SIGKILL);
  cluster.add("worker", worker_port);
  const std::size_t before = load.count();
  const auto posting = SteadyClock::now() + 10s;
  while (SteadyClock::now() < posting && load.count() < before + 500) std::this_thread::sleep_for(20ms);
  const auto accepted = load.stop();
  expectEveryIdDoneOnce(pg, accepted, 90s);
  // The batches in hand at the crash ran alone; the retries that waited on
  // their timer had been through the chain and were claimed in batches.
  const std::string log = cluster.processes()[2]->output();
  std::cout << "claimed in batches: " << claimed(log, "in_batches")
            << ", one at a time: " << claimed(log, "one_at_a_time") << "\n";
  EXPECT_GT(claimed(log, "one_at_a_time"), 0) << log;
  EXPECT_GT(claimed(log, "in_batches"), 0) << log;
}

TEST(Shutdown, RollingRestartDrillTwiceLosesNothingAndAnswersOnly202Or200Or503) {
  const std::string pg = freshDatabase("shutdown_drill");
  ASSERT_FALSE(pg.empty());
  SlowWebhook hook;
  Cluster cluster("shutdown-drill", pg, redisUrl(), "30s", "30s");
  slowPurchases(cluster.dir() / "pipelines", "postgres", hook.port());
  cluster.use(cluster.dir() / "pipelines", EVENTFLOW_FAULT_FIXTURE_DIR);
  cluster.shutdownTimeout("5s");
  struct Member {
    std::string role;
    std::uint16_t port;
    ChildProcess* process;
  };
  std::vector<Member> members;
  for (const char* role : {"api", "api", "worker", "worker"}) {
    const auto port = cluster.add(role);
    members.push_back({role, port, cluster.processes().back().get()});
  }
  const std::uint16_t apis[] = {members[0].port, members[1].port};

  // Four clients at a steady 50 events/s each, over both apis; an event whose
  // request got no answer (its api stopping) is posted again, same id, to the other.
  std::atomic<bool> stop{false};
  std::atomic<long> unexpected{0}, refused{0};
  std::mutex mutex;
  std::vector<std::string> accepted;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&, t] {
      for (int i = t; !stop; i += 4) {
        const auto next = SteadyClock::now() + 20ms;
        const std::string id = uuid();
        auto event = validEvent(i, id);
        if (i % 8 == 1) event["fail_times"] = 1;
        for (int attempt = 0; attempt < 200 && !stop; ++attempt) {
          const auto r = http(apis[(i / 4 + attempt) % 2], "POST", "/events", event.dump());
          if (r.status == 202 || r.status == 200) {
            std::lock_guard lock(mutex);
            accepted.push_back(id);
            break;
          }
          if (r.status == 0) {
            ++refused;
            std::this_thread::sleep_for(10ms);
            continue;
          }
          if (r.status != 503 || !r.headers.count("Retry-After")) {
            ++unexpected;
            break;
          }
          std::this_thread::sleep_for(100ms);
        }
        std::this_thread::sleep_until(next);
      }
    });

  auto count = [&] {
    std::lock_guard lock(mutex);
    return accepted.size();
  };
  auto waitForMore = [&](std::size_t n) {
    const std::size_t from = count();
    const auto until = SteadyClock::now() + 20s;
    while (SteadyClock::now() < until && count() < from + n) std::this_thread::sleep_for(20ms);
  };
  waitForMore(200);
  for (int round = 0; round < 2; ++round)
    for (auto& m : members) {
      const auto signalled = SteadyClock::now();
      m.process->kill(SIGTERM);
      const int code = m.process->wait(20s);
      const auto took = SteadyClock::now() - signalled;
      EXPECT_EQ(code, 0) << m.role << "\n" << m.process->output();
      EXPECT_LE(took, kBound) << m.role << ": " << std::chrono::duration<double>(took).count() << " s";
      printPhases(m.process->output(), m.role, took);
      cluster.add(m.role, m.port);
      m.process = cluster.processes().back().get();
      waitForMore(100);
    }
  waitForMore(200);
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(unexpected, 0);
  ASSERT_FALSE(accepted.empty());

  expectEveryIdDoneOnce(pg, accepted, 60s);
  std::cout << "drill: " << accepted.size() << " accepted, " << refused << " requests found their api stopped"
            << " (posted again to the other), longest wait received → done "
            << pgCount(pg, "SELECT CEIL(1000 * EXTRACT(EPOCH FROM MAX(updated_at - received_at)))::bigint FROM raw_events "
                           "WHERE state = 'done'")
            << " ms\n";
}

TEST(Shutdown, APluginThatHangsDoesNotHoldTheProcessPastShutdownTimeout) {
  SlowWebhook hook(8s);  // far past shutdown_timeout (2 s); the sink waits up to its 30 s timeout
  const fs::path pipelines = fs::temp_directory_path() / ("eventflow-shutdown-hang-" + std::to_string(::getpid()));
  slowPurchases(pipelines, "sqlite", hook.port());
  {
    std::ifstream in(pipelines / "purchases.yaml");
    std::stringstream ss;
    ss << in.rdbuf();
    std::ofstream(pipelines / "purchases.yaml") << std::regex_replace(ss.str(), std::regex("timeout: 5s"), "timeout: 30s");
  }
  HostProcess host("shutdown-hang", pipelines.string(), {}, {EVENTFLOW_FAULT_FIXTURE_DIR});
  {
    std::ifstream in(host.config());
    std::stringstream ss;
    ss << in.rdbuf();
    std::ofstream(host.config()) << std::regex_replace(ss.str(), std::regex("shutdown_timeout: 10s"), "shutdown_timeout: 2s");
  }
  ASSERT_TRUE(host.start()) << host.readLog();
  const std::string id = uuid();
  ASSERT_EQ(host.post(validEvent(0, id).dump()).status, 202);
  const auto until = SteadyClock::now() + 20s;
  while (SteadyClock::now() < until && hook.requests() == 0) std::this_thread::sleep_for(20ms);
  ASSERT_EQ(hook.requests(), 1) << "the sink is inside its request";
  const auto signalled = SteadyClock::now();
  const int code = host.terminate(20s);
  const auto took = SteadyClock::now() - signalled;
  EXPECT_EQ(code, 1) << "not a clean stop\n" << host.readLog();
  EXPECT_LE(took, 3s) << std::chrono::duration<double>(took).count() << " s\n" << host.readLog();
  EXPECT_NE(host.readLog().find("shutdown_timeout reached"), std::string::npos);
  EXPECT_EQ(host.count("SELECT COUNT(*) FROM raw_events WHERE event_id = '" + id + "' AND state NOT IN ('done', 'dead')"), 1)
      << "what was in hand stays unfinished, for the next start";
  fs::remove_all(pipelines);
}
