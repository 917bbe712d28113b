#pragma once
// The HTTP API of DESIGN §3 on Poco's HTTPServer.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"

namespace Poco::Net { class HTTPServer; }
namespace eventflow::pipeline { class Router; }
namespace eventflow::store { class Store; }
namespace eventflow::queue { class Queue; }
namespace eventflow::metrics { class Metrics; }
namespace eventflow::runtime {
class Ingestor;
class Dlq;
}  // namespace eventflow::runtime

namespace eventflow::http {

/// What the handlers use; all owned by the app and outliving the server.
struct Services {
  const config::HostConfig* config = nullptr;
  const pipeline::Router* router = nullptr;
  store::Store* store = nullptr;
  queue::Queue* queue = nullptr;
  metrics::Metrics* metrics = nullptr;
  runtime::Ingestor* ingestor = nullptr;
  std::string version;
  std::atomic<bool>* ready = nullptr;
  runtime::Dlq* dlq = nullptr;  // set with ingestor: the DLQ routes are api routes
};

class Server {
 public:
  explicit Server(Services services);
  ~Server();
  /// Binds server.listen; a port of 0 picks a free one (see port()).
  Expected<void> start();
  /// Stops accepting, lets requests in progress finish, then returns.
  void stop();
  std::uint16_t port() const { return port_; }

 private:
  Services services_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  std::uint16_t port_ = 0;
};

}  // namespace eventflow::http
