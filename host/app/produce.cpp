// eventflow produce: posts generated events shaped like the original
// EventFlow's and reports throughput and latency. Only 2xx counts as success.

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/URI.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>
#include <eventflow/time.hpp>

#include "app/app.hpp"
#include "app/args.hpp"
#include "base/ids.hpp"

namespace eventflow::app {
namespace {

using Clock = std::chrono::steady_clock;

const char* const kHelp = R"(usage: eventflow produce --url URL [options]

Posts generated events (purchase, user_signup, page_view, custom; unique
event_id each) and prints requests/s, events/s and latency percentiles.

  --url URL            base URL of the host, e.g. http://127.0.0.1:8000
  --count N            events to send (default 10000; ignored with --duration)
  --duration SECONDS   send for this long instead of a count
  --concurrency C      parallel connections (default 32)
  --batch B            events per request: 1 posts /events, more posts /events/batch (default 1)
  --api-key KEY        sent as Authorization: Bearer KEY
  --invalid-every N    make every Nth event invalid for its pipeline (default 0: none)
  --wait               then wait until every accepted event is terminal (processed or dead,
                       read from the host's /metrics/summary) and report end-to-end events/s
  --wait-timeout S     give up waiting after S seconds (default 600)

exit code: 0 when every request got a 2xx, 1 otherwise, 2 on usage errors.
)";

nlohmann::json makeEvent(std::mt19937_64& rng, std::uint64_t n, bool invalid) {
  static const char* const kTypes[] = {"purchase", "user_signup", "page_view", "custom"};
  static const char* const kPages[] = {"/", "/pricing", "/docs", "/blog", "/checkout"};
  const char* type = kTypes[n % 4];
  std::uniform_int_distribution<int> user(1, 100000);
  nlohmann::json e{{"event_id", newUuid()},
                   {"event_type", type},
                   {"user_id", "user_" + std::to_string(user(rng))},
                   {"timestamp", formatRfc3339(std::chrono::system_clock::now() - std::chrono::seconds(1))}};
  // Every shipped pipeline refuses a timestamp in the future.
  if (invalid) e["timestamp"] = "2999-01-01T00:00:00Z";
  switch (n % 4) {
    case 0: {
      std::uniform_real_distribution<double> amount(1.0, 2000.0);
      e["properties"] = {{"amount", invalid ? -1.0 : std::round(amount(rng) * 100) / 100},
                         {"currency", "USD"},
                         {"product_id", "prod_" + std::to_string(user(rng) % 500)}};
      break;
    }
    case 1:
      e["properties"] = {{"plan", (n / 4) % 2 ? "pro" : "free"}, {"source", "web"}};
      if (invalid) e.erase("user_id");
      break;
    case 2:
      e["properties"] = {{"page", kPages[(n / 4) % 5]}, {"referrer", "https://example.com"}};
      break;
    default:
      e["properties"] = {{"name", "button_click"}, {"value", static_cast<int>(n % 100)}};
      break;
  }
  return e;
}

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto idx = static_cast<std::size_t>(std::min<double>(static_cast<double>(sorted.size() - 1),
                                                             p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[idx];
}

std::optional<nlohmann::json> summary(const Poco::URI& base, const std::string& auth) {
  try {
    Poco::Net::HTTPClientSession session(base.getHost(), base.getPort());
    session.setTimeout(Poco::Timespan(10, 0));
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, "/metrics/summary", Poco::Net::HTTPMessage::HTTP_1_1);
    if (!auth.empty()) req.set("Authorization", auth);
    session.sendRequest(req);
    Poco::Net::HTTPResponse res;
    std::string body(std::istreambuf_iterator<char>(session.receiveResponse(res)), {});
    if (res.getStatus() != 200) return std::nullopt;
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
}

}  // namespace

int produce(int argc, char** argv) {
  Args args(argc, argv, 2, {"help", "wait"});
  if (args.has("help")) {
    std::cout << kHelp;
    return 0;
  }
  const auto wait_timeout = args.number("wait-timeout", 600);
  const auto count = args.number("count", 10000);
  const auto duration = args.number("duration", 0);
  const auto concurrency = args.number("concurrency", 32);
  const auto batch = args.number("batch", 1);
  const auto invalid_every = args.number("invalid-every", 0);
  if (!args.ok() || !count || !duration || !concurrency || !batch || !invalid_every || !wait_timeout) {
    std::cerr << "eventflow produce: " << args.error() << "\n";
    return 2;
  }
  if (auto extra = args.unknown({"url", "count", "duration", "concurrency", "batch", "api-key", "invalid-every", "wait", "wait-timeout", "help"});
      !extra.empty()) {
    std::cerr << "eventflow produce: unknown option --" << extra.front() << "\n" << kHelp;
    return 2;
  }
  if (!args.has("url") || *concurrency < 1 || *batch < 1 || *count < 0 || *duration < 0) {
    std::cerr << "eventflow produce: --url is required; --concurrency and --batch must be at least 1\n" << kHelp;
    return 2;
  }
  Poco::URI base;
  try {
    base = Poco::URI(args.get("url"));
  } catch (const Poco::Exception& e) {
    std::cerr << "eventflow produce: bad --url: " << e.displayText() << "\n";
    return 2;
  }
  const std::string path = *batch > 1 ? "/events/batch" : "/events";
  const std::string auth = args.has("api-key") ? "Bearer " + args.get("api-key") : "";
  const bool timed = *duration > 0;
  const auto deadline = Clock::now() + std::chrono::seconds(*duration);
  const std::uint64_t total = static_cast<std::uint64_t>(*count);

  // The summary is system-wide: the baseline makes the wait about our events.
  const auto baseline = args.has("wait") ? summary(base, auth) : std::nullopt;
  if (args.has("wait") && !baseline) {
    std::cerr << "eventflow produce: --wait needs " << base.toString() << "/metrics/summary\n";
    return 1;
  }
  std::atomic<std::uint64_t> next{0};
  std::mutex merge;
  std::vector<double> latencies;
  std::map<int, std::uint64_t> codes;
  std::uint64_t events_ok = 0, requests = 0, errors = 0;

  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (long long t = 0; t < *concurrency; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) * 7919 + 17);
      Poco::Net::HTTPClientSession session(base.getHost(), base.getPort());
      session.setKeepAlive(true);
      session.setTimeout(Poco::Timespan(30, 0));
      std::vector<double> mine;
      std::map<int, std::uint64_t> my_codes;
      std::uint64_t my_ok = 0, my_requests = 0, my_errors = 0;
      for (;;) {
        if (timed && Clock::now() >= deadline) break;
        const std::uint64_t first = next.fetch_add(static_cast<std::uint64_t>(*batch));
        if (!timed && first >= total) break;
        const std::uint64_t n = timed ? static_cast<std::uint64_t>(*batch) : std::min<std::uint64_t>(*batch, total - first);
        std::string body;
        if (*batch > 1) {
          nlohmann::json arr = nlohmann::json::array();
          for (std::uint64_t i = 0; i < n; ++i)
            arr.push_back(makeEvent(rng, first + i, *invalid_every > 0 && (first + i) % *invalid_every == 0));
          body = arr.dump();
        } else {
          body = makeEvent(rng, first, *invalid_every > 0 && first % *invalid_every == 0).dump();
        }
        Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_POST, path, Poco::Net::HTTPMessage::HTTP_1_1);
        req.setContentType("application/json");
        req.setContentLength(static_cast<std::streamsize>(body.size()));
        req.setKeepAlive(true);
        if (!auth.empty()) req.set("Authorization", auth);
        const auto sent = Clock::now();
        int status = 0;
        try {
          session.sendRequest(req).write(body.data(), static_cast<std::streamsize>(body.size()));
          Poco::Net::HTTPResponse res;
          auto& in = session.receiveResponse(res);
          in.ignore(std::numeric_limits<std::streamsize>::max());
          status = res.getStatus();
        } catch (const Poco::Exception&) {
          status = 0;
          session.reset();
        }
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
        ++my_requests;
        ++my_codes[status];
        if (status >= 200 && status < 300) my_ok += n;
        else ++my_errors;
      }
      std::lock_guard lock(merge);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
      for (auto [c, k] : my_codes) codes[c] += k;
      events_ok += my_ok;
      requests += my_requests;
      errors += my_errors;
    });
  }
  for (auto& th : threads) th.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(latencies.begin(), latencies.end());

  std::cout << "requests: " << requests << " in " << secs << " s (" << *concurrency << " connections, batch " << *batch
            << ")\n";
  std::cout << "requests/s: " << static_cast<std::uint64_t>(static_cast<double>(requests) / secs)
            << "  accepted events/s: " << static_cast<std::uint64_t>(static_cast<double>(events_ok) / secs) << "\n";
  std::cout << "latency ms: p50 " << percentile(latencies, 50) << "  p95 " << percentile(latencies, 95) << "  p99 "
            << percentile(latencies, 99) << "  max " << (latencies.empty() ? 0 : latencies.back()) << "\n";
  std::cout << "status codes:";
  for (auto [c, k] : codes) std::cout << " " << (c ? std::to_string(c) : std::string("error")) << "=" << k;
  std::cout << "\n";
  bool waited_ok = true;
  if (baseline) {
    const auto target = (*baseline)["events_received"].get<std::uint64_t>() + events_ok;
    const auto deadline_wait = Clock::now() + std::chrono::seconds(*wait_timeout);
    std::optional<nlohmann::json> now_summary;
    for (;;) {
      now_summary = summary(base, auth);
      if (now_summary && (*now_summary)["events_received"].get<std::uint64_t>() >= target &&
          (*now_summary)["events_in_flight"] == 0)
        break;
      if (Clock::now() >= deadline_wait) {
        waited_ok = false;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const double e2e = std::chrono::duration<double>(Clock::now() - start).count();
    if (waited_ok && now_summary) {
      const auto processed = (*now_summary)["events_processed"].get<std::uint64_t>() -
                             (*baseline)["events_processed"].get<std::uint64_t>();
      const auto dead = (*now_summary)["events_failed"].get<std::uint64_t>() - (*baseline)["events_failed"].get<std::uint64_t>();
      std::cout << "end to end: " << events_ok << " events terminal in " << e2e << " s ("
                << static_cast<std::uint64_t>(static_cast<double>(events_ok) / e2e) << " events/s; processed "
                << processed << ", dead " << dead << ")\n";
    } else {
      std::cout << "end to end: not every event was terminal after " << *wait_timeout << " s\n";
    }
  }
  std::cout << (requests - errors) << " succeeded, " << errors << " failed\n";
  return errors == 0 && waited_ok ? 0 : 1;
}

}  // namespace eventflow::app
