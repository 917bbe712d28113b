#pragma once
// What a start does before the workers run, and how a stored event becomes a
// queue message again (recovery, the relay, DLQ replays).

#include <string>

#include "base/expected.hpp"
#include "pipeline/pipeline.hpp"
#include "queue/queue.hpp"
#include "store/group_commit.hpp"
#include "store/store.hpp"

namespace eventflow::runtime {

/// The message for an event as the store holds it: first delivery, no sink
/// done yet.
queue::Message messageOf(store::PendingEvent&& event, const std::string& pipeline);

struct RecoverOptions {
  std::string store_url{};
  std::string config_file{};  // names the embedded queue's note folder when the store is not a file
};

struct Recovery {
  /// Embedded queue: where the workers note the events in hand
  /// (WorkerPool::trackInHand); empty with a shared queue.
  std::string in_hand_dir{};
  std::size_t recovered = 0;  // unfinished events queued again
  std::size_t orphaned = 0;   // dead-lettered: no pipeline takes their type any more
};

/// Installs the crash handler with a note file and takes the note the last
/// crash left there, so the poison record that event may get names its
/// stage and plugin: with the embedded queue on the refilled message, with a
/// shared queue through Queue::noteCrash (another process may claim it).
/// The embedded queue starts empty, so it is then refilled with every event
/// accepted but not terminal (a crash, a kill -9, a retry in wait), counting
/// one more delivery for those that were in hand; a shared queue is repaired
/// by the relay instead.
Expected<Recovery> recover(store::Store& store, queue::Queue& queue, const pipeline::Router& router,
                           store::GroupCommitter& committer, const RecoverOptions& options);

}  // namespace eventflow::runtime
