// eventflow dlq list|show|replay|purge: the DLQ from the command line. It
// works on the store named by the config, through the runtime::Dlq the HTTP
// API uses. A replay must reach a queue the workers read: with queue.type
// redis it publishes there itself; the embedded queue lives inside the
// running host, so there the replay is asked of the host over HTTP.

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Exception.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <set>

#include <nlohmann/json.hpp>

#include "app/app.hpp"
#include "app/args.hpp"
#include "app/bootstrap.hpp"
#include "app/cli.hpp"
#include "base/log.hpp"
#include "config/config.hpp"
#include "pipeline/live_router.hpp"
#include "plugin/loader.hpp"
#include "queue/queue.hpp"
#include "runtime/dlq.hpp"
#include "store/store.hpp"

namespace eventflow::app {
namespace {

const char* const kHelp = R"(usage: eventflow dlq list [FILTERS] [--limit N] [--offset N] [--json] [--config FILE]
       eventflow dlq show ID [--json] [--config FILE]
       eventflow dlq replay ID [--dry-run] [--api-key KEY] [--config FILE]
       eventflow dlq replay (--all | FILTERS) [--limit N] [--dry-run] [--api-key KEY] [--config FILE]
       eventflow dlq purge (--all | FILTERS) [--dry-run] [--config FILE]

The dead-letter queue: events whose state is 'dead' (failed_events holds why).

list     dead events, oldest failure first: id, pipeline, type, error, when,
         attempts and replays; --limit 1..1000 (default 50), --offset N
show     one dead event with its error and the event document
replay   send dead events back through their pipeline (routed by event_type,
         as ingest routes): attempts start again at 0 and replay_count grows.
         ID replays one; FILTERS replay every dead event matching them (--all:
         every dead event), at most --limit of them, at dlq.replay_rate
         events/s (default 1000).
         With queue.type redis the events are published to Redis directly.
         With the embedded queue they can only reach the running host's
         memory, so the command asks that host (server.listen in the config)
         over its HTTP API; the host must be running. With server.api_keys
         configured it needs a key with the admin scope: --api-key KEY or
         $EVENTFLOW_API_KEY.
purge    discard every dead event matching FILTERS (--all: every dead event).
         Discarded events stay in raw_events with state 'discarded' and keep
         their failed_events row; they leave the DLQ listing.

--dry-run   replay and purge: print how many events would be affected, change nothing
--json      list and show: print JSON (list: {"items":[...],"total":N})

FILTERS (all optional, combined with AND):
  --pipeline NAME     --error-type TYPE (validation, rejected, transient, poison, ...)
  --since TIME        --until TIME      RFC 3339, on failed_at, both inclusive

--config defaults to $EVENTFLOW_CONFIG, else /etc/eventflow/eventflow.yaml.
exit codes: 0 ok, 1 failure (also: no such dead event), 2 usage error.
)";

struct Options {
  store::DeadFilter filter;
  std::uint64_t limit = 0;  // replay --all: at most this many (0: all)
  bool filtered = false;    // any of the FILTERS given
};

// Reads FILTERS and --limit/--offset; returns a usage message on a bad value.
std::string readOptions(Args& args, const std::string& sub, Options& o) {
  o.filter.pipeline = args.get("pipeline");
  o.filter.error_type = args.get("error-type");
  for (const char* key : {"since", "until"}) {
    if (!args.has(key)) continue;
    const auto t = parseRfc3339(args.get(key));
    if (!t) return std::string("--") + key + " must be an RFC 3339 time such as 2026-01-31T12:00:00Z, not '" + args.get(key) + "'";
    (std::string(key) == "since" ? o.filter.since : o.filter.until) = *t;
  }
  o.filtered = args.has("pipeline") || args.has("error-type") || args.has("since") || args.has("until");
  const auto limit = args.number("limit", sub == "list" ? 50 : 0);
  const auto offset = args.number("offset", 0);
  if (!limit || !offset) return args.error();
  if (sub == "list" && (*limit < 1 || *limit > static_cast<long long>(runtime::Dlq::kMaxListLimit)))
    return "--limit must be from 1 to " + std::to_string(runtime::Dlq::kMaxListLimit);
  if (sub == "replay" && args.has("limit") && *limit < 1) return "--limit must be at least 1";
  if (*offset < 0) return "--offset must not be negative";
  o.filter.limit = static_cast<std::size_t>(*limit);
  o.filter.offset = static_cast<std::size_t>(*offset);
  o.limit = static_cast<std::uint64_t>(*limit);
  return {};
}

std::string orDash(const std::string& s) { return s.empty() ? "-" : s; }

int list(runtime::Dlq& dlq, const Options& o, bool json) {
  auto page = dlq.list(o.filter);
  if (!page) return fail(page.error().message);
  if (json) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& e : page->items) items.push_back(runtime::toJson(e));
    std::cout << nlohmann::json{{"items", std::move(items)}, {"total", page->total}}.dump(2) << "\n";
    return 0;
  }
  if (!page->items.empty())
    std::cout << "event_id\tpipeline\tevent_type\terror_type\tfailed_at\tattempts\treplays\terror\n";
  for (const auto& e : page->items) {
    std::string message = e.error_message;
    if (message.size() > 80) message = message.substr(0, 77) + "...";
    std::cout << e.event_id << "\t" << e.pipeline << "\t" << e.event_type << "\t" << e.error_type << "\t" << e.failed_at
              << "\t" << e.attempts << "\t" << e.replay_count << "\t" << orDash(message) << "\n";
  }
  const std::size_t first = page->items.empty() ? 0 : o.filter.offset + 1;
  std::cout << page->items.size() << " shown (" << first << "-" << o.filter.offset + page->items.size() << " of "
            << page->total << " dead events)\n";
  return 0;
}

