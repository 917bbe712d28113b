#include "app/produce_report.hpp"

#include <openssl/ssl.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <thread>

namespace eventflow::app {
namespace {

// GET /metrics/summary on a connection of its own, closed after the answer.
template <class Stream>
std::optional<nlohmann::json> getSummary(Stream& stream, const Target& target, const std::string& auth) {
  namespace http = boost::beast::http;
  http::request<http::empty_body> req(http::verb::get, "/metrics/summary", 11);
  req.set(http::field::host, target.host + ":" + std::to_string(target.port));
  req.set(http::field::connection, "close");
  if (!auth.empty()) req.set(http::field::authorization, auth);
  http::write(stream, req);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  if (res.result_int() != 200) return std::nullopt;
  auto j = nlohmann::json::parse(res.body(), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

}  // namespace

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto idx = static_cast<std::size_t>(std::min<double>(static_cast<double>(sorted.size() - 1),
                                                             p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[idx];
}

std::optional<nlohmann::json> summary(const Target& target, const boost::asio::ip::tcp::endpoint& endpoint,
                                      const std::string& auth) {
  namespace beast = boost::beast;
  try {
    boost::asio::io_context io;
    beast::tcp_stream tcp(io);
    tcp.expires_after(std::chrono::seconds(10));
    tcp.connect(endpoint);
    if (!target.tls) return getSummary(tcp, target, auth);
    beast::ssl_stream<beast::tcp_stream&> tls(tcp, *target.tls);
    if (!target.insecure) tls.set_verify_callback(boost::asio::ssl::host_name_verification(target.host));
    SSL_set_tlsext_host_name(tls.native_handle(), target.host.c_str());
    tls.handshake(boost::asio::ssl::stream_base::client);
    return getSummary(tls, target, auth);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Drain waitTerminal(const Target& target, const boost::asio::ip::tcp::endpoint& endpoint, const std::string& auth,
                   const nlohmann::json& baseline, std::uint64_t accepted, Clock::time_point start,
                   std::chrono::seconds timeout) {
  Drain drain;
  const auto received_target = baseline["events_received"].get<std::uint64_t>() + accepted;
  const auto deadline_wait = Clock::now() + timeout;
  std::optional<nlohmann::json> now_summary;
  for (;;) {
    const auto asked = Clock::now();
    now_summary = summary(target, endpoint, auth);
    const auto took = Clock::now() - asked;
    if (now_summary && (*now_summary)["events_received"].get<std::uint64_t>() >= received_target &&
        (*now_summary)["events_in_flight"] == 0) {
      drain.ok = true;
      break;
    }
    if (Clock::now() >= deadline_wait) break;
    // The summary counts the whole table: polling it back to back would
    // take the CPU the host is draining with. At most a quarter of the
    // time goes to it.
    std::this_thread::sleep_for(std::max<Clock::duration>(std::chrono::milliseconds(100), 3 * took));
  }
  drain.e2e_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (drain.ok) {
    drain.processed = (*now_summary)["events_processed"].get<std::uint64_t>() -
                      baseline["events_processed"].get<std::uint64_t>();
    drain.dead = (*now_summary)["events_failed"].get<std::uint64_t>() - baseline["events_failed"].get<std::uint64_t>();
  }
  return drain;
}

namespace {

std::uint64_t perSecond(std::uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<std::uint64_t>(static_cast<double>(n) / seconds) : 0;
}

std::uint64_t code(const Report& report, int status) {
  const auto it = report.codes.find(status);
  return it == report.codes.end() ? 0 : it->second;
}

}  // namespace

void printLoad(std::ostream& out, Report& report) {
  auto& latencies = report.latencies;
  const double secs = report.seconds;
  out << "requests: " << report.requests << " in " << secs << " s (" << report.concurrency
      << (report.keep_alive ? " keep-alive connections" : " clients, a connection per request") << ", batch "
      << report.batch << ")\n";
  out << "requests/s: " << perSecond(report.requests, secs) << "  accepted events/s: " << perSecond(report.accepted, secs)
      << "\n";
  out << "latency ms: p50 " << percentile(latencies, 50) << "  p95 " << percentile(latencies, 95) << "  p99 "
      << percentile(latencies, 99) << "  max " << (latencies.empty() ? 0 : latencies.back()) << "\n";
  out << "status codes:";
  for (auto [c, k] : report.codes) out << " " << (c ? std::to_string(c) : std::string("error")) << "=" << k;
  out << "\n";
  if (!report.refused.empty()) {
    out << "events refused in 2xx batch answers:";
    for (auto [c, k] : report.refused) out << " " << c << "=" << k;
    out << "\n";
  }
}

void printEnd(std::ostream& out, const Report& report) {
  const double secs = report.seconds;
  if (report.drain) {
    const Drain& drain = *report.drain;
    if (drain.ok) {
      out << "end to end: " << report.accepted << " events terminal in " << drain.e2e_seconds << " s ("
          << perSecond(report.accepted, drain.e2e_seconds) << " events/s; processed " << drain.processed << ", dead "
          << drain.dead << ")\n";
      out << "drain: " << std::max(0.0, drain.e2e_seconds - secs) << " s after the last answer\n";
    } else {
      out << "end to end: not every event was terminal after " << report.wait_timeout << " s\n";
    }
  }
  out << (report.requests - report.failed) << " succeeded, " << report.failed << " failed\n";
}

nlohmann::json reportJson(Report& report) {
  auto& latencies = report.latencies;
  nlohmann::json status = nlohmann::json::object();
  for (auto [c, k] : report.codes) status[c ? std::to_string(c) : std::string("error")] = k;
  nlohmann::json refused = nlohmann::json::object();
  std::uint64_t refused_events = 0;
  for (auto [c, k] : report.refused) {
    refused[std::to_string(c)] = k;
    refused_events += k;
  }
  nlohmann::json j = {
      {"mode", report.mode},
      {"url", report.url},
      {"concurrency", report.concurrency},
      {"keep_alive", report.keep_alive},
      {"batch", report.batch},
      {"seconds", report.seconds},
      {"requests", report.requests},
      {"requests_per_s", perSecond(report.requests, report.seconds)},
      {"failed_requests", report.failed},
      {"accepted_events", report.accepted},
      {"accepted_events_per_s", perSecond(report.accepted, report.seconds)},
      {"invalid_accepted", report.invalid_accepted},
      {"refused_events", refused_events},
      {"refused_status", refused},
      {"status", status},
      {"status_503", code(report, 503)},
      {"status_429", code(report, 429)},
      {"latency_ms",
       {{"p50", percentile(latencies, 50)},
        {"p95", percentile(latencies, 95)},
        {"p99", percentile(latencies, 99)},
        {"max", latencies.empty() ? 0.0 : latencies.back()}}},
      {"end_to_end", nullptr},
  };
  if (report.drain) {
    const Drain& drain = *report.drain;
    j["end_to_end"] = {{"terminal", drain.ok},
                       {"processed", drain.processed},
                       {"dead", drain.dead},
                       {"seconds", drain.e2e_seconds},
                       {"events_per_s", drain.ok ? perSecond(report.accepted, drain.e2e_seconds) : std::uint64_t{0}},
                       {"drain_seconds", std::max(0.0, drain.e2e_seconds - report.seconds)},
                       {"wait_timeout", report.wait_timeout}};
  }
  return j;
}

}  // namespace eventflow::app
