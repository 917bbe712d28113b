#include "runtime/recover.hpp"

#include <filesystem>
#include <map>

#include "base/crash.hpp"
#include "base/ids.hpp"
#include "base/log.hpp"
#include "runtime/workers.hpp"

namespace eventflow::runtime {
namespace {

// Beside an SQLite database (one host per file). Otherwise in the
// temporary folder: per config file for the embedded queue's one process;
// with a shared queue per store, so that whichever process of that
// deployment starts next on this machine (a supervisor may give each its
// own config file) takes the note of one that crashed.
std::string noteDir(const RecoverOptions& o, bool embedded) {
  if (o.store_url.rfind("sqlite://", 0) == 0) return o.store_url.substr(9) + ".inhand";
  const std::string name = embedded ? "eventflow-inhand-" + sha256Hex(o.config_file).substr(0, 12)
                                    : "eventflow-crash-" + sha256Hex(o.store_url).substr(0, 12);
  return (std::filesystem::temp_directory_path() / name).string();
}

}  // namespace

queue::Message messageOf(store::PendingEvent&& event, const std::string& pipeline) {
  return {.id = std::move(event.id),
          .type = std::move(event.type),
          .pipeline = pipeline,
          .payload = std::move(event.payload),
          .correlation_id = std::move(event.correlation_id),
          .received_at = event.received_at,
          .attempts = event.attempts};
}

Expected<Recovery> recover(store::Store& store, queue::Queue& queue, const pipeline::Router& router,
                           store::GroupCommitter& committer, const RecoverOptions& options) {
  Recovery out;
  const bool embedded = queue.kind() == "embedded";
  const std::string dir = noteDir(options, embedded);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return makeError("cannot create " + dir + ": " + ec.message());
  // A crash names its event, stage and plugin in crash.note.
  const std::string note_file = dir + "/crash.note";
  const crash::Note crashed = crash::takeNote(note_file);
  crash::install(note_file);
  if (!embedded) {
    if (!crashed.event_id.empty()) queue.noteCrash(crashed.event_id, crashed.stage, crashed.plugin);
    return out;
  }
  out.in_hand_dir = dir;
  // Events in hand at a crash count one more delivery; from the second on
  // they run alone, and past max_deliveries they are dead as poison.
  std::map<std::string, unsigned> delivered;
  if (auto in_hand = takeInHand(dir); !in_hand.empty()) {
    auto counted = store.recordDeliveries(in_hand);
    if (!counted) return counted.error();
    delivered = std::move(*counted);
    log::warn("events were in hand when the host last stopped", {{"count", std::to_string(delivered.size())}});
  }
  auto pending = store.unfinished();
  if (!pending) return pending.error();
  std::map<std::string, std::vector<queue::Message>> refill;
  for (auto& e : *pending) {
    // Route by type as ingest would now: the event's pipeline may be gone or renamed.
    const auto* p = router.route(e.type);
    if (!p) {
      committer.transition({.kind = store::Transition::Kind::dead,
                            .id = e.id,
                            .attempts = e.attempts,
                            .error_type = std::string(error_type::kNoPipeline),
                            .error_message = "no pipeline matches event_type '" + e.type + "' after restart"});
      ++out.orphaned;
      continue;
    }
    const auto d = delivered.find(e.id);
    auto& m = refill[p->name()].emplace_back(messageOf(std::move(e), p->name()));
    m.deliveries = d == delivered.end() ? 1u : d->second + 1;
    m.maybe_settled = true;  // with Redis, its first entry may still be in the stream
    if (m.id == crashed.event_id) {
      m.crashed_stage = crashed.stage;
      m.crashed_plugin = crashed.plugin;
    }
    ++out.recovered;
  }
  for (auto& [name, messages] : refill) (void)queue.publish(name, std::move(messages));
  if (out.recovered || out.orphaned)
    log::info("recovered unfinished events from the store",
              {{"recovered", std::to_string(out.recovered)}, {"dead_no_pipeline", std::to_string(out.orphaned)}});
  return out;
}

}  // namespace eventflow::runtime