// Why `id` is not in the DLQ, as an exit code 1.
int notInDlq(store::Store& store, const std::string& id) {
  auto journey = store.journey(id);
  if (!journey) return fail(journey.error().message);
  if (!*journey) return fail("no event " + id);
  return fail("event " + id + " is " + store::toString((*journey)->state) + ", not in the DLQ");
}

int show(runtime::Dlq& dlq, store::Store& store, const std::string& id, bool json) {
  auto dead = dlq.show(id);
  if (!dead) return fail(dead.error().message);
  if (!*dead) return notInDlq(store, id);
  const auto j = runtime::toJson(**dead);
  if (json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  const auto& e = **dead;
  std::cout << "event_id         " << e.event_id << "\n"
            << "pipeline         " << e.pipeline << "\n"
            << "event_type       " << e.event_type << "\n"
            << "error_type       " << e.error_type << "\n"
            << "error            " << orDash(e.error_message) << "\n"
            << "stage            " << orDash(e.stage) << "\n"
            << "plugin           " << orDash(e.plugin) << "\n"
            << "attempts         " << e.attempts << "\n"
            << "received_at      " << e.received_at << "\n"
            << "first_failed_at  " << e.first_failed_at << "\n"
            << "failed_at        " << e.failed_at << "\n"
            << "replay_count     " << e.replay_count << "\n"
            << "correlation_id   " << orDash(e.correlation_id) << "\n\n"
            << "event:\n"
            << j["event"].dump(2) << "\n";
  return 0;
}

std::string filterSuffix(const Options& o) {
  std::string s;
  if (!o.filter.pipeline.empty()) s += " pipeline=" + o.filter.pipeline;
  if (!o.filter.error_type.empty()) s += " error_type=" + o.filter.error_type;
  if (o.filter.since) s += " since=" + formatRfc3339(*o.filter.since);
  if (o.filter.until) s += " until=" + formatRfc3339(*o.filter.until);
  return s.empty() ? "" : " (" + s.substr(1) + ")";
}

// Embedded queue: the running host replays. Returns the exit code.
int replayOverHttp(const config::HostConfig& cfg, const std::string& key, const std::string& path,
                   const nlohmann::json& body, std::chrono::seconds timeout) {
  const std::string& listen = cfg.server.listen;
  std::string host = listen.substr(0, listen.rfind(':'));
  const std::string port = listen.substr(listen.rfind(':') + 1);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  const std::string where = host + ":" + port;
  if (port == "0") return fail("server.listen is " + listen + ": the running host's port is not known");
  try {
    Poco::Net::HTTPClientSession session(host, static_cast<Poco::UInt16>(std::stoi(port)));
    session.setTimeout(Poco::Timespan(10, 0), Poco::Timespan(10, 0), Poco::Timespan(timeout.count(), 0));
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_POST, path, Poco::Net::HTTPMessage::HTTP_1_1);
    const std::string text = body.dump();
    req.setContentType("application/json");
    req.setContentLength(static_cast<std::streamsize>(text.size()));
    if (!key.empty()) req.set("Authorization", "Bearer " + key);
    session.sendRequest(req) << text;
    Poco::Net::HTTPResponse res;
    const std::string answer(std::istreambuf_iterator<char>(session.receiveResponse(res)), {});
    const auto j = nlohmann::json::parse(answer, nullptr, false);
    const int status = res.getStatus();
    if (status == 202 && j.contains("replayed")) {
      std::cout << "replayed " << j["replayed"].get<std::uint64_t>() << " events";
      if (j.value("skipped", std::uint64_t{0}) > 0) std::cout << ", skipped " << j["skipped"].get<std::uint64_t>();
      std::cout << (j.value("interrupted", false) ? " (interrupted: the host is shutting down)" : "") << "\n";
      return j.value("interrupted", false) ? 1 : 0;
    }
    if (status == 202) {
      std::cout << "replayed " << j.value("event_id", "") << "\n";
      return 0;
    }
    std::string message = j.is_object() && j.contains("error") ? j["error"].value("message", answer) : answer;
    if (status == 401 || status == 403)
      message += " (pass an admin key with --api-key KEY or $EVENTFLOW_API_KEY)";
    return fail("the host at " + where + " answered " + std::to_string(status) + ": " + message);
  } catch (const Poco::Exception& e) {
    return fail("cannot reach the running host at " + where + " (server.listen in " + cfg.file + "): " +
                e.displayText() +
                "\nWith the embedded queue a replay goes through the running host; start it (eventflow serve) and "
                "try again.");
  }
}

