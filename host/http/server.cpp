#include "http/server.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/URI.h>

#include <charconv>
#include <chrono>
#include <limits>
#include <sstream>
#include <thread>

#include "base/ids.hpp"
#include "base/log.hpp"
#include "metrics/metrics.hpp"
#include "pipeline/pipeline.hpp"
#include "queue/queue.hpp"
#include "runtime/dlq.hpp"
#include "runtime/ingest.hpp"
#include "store/store.hpp"

namespace eventflow::http {
namespace {

using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

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

class Handler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(const Services& s) : s_(s) {}

  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& res) override {
    const auto start = std::chrono::steady_clock::now();
    std::string correlation = req.get("X-Correlation-ID", "");
    if (correlation.empty() || correlation.size() > 128) correlation = newUuid();
    std::string route = "unmatched";
    Reply reply;
    try {
      reply = dispatch(req, route, correlation);
    } catch (const std::exception& e) {
      log::error("request failed", {{"route", route}, {"correlation_id", correlation}, {"error", e.what()}});
      reply = error(500, "internal", "internal error; see the host log");
    }
    res.setStatus(static_cast<HTTPResponse::HTTPStatus>(reply.status));
    res.setContentType(reply.content_type);
    res.set("X-Correlation-ID", correlation);
    if (!reply.retry_after.empty()) res.set("Retry-After", reply.retry_after);
    res.setContentLength(static_cast<std::streamsize>(reply.body.size()));
    try {
      res.send().write(reply.body.data(), static_cast<std::streamsize>(reply.body.size()));
    } catch (const Poco::Exception&) {
      // the client went away; nothing to tell it
    }
    s_.metrics->httpRequests(route, reply.status).Increment();
    s_.metrics->httpDuration(route).Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }

