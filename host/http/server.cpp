#include "http/server.hpp"

// The transport is Boost.Asio with Boost.Beast's HTTP/1.1 parser, not Poco's
// HTTPServer that DESIGN §2 names: Poco's server holds a thread per
// connection and, measured on the 2-core machine with a handler that does
// nothing, stops at ~22,700 requests/s using a whole core, below the 25,000
// durable posts/s issue 4 asks for. On an event loop a request costs a read,
// a write and no thread hand-off, and ingest answers from the group commit's
// callback instead of parking a thread on it.

#include <Poco/Exception.h>
#include <Poco/URI.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <charconv>
#include <chrono>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "base/ids.hpp"
#include "base/threads.hpp"
#include "http/api_docs.hpp"
#include "base/log.hpp"
#include "metrics/metrics.hpp"
#include "pipeline/pipeline.hpp"
#include "queue/queue.hpp"
#include "runtime/dlq.hpp"
#include "runtime/ingest.hpp"
#include "store/store.hpp"

namespace eventflow::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace beast_http = boost::beast::http;
using tcp = asio::ip::tcp;
using Request = beast_http::request<beast_http::string_body>;
using Clock = std::chrono::steady_clock;

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::string retry_after;
};

Reply json(int status, const nlohmann::json& body) {
  return Reply{status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json", {}};
}
Reply error(int status, const std::string& code, const std::string& message, const std::string& field = {}) {
  return json(status, runtime::errorBody(code, message, field));
}

bool hasMediaType(const std::string& content_type, std::string_view wanted) {
  const auto semi = content_type.find(';');
  std::string base = content_type.substr(0, semi);
  while (!base.empty() && base.back() == ' ') base.pop_back();
  for (auto& c : base) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return base == wanted;
}

// The routes of DESIGN §3. Ingest answers from a committer thread once its
// group commit is in; every other route runs on the blocking pool.
class Api {
 public:
  explicit Api(const Services& s) : s_(s) {}

  /// True for the routes `ingest` answers without blocking.
  static bool isIngest(const Request& req) {
    const auto path = pathOf(req);
    return req.method() == beast_http::verb::post && (path == "/events" || path == "/events/batch");
  }

  static std::string_view pathOf(const Request& req) {
    const std::string_view target(req.target().data(), req.target().size());
    return target.substr(0, target.find('?'));
  }

  /// POST /events and /events/batch: `respond` runs once the events are committed.
  void ingest(const Request& req, const std::string& correlation, const std::function<void(Reply)>& respond) {
    const bool batch = pathOf(req) == "/events/batch";
    if (!s_.ingestor) return respond(error(404, "not_found", "this process has the worker role; post to an api process"));
    if (auto denied = authorize(req, "ingest")) return respond(std::move(*denied));
    try {
      ingestBody(req, correlation, batch, respond);
    } catch (const std::exception& e) {
      log::error("request failed", {{"route", std::string(pathOf(req))}, {"correlation_id", correlation}, {"error", e.what()}});
      respond(error(500, "internal", "internal error; see the host log"));
    }
  }

  /// Every other route; may block on the store.
  Reply handle(const Request& req, std::string& route, const std::string& correlation) {
    try {
      return dispatch(req, route, correlation);
    } catch (const std::exception& e) {
      log::error("request failed", {{"route", route}, {"correlation_id", correlation}, {"error", e.what()}});
      return error(500, "internal", "internal error; see the host log");
    }
  }

 private:
  Reply dispatch(const Request& req, std::string& route, const std::string& correlation) {
    (void)correlation;
    const std::string method(req.method_string());
    std::string path(req.target());
    if (auto q = path.find('?'); q != std::string::npos) path.resize(q);

    const bool api = s_.ingestor != nullptr;
    const bool dlq_route = path == "/dlq" || path.rfind("/dlq/", 0) == 0;
    if (!api && (path.rfind("/events", 0) == 0 || path == "/pipelines" || dlq_route))
      return error(404, "not_found", "this process has the worker role; post to an api process");
    if (dlq_route && s_.dlq) return dlq(req, method, path, route);
    if (path == "/events" || path == "/events/batch") {
      route = path;
      return error(405, "method_not_allowed", "use POST");  // a POST is answered by ingest()
    }
    if (path.rfind("/events/", 0) == 0) {
      route = "/events/{id}";
      if (method != "GET") return error(405, "method_not_allowed", "use GET");
      if (auto denied = authorize(req, "ingest")) return *denied;
      const std::string id = path.substr(8);
      if (!isUuid(id)) return error(404, "not_found", "no event " + id);
      auto j = s_.store->journey(id);
      if (!j) return unavailable(j.error().message);
      if (j->is_null()) return error(404, "not_found", "no event " + id);
      return json(200, *j);
    }
    if (path == "/health") {
      route = path;
      return health();
    }
    if (path == "/health/live") {
      route = path;
      return json(200, {{"status", "alive"}});
    }
    if (path == "/health/ready") {
      route = path;
      const bool started = s_.ready && s_.ready->load();
      auto ping = s_.store->ping();
      if (ping) ping = s_.queue->ping();
      if (started && ping) return json(200, {{"status", "ready"}});
      return json(503, {{"status", "not_ready"}, {"reason", !started ? "starting or stopping" : ping.error().message}});
    }
    if (path == "/openapi.json" || path == "/docs") {
      route = path;
      if (method != "GET") return error(405, "method_not_allowed", "use GET");
      return path == "/docs" ? Reply{200, kDocsHtml, "text/html; charset=utf-8", {}}
                             : Reply{200, kOpenApiJson, "application/json", {}};
    }
    if (path == "/metrics") {
      route = path;
      // The queue's gauges as of this scrape (they never wait on Redis).
      for (const auto& p : s_.router->pipelines()) {
        s_.metrics->queueDepth(p->name()).Set(static_cast<double>(s_.queue->depth(p->name())));
        s_.metrics->queuePending(p->name()).Set(static_cast<double>(s_.queue->pending(p->name())));
      }
      Reply r{200, s_.metrics->serialize(), "text/plain; version=0.0.4; charset=utf-8", {}};
      return r;
    }
    if (path == "/metrics/summary") {
      route = path;
      return summary();
    }
    if (path == "/pipelines") {
      route = path;
      if (auto denied = authorize(req, "admin")) return *denied;
      return pipelines();
    }
    return error(404, "not_found", "no route " + method + " " + path);
  }

  // GET /dlq, GET|DELETE /dlq/{id}, POST /dlq/{id}/replay, POST /dlq/replay.
  Reply dlq(const Request& req, const std::string& method, const std::string& path, std::string& route) {
    const std::string rest = path.size() > 5 ? path.substr(5) : std::string();
    const bool replay_one = rest.size() > 7 && rest.ends_with("/replay");
    const std::string id = replay_one ? rest.substr(0, rest.size() - 7) : rest;
    if (path == "/dlq") {
      route = "/dlq";
      if (method != "GET") return error(405, "method_not_allowed", "use GET");
    } else if (rest == "replay") {
      route = "/dlq/replay";
      if (method != "POST") return error(405, "method_not_allowed", "use POST");
    } else if (replay_one) {
      route = "/dlq/{id}/replay";
      if (method != "POST") return error(405, "method_not_allowed", "use POST");
    } else {
      route = "/dlq/{id}";
      if (method != "GET" && method != "DELETE") return error(405, "method_not_allowed", "use GET or DELETE");
    }
    if (auto denied = authorize(req, "admin")) return *denied;

    if (route == "/dlq") {
      store::DeadFilter filter;
      try {
        for (const auto& [key, value] : Poco::URI(std::string(req.target())).getQueryParameters())
          if (auto bad = filterParameter(key, value, filter)) return *bad;
      } catch (const Poco::Exception& e) {
        return error(400, "invalid_parameter", "the query string cannot be read: " + e.displayText());
      }
      auto page = s_.dlq->list(filter);
      if (!page) return unavailable(page.error().message);
      nlohmann::json items = nlohmann::json::array();
      for (const auto& e : page->items) items.push_back(runtime::toJson(e));
      return json(200, {{"items", std::move(items)}, {"total", page->total}});
    }
    if (route == "/dlq/replay") return replayAll(req);

    if (!isUuid(id)) return error(404, "not_found", "no event " + id);
    if (route == "/dlq/{id}" && method == "GET") {
      auto dead = s_.dlq->show(id);
      if (!dead) return unavailable(dead.error().message);
      if (!*dead) return error(404, "not_found", "event " + id + " is not in the DLQ");
      return json(200, runtime::toJson(**dead));
    }
    const bool discard = route == "/dlq/{id}";
    auto answer = discard ? s_.dlq->discard(id) : s_.dlq->replay(id);
    if (!answer) return unavailable(answer.error().message);
    switch (answer->status) {
      case runtime::DlqStatus::done:
        return discard ? json(200, {{"event_id", id}, {"status", "discarded"}})
                       : json(202, {{"event_id", id}, {"status", "replayed"}});
      case runtime::DlqStatus::not_found:
        return error(404, "not_found", "no event " + id);
      case runtime::DlqStatus::not_dead:
        return error(409, "not_dead", "event " + id + " is " + answer->state + ", not in the DLQ");
      case runtime::DlqStatus::no_pipeline:
        return error(422, "no_pipeline", "no pipeline takes event " + id + "'s event_type any more", "event_type");
    }
    return error(500, "internal", "unknown DLQ answer");
  }

  // One filter key from the query string (GET /dlq); a bad value is a 400 naming it.
  std::optional<Reply> filterParameter(const std::string& key, const std::string& value, store::DeadFilter& filter) {
    auto bad = [&](const std::string& why) { return error(400, "invalid_parameter", "'" + key + "' " + why, key); };
    auto whole = [&](std::size_t min, std::size_t max, std::size_t& out) -> std::optional<Reply> {
      std::size_t v = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (value.empty() || ec != std::errc{} || end != value.data() + value.size() || v < min || v > max)
        return bad("must be a whole number from " + std::to_string(min) + " to " + std::to_string(max) + ", not '" +
                   value + "'");
      out = v;
      return std::nullopt;
    };
    if (key == "pipeline") filter.pipeline = value;
    else if (key == "error_type") filter.error_type = value;
    else if (key == "since" || key == "until") {
      const auto t = parseRfc3339(value);
      if (!t) return bad("must be an RFC 3339 time such as 2026-01-31T12:00:00Z, not '" + value + "'");
      (key == "since" ? filter.since : filter.until) = *t;
    } else if (key == "limit") {
      return whole(1, runtime::Dlq::kMaxListLimit, filter.limit);
    } else if (key == "offset") {
      return whole(0, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()), filter.offset);
    } else {
      return error(400, "invalid_parameter",
                   "unknown parameter '" + key + "' (pipeline, error_type, since, until, limit, offset)", key);
    }
    return std::nullopt;
  }

  // POST /dlq/replay {pipeline?, error_type?, since?, until?, dry_run?, limit?}: answers once it is done.
  Reply replayAll(const Request& req) {
    if (!hasMediaType(std::string(req[beast_http::field::content_type]), "application/json"))
      return error(415, "unsupported_media_type", "Content-Type must be application/json");
    const auto doc = nlohmann::json::parse(req.body(), nullptr, false);
    if (doc.is_discarded()) return error(400, "malformed_json", "body is not valid JSON");
    if (!doc.is_object())
      return error(400, "invalid_body", "the body is a JSON object: {pipeline?, error_type?, since?, until?, dry_run?, limit?}");
    store::DeadFilter filter;
    bool dry_run = false;
    std::uint64_t limit = 0;
    for (const auto& [key, value] : doc.items()) {
      auto bad = [&](const std::string& why) { return error(400, "invalid_parameter", "'" + key + "' " + why, key); };
      if (key == "dry_run") {
        if (!value.is_boolean()) return bad("must be true or false");
        dry_run = value.get<bool>();
      } else if (key == "limit") {
        if (!value.is_number_unsigned() || value.get<std::uint64_t>() == 0) return bad("must be a whole number >= 1");
        limit = value.get<std::uint64_t>();
      } else if (key == "pipeline" || key == "error_type" || key == "since" || key == "until") {
        if (!value.is_string()) return bad("must be a string");
        if (auto invalid = filterParameter(key, value.get<std::string>(), filter)) return *invalid;
      } else {
        return error(400, "invalid_parameter",
                     "unknown field '" + key + "' (pipeline, error_type, since, until, dry_run, limit)", key);
      }
    }
    if (dry_run) {
      auto n = s_.dlq->count(filter, limit);
      if (!n) return unavailable(n.error().message);
      return json(200, {{"count", *n}});
    }
    auto done = s_.dlq->replayAll(filter, limit);
    if (!done) return unavailable(done.error().message);
    nlohmann::json out{{"replayed", done->replayed}, {"skipped", done->skipped}};
    if (done->interrupted) out["interrupted"] = true;
    return json(202, out);
  }

  std::optional<Reply> authorize(const Request& req, const std::string& scope) {
    const auto& keys = s_.config->server.api_keys;
    if (keys.empty()) return std::nullopt;
    std::string key(req["X-API-Key"]);
    if (key.empty()) {
      const std::string auth(req[beast_http::field::authorization]);
      if (auth.rfind("Bearer ", 0) == 0) key = auth.substr(7);
    }
    if (key.empty()) return error(401, "unauthorized", "an API key is required (Authorization: Bearer KEY or X-API-Key)");
    const std::string digest = sha256Hex(key);
    for (const auto& k : keys) {
      if (k.sha256 != digest) continue;
      if (std::find(k.scopes.begin(), k.scopes.end(), scope) != k.scopes.end()) return std::nullopt;
      return error(403, "forbidden", "key '" + k.name + "' lacks the '" + scope + "' scope");
    }
    return error(401, "unauthorized", "unknown API key");
  }

  Reply unavailable(const std::string& why) {
    Reply r = error(503, "store_unavailable", why);
    r.retry_after = "1";
    return r;
  }

  void ingestBody(const Request& req, const std::string& correlation, bool batch,
                  const std::function<void(Reply)>& respond) {
    const std::string content_type(req[beast_http::field::content_type]);
    const bool ndjson = batch && hasMediaType(content_type, "application/x-ndjson");
    if (!ndjson && !hasMediaType(content_type, "application/json"))
      return respond(error(415, "unsupported_media_type",
                           std::string("Content-Type must be application/json") + (batch ? " or application/x-ndjson" : "")));
    const std::string& body = req.body();
    std::vector<nlohmann::json> docs;
    std::vector<std::optional<Reply>> parse_errors;
    if (!ndjson) {
      nlohmann::json doc;
      try {
        doc = nlohmann::json::parse(body);
      } catch (const nlohmann::json::parse_error& e) {
        return respond(error(400, "malformed_json", std::string("body is not valid JSON: ") + e.what()));
      }
      if (!batch) docs.push_back(std::move(doc));
      else if (!doc.is_array()) return respond(error(400, "invalid_batch", "a batch body is a JSON array of events"));
      else docs = doc.get<std::vector<nlohmann::json>>();
    } else {
      std::istringstream lines(body);
      std::string line;
      std::size_t n = 0;
      while (std::getline(lines, line)) {
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto doc = nlohmann::json::parse(line, nullptr, false);
        if (doc.is_discarded()) {
          docs.emplace_back(nullptr);
          parse_errors.resize(docs.size());
          parse_errors.back() = error(400, "malformed_json", "line " + std::to_string(n) + " is not valid JSON");
        } else {
          docs.push_back(std::move(doc));
        }
      }
    }
    if (batch && docs.empty()) return respond(error(400, "invalid_batch", "the batch is empty"));
    if (batch && docs.size() > s_.config->server.max_batch)
      return respond(error(413, "batch_too_large",
                           "at most " + std::to_string(s_.config->server.max_batch) + " events per batch"));
    parse_errors.resize(docs.size());

    // Lines that did not parse are answered without reaching ingest.
    std::vector<nlohmann::json> good;
    std::vector<std::size_t> good_index;
    for (std::size_t i = 0; i < docs.size(); ++i) {
      if (parse_errors[i]) continue;
      good.push_back(std::move(docs[i]));
      good_index.push_back(i);
    }
    const std::size_t total = docs.size();
    s_.ingestor->ingest(std::move(good), correlation,
                        [batch, total, respond, good_index = std::move(good_index),
                         parse_errors = std::move(parse_errors)](std::vector<runtime::IngestResult> results) mutable {
                          respond(batch ? batchReply(results, good_index, parse_errors, total) : singleReply(results.front()));
                        });
  }

  static Reply singleReply(runtime::IngestResult& r) {
    Reply reply{r.status, std::move(r.body), "application/json", {}};
    if (r.status == 503 || r.status == 429) reply.retry_after = "1";
    return reply;
  }

  // Assembled as text from each item's serialised answer.
  static Reply batchReply(std::vector<runtime::IngestResult>& results, const std::vector<std::size_t>& good_index,
                          const std::vector<std::optional<Reply>>& parse_errors, std::size_t total) {
    std::vector<std::string> ordered(total);
    std::size_t accepted = 0, rejected = 0, size = 0;
    bool unavailable_seen = false;
    for (std::size_t k = 0; k < results.size(); ++k) {
      const int status = results[k].status;
      if (status == 202 || status == 200) ++accepted;
      else ++rejected;
      unavailable_seen = unavailable_seen || status == 503;
      ordered[good_index[k]] = runtime::withStatusCode(std::move(results[k].body), status);
      size += ordered[good_index[k]].size() + 1;
    }
    for (std::size_t i = 0; i < total; ++i) {
      if (!parse_errors[i]) continue;
      ordered[i] = runtime::withStatusCode(parse_errors[i]->body, 400);
      size += ordered[i].size() + 1;
      ++rejected;
    }
    std::string body;
    body.reserve(size + 64);
    body += "{\"accepted\":" + std::to_string(accepted) + ",\"rejected\":" + std::to_string(rejected) + ",\"results\":[";
    for (std::size_t i = 0; i < total; ++i) {
      if (i) body += ',';
      body += ordered[i];
    }
    body += "]}";
    Reply reply{accepted > 0 || !unavailable_seen ? 202 : 503, std::move(body), "application/json", {}};
    if (unavailable_seen) reply.retry_after = "1";
    return reply;
  }

  Reply health() {
    const auto ping = s_.store->ping();
    const bool redis = s_.queue->kind() == "redis";
    const bool redis_ok = !redis || static_cast<bool>(s_.queue->ping());
    nlohmann::json services{{"database", ping ? "healthy" : "unhealthy"},
                            {"redis", !redis ? "not_configured" : redis_ok ? "healthy" : "unhealthy"}};
    const bool ok = ping && redis_ok;
    return json(ok ? 200 : 503, {{"status", ok ? "healthy" : "unhealthy"},
                                 {"timestamp", formatRfc3339(std::chrono::system_clock::now())},
                                 {"services", services},
                                 {"version", s_.version}});
  }

  Reply summary() {
    auto counts = s_.store->counts();
    if (!counts) return unavailable(counts.error().message);
    nlohmann::json per = nlohmann::json::object();
    std::uint64_t received = 0, processed = 0, dead = 0, discarded = 0, in_flight = 0;
    std::size_t queued = 0;
    for (const auto& p : s_.router->pipelines()) (void)(*counts)[p->name()];
    for (const auto& [name, c] : *counts) {
      const std::size_t depth = s_.queue->depth(name);
      queued += depth;
      per[name] = {{"events_received", c.received}, {"events_processed", c.processed}, {"events_failed", c.dead},
                   {"events_discarded", c.discarded}, {"events_in_flight", c.in_flight}, {"queue_length", depth}};
      received += c.received;
      processed += c.processed;
      dead += c.dead;
      discarded += c.discarded;
      in_flight += c.in_flight;
    }
    return json(200, {{"queue_length", queued},
                      {"pending_messages", in_flight},
                      {"events_received", received},
                      {"events_processed", processed},
                      {"events_failed", dead},
                      {"events_discarded", discarded},
                      {"events_in_flight", in_flight},
                      {"timestamp", formatRfc3339(std::chrono::system_clock::now())},
                      {"pipelines", per}});
  }

  Reply pipelines() {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : s_.router->pipelines()) {
      nlohmann::json stages = nlohmann::json::array();
      for (const auto& st : p->stages())
        stages.push_back({{"kind", kindName(st.spec.kind)}, {"plugin", st.plugin->name}, {"version", st.plugin->version},
                          {"file", st.plugin->file}, {"config", st.spec.config}});
      out.push_back({{"name", p->name()}, {"file", p->spec().file}, {"event_types", p->spec().event_types},
                     {"catch_all", p->spec().catch_all}, {"concurrency", p->spec().concurrency}, {"stages", stages}});
    }
    return json(200, {{"pipelines", out}});
  }

  const Services& s_;
};

}  // namespace

