#pragma once
// One HTTP/1.1 connection on the event loop (server.cpp accepts them): read a
// head and a body within the limits, hand the request to the routes, write
// the answer, keep alive or linger and close. Plain TCP or TLS: the same
// code over either stream.

#include <boost/asio/ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <string>
#include <type_traits>

#include "base/ids.hpp"
#include "base/log.hpp"
#include "http/reply.hpp"
#include "http/server_impl.hpp"
#include "metrics/metrics.hpp"

namespace eventflow::http {

namespace beast_http = boost::beast::http;

enum class Phase { handshake, head, body, handling, draining };

// One connection, on plain TCP or TLS (Stream): the same reads, answers and
// timers either way, so HTTPS is the plain path with a handshake in front.
template <class Stream>
class Session : public SessionBase {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

  Session(Server::Impl& server, tcp::socket socket) requires(!kTls) : server_(server), stream_(std::move(socket)) {}
  Session(Server::Impl& server, tcp::socket socket, asio::ssl::context& tls) requires(kTls)
      : server_(server), stream_(std::move(socket), tls) {}

  void start() {
    if constexpr (kTls) handshake();
    else read();
  }
  void noDelay() {
    beast::error_code ignored;
    socket().set_option(tcp::no_delay(true), ignored);
  }
  /// Closes a connection that never became a session.
  void abandon() {
    beast::error_code ignored;
    socket().close(ignored);
  }

  /// From the sweeper (on any thread): closes the connection if it has sat
  /// in one phase too long, or, when stopping, if it is between requests.
  void sweep(Clock::time_point now) override {
    asio::dispatch(stream_.get_executor(), [self = self(), now] {
      const auto phase = self->phase_;
      const auto since = now - self->since_;
      if ((phase == Phase::handshake && (since > Server::Impl::kHandshake || self->server_.stopping)) ||
          (phase == Phase::head && (since > Server::Impl::kIdle || self->server_.stopping)) ||
          (phase == Phase::body && since > Server::Impl::kSlowBody) ||
          (phase == Phase::draining && (since > Server::Impl::kLinger || self->server_.stopping)))
        self->close();
    });
  }

 private:
  // TLS: the handshake, bounded by the sweeper (kHandshake) like a slow head.
  void handshake() {
    phase_ = Phase::handshake;
    since_ = Clock::now();
    stream_.async_handshake(asio::ssl::stream_base::server, [self = self()](beast::error_code ec) {
      if (!ec) return self->read();
      // Plain HTTP sent to the HTTPS port: OpenSSL recognises the request
      // line. The client can read a plain answer, so it learns why instead
      // of seeing a reset.
      if (ec.category() == asio::error::get_ssl_category() && ERR_GET_REASON(ec.value()) == SSL_R_HTTP_REQUEST)
        return self->refusePlainHttp();
      log::debug("TLS handshake failed", {{"error", ec.message()}});
      self->close();
    });
  }

  // Written under the TLS layer, in the clear, then the connection closes.
  void refusePlainHttp() {
    static const std::string kAnswer = [] {
      const std::string body = errorBody("tls_required",
                                                  "this port speaks HTTPS (server.tls is set); use https://").dump();
      return "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body;
    }();
    server_.services.metrics->httpRequests("unmatched", 400).Increment();
    asio::async_write(socket(), asio::buffer(kAnswer), [self = self()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->linger();
    });
  }

  void read() {
    if (server_.stopping) return close();
    phase_ = Phase::head;
    since_ = Clock::now();
    version_ = 11;
    parser_.emplace();
    parser_->header_limit(Server::Impl::kHeaderLimit);
    parser_->body_limit(server_.services.config->server.max_body_bytes);
    beast_http::async_read_header(stream_, buffer_, *parser_,
                                  [self = self()](beast::error_code ec, std::size_t) { self->onHead(ec); });
  }

