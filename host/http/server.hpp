#pragma once
// The HTTP API of DESIGN §3, on Boost.Asio with Boost.Beast (see server.cpp for why not Poco's HTTPServer).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"

namespace eventflow::pipeline { class LiveRouter; }
namespace eventflow::store { class Store; }
namespace eventflow::queue { class Queue; }
namespace eventflow::metrics { class Metrics; }
namespace eventflow::runtime {
struct ReloadOutcome;
class Ingestor;
class Dlq;
}  // namespace eventflow::runtime

namespace eventflow::http {

/// What the handlers use; all owned by the app and outliving the server.
struct Services {
  const config::HostConfig* config = nullptr;
  const pipeline::LiveRouter* router = nullptr;
  store::Store* store = nullptr;
  queue::Queue* queue = nullptr;
  metrics::Metrics* metrics = nullptr;
  runtime::Ingestor* ingestor = nullptr;
  std::string version;
  std::atomic<bool>* ready = nullptr;
  runtime::Dlq* dlq = nullptr;  // set with ingestor: the DLQ routes are api routes
  /// POST /admin/reload: re-reads the config and pipelines (app/reload.hpp).
  /// Every role has it, since each process reloads itself; unset: 404.
  std::function<runtime::ReloadOutcome()> reload;
};

class Server {
 public:
  explicit Server(Services services);
  ~Server();
  /// Binds server.listen; a port of 0 picks a free one (see port()).
  Expected<void> start();
  /// Stops accepting, lets requests in progress finish for up to `drain`
  /// (shutdown's HTTP share), then returns.
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(5));
  std::uint16_t port() const { return port_; }

  struct Impl;  // server.cpp's

 private:
  Services services_;
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
};

}  // namespace eventflow::http
