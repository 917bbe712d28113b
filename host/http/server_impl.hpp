#pragma once
// The transport's state, shared by the server (accept, sweep, stop) and its
// sessions (session.hpp): io threads, thread pools, open connections, limits.

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "base/threads.hpp"
#include "http/api.hpp"
#include "http/server.hpp"

namespace eventflow::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// What the sweeper and shutdown see of a connection, plain or TLS.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  /// Closes the connection if it has sat in one phase too long, or, when
  /// stopping, if it is between requests. From any thread.
  virtual void sweep(Clock::time_point now) = 0;
};

// A fixed number of threads running posted work, named so `top -H` tells
// them apart (asio::thread_pool cannot name its threads).
class ThreadPool {
 public:
  ThreadPool(std::size_t threads, const char* name) {
    for (std::size_t i = 0; i < threads; ++i)
      threads_.emplace_back([this, name] {
        nameThread(name);
        io_.run();
      });
  }
  ~ThreadPool() { join(); }
  asio::io_context& context() { return io_; }
  /// Lets the work posted so far finish, then ends the threads.
  void join() {
    guard_.reset();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  std::vector<std::thread> threads_;
};

// Everything the server runs: the io threads, the blocking pool for routes
// that wait on the store, and the open connections (for the idle sweep and
// for shutdown).
struct Server::Impl {
  Impl(const Services& s, unsigned threads)
      : services(s), api(s), blocking(kBlockingThreads, "ef-http-block"), probes(kProbeThreads, "ef-http-probe") {
    for (unsigned i = 0; i < threads; ++i) {
      ios.push_back(std::make_unique<asio::io_context>(1));
      guards.push_back(asio::make_work_guard(*ios.back()));
    }
  }

  static constexpr std::size_t kBlockingThreads = 8;
  // Health and metrics have threads of their own: a load balancer's probe
  // took 7 s while bulk replays held every blocking thread.
  static constexpr std::size_t kProbeThreads = 2;
  static constexpr auto kIdle = std::chrono::seconds(10);        // keep-alive, and a request's head
  // A TLS handshake is two round trips and a signature, milliseconds even
  // across continents; a client that has not finished it in 10 s is stalled
  // or hostile, and holds a connection slot meanwhile.
  static constexpr auto kHandshake = std::chrono::seconds(10);
  static constexpr auto kSlowBody = std::chrono::seconds(60);   // a request's body
  static constexpr auto kLinger = std::chrono::seconds(2);      // discarding what follows a refused request
  static constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);
  static constexpr std::uint32_t kHeaderLimit = 16 * 1024;

  // Ingest answers come from committer threads, which can outlive the server
  // (stop() gives up on a commit after 5 s; the committer stops later). They
  // reach a session only through this gate, holding it only weakly: once stop()
  // shuts the gate no callback touches the io_context or a Session again, and
  // none holds the last reference to a Session whose socket would otherwise be
  // destroyed after its io_context.
  struct Gate {
    std::mutex mutex;
    bool open = true;
  };

  const Services& services;
  Api api;
  // One io_context per io thread, each connection on one of them: its
  // reads, answers and timers stay on one thread, and no handler waits on a
  // queue shared by every thread or for another thread to be woken. On a
  // shared io_context the io threads spent 13% of their CPU switching.
  std::vector<std::unique_ptr<asio::io_context>> ios;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;  // run() waits for work
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  // On the first io_context, whose one thread also runs stop()'s close.
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> accept_retry;
  std::size_t accept_failures = 0;
  std::size_t refused_connections = 0;  // over server.max_connections
  std::size_t next_io = 0;  // round robin of new connections over the io threads
  ThreadPool blocking;
  ThreadPool probes;
  std::vector<std::thread> threads;
  std::optional<asio::steady_timer> sweeper;
  std::atomic<bool> stopping{false};
  std::mutex sessions_mutex;
  std::set<std::shared_ptr<SessionBase>> sessions;
  // Set when server.tls is: every connection then starts with a handshake.
  std::unique_ptr<asio::ssl::context> tls;

  void accept();
  template <class S>
  void admit(std::shared_ptr<S> session);
  void sweep();
};

}  // namespace eventflow::http
