#include "http/api.hpp"

#include <chrono>
#include <cmath>
#include <sstream>

#include "base/ids.hpp"
#include "base/log.hpp"
#include "http/api_docs.hpp"
#include "http/auth.hpp"
#include "http/body.hpp"
#include "http/ingest_reply.hpp"
#include "http/journey_json.hpp"
#include "metrics/metrics.hpp"
#include "pipeline/pipeline.hpp"
#include "queue/queue.hpp"
#include "runtime/ingest.hpp"
#include "runtime/ledger.hpp"
#include "store/store.hpp"

namespace eventflow::http {
namespace {

namespace beast_http = boost::beast::http;

Reply refusal(const BodyRefusal& r) { return error(400, r.code, r.message, r.field); }

const std::string kWorkerRole = "this process has the worker role; post to an api process";

// "100" or "0.5": a rate as its config wrote it, for messages.
std::string rateText(double events_per_second) {
  std::ostringstream out;
  out << events_per_second;
  return out.str();
}

}  // namespace

Api::Api(const Services& s) : s_(s), limiter_(s.config ? s.config->server.api_keys : std::vector<config::ApiKey>{}) {
  // At 0 from the start, so that increase() sees a key's first refusals.
  if (s.config && s.metrics)
    for (const auto& key : s.config->server.api_keys)
      if (key.rate) s.metrics->rateLimited(key.name);
}

std::string idFromPath(const std::string& path, std::size_t from, std::size_t drop_suffix) {
  std::string id = path.substr(from, path.size() - from - drop_suffix);
  if (isUuid(id))
    for (auto& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return id;
}

bool Api::isIngest(const Request& req) {
  const auto path = pathOf(req);
  return req.method() == beast_http::verb::post && (path == "/events" || path == "/events/batch");
}

bool Api::isProbe(const Request& req) {
  const Route* r = matchRoute(pathOf(req));
  return r && r->probe;
}

void Api::ingest(const Request& req, const std::string& correlation, const std::function<void(Reply)>& respond) {
  const bool batch = pathOf(req) == "/events/batch";
  if (!s_.ingestor) return respond(error(404, "not_found", kWorkerRole));
  std::size_t key = RateLimiter::kNoKey;
  if (auto denied = authorize(s_.config->server.api_keys, req, matchRoute(pathOf(req))->scope, &key))
    return respond(std::move(*denied));
  try {
    ingestBody(req, correlation, batch, key, respond);
  } catch (const std::exception& e) {
    log::error("request failed", {{"route", std::string(pathOf(req))}, {"correlation_id", correlation}, {"error", e.what()}});
    respond(error(500, "internal", "internal error; see the host log"));
  }
}

Reply Api::handle(const Request& req, std::string& route, const std::string& correlation) {
  try {
    const std::string path(pathOf(req));
    const Route* r = matchRoute(path);
    if (!r) return error(404, "not_found", "no route " + std::string(req.method_string()) + " " + path);
    if (r->api && !s_.ingestor) return error(404, "not_found", kWorkerRole);
    route = r->pattern;
    if (!allows(*r, req.method())) {
      Reply refused = error(405, "method_not_allowed",
                            std::string(req.method_string()) + " is not allowed on " + route + "; use " + std::string(r->allow));
      refused.allow = r->allow;
      return refused;
    }
    if (auto denied = authorize(s_.config->server.api_keys, req, r->scope)) return *denied;
    return dispatch(req, *r, path);
  } catch (const std::exception& e) {
    log::error("request failed", {{"route", route}, {"correlation_id", correlation}, {"error", e.what()}});
    return error(500, "internal", "internal error; see the host log");
  }
}

// A HEAD is answered as the GET would be; the session drops the body.
Reply Api::dispatch(const Request& req, const Route& r, const std::string& path) {
  switch (r.id) {
    case RouteId::events:
    case RouteId::events_batch:
      break;  // POST: ingest() answers them; other methods got 405
    case RouteId::event: return journey(path);
    case RouteId::health: return health();
    case RouteId::health_live: return json(200, {{"status", "alive"}});
    case RouteId::health_ready: return ready();
    case RouteId::metrics: return metrics();
    case RouteId::metrics_summary: return summary();
    case RouteId::pipelines: return pipelines();
    case RouteId::admin_reload: return reload();
    case RouteId::openapi: return text(200, kOpenApiJson);
    case RouteId::docs: return text(200, kDocsHtml, "text/html; charset=utf-8");
    case RouteId::dlq: return dlqPage(req);
    case RouteId::dlq_replay: return replayAll(req);
    case RouteId::dlq_item:
    case RouteId::dlq_item_replay: return dlqItem(req, r.id, path);
  }
  return error(404, "not_found", "no route " + std::string(req.method_string()) + " " + path);
}

Reply Api::journey(const std::string& path) {
  const std::string id = idFromPath(path, 8);
  if (!isUuid(id)) return error(404, "not_found", "no event " + id);
  auto j = s_.store->journey(id);
  if (!j) return unavailable(j.error().message);
  if (!*j) return error(404, "not_found", "no event " + id);
  return json(200, journeyJson(**j));
}

Reply Api::ready() {
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

Reply Api::metrics() {
  // The queue's gauges as of this scrape (they never wait on Redis).
  for (const auto& p : s_.router->current()->router.pipelines()) {
    s_.metrics->queueDepth(p->name()).Set(static_cast<double>(s_.queue->depth(p->name())));
    s_.metrics->queuePending(p->name()).Set(static_cast<double>(s_.queue->pending(p->name())));
  }
  if (s_.ingestor) s_.metrics->ingestUncommitted().Set(static_cast<double>(s_.ingestor->uncommitted()));
  const bool store_up = static_cast<bool>(s_.store->ping());
  s_.metrics->storeUp().Set(store_up ? 1 : 0);
  s_.metrics->queueUp().Set(s_.queue->ping() ? 1 : 0);
  if (store_up) refreshBooks();
  return text(200, s_.metrics->serialize(), "text/plain; version=0.0.4; charset=utf-8");
}

std::optional<Reply> Api::admit(std::size_t key, std::size_t events) {
  const auto verdict = limiter_.take(key, events);
  if (verdict.outcome == RateOutcome::allowed) return std::nullopt;
  const auto& k = s_.config->server.api_keys[key];
  const std::string burst = std::to_string(k.rate->burst);
  if (verdict.outcome == RateOutcome::too_large)
    // Retrying cannot help, so not a 429: the same answer as a batch over server.max_batch.
    return error(413, "batch_too_large",
                 "key '" + k.name + "' may send at most " + burst + " events at once (its rate.burst); this batch has " +
                     std::to_string(events) + ": split it");
  s_.metrics->rateLimited(k.name).Increment(static_cast<double>(events));
  const auto seconds = RateLimiter::retryAfterSeconds(verdict.wait);
  Reply limited = error(429, "rate_limited",
                        "key '" + k.name + "' is over its rate of " + rateText(k.rate->events_per_second) +
                            " events/s (burst " + burst + "); retry after " + std::to_string(seconds) + " s");
  limited.retry_after = std::to_string(seconds);
  return limited;
}

// The store's books as gauges, so that dashboards show the DLQ's size and
// alerts can check G8. Counting them scans raw_events (until the store keeps
// counters), so at most once per kBooksEvery however many scrapers ask.
void Api::refreshBooks() {
  {
    std::lock_guard lock(books_mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (books_at_ != std::chrono::steady_clock::time_point{} && now - books_at_ < kBooksEvery) return;
    books_at_ = now;
  }
  auto counts = s_.store->counts();
  if (!counts) return;
  for (const auto& p : s_.router->current()->router.pipelines()) (void)(*counts)[p->name()];
  for (const auto& [pipeline, c] : *counts) {
    s_.metrics->books(pipeline, "received").Set(static_cast<double>(c.received));
    s_.metrics->books(pipeline, "processed").Set(static_cast<double>(c.processed));
    s_.metrics->books(pipeline, "dead").Set(static_cast<double>(c.dead));
    s_.metrics->books(pipeline, "discarded").Set(static_cast<double>(c.discarded));
    s_.metrics->books(pipeline, "in_flight").Set(static_cast<double>(c.in_flight));
  }
}

void Api::ingestBody(const Request& req, const std::string& correlation, bool batch, std::size_t key,
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
  // Only events that reach the store count against the key's rate; items
  // refused as malformed cost it nothing. A batch passes whole or not at all.
  if (auto refused = admit(key, good.size())) return respond(std::move(*refused));
  const std::size_t total = docs.size();
  s_.ingestor->ingest(std::move(good), correlation,
                      [batch, total, respond, good_index = std::move(good_index),
                       parse_errors = std::move(parse_errors)](runtime::IngestAnswer answer) {
                        respond(batch ? batchReply(answer, good_index, parse_errors, total)
                                      : singleReply(answer.results.front(), answer.received_at));
                      });
}

Reply Api::health() {
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

Reply Api::summary() {
  auto books = runtime::ledger(*s_.store, *s_.queue, s_.router->current()->router);
  if (!books) return unavailable(books.error().message);
  nlohmann::json per = nlohmann::json::object();
  for (const auto& [name, b] : books->pipelines)
    per[name] = {{"events_received", b.counts.received},   {"events_processed", b.counts.processed},
                 {"events_failed", b.counts.dead},         {"events_discarded", b.counts.discarded},
                 {"events_in_flight", b.counts.in_flight}, {"queue_length", b.queue_length},
                 {"avg_processing_time_ms", b.avg_processing_time_ms}};
  const runtime::Books& t = books->total;
  return json(200, {{"queue_length", t.queue_length},
                    {"pending_messages", t.counts.in_flight},
                    {"events_received", t.counts.received},
                    {"events_processed", t.counts.processed},
                    {"events_failed", t.counts.dead},
                    {"events_discarded", t.counts.discarded},
                    {"events_in_flight", t.counts.in_flight},
                    {"avg_processing_time_ms", t.avg_processing_time_ms},
                    {"timestamp", formatRfc3339(std::chrono::system_clock::now())},
                    {"pipelines", per}});
}



}  // namespace eventflow::http
