#pragma once
// eventflow produce's HTTP load: keep-alive connections on one io_context
// posting generated events, and the client side of https.

// <utility> first: Debian 12's boost/asio/awaitable.hpp uses std::exchange
// without including it.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "app/args.hpp"
#include "base/expected.hpp"

namespace eventflow::app {

using Clock = std::chrono::steady_clock;

// The shared state of one run; every connection runs on the one io_context
// thread, so nothing here needs a lock.
struct Load {
  long long batch = 1;
  long long invalid_every = 0;
  bool random_ids = false;
  bool mixed = false;  // --mix: timestamps spelled three ways (see timestampsAt)
  bool close = false;  // --close: a new connection for every request
  bool timed = false;
  Clock::time_point deadline{};
  std::uint64_t total = 0;
  std::uint64_t next = 0;
  std::vector<double> latencies;
  std::map<int, std::uint64_t> codes;
  std::uint64_t events_ok = 0, requests = 0, errors = 0;
  std::uint64_t invalid_ok = 0;  // invalid events in 2xx answers: they should end dead
  // Events a 2xx batch answer refused one by one (its per-item status), by that status.
  std::map<int, std::uint64_t> refused;
  bool tls_error_said = false;
  bool connect_error_said = false;
};

/// The per-item status codes of a batch answer (`{"accepted":…,"results":[{…,
/// "status_code":202},…]}`), in order; empty when `body` is not one.
std::vector<int> batchItemStatuses(std::string_view body);

// Where the requests go: host and port, and for https the client's TLS
// context (trusted CAs, optional client certificate).
struct Target {
  std::string host;
  std::uint16_t port = 0;
  std::unique_ptr<boost::asio::ssl::context> tls;  // null: plain http
  bool insecure = false;                           // https without verifying the server
};

/// Starts `concurrency` connections posting `head` + generated bodies to
/// `endpoint` until `load` is done; io.run() returns when they have.
void startConnections(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint,
                      const Target& target, const std::string& head, Load& load, long long concurrency);

// The client side of https: the system's CAs, or --cacert's, or none
// (--insecure); and --cert/--key when the host asks for a client certificate.
Expected<std::unique_ptr<boost::asio::ssl::context>> clientTls(const Args& args);

}  // namespace eventflow::app
