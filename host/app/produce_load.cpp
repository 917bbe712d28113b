#include "app/produce_load.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <string_view>
#include <type_traits>

#include <eventflow/time.hpp>

#include "app/produce_events.hpp"

namespace eventflow::app {
namespace {

// One keep-alive HTTP/1.1 connection posting one request at a time (or, with
// --close, one connection per request, made anew after each answer). Asio
// rather than a thread per connection, like wrk: one thread drives all the
// connections, so the generator takes little of the CPU it shares with the
// host under test. Stream is a TCP socket, or TLS over one for https (a
// handshake per connection, then the same requests).
template <class Stream>
class Connection : public std::enable_shared_from_this<Connection<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, boost::asio::ip::tcp::socket>;

 public:
  Connection(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint endpoint, const Target& target,
             const std::string& head, Load& load, std::uint64_t seed)
      : io_(io), endpoint_(std::move(endpoint)), target_(target), head_(head), load_(load), rng_(seed * 7919 + 17) {}

  void start() { connect(); }

 private:
  using std::enable_shared_from_this<Connection<Stream>>::shared_from_this;

  boost::asio::ip::tcp::socket& socket() {
    if constexpr (kTls) return stream_->next_layer();
    else return *stream_;
  }

  void connect() {
    if constexpr (kTls) {
      stream_.emplace(io_, *target_.tls);
      if (!target_.insecure) stream_->set_verify_callback(boost::asio::ssl::host_name_verification(target_.host));
      // SNI: a host serving several names picks the certificate by it.
      SSL_set_tlsext_host_name(stream_->native_handle(), target_.host.c_str());
    } else {
      stream_.emplace(io_);
    }
    socket().async_connect(endpoint_, [self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return self->refused(ec);
      self->socket().set_option(boost::asio::ip::tcp::no_delay(true));
      if constexpr (kTls) {
        self->stream_->async_handshake(boost::asio::ssl::stream_base::client,
                                       [self](const boost::system::error_code& hec) {
                                         if (hec) return self->failed(hec);
                                         self->send();
                                       });
      } else {
        self->send();
      }
    });
  }

  bool done() const { return load_.timed ? Clock::now() >= load_.deadline : load_.next >= load_.total; }

  void send() {
    if (done()) return;  // let io.run() end
    const std::uint64_t first = load_.next;
    first_ = first;
    events_ = load_.timed ? static_cast<std::uint64_t>(load_.batch)
                          : std::min<std::uint64_t>(static_cast<std::uint64_t>(load_.batch), load_.total - first);
    load_.next += events_;
    const auto when = std::chrono::system_clock::now() - std::chrono::seconds(1);
    // Clients in two zones besides UTC: India (+05:30) and US Eastern (-04:00).
    const Timestamps stamps = load_.mixed ? timestampsAt(when, first % 2 ? 330 : -240) : Timestamps{formatRfc3339(when), {}, {}};
    body_.clear();
    invalid_ = 0;
    if (load_.batch > 1) body_ += '[';
    for (std::uint64_t i = 0; i < events_; ++i) {
      if (i) body_ += ',';
      const std::uint64_t n = first + i;
      const bool invalid = load_.invalid_every > 0 && n % static_cast<std::uint64_t>(load_.invalid_every) == 0;
      invalid_ += invalid ? 1 : 0;
      const std::string& timestamp = !load_.mixed || n % 3 == 0 ? stamps.utc : n % 3 == 1 ? stamps.offset : stamps.naive;
      appendEvent(body_, rng_, n, invalid, load_.random_ids, timestamp);
    }
    if (load_.batch > 1) body_ += ']';
    out_ = head_ + std::to_string(body_.size()) + "\r\n\r\n" + body_;
    sent_ = Clock::now();
    boost::asio::async_write(*stream_, boost::asio::buffer(out_),
                             [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                               if (ec) return self->failed();
                               self->readHead();
                             });
  }

