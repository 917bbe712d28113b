// eventflow produce: posts generated events shaped like the original
// EventFlow's and reports throughput and latency. Only 2xx counts as success.

#include <Poco/Exception.h>
#include <Poco/URI.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string_view>
#include <thread>
#include <type_traits>

#include <nlohmann/json.hpp>
#include <eventflow/time.hpp>

#include "app/app.hpp"
#include "app/args.hpp"
#include "app/cli.hpp"
#include "base/expected.hpp"
#include "base/ids.hpp"

namespace eventflow::app {
namespace {

using Clock = std::chrono::steady_clock;

const char* const kHelp = R"(usage: eventflow produce --url URL [options]

Posts generated events (purchase, user_signup, page_view, custom; unique
event_id each) and prints requests/s, events/s and latency percentiles.

  --url URL            base URL of the host, e.g. http://127.0.0.1:8000 or https://host:8443
  --cacert FILE        https: trust the CA certificate(s) in FILE (PEM) instead of the system's
  --insecure           https: accept any server certificate (testing only)
  --cert FILE          https: present this client certificate (PEM; for server.tls.client_ca_file)
  --key FILE           https: the client certificate's private key (PEM)
  --count N            events to send (default 10000; ignored with --duration)
  --duration SECONDS   send for this long instead of a count
  --concurrency C      parallel connections (default 32)
  --batch B            events per request: 1 posts /events, more posts /events/batch (default 1)
  --api-key KEY        sent as Authorization: Bearer KEY
  --invalid-every N    make every Nth event invalid for its pipeline (default 0: none)
  --random-ids         random (version 4) event ids instead of time-ordered ones (version 7,
                       which keep PostgreSQL's primary-key inserts at the index's right edge)
  --wait               then wait until every accepted event is terminal (processed or dead,
                       read from the host's /metrics/summary) and report end-to-end events/s
  --wait-timeout S     give up waiting after S seconds (default 600)

exit code: 0 when every request got a 2xx, 1 otherwise, 2 on usage errors.
)";

// Appends one event shaped like the original EventFlow's. Built as text, not
// through nlohmann::json: the generator should spend its CPU on the host's
// side of the loopback, not on itself.
void appendEvent(std::string& out, std::mt19937_64& rng, std::uint64_t n, bool invalid, bool random_id,
                 const std::string& timestamp) {
  static const char* const kTypes[] = {"purchase", "user_signup", "page_view", "custom"};
  static const char* const kPages[] = {"/", "/pricing", "/docs", "/blog", "/checkout"};
  std::uniform_int_distribution<int> user(1, 100000);
  const bool drop_user = invalid && n % 4 == 1;
  out += R"({"event_id":")";
  out += random_id ? newRandomUuid() : newUuid();
  out += R"(","event_type":")";
  out += kTypes[n % 4];
  out += '"';
  if (!drop_user) {
    out += R"(,"user_id":"user_)";
    out += std::to_string(user(rng));
    out += '"';
  }
  out += R"(,"timestamp":")";
  // Every shipped pipeline refuses a timestamp in the future.
  out += invalid ? std::string("2999-01-01T00:00:00Z") : timestamp;
  out += R"(","properties":)";
  switch (n % 4) {
    case 0: {
      std::uniform_int_distribution<int> cents(100, 200000);
      const int c = cents(rng);
      char amount[32];
      std::snprintf(amount, sizeof amount, "%d.%02d", c / 100, c % 100);
      out += R"({"amount":)";
      out += invalid ? "-1.0" : amount;
      out += R"(,"currency":"USD","product_id":"prod_)";
      out += std::to_string(user(rng) % 500);
      out += R"("})";
      break;
    }
    case 1:
      out += (n / 4) % 2 ? R"({"plan":"pro","source":"web"})" : R"({"plan":"free","source":"web"})";
      break;
    case 2:
      out += R"({"page":")";
      out += kPages[(n / 4) % 5];
      out += R"(","referrer":"https://example.com"})";
      break;
    default:
      out += R"({"name":"button_click","value":)";
      out += std::to_string(n % 100);
      out += '}';
      break;
  }
  out += '}';
}

// The shared state of one run; every connection runs on the one io_context
// thread, so nothing here needs a lock.
struct Load {
  long long batch = 1;
  long long invalid_every = 0;
  bool random_ids = false;
  bool timed = false;
  Clock::time_point deadline{};
  std::uint64_t total = 0;
  std::uint64_t next = 0;
  std::vector<double> latencies;
  std::map<int, std::uint64_t> codes;
  std::uint64_t events_ok = 0, requests = 0, errors = 0;
  bool tls_error_said = false;
};

// Where the requests go: host and port, and for https the client's TLS
// context (trusted CAs, optional client certificate).
struct Target {
  std::string host;
  std::uint16_t port = 0;
  std::unique_ptr<boost::asio::ssl::context> tls;  // null: plain http
  bool insecure = false;                           // https without verifying the server
};