// Everything the server runs: the io threads, the blocking pool for routes
// that wait on the store, and the open connections (for the idle sweep and
// for shutdown).
struct Server::Impl {
  Impl(const Services& s, unsigned threads) : services(s), api(s), blocking(kBlockingThreads) {
    for (unsigned i = 0; i < threads; ++i) {
      ios.push_back(std::make_unique<asio::io_context>(1));
      guards.push_back(asio::make_work_guard(*ios.back()));
    }
  }

  static constexpr std::size_t kBlockingThreads = 8;
  static constexpr auto kIdle = std::chrono::seconds(10);        // keep-alive, and a request's head
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
  std::size_t next_io = 0;  // round robin of new connections over the io threads
  asio::thread_pool blocking;
  std::vector<std::thread> threads;
  std::optional<asio::steady_timer> sweeper;
  std::atomic<bool> stopping{false};
  std::mutex sessions_mutex;
  std::set<std::shared_ptr<class Session>> sessions;

  void accept();
  void sweep();
};

namespace {

enum class Phase { head, body, handling, draining };

}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Server::Impl& server, tcp::socket socket) : server_(server), socket_(std::move(socket)) {}

  void start() { read(); }

  /// From the sweeper (on any thread): closes the connection if it has sat
  /// in one phase too long, or, when stopping, if it is between requests.
  void sweep(Clock::time_point now) {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this(), now] {
      const auto phase = self->phase_;
      const auto since = now - self->since_;
      if ((phase == Phase::head && (since > Server::Impl::kIdle || self->server_.stopping)) ||
          (phase == Phase::body && since > Server::Impl::kSlowBody) ||
          (phase == Phase::draining && (since > Server::Impl::kLinger || self->server_.stopping)))
        self->close();
    });
  }

 private:
  void read() {
    if (server_.stopping) return close();
    phase_ = Phase::head;
    since_ = Clock::now();
    version_ = 11;
    parser_.emplace();
    parser_->header_limit(Server::Impl::kHeaderLimit);
    parser_->body_limit(server_.services.config->server.max_body_bytes);
    beast_http::async_read_header(socket_, buffer_, *parser_,
                                  [self = shared_from_this()](beast::error_code ec, std::size_t) { self->onHead(ec); });
  }

  void onHead(beast::error_code ec) {
    if (ec) return readFailed(ec);
    phase_ = Phase::body;
    since_ = Clock::now();
    const auto& req = parser_->get();
    version_ = req.version();
    // curl and others wait for this before sending a large body. An HTTP/1.0
    // client cannot read an interim answer, so it must not get one (RFC 9110 §10.1.1).
    if (req.version() >= 11 && beast::iequals(req[beast_http::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return asio::async_write(socket_, asio::buffer(kContinue),
                               [self = shared_from_this()](beast::error_code wec, std::size_t) {
                                 if (wec) return self->close();
                                 self->readBody();
                               });
    }
    readBody();
  }

  void readBody() {
    beast_http::async_read(socket_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->readFailed(ec);
      self->handle();
    });
  }

  void readFailed(beast::error_code ec) {
    if (ec == beast_http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
      return close();
    // The request cannot be read to its end, so the connection cannot be reused.
    keep_alive_ = false;
    start_ = Clock::now();
    route_ = "unmatched";
    correlation_ = newUuid();
    const std::size_t max = server_.services.config->server.max_body_bytes;
    if (ec == beast_http::error::body_limit)
      return respond(error(413, "payload_too_large", "body exceeds server.max_body_bytes (" + std::to_string(max) + ")"));
    if (ec == beast_http::error::header_limit)
      return respond(error(431, "headers_too_large", "the request head exceeds 16 KiB"));
    respond(error(400, "bad_request", "malformed HTTP request: " + ec.message()));
  }

  void handle() {
    phase_ = Phase::handling;
    start_ = Clock::now();
    const auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    correlation_ = std::string(req["X-Correlation-ID"]);
    if (correlation_.empty() || correlation_.size() > 128) correlation_ = newUuid();
    if (Api::isIngest(req)) {
      route_ = std::string(Api::pathOf(req));
      // The session stays alive meanwhile: server_.sessions holds it until close().
      return server_.api.ingest(req, correlation_,
                                [gate = server_.gate, weak = weak_from_this()](Reply reply) {
                                  // Often on a committer thread: back to this connection's strand.
                                  std::lock_guard lock(gate->mutex);
                                  // Closed first: once stop() shuts the gate, no callback may
                                  // hold even a moment's reference to a Session.
                                  if (!gate->open) return;
                                  auto self = weak.lock();
                                  if (!self) return;
                                  asio::dispatch(self->socket_.get_executor(), [self, reply = std::move(reply)]() mutable {
                                    self->respond(std::move(reply));
                                  });
                                });
    }
    asio::post(server_.blocking, [self = shared_from_this()] {
      std::string route = "unmatched";
      Reply reply = self->server_.api.handle(self->parser_->get(), route, self->correlation_);
      asio::dispatch(self->socket_.get_executor(),
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
    res_.keep_alive(keep);
    // Beast writes HTTP/1.1 answers, where keep-alive is implied; an HTTP/1.0
    // client (ab -k, old proxies) keeps the connection only when told.
    if (keep && version_ < 11) res_.set(beast_http::field::connection, "keep-alive");
    res_.body() = std::move(reply.body);
    res_.prepare_payload();
    beast_http::async_write(socket_, res_, [self = shared_from_this(), keep](beast::error_code ec, std::size_t) {
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
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    drain();
  }

  void drain() {
    buffer_.clear();
    socket_.async_read_some(buffer_.prepare(16 * 1024), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  void close() {
    if (!socket_.is_open()) return;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    std::lock_guard lock(server_.sessions_mutex);
    server_.sessions.erase(shared_from_this());
  }

  Server::Impl& server_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::optional<beast_http::request_parser<beast_http::string_body>> parser_;
  beast_http::response<beast_http::string_body> res_;
  Phase phase_ = Phase::head;
  Clock::time_point since_ = Clock::now();
  Clock::time_point start_;
  bool keep_alive_ = true;
  unsigned version_ = 11;  // the request's HTTP version
  std::string route_ = "unmatched";
  std::string correlation_;
};

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
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto session = std::make_shared<Session>(*this, std::move(socket));
    {
      std::lock_guard lock(sessions_mutex);
      sessions.insert(session);
    }
    session->start();
    accept();
  });
}

void Server::Impl::sweep() {
  sweeper->expires_after(std::chrono::seconds(1));
  sweeper->async_wait([this](beast::error_code ec) {
    if (ec) return;
    std::vector<std::shared_ptr<Session>> open;
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

Expected<void> Server::start() {
  const auto& listen = services_.config->server.listen;
  const unsigned configured = services_.config->server.threads;
  impl_ = std::make_unique<Impl>(services_, configured ? configured : std::max(2u, std::thread::hardware_concurrency()));
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
  std::vector<std::shared_ptr<Session>> open;
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
  impl_->blocking.join();
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
}

}  // namespace eventflow::http