  void readHead() {
    boost::asio::async_read_until(
        *stream_, boost::asio::dynamic_buffer(in_), "\r\n\r\n",
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t head_size) {
          if (ec) return self->failed();
          self->parseHead(head_size);
        });
  }

  void parseHead(std::size_t head_size) {
    // "HTTP/1.1 202 Accepted\r\n..." and a Content-Length; the host never chunks.
    const std::string_view head(in_.data(), head_size);
    int status = 0;
    if (head.size() > 12) std::from_chars(head.data() + 9, head.data() + 12, status);
    std::size_t length = 0;
    close_ = false;
    std::size_t line = head.find("\r\n");
    while (line != std::string_view::npos && line + 2 < head.size()) {
      const std::size_t end = head.find("\r\n", line + 2);
      std::string name(head.substr(line + 2, head.find(':', line + 2) - line - 2));
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const std::size_t colon = head.find(':', line + 2);
      if (colon < end) {
        std::string_view value = head.substr(colon + 1, end - colon - 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (name == "content-length") std::from_chars(value.data(), value.data() + value.size(), length);
        if (name == "connection" && (value == "close" || value == "Close")) close_ = true;
      }
      line = end;
    }
    const std::size_t whole = head_size + length;
    if (in_.size() >= whole) return finish(status, head_size, whole);
    boost::asio::async_read(*stream_, boost::asio::dynamic_buffer(in_), boost::asio::transfer_exactly(whole - in_.size()),
                            [self = shared_from_this(), status, head_size, whole](const boost::system::error_code& ec,
                                                                                 std::size_t) {
                              if (ec) return self->failed();
                              self->finish(status, head_size, whole);
                            });
  }

  void finish(int status, std::size_t head_size, std::size_t consumed) {
    record(status, std::string_view(in_).substr(head_size, consumed - head_size));
    in_.erase(0, consumed);
    // With --close the host answers "Connection: close" and closes its end;
    // a client without keep-alive makes a new connection either way, and
    // none once the load is done.
    if ((close_ || load_.close) && !done()) return connect();
    send();
  }

  void record(int status, std::string_view body = {}) {
    // Latencies are of answers: a connection that failed (status 0) may
    // not have sent anything to time from.
    if (status != 0) load_.latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent_).count());
    ++load_.requests;
    ++load_.codes[status];
    if (status < 200 || status >= 300) {
      ++load_.errors;
      return;
    }
    // A batch is answered 202 when any of its events was taken; the others
    // carry their own status (503 when their pipeline's queue is full).
    const std::vector<int> items = load_.batch > 1 ? batchItemStatuses(body) : std::vector<int>{};
    if (items.size() != events_) {
      load_.events_ok += events_;
      load_.invalid_ok += invalid_;
      return;
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (items[i] < 200 || items[i] >= 300) {
        ++load_.refused[items[i]];
        continue;
      }
      ++load_.events_ok;
      if (load_.invalid_every > 0 && (first_ + i) % static_cast<std::uint64_t>(load_.invalid_every) == 0)
        ++load_.invalid_ok;
    }
  }

  // A connection that never opened sent nothing. Its request still counts
  // toward --count, or a host that is not there would be tried for ever;
  // none is counted once another connection took the last one.
  void refused(const boost::system::error_code& ec) {
    if (!load_.timed) {
      if (load_.next >= load_.total) return;
      load_.next += std::min<std::uint64_t>(static_cast<std::uint64_t>(load_.batch), load_.total - load_.next);
    }
    if (!load_.connect_error_said)
      std::cerr << "eventflow produce: cannot connect to " << endpoint_ << ": " << ec.message() << "\n";
    load_.connect_error_said = true;
    failed();
  }

  void failed(const boost::system::error_code& handshake = {}) {
    // A refused connection or a reset counts as one failed request; pause a
    // little so a host that is down is not spun against.
    record(0);
    in_.clear();
    boost::system::error_code ignored;
    socket().close(ignored);
    // A certificate that does not verify (or a client certificate the host
    // wants) fails every try the same way: said once, and this connection
    // ends instead of retrying for ever.
    if (handshake) {
      if (!load_.tls_error_said)
        std::cerr << "eventflow produce: TLS handshake with " << target_.host << " failed: " << handshake.message() << "\n";
      load_.tls_error_said = true;
      return;
    }
    if (done()) return;
    timer_ = std::make_unique<boost::asio::steady_timer>(io_, std::chrono::milliseconds(100));
    timer_->async_wait([self = shared_from_this()](const boost::system::error_code&) {
      if (!self->done()) self->connect();
    });
  }

  boost::asio::io_context& io_;
  std::optional<Stream> stream_;  // made anew for each connection: a TLS stream is not reusable
  boost::asio::ip::tcp::endpoint endpoint_;
  const Target& target_;
  const std::string& head_;
  Load& load_;
  std::mt19937_64 rng_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::string body_, out_, in_;
  std::uint64_t events_ = 0;
  std::uint64_t invalid_ = 0;  // of events_
  std::uint64_t first_ = 0;    // the number of the request's first event
  Clock::time_point sent_;
  bool close_ = false;
};

}  // namespace

