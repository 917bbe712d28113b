// eventflow produce: posts generated events shaped like the original
// EventFlow's and reports throughput and latency. Only 2xx counts as success.

#include <Poco/Exception.h>
#include <Poco/URI.h>

#include <boost/asio.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "app/app.hpp"
#include "app/args.hpp"
#include "app/cli.hpp"
#include "app/produce_load.hpp"
#include "app/produce_report.hpp"

namespace eventflow::app {
namespace {

// Past what any host takes in one request (server.max_batch, 1000 by default),
// and about 30 MB of body a connection.
constexpr long long kMaxBatch = 100'000;
// Descriptors besides the load's connections: standard streams, the
// resolver, the summary's connection, TLS files.
constexpr long long kReservedFiles = 16;

long long openFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return std::numeric_limits<int>::max();
  return static_cast<long long>(limit.rlim_cur);
}

const char* const kHelp = R"(usage: eventflow produce --url URL [options]

Posts generated events (purchase, user_signup, page_view, custom; unique
event_id each) and prints requests/s, events/s and latency percentiles.

Mixed load, what real clients do (the headline of docs/benchmarks.md):
  eventflow produce --url URL --mix --duration 20 --concurrency 32
posts single events while the host processes them, 2 % of them invalid
purchases, timestamps in UTC, with an offset and naive (as the original
EventFlow's producer sends them), then waits until every accepted event is
terminal and reports ingest latency, 503/429 answers, end-to-end events/s
and the drain time.

  --url URL            base URL of the host, e.g. http://127.0.0.1:8000 or https://host:8443
  --cacert FILE        https: trust the CA certificate(s) in FILE (PEM) instead of the system's
  --insecure           https: accept any server certificate (testing only)
  --cert FILE          https: present this client certificate (PEM; for server.tls.client_ca_file)
  --key FILE           https: the client certificate's private key (PEM)
  --count N            events to send (default 10000; ignored with --duration)
  --duration SECONDS   send for this long instead of a count
  --concurrency C      parallel connections (default 32; at most the open-file limit)
  --batch B            events per request: 1 posts /events, more posts /events/batch
                       (default 1, at most 100000)
  --api-key KEY        sent as Authorization: Bearer KEY
  --invalid-every N    make every Nth event invalid for its pipeline (default 0: none;
                       with --mix 48: every 12th purchase, about 2 % of the events)
  --mix                mixed load: timestamps spelled three ways, invalid purchases, and --wait
  --close              a new connection for every request (Connection: close), as clients
                       without keep-alive post; the default keeps each connection open
  --random-ids         random (version 4) event ids instead of time-ordered ones (version 7,
                       which keep PostgreSQL's primary-key inserts at the index's right edge)
  --wait               then wait until every accepted event is terminal (processed or dead,
                       read from the host's /metrics/summary) and report end-to-end events/s
  --wait-timeout S     give up waiting after S seconds (default 600)
  --report FORMAT      text (default) or json: one JSON object on stdout, for scripts

A batch is answered 202 when any of its events was taken; the others carry
their own status (503 when their pipeline's queue is full). Only the taken
ones count as accepted; the others are reported as refused.

exit code: 0 when every request got a 2xx, no event of a batch was refused (and
with --wait every accepted event became terminal), 1 otherwise, 2 on usage errors.
)";

}  // namespace

int produce(int argc, char** argv) {
  Args args(argc, argv, 2, {"help", "wait", "random-ids", "insecure", "mix", "close"});
  if (args.has("help")) {
    std::cout << kHelp;
    return 0;
  }
  // Unknown options first: a misspelt flag last on the line ("--wat") would
  // otherwise be reported as an option wanting a value.
  static const std::set<std::string> kOptions{"url",  "count",      "duration",  "concurrency", "batch",
                                              "api-key", "invalid-every", "wait", "wait-timeout", "random-ids",
                                              "cacert", "insecure",   "cert",      "key",         "help",
                                              "mix",    "report",     "close"};
  if (auto extra = args.unknown(kOptions); !extra.empty()) {
    std::cerr << "eventflow produce: " << unknownOption(extra.front(), kOptions) << "\n" << kHelp;
    return 2;
  }
  if (auto extra = args.extraWords(0); !extra.empty()) {
    std::cerr << "eventflow produce: " << extra << "\n";
    return 2;
  }
  const auto wait_timeout = args.number("wait-timeout", 600);
  const auto count = args.number("count", 10000);
  const auto duration = args.number("duration", 0);
  const auto concurrency = args.number("concurrency", 32);
  const auto batch = args.number("batch", 1);
  const bool mixed = args.has("mix");
  // 48 is a multiple of 4: every invalid event is a purchase (the types cycle).
  const auto invalid_every = args.number("invalid-every", mixed ? 48 : 0);
  if (!args.ok() || !count || !duration || !concurrency || !batch || !invalid_every || !wait_timeout) {
    std::cerr << "eventflow produce: " << args.error() << "\n";
    return 2;
  }
  if (!args.has("url")) {
    std::cerr << "eventflow produce: --url is required\n" << kHelp;
    return 2;
  }
  for (const auto& [name, value] : {std::pair{"concurrency", *concurrency}, std::pair{"batch", *batch}})
    if (value < 1) {
      std::cerr << "eventflow produce: --" << name << " must be at least 1, not " << value << "\n";
      return 2;
    }
  for (const auto& [name, value] : {std::pair{"count", *count}, std::pair{"duration", *duration},
                                    std::pair{"invalid-every", *invalid_every}, std::pair{"wait-timeout", *wait_timeout}})
    if (value < 0) {
      std::cerr << "eventflow produce: --" << name << " must be 0 or more, not " << value << "\n";
      return 2;
    }
  // Each connection is a socket, and each holds its request body in memory:
  // an absurd value is refused here instead of running out of either.
  if (*batch > kMaxBatch) {
    std::cerr << "eventflow produce: --batch must be at most " << kMaxBatch << " events, not " << *batch
              << " (a host takes server.max_batch a request, 1000 by default)\n";
    return 2;
  }
  if (const long long sockets = openFileLimit() - kReservedFiles; *concurrency > sockets) {
    std::cerr << "eventflow produce: --concurrency " << *concurrency << " is more connections than this process may "
              << "open (" << std::max(0LL, sockets) << ", from its open-file limit: ulimit -n)\n";
    return 2;
  }
  const std::string format = args.get("report", "text");
  if (format != "text" && format != "json") {
    std::cerr << "eventflow produce: --report must be text or json, not '" << format << "'\n";
    return 2;
  }
  const bool waiting = args.has("wait") || mixed;
  Poco::URI base;
  try {
    base = Poco::URI(args.get("url"));
  } catch (const Poco::Exception& e) {
    std::cerr << "eventflow produce: bad --url: " << e.displayText() << "\n";
    return 2;
  }
  if (base.getScheme() != "http" && base.getScheme() != "https") {
    std::cerr << "eventflow produce: --url must start with http:// or https://, not '" << base.getScheme() << "'\n";
    return 2;
  }
  Target target{base.getHost(), base.getPort(), nullptr, args.has("insecure")};
  if (base.getScheme() == "https") {
    auto tls = clientTls(args);
    if (!tls) {
      std::cerr << "eventflow produce: " << tls.error().message << "\n";
      return 2;
    }
    target.tls = std::move(*tls);
  } else if (args.has("cacert") || args.has("insecure") || args.has("cert")) {
    std::cerr << "eventflow produce: --cacert, --insecure, --cert and --key are for https:// URLs\n";
    return 2;
  }
  const std::string path = *batch > 1 ? "/events/batch" : "/events";
  const auto key = apiKey(args, false);
  if (!key) {
    std::cerr << "eventflow produce: " << key.error().message << "\n";
    return 2;
  }
  const std::string auth = args.has("api-key") ? "Bearer " + *key : "";
  const bool timed = *duration > 0;
  const auto deadline = Clock::now() + std::chrono::seconds(*duration);
  const std::uint64_t total = static_cast<std::uint64_t>(*count);

  boost::asio::io_context io;
  boost::asio::ip::tcp::endpoint endpoint;
  try {
    boost::asio::ip::tcp::resolver resolver(io);
    endpoint = *resolver.resolve(base.getHost(), std::to_string(base.getPort())).begin();
  } catch (const std::exception& e) {
    std::cerr << "eventflow produce: cannot resolve " << base.getHost() << ": " << e.what() << "\n";
    return 1;
  }
  // The summary is system-wide: the baseline makes the wait about our events.
  const auto baseline = waiting ? summary(target, endpoint, auth) : std::nullopt;
  if (waiting && !baseline) {
    std::cerr << "eventflow produce: --wait needs " << base.toString() << "/metrics/summary\n";
    return 1;
  }
  Load load;
  load.batch = *batch;
  load.invalid_every = *invalid_every;
  load.random_ids = args.has("random-ids");
  load.mixed = mixed;
  load.close = args.has("close");
  load.timed = timed;
  load.deadline = deadline;
  load.total = total;
  std::string head = "POST " + path + " HTTP/1.1\r\nHost: " + base.getHost() + ":" + std::to_string(base.getPort()) +
                     "\r\nContent-Type: application/json\r\n";
  if (!auth.empty()) head += "Authorization: " + auth + "\r\n";
  if (load.close) head += "Connection: close\r\n";
  head += "Content-Length: ";

  const auto start = Clock::now();
  startConnections(io, endpoint, target, head, load, *concurrency);
  io.run();
  Report report;
  report.mode = mixed ? "mix" : "plain";
  report.url = base.toString();
  report.concurrency = *concurrency;
  report.batch = *batch;
  report.keep_alive = !load.close;
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  report.requests = load.requests;
  report.accepted = load.events_ok;
  report.failed = load.errors;
  report.invalid_accepted = load.invalid_ok;
  report.codes = load.codes;
  report.refused = load.refused;
  report.latencies = std::move(load.latencies);
  std::sort(report.latencies.begin(), report.latencies.end());
  report.wait_timeout = *wait_timeout;
  // The load's numbers are printed before the wait, which may be long.
  if (format == "text") {
    printLoad(std::cout, report);
    std::cout.flush();
  }
  if (baseline)
    report.drain = waitTerminal(target, endpoint, auth, *baseline, report.accepted, start,
                                std::chrono::seconds(*wait_timeout));
  if (format == "json") std::cout << reportJson(report).dump() << "\n";
  else printEnd(std::cout, report);
  return report.failed == 0 && report.refused.empty() && (!report.drain || report.drain->ok) ? 0 : 1;
}

}  // namespace eventflow::app