// One keep-alive HTTP/1.1 connection posting one request at a time. Asio
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
      if (ec) return self->failed();
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

  void send() {
    if (load_.timed ? Clock::now() >= load_.deadline : load_.next >= load_.total) return;  // done: let io.run() end
    const std::uint64_t first = load_.next;
    events_ = load_.timed ? static_cast<std::uint64_t>(load_.batch)
                          : std::min<std::uint64_t>(static_cast<std::uint64_t>(load_.batch), load_.total - first);
    load_.next += events_;
    const std::string timestamp = formatRfc3339(std::chrono::system_clock::now() - std::chrono::seconds(1));
    body_.clear();
    if (load_.batch > 1) body_ += '[';
    for (std::uint64_t i = 0; i < events_; ++i) {
      if (i) body_ += ',';
      const std::uint64_t n = first + i;
      appendEvent(body_, rng_, n, load_.invalid_every > 0 && n % static_cast<std::uint64_t>(load_.invalid_every) == 0,
                  load_.random_ids, timestamp);
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
    if (in_.size() >= whole) return finish(status, whole);
    boost::asio::async_read(*stream_, boost::asio::dynamic_buffer(in_), boost::asio::transfer_exactly(whole - in_.size()),
                            [self = shared_from_this(), status, whole](const boost::system::error_code& ec, std::size_t) {
                              if (ec) return self->failed();
                              self->finish(status, whole);
                            });
  }

  void finish(int status, std::size_t consumed) {
    in_.erase(0, consumed);
    record(status);
    if (close_) return connect();
    send();
  }

  void record(int status) {
    load_.latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent_).count());
    ++load_.requests;
    ++load_.codes[status];
    if (status >= 200 && status < 300) load_.events_ok += events_;
    else ++load_.errors;
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
    timer_ = std::make_unique<boost::asio::steady_timer>(io_, std::chrono::milliseconds(100));
    timer_->async_wait([self = shared_from_this()](const boost::system::error_code&) { self->connect(); });
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
  Clock::time_point sent_;
  bool close_ = false;
};

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto idx = static_cast<std::size_t>(std::min<double>(static_cast<double>(sorted.size() - 1),
                                                             p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[idx];
}

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

// The client side of https: the system's CAs, or --cacert's, or none
// (--insecure); and --cert/--key when the host asks for a client certificate.
Expected<std::unique_ptr<boost::asio::ssl::context>> clientTls(const Args& args) {
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

}  // namespace

int produce(int argc, char** argv) {
  Args args(argc, argv, 2, {"help", "wait", "random-ids", "insecure"});
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
  static const std::set<std::string> kOptions{"url",  "count",      "duration",  "concurrency", "batch",
                                              "api-key", "invalid-every", "wait", "wait-timeout", "random-ids",
                                              "cacert", "insecure",   "cert",      "key",         "help"};
  if (auto extra = args.unknown(kOptions); !extra.empty()) {
    std::cerr << "eventflow produce: " << unknownOption(extra.front(), kOptions) << "\n" << kHelp;
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
  const std::string auth = args.has("api-key") ? "Bearer " + args.get("api-key") : "";
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
  const auto baseline = args.has("wait") ? summary(target, endpoint, auth) : std::nullopt;
  if (args.has("wait") && !baseline) {
    std::cerr << "eventflow produce: --wait needs " << base.toString() << "/metrics/summary\n";
    return 1;
  }
  Load load;
  load.batch = *batch;
  load.invalid_every = *invalid_every;
  load.random_ids = args.has("random-ids");
  load.timed = timed;
  load.deadline = deadline;
  load.total = total;
  std::string head = "POST " + path + " HTTP/1.1\r\nHost: " + base.getHost() + ":" + std::to_string(base.getPort()) +
                     "\r\nContent-Type: application/json\r\n";
  if (!auth.empty()) head += "Authorization: " + auth + "\r\n";
  head += "Content-Length: ";

  const auto start = Clock::now();
  for (long long c = 0; c < *concurrency; ++c) {
    const auto seed = static_cast<std::uint64_t>(c);
    if (target.tls)
      std::make_shared<Connection<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>>>(io, endpoint, target, head,
                                                                                           load, seed)
          ->start();
    else
      std::make_shared<Connection<boost::asio::ip::tcp::socket>>(io, endpoint, target, head, load, seed)->start();
  }
  io.run();
  auto& latencies = load.latencies;
  const auto& codes = load.codes;
  const std::uint64_t events_ok = load.events_ok, requests = load.requests, errors = load.errors;
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
    const auto received_target = (*baseline)["events_received"].get<std::uint64_t>() + events_ok;
    const auto deadline_wait = Clock::now() + std::chrono::seconds(*wait_timeout);
    std::optional<nlohmann::json> now_summary;
    for (;;) {
      const auto asked = Clock::now();
      now_summary = summary(target, endpoint, auth);
      const auto took = Clock::now() - asked;
      if (now_summary && (*now_summary)["events_received"].get<std::uint64_t>() >= received_target &&
          (*now_summary)["events_in_flight"] == 0)
        break;
      if (Clock::now() >= deadline_wait) {
        waited_ok = false;
        break;
      }
      // The summary counts the whole table: polling it back to back would
      // take the CPU the host is draining with. At most a quarter of the
      // time goes to it.
      std::this_thread::sleep_for(std::max<Clock::duration>(std::chrono::milliseconds(100), 3 * took));
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
