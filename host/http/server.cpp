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
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <sys/resource.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <type_traits>

#include "base/ids.hpp"
#include "base/threads.hpp"
#include "http/api_docs.hpp"
#include "http/body.hpp"
#include "http/json_scan.hpp"
#include "http/tls.hpp"
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
  std::string allow;  // 405: the route's methods
};

// Every route with the methods it answers: the one list the dispatcher, the
// 405's Allow header and the worker role's 404 read. `{id}` stands for one
// path segment; the first match wins, so exact paths come before patterns.
struct Route {
  std::string_view pattern;
  std::string_view allow;  // GET implies HEAD
  bool api = false;        // served by the api and all roles only
  bool probe = false;      // health and metrics: answered on their own threads
};
constexpr Route kRoutes[] = {
    {"/events", "POST", true},
    {"/events/batch", "POST", true},
    {"/events/{id}", "GET, HEAD", true},
    {"/health", "GET, HEAD", false, true},
    {"/health/live", "GET, HEAD", false, true},
    {"/health/ready", "GET, HEAD", false, true},
    {"/metrics", "GET, HEAD", false, true},
    {"/metrics/summary", "GET, HEAD", false, true},
    {"/pipelines", "GET, HEAD", true},
    {"/dlq", "GET, HEAD", true},
    {"/dlq/replay", "POST", true},
    {"/dlq/{id}", "GET, HEAD, DELETE", true},
    {"/dlq/{id}/replay", "POST", true},
    {"/openapi.json", "GET, HEAD"},
    {"/docs", "GET, HEAD"},
};

const Route* matchRoute(std::string_view path) {
  for (const auto& r : kRoutes) {
    std::string_view pattern = r.pattern, rest = path;
    bool ok = true;
    while (ok && !pattern.empty()) {
      if (pattern.starts_with("{id}")) {
        const auto slash = rest.find('/');
        const auto segment = rest.substr(0, slash);
        ok = !segment.empty();
        pattern.remove_prefix(4);
        rest.remove_prefix(segment.size());
      } else {
        const auto n = std::min(pattern.find('{'), pattern.size());
        ok = rest.substr(0, n) == pattern.substr(0, n);
        pattern.remove_prefix(n);
        rest.remove_prefix(std::min(n, rest.size()));
      }
    }
    if (ok && rest.empty()) return &r;
  }
  return nullptr;
}

bool allows(const Route& r, beast_http::verb method) {
  const auto verb = beast_http::to_string(method);
  const std::string_view name(verb.data(), verb.size());
  std::string_view allow = r.allow;
  while (!allow.empty()) {
    const auto comma = allow.find(',');
    if (allow.substr(0, comma) == name) return true;
    if (comma == std::string_view::npos) break;
    allow.remove_prefix(comma + 1);
    while (allow.starts_with(' ')) allow.remove_prefix(1);
  }
  return false;
}

