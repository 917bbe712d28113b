#pragma once
// The store is the source of truth (DESIGN §1, §6): raw_events is the audit
// log and the outbox, failed_events the DLQ. Backends sit behind Store.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <eventflow/time.hpp>

#include "base/expected.hpp"
#include "store/state.hpp"

namespace eventflow::store {

/// One accepted event as ingest records it.
struct RawEvent {
  std::string id{};
  std::string type{};
  std::string pipeline{};
  std::string payload{};  // the event document as stored (defaults filled in)
  std::string sha256{};   // of the document as the client sent it
  std::string correlation_id{};
  SystemTime received_at{};
};

enum class InsertStatus { inserted, duplicate, conflict };

/// A state change the workers report.
struct Transition {
  enum class Kind { done, dead, retrying } kind = Kind::done;
  std::string id{};
  unsigned attempts = 0;
  std::string error_type{};
  std::string error_message{};
  std::string stage{};
  std::string plugin{};
  /// A terminal change: microseconds from the event's first delivery to this
  /// outcome (the summary's avg_processing_time_ms); -1 when not known.
  std::int64_t processing_us = -1;
};

/// A recorded event that is not terminal yet.
struct PendingEvent {
  std::string id{};
  std::string type{};
  std::string pipeline{};
  std::string payload{};
  std::string correlation_id{};
  SystemTime received_at{};
  unsigned attempts = 0;
};

struct StateCounts {
  std::uint64_t received = 0;  // everything recorded
  std::uint64_t processed = 0;
  std::uint64_t dead = 0;
  std::uint64_t discarded = 0;
  std::uint64_t in_flight = 0;
  /// Events that turned done or dead within kProcessingWindow, and the sum of
  /// their processing times.
  std::uint64_t finished_recently = 0;
  double processing_ms_sum = 0;

  StateCounts& operator+=(const StateCounts& o) {
    received += o.received;
    processed += o.processed;
    dead += o.dead;
    discarded += o.discarded;
    in_flight += o.in_flight;
    finished_recently += o.finished_recently;
    processing_ms_sum += o.processing_ms_sum;
    return *this;
  }
};

/// The window avg_processing_time_ms is taken over.
inline constexpr std::chrono::minutes kProcessingWindow{5};

/// Which dead events a DLQ operation looks at. Times compare with
/// failed_at at millisecond precision; both ends are inclusive.
struct DeadFilter {
  std::string pipeline;    // empty: every pipeline
  std::string error_type;  // empty: every error type
  std::optional<SystemTime> since;
  std::optional<SystemTime> until;
  std::size_t limit = 50;  // listDead only; 0 counts without listing
  std::size_t offset = 0;  // listDead only
};

/// One event in the DLQ: its failed_events row, the raw event's type and
/// correlation id. Times are RFC 3339 (UTC, milliseconds).
struct DeadEvent {
  std::string event_id{};
  std::string pipeline{};
  std::string event_type{};
  std::string error_type{};
  std::string error_message{};
  std::string stage{};
  std::string plugin{};
  unsigned attempts = 0;
  std::string first_failed_at{};
  std::string failed_at{};
  unsigned replay_count = 0;
  std::string payload{};  // the event document (JSON text)
  std::string correlation_id{};
  std::string received_at{};
};

struct DeadPage {
  std::vector<DeadEvent> items;
  std::uint64_t total = 0;  // every match, whatever limit and offset
};

/// An event's journey: its raw_events row, its failed_events row if it ever
/// died, and its processed_events row if the sink table is the store's own.
/// Times are RFC 3339 text (UTC, milliseconds) as the engine keeps them.
struct Journey {
  std::string event_id{};
  std::string event_type{};
  std::string pipeline{};
  State state = State::received;
  unsigned attempts = 0;
  std::string received_at{};
  std::string updated_at{};
  std::optional<std::string> last_error{};
  std::optional<std::string> correlation_id{};
  std::string payload{};  // the event document (JSON text)

  struct DeadLetter {
    std::optional<std::string> error_type{};
    std::optional<std::string> error_message{};
    std::optional<std::string> stage{};
    std::optional<std::string> plugin{};
    unsigned attempts = 0;
    std::string first_failed_at{};
    std::string failed_at{};
    unsigned replay_count = 0;
  };
  std::optional<DeadLetter> dead_letter{};