 private:
  Reply dispatch(HTTPServerRequest& req, std::string& route, const std::string& correlation) {
    const std::string& method = req.getMethod();
    std::string path = req.getURI();
    if (auto q = path.find('?'); q != std::string::npos) path.resize(q);

    const bool api = s_.ingestor != nullptr;
    const bool dlq_route = path == "/dlq" || path.rfind("/dlq/", 0) == 0;
    if (!api && (path.rfind("/events", 0) == 0 || path == "/pipelines" || dlq_route))
      return error(404, "not_found", "this process has the worker role; post to an api process");
    if (dlq_route && s_.dlq) return dlq(req, method, path, route);
    if (path == "/events" || path == "/events/batch") {
      route = path;
      if (method != "POST") return error(405, "method_not_allowed", "use POST");
      if (auto denied = authorize(req, "ingest")) return *denied;
      return ingest(req, correlation, path == "/events/batch");
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
    if (path == "/metrics") {
      route = path;
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
  Reply dlq(HTTPServerRequest& req, const std::string& method, const std::string& path, std::string& route) {
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
        for (const auto& [key, value] : Poco::URI(req.getURI()).getQueryParameters())
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
  Reply replayAll(HTTPServerRequest& req) {
    if (!hasMediaType(req.getContentType(), "application/json"))
      return error(415, "unsupported_media_type", "Content-Type must be application/json");
    const std::size_t max = s_.config->server.max_body_bytes;
    if (req.hasContentLength() && req.getContentLength64() > static_cast<Poco::Int64>(max))
      return error(413, "payload_too_large", "body exceeds server.max_body_bytes (" + std::to_string(max) + ")");
    std::string body;
    char chunk[4096];
    auto& in = req.stream();
    while (body.size() <= max && in.read(chunk, sizeof chunk).gcount() > 0)
      body.append(chunk, static_cast<std::size_t>(in.gcount()));
    if (body.size() > max)
      return error(413, "payload_too_large", "body exceeds server.max_body_bytes (" + std::to_string(max) + ")");
    const auto doc = nlohmann::json::parse(body, nullptr, false);
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

  std::optional<Reply> authorize(HTTPServerRequest& req, const std::string& scope) {
    const auto& keys = s_.config->server.api_keys;
    if (keys.empty()) return std::nullopt;
    std::string key = req.get("X-API-Key", "");
    if (key.empty()) {
      const std::string auth = req.get("Authorization", "");
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

  Reply ingest(HTTPServerRequest& req, const std::string& correlation, bool batch) {
    const std::string content_type = req.getContentType();
    const bool ndjson = batch && hasMediaType(content_type, "application/x-ndjson");
    if (!ndjson && !hasMediaType(content_type, "application/json"))
      return error(415, "unsupported_media_type",
                   std::string("Content-Type must be application/json") + (batch ? " or application/x-ndjson" : ""));
    const std::size_t limit = s_.config->server.max_body_bytes;
    if (req.hasContentLength() && req.getContentLength64() > static_cast<Poco::Int64>(limit))
      return error(413, "payload_too_large", "body exceeds server.max_body_bytes (" + std::to_string(limit) + ")");
    // Read what was announced, or chunks up to the limit when nothing was
    // (chunked); never allocate the limit up front.
    std::string body;
    auto& in = req.stream();
    if (req.hasContentLength()) {
      body.resize(static_cast<std::size_t>(req.getContentLength64()));
      in.read(body.data(), static_cast<std::streamsize>(body.size()));
      body.resize(static_cast<std::size_t>(in.gcount()));
    } else {
      char chunk[16384];
      while (body.size() <= limit && in.read(chunk, sizeof chunk).gcount() > 0)
        body.append(chunk, static_cast<std::size_t>(in.gcount()));
    }
    if (body.size() > limit)
      return error(413, "payload_too_large", "body exceeds server.max_body_bytes (" + std::to_string(limit) + ")");

    std::vector<nlohmann::json> docs;
    std::vector<std::optional<Reply>> parse_errors;
    if (!ndjson) {
      nlohmann::json doc;
      try {
        doc = nlohmann::json::parse(body);
      } catch (const nlohmann::json::parse_error& e) {
        return error(400, "malformed_json", std::string("body is not valid JSON: ") + e.what());
      }
      if (!batch) docs.push_back(std::move(doc));
      else if (!doc.is_array()) return error(400, "invalid_batch", "a batch body is a JSON array of events");
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
    if (batch && docs.empty()) return error(400, "invalid_batch", "the batch is empty");
    if (batch && docs.size() > s_.config->server.max_batch)
      return error(413, "batch_too_large", "at most " + std::to_string(s_.config->server.max_batch) + " events per batch");
    parse_errors.resize(docs.size());

    // Lines that did not parse are answered without reaching ingest.
    std::vector<nlohmann::json> good;
    std::vector<std::size_t> good_index;
    for (std::size_t i = 0; i < docs.size(); ++i) {
      if (parse_errors[i]) continue;
      good.push_back(std::move(docs[i]));
      good_index.push_back(i);
    }
    auto results = s_.ingestor->ingest(std::move(good), correlation);
    if (!batch) {
      const auto& r = results.front();
      Reply reply = json(r.status, r.body);
      if (r.status == 503 || r.status == 429) reply.retry_after = "1";
      return reply;
    }
    nlohmann::json items = nlohmann::json::array();
    std::vector<nlohmann::json> ordered(docs.size());
    std::size_t accepted = 0, rejected = 0;
    bool unavailable_seen = false;
    for (std::size_t k = 0; k < results.size(); ++k) {
      auto item = results[k].body;
      item["status_code"] = results[k].status;
      if (results[k].status == 202 || results[k].status == 200) ++accepted;
      else ++rejected;
      unavailable_seen = unavailable_seen || results[k].status == 503;
      ordered[good_index[k]] = std::move(item);
    }
    for (std::size_t i = 0; i < docs.size(); ++i) {
      if (parse_errors[i]) {
        auto item = nlohmann::json::parse(parse_errors[i]->body);
        item["status_code"] = 400;
        ordered[i] = std::move(item);
        ++rejected;
      }
      items.push_back(std::move(ordered[i]));
    }
    Reply reply = json(accepted > 0 || !unavailable_seen ? 202 : 503,
                       {{"accepted", accepted}, {"rejected", rejected}, {"results", std::move(items)}});
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

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(const Services& s) : s_(s) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override { return new Handler(s_); }

 private:
  const Services& s_;
};

}  // namespace

Server::Server(Services services) : services_(std::move(services)) {}
Server::~Server() { stop(); }

Expected<void> Server::start() {
  const auto& listen = services_.config->server.listen;
  try {
    Poco::Net::SocketAddress address(listen);
    Poco::Net::ServerSocket socket;
    socket.bind(address, true);
    socket.listen(1024);
    port_ = socket.address().port();
    auto params = new Poco::Net::HTTPServerParams;
    const unsigned threads = services_.config->server.threads ? services_.config->server.threads : 64;
    params->setMaxThreads(static_cast<int>(threads));
    params->setMaxQueued(1024);
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(Poco::Timespan(10, 0));
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(services_), socket, params);
    server_->start();
  } catch (const Poco::Exception& e) {
    return makeError("cannot listen on " + listen + ": " + e.displayText());
  }
  return {};
}

void Server::stop() {
  if (!server_) return;
  server_->stopAll(false);
  // Let requests already inside a handler finish and answer.
  for (int i = 0; i < 200 && server_->currentConnections() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  server_.reset();
}

}  // namespace eventflow::http