Reply json(int status, const nlohmann::json& body) {
  return Reply{status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json", {}, {}};
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

  /// True for health and metrics, which must never queue behind admin work.
  static bool isProbe(const Request& req) {
    const Route* r = matchRoute(pathOf(req));
    return r && r->probe;
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
    const std::string path(pathOf(req));
    const Route* r = matchRoute(path);
    if (!r) return error(404, "not_found", "no route " + std::string(req.method_string()) + " " + path);
    if (r->api && !s_.ingestor)
      return error(404, "not_found", "this process has the worker role; post to an api process");
    route = r->pattern;
    if (!allows(*r, req.method())) {
      Reply refused = error(405, "method_not_allowed",
                            std::string(req.method_string()) + " is not allowed on " + route + "; use " + std::string(r->allow));
      refused.allow = r->allow;
      return refused;
    }
    // A HEAD is answered as the GET would be; the session drops the body.
    const bool get = req.method() == beast_http::verb::get || req.method() == beast_http::verb::head;
    // Ids are kept in lower case (see pipeline::canonicaliseEventId).
    auto idAt = [&](std::size_t from, std::size_t drop_suffix = 0) {
      std::string id = path.substr(from, path.size() - from - drop_suffix);
      if (isUuid(id))
        for (auto& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return id;
    };
    if (route == "/events/{id}") {
      if (auto denied = authorize(req, "ingest")) return *denied;
      const std::string id = idAt(8);
      if (!isUuid(id)) return error(404, "not_found", "no event " + id);
      auto j = s_.store->journey(id);
      if (!j) return unavailable(j.error().message);
      if (j->is_null()) return error(404, "not_found", "no event " + id);
      return json(200, *j);
    }
    if (route == "/health") return health();
    if (route == "/health/live") return json(200, {{"status", "alive"}});
    if (route == "/health/ready") {
      const bool started = s_.ready && s_.ready->load();
      auto ping = s_.store->ping();
      if (ping) ping = s_.queue->ping();
      if (started && ping && s_.config->limits.max_rss > 0) {
        // An operator's memory bound: a host over it leaves the load balancer's
        // rotation before the kernel's OOM killer takes it out of everything.
        if (const auto rss = metrics::Metrics::residentBytes(); rss > s_.config->limits.max_rss)
          return json(503, {{"status", "not_ready"},
                            {"reason", "resident memory " + std::to_string(rss) + " bytes is over limits.max_rss (" +
                                           std::to_string(s_.config->limits.max_rss) + ")"}});
      }
      if (started && ping) return json(200, {{"status", "ready"}});
      return json(503, {{"status", "not_ready"}, {"reason", !started ? "starting or stopping" : ping.error().message}});
    }
    if (route == "/openapi.json") return Reply{200, kOpenApiJson, "application/json", {}, {}};
    if (route == "/docs") return Reply{200, kDocsHtml, "text/html; charset=utf-8", {}, {}};
    if (route == "/metrics") {
      if (auto denied = authorize(req, "metrics")) return *denied;
      // The queue's gauges as of this scrape (they never wait on Redis).
      for (const auto& p : s_.router->pipelines()) {
        s_.metrics->queueDepth(p->name()).Set(static_cast<double>(s_.queue->depth(p->name())));
        s_.metrics->queuePending(p->name()).Set(static_cast<double>(s_.queue->pending(p->name())));
      }
      if (s_.ingestor) s_.metrics->ingestUncommitted().Set(static_cast<double>(s_.ingestor->uncommitted()));
      return Reply{200, s_.metrics->serialize(), "text/plain; version=0.0.4; charset=utf-8", {}, {}};
    }
    if (route == "/metrics/summary") {
      if (auto denied = authorize(req, "metrics")) return *denied;
      return summary();
    }
    if (route == "/pipelines") {
      if (auto denied = authorize(req, "admin")) return *denied;
      return pipelines();
    }
    // The DLQ's routes: GET /dlq, GET|DELETE /dlq/{id}, POST /dlq/{id}/replay, POST /dlq/replay.
    // (POST /events and /events/batch never come here: ingest() answers them.)
    if (!s_.dlq || !route.starts_with("/dlq"))
      return error(404, "not_found", "no route " + std::string(req.method_string()) + " " + path);
    if (auto denied = authorize(req, "admin")) return *denied;
    if (route == "/dlq") return dlqPage(req);
    if (route == "/dlq/replay") return replayAll(req);
    const bool replay_one = route == "/dlq/{id}/replay";
    const std::string id = idAt(5, replay_one ? 7 : 0);
    if (!isUuid(id)) return error(404, "not_found", "no event " + id);
    if (!replay_one && get) {
      auto dead = s_.dlq->show(id);
      if (!dead) return unavailable(dead.error().message);
      if (!*dead) return error(404, "not_found", "event " + id + " is not in the DLQ");
      return json(200, runtime::toJson(**dead));
    }
    const bool discard = !replay_one;
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

  // GET /dlq?pipeline=&error_type=&since=&until=&limit=&offset=
  Reply dlqPage(const Request& req) {
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
    // Where the next page starts: pages are cut at dlq.max_page_bytes as well as at `limit`.
    const std::uint64_t next = filter.offset + page->items.size();
    nlohmann::json answer{{"items", std::move(items)}, {"total", page->total}};
    if (next < page->total) answer["next_offset"] = next;
    return json(200, answer);
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
    if (const auto max = s_.config->server.max_json_depth; !nestsWithin(req.body(), max))
      return refusal(tooDeep(req.body(), max, max, ""));
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
    if (done->busy) {
      Reply busy = error(409, "replay_running",
                         "a bulk replay is already running in this process (dlq.replay_rate is one budget); "
                         "retry once it ends");
      busy.retry_after = "5";
      return busy;
    }
    nlohmann::json out{{"replayed", done->replayed}, {"skipped", done->skipped}};
    if (done->interrupted) out["interrupted"] = true;
    return json(202, out);
  }

  std::optional<Reply> authorize(const Request& req, const std::string& scope) {
    const auto& keys = s_.config->server.api_keys;
    if (keys.empty()) return std::nullopt;
    std::string key(req["X-API-Key"]);
    if (key.empty()) {
      // The scheme is case-insensitive (RFC 9110 §11.1): `bearer KEY` is a bearer token.
      const std::string auth(req[beast_http::field::authorization]);
      if (auth.size() > 7 && beast::iequals(beast::string_view(auth.data(), 7), "Bearer ")) key = auth.substr(7);
      key.erase(0, key.find_first_not_of(' '));
    }
    if (key.empty()) return error(401, "unauthorized", "an API key is required (Authorization: Bearer KEY or X-API-Key)");
    const std::string digest = sha256Hex(key);
    for (const auto& k : keys) {
      if (k.sha256 != digest) continue;
      const auto has = [&](const std::string& s) { return std::find(k.scopes.begin(), k.scopes.end(), s) != k.scopes.end(); };
      // Whoever runs the DLQ and the pipelines may read the metrics too.
      if (has(scope) || (scope == "metrics" && has("admin"))) return std::nullopt;
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
    auto parsed = parseBody(req.body(), ndjson ? BodyFormat::ndjson : batch ? BodyFormat::json_array : BodyFormat::single,
                            s_.config->server.max_json_depth);
    if (parsed.refused) return respond(refusal(*parsed.refused));
    auto& docs = parsed.docs;
    if (batch && docs.size() > s_.config->server.max_batch)
      return respond(error(413, "batch_too_large",
                           "at most " + std::to_string(s_.config->server.max_batch) + " events per batch"));
    std::vector<std::optional<Reply>> parse_errors(docs.size());
    for (std::size_t i = 0; i < docs.size(); ++i)
      if (parsed.item_refused[i]) parse_errors[i] = refusal(*parsed.item_refused[i]);

    // Items that did not parse are answered without reaching ingest.
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

  static Reply refusal(const BodyRefusal& r) { return error(400, r.code, r.message, r.field); }

  static Reply singleReply(runtime::IngestResult& r) {
    Reply reply{r.status, std::move(r.body), "application/json", {}, {}};
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
    Reply reply{accepted > 0 || !unavailable_seen ? 202 : 503, std::move(body), "application/json", {}, {}};
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
    std::uint64_t received = 0, processed = 0, dead = 0, discarded = 0, in_flight = 0, finished = 0;
    double processing_ms = 0;
    std::size_t queued = 0;
    // First delivery to done or dead, over the events finished in the store's
    // window (5 minutes); 0 when none did.
    auto average = [](double sum, std::uint64_t n) { return n ? std::round(sum / static_cast<double>(n) * 10) / 10 : 0.0; };
    for (const auto& p : s_.router->pipelines()) (void)(*counts)[p->name()];
    for (const auto& [name, c] : *counts) {
      const std::size_t depth = s_.queue->depth(name);
      queued += depth;
      per[name] = {{"events_received", c.received}, {"events_processed", c.processed}, {"events_failed", c.dead},
                   {"events_discarded", c.discarded}, {"events_in_flight", c.in_flight}, {"queue_length", depth},
                   {"avg_processing_time_ms", average(c.processing_ms_sum, c.finished_recently)}};
      finished += c.finished_recently;
      processing_ms += c.processing_ms_sum;
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
                      {"avg_processing_time_ms", average(processing_ms, finished)},
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
  Impl(const Services& s, unsigned threads)
      : services(s), api(s), blocking(kBlockingThreads), probes(kProbeThreads) {
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
  asio::thread_pool blocking;
  asio::thread_pool probes;
  std::vector<std::thread> threads;
  std::optional<asio::steady_timer> sweeper;
  std::atomic<bool> stopping{false};
  std::mutex sessions_mutex;
  std::set<std::shared_ptr<class SessionBase>> sessions;
  // Set when server.tls is: every connection then starts with a handshake.
  std::unique_ptr<asio::ssl::context> tls;

  void accept();
  template <class S>
  void admit(std::shared_ptr<S> session);
  void sweep();
};

namespace {

enum class Phase { handshake, head, body, handling, draining };

}  // namespace

// What the sweeper and shutdown see of a connection, plain or TLS.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  /// Closes the connection if it has sat in one phase too long, or, when
  /// stopping, if it is between requests. From any thread.
  virtual void sweep(Clock::time_point now) = 0;
};

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
      const std::string body = runtime::errorBody("tls_required",
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
      route_ = std::string(Api::pathOf(req));
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
    asio::post(Api::isProbe(req) ? server_.probes : server_.blocking, [self = self()] {
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
