// The DLQ's routes (DESIGN §3): GET /dlq, GET|DELETE /dlq/{id},
// POST /dlq/{id}/replay, POST /dlq/replay. Scope admin (routes.cpp).

#include <Poco/Exception.h>
#include <Poco/URI.h>

#include <charconv>
#include <limits>

#include <eventflow/time.hpp>

#include "base/ids.hpp"
#include "http/api.hpp"
#include "http/body.hpp"
#include "http/json_scan.hpp"
#include "runtime/dlq.hpp"
#include "store/store.hpp"

namespace eventflow::http {

Reply Api::dlqItem(const Request& req, RouteId route, const std::string& path) {
  const bool replay_one = route == RouteId::dlq_item_replay;
  const std::string id = idFromPath(path, 5, replay_one ? 7 : 0);
  if (!isUuid(id)) return error(404, "not_found", "no event " + id);
  const bool get = req.method() == boost::beast::http::verb::get || req.method() == boost::beast::http::verb::head;
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
Reply Api::dlqPage(const Request& req) {
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
std::optional<Reply> Api::filterParameter(const std::string& key, const std::string& value, store::DeadFilter& filter) {
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
Reply Api::replayAll(const Request& req) {
  if (!hasMediaType(std::string(req[boost::beast::http::field::content_type]), "application/json"))
    return error(415, "unsupported_media_type", "Content-Type must be application/json");
  if (const auto max = s_.config->server.max_json_depth; !nestsWithin(req.body(), max)) {
    const auto deep = tooDeep(req.body(), max, max, "");
    return error(400, deep.code, deep.message, deep.field);
  }
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


}  // namespace eventflow::http