  void onHead(beast::error_code ec) {
    if (ec) return readFailed(ec);
    phase_ = Phase::body;
    since_ = Clock::now();
    const auto& req = parser_->get();
    version_ = req.version();
    if (auto why = badFraming(req)) {
      // Where the body ends is unknown, so nothing after this head can be
      // read as a request (RFC 9112 §6.1): answer, then close.
      return refuse(error(400, "bad_framing", *why, "Transfer-Encoding"));
    }
    // curl and others wait for this before sending a large body. An HTTP/1.0
    // client cannot read an interim answer, so it must not get one (RFC 9110 §10.1.1).
    if (req.version() >= 11 && beast::iequals(req[beast_http::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return asio::async_write(stream_, asio::buffer(kContinue),
                               [self = self()](beast::error_code wec, std::size_t) {
                                 if (wec) return self->close();
                                 self->readBody();
                               });
    }
    readBody();
  }

  void readBody() {
    beast_http::async_read(stream_, buffer_, *parser_, [self = self()](beast::error_code ec, std::size_t) {
      if (ec) return self->readFailed(ec);
      self->handle();
    });
  }

  // Beast reads a body only when it is framed by chunked as the last coding
  // or by Content-Length; any other Transfer-Encoding it takes as no body,
  // and the bytes after the head as the next request: one that a proxy which
  // framed them otherwise never saw (request smuggling).
  static std::optional<std::string> badFraming(const Request& req) {
    std::size_t codings = 0;
    bool chunked = true;
    for (const auto& f : req) {
      if (f.name() != beast_http::field::transfer_encoding) continue;
      ++codings;
      std::string_view v(f.value().data(), f.value().size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      chunked = chunked && beast::iequals(beast::string_view(v.data(), v.size()), "chunked");
    }
    if (codings == 0) return std::nullopt;
    if (codings > 1 || !chunked)
      return "Transfer-Encoding must be exactly 'chunked' (no other coding is supported)";
    if (req.count(beast_http::field::content_length) > 0)
      return "a request carries Content-Length or Transfer-Encoding, not both";
    if (req.version() < 11) return "an HTTP/1.0 request cannot carry Transfer-Encoding";
    return std::nullopt;
  }

  void readFailed(beast::error_code ec) {
    if (ec == beast_http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
      return close();
    const std::size_t max = server_.services.config->server.max_body_bytes;
    if (ec == beast_http::error::body_limit)
      return refuse(error(413, "payload_too_large", "body exceeds server.max_body_bytes (" + std::to_string(max) + ")"));
    if (ec == beast_http::error::header_limit)
      return refuse(error(431, "headers_too_large", "the request head exceeds 16 KiB"));
    refuse(error(400, "bad_request", "malformed HTTP request: " + ec.message()));
  }

  // The request cannot be read to its end, so the connection cannot be reused.
  void refuse(Reply reply) {
    keep_alive_ = false;
    head_ = false;
    start_ = Clock::now();
    route_ = "unmatched";
    correlation_ = newUuid();
    respond(std::move(reply));
  }

  void handle() {
    phase_ = Phase::handling;
    start_ = Clock::now();
    const auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == beast_http::verb::head;
    correlation_ = std::string(req["X-Correlation-ID"]);
    if (correlation_.empty() || correlation_.size() > 128) correlation_ = newUuid();
    if (Api::isIngest(req)) {
      route_ = std::string(pathOf(req));
      // The session stays alive meanwhile: server_.sessions holds it until close().
      return server_.api.ingest(req, correlation_,
                                [gate = server_.gate, weak = std::weak_ptr<Session>(self())](Reply reply) {
                                  // Often on a committer thread: back to this connection's strand.
                                  std::lock_guard lock(gate->mutex);
                                  // Closed first: once stop() shuts the gate, no callback may
                                  // hold even a moment's reference to a Session.
                                  if (!gate->open) return;
                                  auto self = weak.lock();
                                  if (!self) return;
                                  asio::dispatch(self->stream_.get_executor(), [self, reply = std::move(reply)]() mutable {
                                    self->respond(std::move(reply));
                                  });
                                });
    }
    asio::post(Api::isProbe(req) ? server_.probes.context() : server_.blocking.context(), [self = self()] {
      std::string route = "unmatched";
      Reply reply = self->server_.api.handle(self->parser_->get(), route, self->correlation_);
      asio::dispatch(self->stream_.get_executor(),
                     [self, route = std::move(route), reply = std::move(reply)]() mutable {
                       self->route_ = std::move(route);
                       self->respond(std::move(reply));
                     });
    });
  }

  void respond(Reply reply) {
    auto& metrics = *server_.services.metrics;
    metrics.httpRequests(route_, reply.status).Increment();
    metrics.httpDuration(route_).Observe(std::chrono::duration<double>(Clock::now() - start_).count());
    const bool keep = keep_alive_ && !server_.stopping;
    res_ = {};
    res_.version(11);
    res_.result(static_cast<unsigned>(reply.status));
    res_.set(beast_http::field::content_type, reply.content_type);
    res_.set("X-Correlation-ID", correlation_);
    if (!reply.retry_after.empty()) res_.set(beast_http::field::retry_after, reply.retry_after);
    if (!reply.allow.empty()) res_.set(beast_http::field::allow, reply.allow);
    res_.keep_alive(keep);
    // Beast writes HTTP/1.1 answers, where keep-alive is implied; an HTTP/1.0
    // client (ab -k, old proxies) keeps the connection only when told.
    if (keep && version_ < 11) res_.set(beast_http::field::connection, "keep-alive");
    res_.body() = std::move(reply.body);
    res_.prepare_payload();
    // The GET's head with its Content-Length, and no body (RFC 9110 §9.3.2):
    // a body here would be read as the start of the next answer.
    if (head_) res_.body().clear();
    beast_http::async_write(stream_, res_, [self = self(), keep](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      if (!keep) return self->linger();
      self->read();
    });
  }

  // Closing a socket with request bytes still unread makes the kernel answer
  // with a reset, which can destroy the answer just sent before the client
  // reads it (a 413 while the body is still arriving, the usual case). So stop
  // sending, discard what still comes for a moment, then close (RFC 9112 §9.6).
  void linger() {
    if (server_.stopping) return close();
    phase_ = Phase::draining;
    since_ = Clock::now();
    beast::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_send, ignored);
    drain();
  }

  void drain() {
    buffer_.clear();
    // Under the TLS layer when there is one: what is discarded needs no decrypting.
    socket().async_read_some(buffer_.prepare(16 * 1024), [self = self()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  void close() {
    if (!socket().is_open()) return;
    beast::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
    std::lock_guard lock(server_.sessions_mutex);
    server_.sessions.erase(shared_from_this());
  }

  std::shared_ptr<Session> self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  tcp::socket& socket() {
    if constexpr (kTls) return stream_.next_layer();
    else return stream_;
  }

  Server::Impl& server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<beast_http::request_parser<beast_http::string_body>> parser_;
  beast_http::response<beast_http::string_body> res_;
  Phase phase_ = Phase::head;
  Clock::time_point since_ = Clock::now();
  Clock::time_point start_;
  bool keep_alive_ = true;
  bool head_ = false;  // the request is a HEAD
  unsigned version_ = 11;  // the request's HTTP version
  std::string route_ = "unmatched";
  std::string correlation_;
};

}  // namespace eventflow::http
