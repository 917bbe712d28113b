#pragma once
// DLQ operations (DESIGN §3): list, show, replay, discard and purge dead
// events. The HTTP handlers and `eventflow dlq` both go through here, so a
// replay is the same everywhere: rows flipped in the store first, then the
// events published to their pipeline's queue, routed by type as ingest does.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/expected.hpp"
#include "store/store.hpp"

namespace eventflow::queue { class Queue; }
namespace eventflow::pipeline { class LiveRouter; }
namespace eventflow::metrics { class Metrics; }

namespace eventflow::runtime {

/// What became of one event asked for by id.
enum class DlqStatus {
  done,         // replayed or discarded
  not_found,    // no such event
  not_dead,     // recorded, but not in the DLQ now (say which state in `state`)
  no_pipeline,  // replay: no pipeline takes its event_type any more
};

struct DlqAnswer {
  DlqStatus status = DlqStatus::done;
  std::string state;  // the event's state when not_dead
};

struct BulkReplay {
  std::uint64_t replayed = 0;
  std::uint64_t skipped = 0;  // left the DLQ meanwhile, or no pipeline takes their type
  bool interrupted = false;   // stop() was called (shutdown) before the end
  bool busy = false;          // another bulk replay was running: nothing was done
};

class Dlq {
 public:
  /// Replay needs `queue` and `router`; listing, discarding and purging do
  /// not (`eventflow dlq list` loads no plugins). `max_depth` and
  /// `max_bytes` pause a bulk replay while a pipeline's queue is that deep or
  /// holds that much (ingest's bounds, config::queueBounds). With
  /// `metrics`, replays and discards are counted by the pipeline the event
  /// died in (eventflow_dlq_replayed_total, eventflow_dlq_discarded_total).
  Dlq(store::Store& store, queue::Queue* queue, const pipeline::LiveRouter* router, unsigned replay_rate = 1000,
      std::size_t max_depth = 100000, std::size_t max_page_bytes = 8 << 20, metrics::Metrics* metrics = nullptr,
      std::uint64_t max_bytes = std::numeric_limits<std::uint64_t>::max());

  static constexpr std::size_t kMaxListLimit = 1000;
  static constexpr std::size_t kReplayPage = 500;

  /// At most filter.limit dead events and, past the first, no more than
  /// max_page_bytes of their documents and messages: fewer items than asked
  /// for while offset + items < total means the page was cut short.
  Expected<store::DeadPage> list(const store::DeadFilter& filter);
  Expected<std::optional<store::DeadEvent>> show(const std::string& id) { return store_.getDead(id); }

  Expected<DlqAnswer> replay(const std::string& id);
  /// How many dead events a bulk replay (or purge) of `filter` would take,
  /// at most `limit` (0: no limit).
  Expected<std::uint64_t> count(const store::DeadFilter& filter, std::uint64_t limit = 0);
  /// Replays every dead event matching `filter` (at most `limit`, 0: all) in
  /// pages of kReplayPage, at no more than replay_rate events per second.
  /// Only events dead when it starts are taken: one that fails again while
  /// it runs stays in the DLQ. One runs at a time, so replay_rate is one
  /// budget for the process: while one runs, another answers `busy`.
  Expected<BulkReplay> replayAll(store::DeadFilter filter, std::uint64_t limit = 0);
  Expected<DlqAnswer> discard(const std::string& id);
  Expected<std::uint64_t> purge(const store::DeadFilter& filter);

  /// Ends a running bulk replay at its next page (shutdown).
  void stop();

 private:
  Expected<DlqAnswer> notDead(const std::string& id);
  Expected<std::size_t> publish(std::vector<store::PendingEvent> events);
  void countReplayed(const std::vector<store::PendingEvent>& events);
  bool waitFor(std::chrono::steady_clock::time_point until);

  store::Store& store_;
  queue::Queue* queue_;
  const pipeline::LiveRouter* router_;
  unsigned replay_rate_;
  std::size_t max_depth_;
  std::uint64_t max_bytes_;
  std::size_t max_page_bytes_;
  metrics::Metrics* metrics_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool bulk_running_ = false;  // under mutex_
};

/// A dead event as the API and `eventflow dlq --json` show it.
nlohmann::json toJson(const store::DeadEvent& e);

}  // namespace eventflow::runtime
