#include "app/app.hpp"

#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "app/args.hpp"
#include "app/bootstrap.hpp"
#include "app/cli.hpp"
#include "app/reload.hpp"
#include "app/service_notify.hpp"
#include "base/ids.hpp"
#include "base/log.hpp"
#include "config/config.hpp"
#include "http/server.hpp"
#include "isolation/runner.hpp"
#include "metrics/metrics.hpp"
#include "pipeline/pipeline.hpp"
#include "plugin/loader.hpp"
#include "queue/queue.hpp"
#include "runtime/dlq.hpp"
#include "runtime/ingest.hpp"
#include "runtime/recover.hpp"
#include "runtime/relay.hpp"
#include "runtime/retention.hpp"
#include "runtime/workers.hpp"
#include "store/group_commit.hpp"
#include "store/store.hpp"

#ifndef EVENTFLOW_VERSION
#define EVENTFLOW_VERSION "0.0.0"
#endif

namespace eventflow::app {
namespace {

constexpr const char* kVersion = EVENTFLOW_VERSION;

const char* const kUsage = R"(usage: eventflow <command> [options]

commands:
  serve [--config FILE] [--role R]     run the host: all (default), api (HTTP ingest + relay) or worker
  validate [--config FILE]             check the host config, every pipeline and plugin config
  test [--config FILE] [PATH ...]      run pipeline fixtures through validators and enrichers (test --help)
  dlq list|show|replay|purge [...]     the dead-letter queue: list, inspect, replay, discard (dlq --help)
  reload [--config FILE] [--url URL]   ask the running host to re-read its config and pipelines (reload --help)
  plugins list [--config FILE] [--json]  list the plugins found in plugins.paths
  plugins show NAME [--config FILE]    a plugin's description and config schema
  plugin new NAME --kind K [--dir D]   write a new plugin project (K: validator, enricher, sink)
  keys new --scope S [--name N]        a new API key and its server.api_keys line (S: ingest, admin, metrics)
  produce --url URL [...]              load generator and benchmark (produce --help)
  version                              print the version

--config defaults to $EVENTFLOW_CONFIG, else /etc/eventflow/eventflow.yaml.
exit codes: 0 ok, 1 failure, 2 usage error.
)";

int usage(const std::string& message) { return usageError(message, kUsage); }

bool checkArgs(const Args& args, const std::set<std::string>& known, int& code) {
  if (auto extra = args.unknown(known); !extra.empty()) {
    code = usage(unknownOption(extra.front(), known));
    return false;
  }
  if (!args.ok()) {
    code = usage(args.error());
    return false;
  }
  if (auto extra = args.extraWords(0); !extra.empty()) {
    code = usage(extra);
    return false;
  }
  return true;
}

// Creates and destroys one instance of every stage, as `serve` would at start,
// so a constructor's refusal (a schema file that is not JSON, a bad regex, an
// unset ${env:NAME}) is found now. Sinks see setting("validate_only") == "1":
// they check their config and open nothing, so nothing is written and no
// network is used. One stage at a time, so every bad stage is reported.
std::string instantiateAll(const Loaded& loaded) {
  pipeline::Settings settings = pluginSettings(loaded.config, kVersion);
  settings["validate_only"] = "1";
  std::string errors;
  for (const auto& p : loaded.pipelines) {
    for (std::size_t i = 0; i < p->spec().stages.size(); ++i) {
      config::PipelineSpec one = p->spec();
      one.stages = {p->spec().stages[i]};
      const std::string where = one.stages.front().where;
      auto built = pipeline::Pipeline::build(std::move(one), loaded.registry);
      if (!built) continue;  // load() reported it already
      auto runner = pipeline::Runner::create(std::move(*built), settings, nullptr);
      if (runner) continue;
      std::string message = runner.error().message;
      const std::string stage = ": pipeline '" + p->name() + "', stage " + std::to_string(i + 1);
      if (message.rfind(where + ": ", 0) == 0) message.insert(where.size(), stage);
      errors += (errors.empty() ? "" : "\n") + message;
    }
  }
  return errors;
}

int validate(int argc, char** argv) {
  Args args(argc, argv, 2, {"help"});
  int code = 0;
  if (!checkArgs(args, {"config", "help"}, code)) return code;
  if (args.has("help")) {
    std::cout << "usage: eventflow validate [--config FILE]\n\nChecks the host config, every pipeline file, that every "
                 "named plugin exists and loads, that each stage's config satisfies its plugin's JSON Schema, and "
                 "creates (then destroys) one instance of every stage, as serve does at start. Sinks open no "
                 "connection and write nothing while validated.\n";
    return 0;
  }
  auto loaded = loadAll(configPath(args));
  if (!loaded) return invalidConfiguration(loaded.error().message);
  if (auto refused = instantiateAll(*loaded); !refused.empty()) return invalidConfiguration(refused);
  std::cout << "ok: " << loaded->config.file << ", " << loaded->pipelines.size() << " pipelines, "
            << loaded->registry.plugins().size() << " plugins\n";
  for (const auto& p : loaded->pipelines)
    std::cout << "  pipeline " << p->name() << " (" << p->spec().file << "): " << p->stages().size() << " stages\n";
  return 0;
}

bool isLoopback(const std::string& listen) {
  const std::string host = listen.substr(0, listen.rfind(':'));
  return host == "127.0.0.1" || host == "localhost" || host == "[::1]" || host == "::1";
}

int serve(int argc, char** argv) {
  Args args(argc, argv, 2, {"help"});
  int code = 0;
  if (!checkArgs(args, {"config", "role", "help"}, code)) return code;
  if (args.has("help")) {
    std::cout << "usage: eventflow serve [--config FILE] [--role all|api|worker]\n\nRuns the host. all: HTTP ingest, "
                 "workers and recovery; api: HTTP ingest and the relay; worker: the pipelines' workers (HTTP serves only "
                 "/health and /metrics). api and worker need queue.type redis. SIGTERM or SIGINT drains and stops within "
                 "shutdown_timeout.\n";
    return 0;
  }
  const std::string role = args.get("role", "all");
  if (role != "all" && role != "api" && role != "worker") return usage("--role must be all, api or worker, not " + role);
  const bool ingest = role != "worker";
  const bool work = role != "api";

  // Signals are taken by sigwait below, never by a random thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto loaded = loadAll(configPath(args));
  if (!loaded) return invalidConfiguration(loaded.error().message);
  auto& cfg = loaded->config;
  log::setup(cfg.logging.level, cfg.logging.format == "text" ? log::Format::text : log::Format::json);
  if (cfg.queue.type == "embedded" && role != "all")
    return fail("--role " + role + " needs a shared queue (queue.type: redis); the embedded queue lives in one process");
  if (cfg.server.api_keys.empty() && !isLoopback(cfg.server.listen)) {
    const std::string port = cfg.server.listen.substr(cfg.server.listen.rfind(':') + 1);
    log::warn("no api_keys configured: binding to loopback only", {{"requested", cfg.server.listen}});
    cfg.server.listen = "127.0.0.1:" + port;
  } else if (cfg.server.api_keys.empty()) {
    log::warn("no api_keys configured: every client on this machine may post and administer");
  }

  auto store = store::openStore(cfg.store.url);
  if (!store) return fail(store.error().message);
  if (auto migrated = (*store)->migrate(); !migrated) return fail(migrated.error().message);

  metrics::Metrics metrics(kVersion, cfg.metrics.max_label_values);
  pipeline::LiveRouter router(Reloader::firstGeneration(*loaded));
  std::vector<std::string> names;
  for (const auto& p : loaded->pipelines) {
    names.push_back(p->name());
    std::vector<std::pair<std::string, std::string>> stages;
    for (const auto& st : p->stages()) stages.emplace_back(st.label, st.plugin->name);
    metrics.declarePipeline(p->name(), p->spec().event_types, stages);
  }
  std::unique_ptr<queue::Queue> queue_owner;
  if (cfg.queue.type == "redis") {
    queue::RedisOptions options{
        .url = cfg.queue.url, .prefix = cfg.queue.stream_prefix, .claim_idle = cfg.queue.claim_idle, .connections = 16};
    queue_owner = queue::makeRedisQueue(options, names);
  } else {
    queue_owner = std::make_unique<queue::EmbeddedQueue>(names);
  }
  queue::Queue& queue = *queue_owner;
  store::GroupCommitter committer(**store);
  committer.timeCommits([&metrics](std::chrono::steady_clock::duration took) {
    metrics.storeCommitDuration().Observe(std::chrono::duration<double>(took).count());
  });

  auto recovered = runtime::recover(**store, queue, router.current()->router, committer, {.store_url = cfg.store.url, .config_file = cfg.file});
  if (!recovered) return fail(recovered.error().message);
  const std::string in_hand_dir = recovered->in_hand_dir;

  const pipeline::Settings settings = pluginSettings(cfg, kVersion);
  runtime::WorkerPool workers(router, queue, committer, metrics, settings);
  if (!in_hand_dir.empty()) workers.trackInHand(in_hand_dir);
  if (work) {
    if (auto started = workers.start(); !started) return fail("cannot start workers:\n" + started.error().message);
  }
  runtime::Relay relay(**store, queue, router, metrics, cfg.republish_after);
  if (ingest && queue.kind() != "embedded") relay.start();
  // Every role prunes: passes from several processes skip each other's rows.
  runtime::Retention retention(**store, router, metrics);
  retention.start();

  const config::QueueBounds bounds = config::queueBounds(cfg.queue);
  runtime::Ingestor ingestor(router, committer, queue, metrics, bounds.max_depth, bounds.max_bytes,
                             {.naive_timestamps_utc = cfg.ingest.naive_timestamps == "utc"});
  runtime::Dlq dlq(**store, &queue, &router, cfg.dlq.replay_rate, bounds.max_depth, cfg.dlq.max_page_bytes,
                   &metrics, bounds.max_bytes);
  Reloader reloader({.config_path = cfg.file,
                     .version = kVersion,
                     .live = &router,
                     .queue = &queue,
                     .metrics = &metrics,
                     .workers = work ? &workers : nullptr,
                     .settings = settings},
                    *loaded);
  std::atomic<bool> ready{false};
  http::Server server({.config = &cfg,
                       .router = &router,
                       .store = store->get(),
                       .queue = &queue,
                       .metrics = &metrics,
                       .ingestor = ingest ? &ingestor : nullptr,
                       .version = kVersion,
                       .ready = &ready,
                       .dlq = ingest ? &dlq : nullptr,
                       .reload = [&reloader] { return reloader.reload("http"); }});
  if (auto started = server.start(); !started) {
    workers.stop(std::chrono::steady_clock::now());
    return fail(started.error().message);
  }
  ready = true;
  const std::string host = cfg.server.listen.substr(0, cfg.server.listen.rfind(':'));
  const std::string listening = host + ":" + std::to_string(server.port());
  // Store migrated, plugins loaded, workers running, port bound: what a unit
  // ordered After=eventflow.service may rely on.
  ServiceNotifier service;
  service.ready("serving on " + listening + ", role " + role);
  log::info("eventflow started", {{"listen", listening},
                                  {"role", role},
                                  {"version", kVersion},
                                  {"store", (*store)->backend()},
                                  {"queue", cfg.queue.type},
                                  {"pipelines", std::to_string(names.size())}});

  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      // On this thread: a SIGTERM arriving meanwhile waits for the reload,
      // which reads files and loads plugins but never waits on events.
      service.reloading();
      (void)reloader.reload("sighup");
      service.ready("reloaded");
      continue;
    }
    log::info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    service.stopping();
    break;
  }
  // shutdown_timeout is a promise to the supervisor (systemd's
  // TimeoutStopSec, Kubernetes' grace period), which kills the process past
  // it. It is split explicitly, T being shutdown_timeout:
  //   HTTP drain     up to min(T/5, 5 s): requests in progress answer (they
  //                  wait on a group commit, normally milliseconds); workers
  //                  keep working meanwhile;
  //   worker drain   until T - min(T/5, 2 s): batches are started only if
  //                  they should finish by then, retries on their timer are
  //                  handed back;
  //   queue close    and final commit share the last min(T/5, 2 s).
  // Should a plugin hang past all that, the watchdog ends the process at T:
  // what was in hand stays unfinished in the store, as after a crash.
  using Clock = std::chrono::steady_clock;
  const auto signalled = Clock::now();
  const auto deadline = signalled + cfg.shutdown_timeout;
  const auto http_share = std::min<Clock::duration>(cfg.shutdown_timeout / 5, std::chrono::seconds(5));
  const auto commit_share = std::min<Clock::duration>(cfg.shutdown_timeout / 5, std::chrono::seconds(2));
  std::mutex watchdog_mutex;
  std::condition_variable watchdog_cv;
  bool stopped = false;
  std::thread watchdog([&] {
    std::unique_lock lock(watchdog_mutex);
    if (watchdog_cv.wait_until(lock, deadline, [&] { return stopped; })) return;
    log::error("shutdown_timeout reached before a clean stop; exiting now, unfinished events stay in the store",
               {{"shutdown_timeout_ms", std::to_string(cfg.shutdown_timeout.count())}});
    spdlog::default_logger()->flush();
    std::_Exit(1);
  });
  auto mark = signalled;
  auto seconds = [](Clock::duration d) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f", std::chrono::duration<double>(d).count());
    return std::string(text);
  };
  auto lap = [&] {
    const auto now = Clock::now();
    const auto took = now - mark;
    mark = now;
    return took;
  };
  ready = false;
  reloader.stop();  // a reload in progress ends first; later ones answer 503
  dlq.stop();  // a bulk replay in progress answers with what it did so far
  server.stop(std::chrono::duration_cast<std::chrono::milliseconds>(http_share));
  ingestor.stop();  // publishes what the last group commits accepted, before the workers drain
  relay.stop();
  retention.stop();  // between two batches: each is its own short transaction
  const auto http_drain = lap();
  workers.stop(deadline - commit_share);
  const auto worker_drain = lap();
  queue.close();
  const auto queue_close = lap();
  committer.stop();
  const auto final_commit = lap();
  // A clean stop leaves nothing in hand to blame at the next start.
  if (!in_hand_dir.empty()) (void)runtime::takeInHand(in_hand_dir);
  log::info("eventflow stopped", {{"http_drain_s", seconds(http_drain)},
                                  {"worker_drain_s", seconds(worker_drain)},
                                  {"queue_close_s", seconds(queue_close)},
                                  {"final_commit_s", seconds(final_commit)},
                                  {"total_s", seconds(Clock::now() - signalled)}});
  {
    std::lock_guard lock(watchdog_mutex);
    stopped = true;
  }
  watchdog_cv.notify_all();
  watchdog.join();
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  if (argc < 2) return usage("a command is required");
  const std::string command = argv[1];
  try {
    if (command == "serve") return serve(argc, argv);
    if (command == "validate") return validate(argc, argv);
    if (command == "plugins") return plugins(argc, argv);
    if (command == "dlq") return dlq(argc, argv);
    if (command == "plugin") return pluginCommand(argc, argv);
    if (command == "produce") return produce(argc, argv);
    if (command == "test") return testCommand(argc, argv);
    if (command == "keys") return keys(argc, argv);
    if (command == "reload") return reloadCommand(argc, argv);
    if (command == "plugin-runner") return isolation::runnerMain(argc, argv);  // hidden: the child of an isolated stage
    if (command == "version" || command == "--version") {
      std::cout << "eventflow " << kVersion << " (plugin ABI " << EVENTFLOW_PLUGIN_ABI_MAJOR << "."
                << EVENTFLOW_PLUGIN_ABI_MINOR << ")\n";
      return 0;
    }
    if (command == "help" || command == "--help" || command == "-h") {
      std::cout << kUsage;
      return 0;
    }
  } catch (const std::exception& e) {
    return fail(std::string("fatal: ") + e.what());
  }
  return usage(unknownWord("command", command,
                           {"serve", "validate", "test", "dlq", "plugins", "plugin", "keys", "produce", "reload", "version", "help"}));
}

}  // namespace eventflow::app
