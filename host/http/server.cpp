#include "http/server.hpp"

// The transport is Boost.Asio with Boost.Beast's HTTP/1.1 parser, not Poco's
// HTTPServer that DESIGN §2 names: Poco's server holds a thread per
// connection and, measured on the 2-core machine with a handler that does
// nothing, stops at ~22,700 requests/s using a whole core, below the 25,000
// durable posts/s issue 4 asks for. On an event loop a request costs a read,
// a write and no thread hand-off, and ingest answers from the group commit's
// callback instead of parking a thread on it.
//
// Here: accepting (server.max_connections, descriptor limits), the idle
// sweeper, start and stop. A connection is a Session (session.hpp); the
// routes are Api (api.cpp, dlq_routes.cpp) over the table in routes.cpp.

#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "http/session.hpp"
#include "http/tls.hpp"

namespace eventflow::http {

void Server::Impl::accept() {
  auto& io = *ios[next_io++ % ios.size()];
  acceptor->async_accept(io.get_executor(), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
    if (ec) {
      // Out of descriptors (EMFILE) the pending connection stays in the
      // backlog and accepting again fails at once: retrying without a pause
      // spun a core and wrote a log line per try. One line per run of failures.
      if (accept_failures++ == 0) log::warn("accept failed; retrying every 100 ms", {{"error", ec.message()}});
      accept_retry->expires_after(kAcceptBackoff);
      accept_retry->async_wait([this](beast::error_code wec) {
        if (!wec && acceptor->is_open()) accept();
      });
      return;
    }
    if (accept_failures > 0) {
      log::info("accepting again", {{"failed_accepts", std::to_string(accept_failures)}});
      accept_failures = 0;
    }
    // Beast's ssl_stream, not Asio's: Asio's writes one buffer of a sequence
    // per TLS record and syscall, so an answer's head and body went as two.
    if (tls) admit(std::make_shared<Session<beast::ssl_stream<tcp::socket>>>(*this, std::move(socket), *tls));
    else admit(std::make_shared<Session<tcp::socket>>(*this, std::move(socket)));
    accept();
  });
}

template <class S>
void Server::Impl::admit(std::shared_ptr<S> session) {
  {
    std::lock_guard lock(sessions_mutex);
    // Past server.max_connections a new connection is closed at once:
    // idle sockets must not take every descriptor and lock out everyone.
    if (sessions.size() >= services.config->server.max_connections) {
      if (refused_connections++ % 1000 == 0)
        log::warn("connection refused: server.max_connections reached",
                  {{"max_connections", std::to_string(services.config->server.max_connections)},
                   {"refused", std::to_string(refused_connections)}});
      session->abandon();
      return;
    }
    sessions.insert(session);
  }
  session->noDelay();
  session->start();
}

void Server::Impl::sweep() {
  sweeper->expires_after(std::chrono::seconds(1));
  sweeper->async_wait([this](beast::error_code ec) {
    if (ec) return;
    std::vector<std::shared_ptr<SessionBase>> open;
    {
      std::lock_guard lock(sessions_mutex);
      open.assign(sessions.begin(), sessions.end());
    }
    const auto now = Clock::now();
    for (auto& s : open) s->sweep(now);
    sweep();
  });
}

Server::Server(Services services) : services_(std::move(services)) {}
Server::~Server() { stop(); }

namespace {

// Each connection holds a descriptor, and the soft limit is often 1,024: a
// thousand idle sockets would lock every other client out long before
// server.max_connections. The hard limit is what the administrator allows.
void raiseDescriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  const auto before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) == 0)
    log::info("raised the open-file limit", {{"from", std::to_string(before)}, {"to", std::to_string(limit.rlim_max)}});
  else
    log::warn("cannot raise the open-file limit", {{"limit", std::to_string(before)}, {"error", std::strerror(errno)}});
}

}  // namespace

Expected<void> Server::start() {
  raiseDescriptorLimit();
  const auto& listen = services_.config->server.listen;
  const unsigned configured = services_.config->server.threads;
  impl_ = std::make_unique<Impl>(services_, configured ? configured : std::max(2u, std::thread::hardware_concurrency()));
  if (services_.config->server.tls.enabled()) {
    auto tls = makeTlsContext(services_.config->server.tls);
    if (!tls) {
      impl_.reset();
      return tls.error();
    }
    impl_->tls = std::move(*tls);
  }
  try {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("expected host:port");
    std::string host = listen.substr(0, colon);
    if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    tcp::resolver resolver(*impl_->ios.front());
    const auto endpoint = resolver.resolve(host.empty() ? "0.0.0.0" : host, listen.substr(colon + 1),
                                           tcp::resolver::passive | tcp::resolver::numeric_service)
                              ->endpoint();
    auto& acceptor = impl_->acceptor.emplace(impl_->ios.front()->get_executor());
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(1024);
    port_ = acceptor.local_endpoint().port();
  } catch (const std::exception& e) {
    impl_.reset();
    return makeError("cannot listen on " + listen + ": " + e.what());
  }
  impl_->accept_retry.emplace(impl_->acceptor->get_executor());
  impl_->accept();
  impl_->sweeper.emplace(*impl_->ios.front());
  impl_->sweep();
  for (auto& io : impl_->ios) impl_->threads.emplace_back([io = io.get()] {
      nameThread("ef-http");
      io->run();
    });
  return {};
}

void Server::stop(std::chrono::milliseconds drain) {
  if (!impl_) return;
  const auto drain_until = Clock::now() + drain;
  impl_->stopping = true;
  asio::post(impl_->acceptor->get_executor(), [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor->close(ignored);
    impl->accept_retry->cancel();
  });
  // Connections between requests close now; those inside one answer first.
  std::vector<std::shared_ptr<SessionBase>> open;
  {
    std::lock_guard lock(impl_->sessions_mutex);
    open.assign(impl_->sessions.begin(), impl_->sessions.end());
  }
  for (auto& s : open) s->sweep(Clock::now());
  open.clear();
  while (Clock::now() < drain_until) {
    {
      std::lock_guard lock(impl_->sessions_mutex);
      if (impl_->sessions.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  std::size_t unanswered = 0;
  {
    std::lock_guard lock(impl_->sessions_mutex);
    unanswered = impl_->sessions.size();
  }
  impl_->blocking.join();
  impl_->probes.join();
  impl_->guards.clear();
  for (auto& io : impl_->ios) io->stop();
  for (auto& t : impl_->threads) t.join();
  {
    std::lock_guard lock(impl_->gate->mutex);
    impl_->gate->open = false;
  }
  {
    std::lock_guard lock(impl_->sessions_mutex);
    impl_->sessions.clear();
  }
  impl_.reset();
  // Requests still waiting got no answer; ingest's are committed all the
  // same (G1 promises nothing without a 202), and the clients retry.
  if (unanswered > 0)
    log::warn("HTTP server stopped with requests unanswered", {{"connections", std::to_string(unanswered)}});
  else
    log::info("HTTP server stopped");
}

}  // namespace eventflow::http