  struct Processed {
    std::string processed_at{};
    std::optional<std::string> enriched_data{};  // JSON text
  };
  std::optional<Processed> processed{};
};

struct ReplayResult {
  std::vector<PendingEvent> replayed;  // now queued again: publish these
  std::vector<std::string> skipped;    // not dead (unknown, already replayed, discarded, done)
};

class Store {
 public:
  virtual ~Store() = default;
  virtual std::string backend() const = 0;
  /// How many commit() calls may run at once: more lets one group commit
  /// fill while another waits for its fsync.
  virtual std::size_t writers() const { return 1; }
  /// Applies pending schema migrations, in order, each once.
  virtual Expected<void> migrate() = 0;
  /// Records new events and applies transitions in one transaction; returns
  /// one status per insert. Nothing is committed on error. What it commits
  /// is durable once sync() returns after it.
  virtual Expected<std::vector<InsertStatus>> commit(std::span<const RawEvent> inserts,
                                                     std::span<const Transition> transitions) = 0;
  /// Makes every commit() that returned before this call durable. The group
  /// committer calls it from another thread than commit(), so the next
  /// transaction is built while this one's fsync runs. A store whose commits
  /// are durable when they return (PostgreSQL) has nothing to do.
  virtual Expected<void> sync() { return {}; }
  /// False when commit() leaves the fsync to sync(). The group committer
  /// then answers from a thread of its own after sync(); otherwise each
  /// committer answers right after its commit, as a thread hop would cost
  /// and save nothing.
  virtual bool durableOnCommit() const { return true; }
  /// Every recorded event that is not yet done, dead or discarded.
  virtual Expected<std::vector<PendingEvent>> unfinished() = 0;
  /// Counts one more delivery of each event, durably; returns the new counts.
  /// The embedded queue's poison detection: Redis counts its own deliveries.
  virtual Expected<std::map<std::string, unsigned>> recordDeliveries(const std::vector<std::string>& ids) = 0;
  /// Unfinished events untouched for `older_than`, oldest first, at most
  /// `limit`; each is claimed (updated_at = now) so concurrent relays skip it.
  virtual Expected<std::vector<PendingEvent>> stale(std::chrono::milliseconds older_than, std::size_t limit) = 0;
  /// The event's journey; nullopt when unknown.
  virtual Expected<std::optional<Journey>> journey(const std::string& id) = 0;
  /// Per pipeline, system-wide, from counters every commit keeps in the same
  /// transaction (event_counts, processing_minutes): the cost does not grow
  /// with raw_events, and pruned events stay counted (G8).
  virtual Expected<std::map<std::string, StateCounts>> counts() = 0;
  /// Folds the counters' pending deltas into their totals and drops
  /// processing minutes older than any summary reads. Safe to run from many
  /// processes at once.
  virtual Expected<void> compactCounts() = 0;
  /// Of `ids`, those whose event is terminal or no longer stored (pruned by
  /// retention: every queued event was recorded first, G1). A redelivered
  /// message of such an event must not run its sinks again (G3).
  virtual Expected<std::vector<std::string>> settled(std::span<const std::string> ids) = 0;
  /// Retention: deletes at most `limit` events of `pipeline` that are in the
  /// terminal `state` and unchanged for `older_than`, with their
  /// failed_events and processed_events rows, in one short transaction.
  /// Returns how many events went. Never touches an unfinished event.
  virtual Expected<std::size_t> prune(const std::string& pipeline, State state, std::chrono::milliseconds older_than,
                                      std::size_t limit) = 0;
  virtual Expected<void> ping() = 0;

  // The DLQ (failed_events) holds history; what is in it *now* is the rows
  // whose raw_events.state is 'dead'. Replay and discard move an event out of
  // 'dead' and keep its failed_events row (first_failed_at, replay_count).

  /// Dead events matching `filter`, ordered by failed_at, then event_id.
  virtual Expected<DeadPage> listDead(const DeadFilter& filter) = 0;
  /// The event if it is dead now; nullopt otherwise.
  virtual Expected<std::optional<DeadEvent>> getDead(const std::string& id) = 0;
  /// In one transaction, every id that is dead becomes queued with attempts 0
  /// and no last_error, and its replay_count grows by one. The caller
  /// publishes the returned events; if it cannot, they are unfinished rows
  /// like any other (the relay or the next start picks them up).
  virtual Expected<ReplayResult> replay(std::span<const std::string> ids) = 0;
  /// Dead → discarded; false when the event is not dead.
  virtual Expected<bool> discard(const std::string& id) = 0;
  /// Discards every dead event matching `filter` (limit and offset ignored).
  virtual Expected<std::uint64_t> purge(const DeadFilter& filter) = 0;
};

/// Opens sqlite:///path (the embedded default; its folder is created) or
/// postgresql://user:password@host:port/db.
Expected<std::unique_ptr<Store>> openStore(const std::string& url);
Expected<std::unique_ptr<Store>> openPostgresStore(const std::string& url);

/// The state a transition moves its event to.
State stateOf(Transition::Kind kind);
const char* toString(Transition::Kind kind);

}  // namespace eventflow::store