int replay(runtime::Dlq& dlq, store::Store& store, const config::HostConfig& cfg, const Options& o,
           const std::string& id, bool dry_run, const std::string& key) {
  if (dry_run) {
    if (!id.empty()) {
      auto dead = dlq.show(id);
      if (!dead) return fail(dead.error().message);
      if (!*dead) return notInDlq(store, id);
      std::cout << "would replay 1 event (" << id << ")\n";
      return 0;
    }
    auto n = dlq.count(o.filter, o.limit);
    if (!n) return fail(n.error().message);
    std::cout << "would replay " << *n << " events" << filterSuffix(o) << "\n";
    return 0;
  }
  if (cfg.queue.type != "redis") {
    if (!id.empty()) return replayOverHttp(cfg, key, "/dlq/" + id + "/replay", nlohmann::json::object(), std::chrono::seconds(60));
    nlohmann::json body = nlohmann::json::object();
    if (!o.filter.pipeline.empty()) body["pipeline"] = o.filter.pipeline;
    if (!o.filter.error_type.empty()) body["error_type"] = o.filter.error_type;
    if (o.filter.since) body["since"] = formatRfc3339(*o.filter.since);
    if (o.filter.until) body["until"] = formatRfc3339(*o.filter.until);
    if (o.limit) body["limit"] = o.limit;
    // The host answers once the rate-limited replay is done: wait long enough for it.
    auto n = dlq.count(o.filter, o.limit);
    if (!n) return fail(n.error().message);
    const auto expected = std::chrono::seconds(*n / std::max(1u, cfg.dlq.replay_rate));
    return replayOverHttp(cfg, key, "/dlq/replay", body, std::chrono::seconds(120) + 2 * expected);
  }

  // The pipelines as serve builds them, for routing replayed events by type.
  auto loaded = loadPipelines(cfg);
  if (!loaded) return invalidConfiguration(loaded.error().message);
  pipeline::LiveRouter router(loaded->pipelines);
  std::vector<std::string> names;
  for (const auto& p : loaded->pipelines) names.push_back(p->name());
  queue::RedisOptions options{cfg.queue.url, cfg.queue.stream_prefix, cfg.queue.claim_idle, 1};
  auto queue = queue::makeRedisQueue(options, names);
  if (auto ping = queue->ping(); !ping) return fail("redis at " + cfg.queue.url + ": " + ping.error().message);
  runtime::Dlq sender(store, queue.get(), &router, cfg.dlq.replay_rate, cfg.queue.max_depth);
  if (!id.empty()) {
    auto answer = sender.replay(id);
    if (!answer) return fail(answer.error().message);
    switch (answer->status) {
      case runtime::DlqStatus::done:
        std::cout << "replayed " << id << "\n";
        return 0;
      case runtime::DlqStatus::not_found:
        return fail("no event " + id);
      case runtime::DlqStatus::not_dead:
        return fail("event " + id + " is " + answer->state + ", not in the DLQ");
      case runtime::DlqStatus::no_pipeline:
        return fail("no pipeline takes event " + id + "'s event_type any more; it stays in the DLQ");
    }
    return 1;
  }
  auto done = sender.replayAll(o.filter, o.limit);
  if (!done) return fail(done.error().message);
  std::cout << "replayed " << done->replayed << " events" << filterSuffix(o);
  if (done->skipped) std::cout << ", skipped " << done->skipped << " (left the DLQ meanwhile, or no pipeline takes them)";
  std::cout << "\n";
  return 0;
}