std::vector<int> batchItemStatuses(std::string_view body) {
  // Each item's own "status_code" closes its object. Text inside an item
  // (an error message quoting a client's bytes) is a JSON string whose
  // quotes are escaped, so there the key reads \"status_code\": and never
  // matches: the key found is only ever the host's.
  static constexpr std::string_view kKey = "\"status_code\":";
  std::vector<int> out;
  std::size_t at = body.find("\"results\":[");
  if (at == std::string_view::npos) return out;
  while ((at = body.find(kKey, at)) != std::string_view::npos) {
    at += kKey.size();
    int code = 0;
    const auto [end, ec] = std::from_chars(body.data() + at, body.data() + body.size(), code);
    if (ec != std::errc()) return {};
    out.push_back(code);
    at = static_cast<std::size_t>(end - body.data());
  }
  return out;
}

void startConnections(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint,
                      const Target& target, const std::string& head, Load& load, long long concurrency) {
  for (long long c = 0; c < concurrency; ++c) {
    const auto seed = static_cast<std::uint64_t>(c);
    if (target.tls)
      std::make_shared<Connection<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>>>(io, endpoint, target, head,
                                                                                           load, seed)
          ->start();
    else
      std::make_shared<Connection<boost::asio::ip::tcp::socket>>(io, endpoint, target, head, load, seed)->start();
  }
}

namespace {
// OpenSSL's answer for a file it cannot open is "asio.ssl error"; the file's
// own reason names the problem.
std::optional<std::string> unreadable(const std::string& file) {
  std::ifstream in(file);
  if (in) return std::nullopt;
  return "cannot read " + file + ": " + std::strerror(errno);
}
}  // namespace

Expected<std::unique_ptr<boost::asio::ssl::context>> clientTls(const Args& args) {
  for (const char* option : {"cacert", "cert", "key"})
    if (args.has(option))
      if (auto why = unreadable(args.get(option))) return makeError(std::string("--") + option + ": " + *why);
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (args.has("insecure")) {
    ctx->set_verify_mode(ssl::verify_none);
  } else {
    ctx->set_verify_mode(ssl::verify_peer);
    if (args.has("cacert")) ctx->load_verify_file(args.get("cacert"), ec);
    else ctx->set_default_verify_paths(ec);
    if (ec) return makeError("--cacert " + args.get("cacert") + ": " + ec.message());
  }
  if (args.has("cert") != args.has("key")) return makeError("--cert and --key go together");
  if (args.has("cert")) {
    if (ctx->use_certificate_chain_file(args.get("cert"), ec); ec)
      return makeError("--cert " + args.get("cert") + ": " + ec.message());
    if (ctx->use_private_key_file(args.get("key"), ssl::context::pem, ec); ec)
      return makeError("--key " + args.get("key") + ": " + ec.message());
  }
  return ctx;
}

}  // namespace eventflow::app