int purge(runtime::Dlq& dlq, const Options& o, bool dry_run) {
  if (dry_run) {
    auto n = dlq.count(o.filter);
    if (!n) return fail(n.error().message);
    std::cout << "would discard " << *n << " events" << filterSuffix(o) << "\n";
    return 0;
  }
  auto n = dlq.purge(o.filter);
  if (!n) return fail(n.error().message);
  std::cout << "discarded " << *n << " events" << filterSuffix(o) << "\n";
  return 0;
}

}  // namespace

int dlq(int argc, char** argv) {
  Args args(argc, argv, 2, {"json", "help", "all", "dry-run"});
  const std::set<std::string> filters{"pipeline", "error-type", "since", "until"};
  const std::set<std::string> known{"config", "json", "help", "all", "dry-run", "limit", "offset", "api-key",
                                    "pipeline", "error-type", "since", "until"};
  if (auto extra = args.unknown(known); !extra.empty()) return usageError(unknownOption(extra.front(), known), kHelp);
  if (!args.ok()) return usageError(args.error(), kHelp);
  if (args.has("help")) {
    std::cout << kHelp;
    return 0;
  }
  const auto& words = args.positional();
  const std::string sub = words.empty() ? "" : words.front();
  if (sub.empty()) return usageError("dlq needs list, show, replay or purge", kHelp);
  if (sub != "list" && sub != "show" && sub != "replay" && sub != "purge")
    return usageError(unknownWord("dlq command", sub, {"list", "show", "replay", "purge"}), kHelp);

  // Which options each command takes.
  std::set<std::string> allowed{"config", "help"};
  if (sub == "list") allowed.insert({"json", "limit", "offset", "pipeline", "error-type", "since", "until"});
  if (sub == "show") allowed.insert("json");
  if (sub == "replay") allowed.insert({"all", "dry-run", "limit", "api-key", "pipeline", "error-type", "since", "until"});
  if (sub == "purge") allowed.insert({"all", "dry-run", "pipeline", "error-type", "since", "until"});
  if (auto extra = args.unknown(allowed); !extra.empty())
    return usageError("--" + extra.front() + " does not go with dlq " + sub, kHelp);

  std::string id;
  if (sub == "show") {
    if (words.size() != 2) return usageError("dlq show needs one event id", kHelp);
    id = words[1];
  } else if (sub == "replay") {
    if (words.size() > 2) return usageError("dlq replay takes one event id, or FILTERS, or --all", kHelp);
    if (words.size() == 2) id = words[1];
    const bool filtered = std::any_of(filters.begin(), filters.end(), [&](const auto& f) { return args.has(f); });
    if (!id.empty() && args.has("all")) return usageError("dlq replay takes an event id or --all, not both", kHelp);
    // Like purge: FILTERS alone choose the events; --all is the explicit "every one".
    if (id.empty() && !args.has("all") && !filtered)
      return usageError("dlq replay needs an event id, FILTERS, or --all for every dead event", kHelp);
    if (!id.empty() && (args.has("limit") || filtered))
      return usageError("filters and --limit go with dlq replay FILTERS or --all, not with an event id", kHelp);
  } else if (words.size() != 1) {
    return usageError("dlq " + sub + " takes no arguments", kHelp);
  }

  Options o;
  if (auto bad = readOptions(args, sub, o); !bad.empty()) return usageError(bad, kHelp);
  if (sub == "purge" && !o.filtered && !args.has("all") && !args.has("dry-run"))
    return usageError("dlq purge discards every dead event matching the filters; give filters, or --all for all of them", kHelp);

  auto cfg = config::loadHostConfig(configPath(args));
  if (!cfg) return fail(cfg.error().message);
  // The summary lines are the output; the host's info logs would only repeat them.
  log::setup("warn", log::Format::text);
  auto store = store::openStore(cfg->store.url);
  if (!store) return fail(store.error().message);
  if (auto migrated = (*store)->migrate(); !migrated) return fail(migrated.error().message);
  runtime::Dlq dlq(**store, nullptr, nullptr, cfg->dlq.replay_rate, cfg->queue.max_depth, cfg->dlq.max_page_bytes);

  if (sub == "list") return list(dlq, o, args.has("json"));
  if (sub == "show") return show(dlq, **store, id, args.has("json"));
  if (sub == "purge") return purge(dlq, o, args.has("dry-run"));
  const auto key = apiKey(args, true);
  if (!key) return usageError(key.error().message, kHelp);
  return replay(dlq, **store, *cfg, o, id, args.has("dry-run"), *key);
}

}  // namespace eventflow::app
