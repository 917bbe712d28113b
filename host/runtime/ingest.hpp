#pragma once
// Ingest: envelope, routing, admission, durable record (group commit), then
// publish. A 202 is only ever answered after the row is committed (G1).

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/envelope.hpp"
#include "pipeline/live_router.hpp"
#include "pipeline/pipeline.hpp"

#include "queue/queue.hpp"
#include "store/store.hpp"

namespace eventflow::store { class GroupCommitter; }
namespace eventflow::metrics { class Metrics; }

namespace eventflow::runtime {

/// What became of one document. The HTTP layer maps it to a status and a
/// body; nothing here knows HTTP.
enum class IngestOutcome {
  accepted,     // committed (G1): event_id, pipeline
  duplicate,    // that event_id was accepted before with the same body: event_id, pipeline
  conflict,     // that event_id was accepted before with another body: event_id
  invalid,      // the envelope is refused: invalid (code, message, field)
  no_pipeline,  // no pipeline takes event_type
  overloaded,   // pipeline's queue is at queue.max_depth or queue.max_bytes: pipeline
  unavailable,  // the store did not commit; the client retries
};

struct IngestResult {
  IngestOutcome outcome = IngestOutcome::accepted;
  std::string event_id;
  std::string pipeline;
  std::string event_type;
  pipeline::EnvelopeError invalid;  // outcome invalid only
};

/// One result per document in order, and the receipt time they share.
struct IngestAnswer {
  std::vector<IngestResult> results;
  std::string received_at;  // RFC 3339
};

class Ingestor {
 public:
  Ingestor(const pipeline::LiveRouter& router, store::GroupCommitter& committer, queue::Queue& queue,
           metrics::Metrics& metrics, std::size_t max_depth, std::uint64_t max_bytes,
           pipeline::EnvelopeOptions envelope = {});

  using Done = std::function<void(IngestAnswer)>;
  /// One result per document, in order, handed to `done` once the accepted
  /// ones are committed: on a committer thread, or on this one when nothing
  /// needed a commit or the committer is stopping. `done` must not block.
  /// Documents are consumed.
  void ingest(std::vector<nlohmann::json> docs, const std::string& correlation_id, Done done);
  /// Publishes what is committed but not yet published, then stops the
  /// publishing thread. Later commits publish inline.
  void stop();
  ~Ingestor();
  /// Events handed to the group committer whose commit has not completed:
  /// the clients waiting for their 202 (a store that stalls shows here first).
  std::size_t uncommitted() const { return static_cast<std::size_t>(std::max<std::int64_t>(uncommitted_.load(), 0)); }

 private:
  void publish(std::vector<store::RawEvent>& rows, const std::vector<store::InsertStatus>& statuses);
  void publishLoop();
  void send(std::map<std::string, std::vector<queue::Message>>& out);

  const pipeline::LiveRouter& router_;
  store::GroupCommitter& committer_;
  queue::Queue& queue_;
  metrics::Metrics& metrics_;
  std::size_t max_depth_;
  std::uint64_t max_bytes_;  // of the messages waiting in a pipeline's queue (Queue::bytes)
  pipeline::EnvelopeOptions envelope_;
  long long kill_before_publish_ = 0;
  std::atomic<long long> commits_{0};
  std::atomic<std::int64_t> uncommitted_{0};
  std::mutex publish_mutex_;
  std::condition_variable publish_cv_;
  // How long the publisher waits for more commits before it publishes. What
  // lingered goes in one write of pipelined XADDs, and a worker takes it at
  // once: at 2 ms each of six workers took a few events under the mixed load,
  // and each small batch made a sink commit and a state change of its own.
  // At 10 ms, alternated: embedded +6-20 % end to end with a tenth less host
  // CPU and a fifth fewer bytes written; Redis + PostgreSQL +10-14 % (role
  // all), -1 to +10 % (api + worker); single posts to an api alone and batch
  // posts unchanged. A post reaches its outcome up to 10 ms later, and a
  // backlog of kPublishBatch goes at once (docs/benchmarks.md).
  static constexpr auto kLinger = std::chrono::milliseconds(10);
  static constexpr std::size_t kPublishBatch = 500;  // messages: publish at once
  std::map<std::string, std::vector<queue::Message>> pending_;  // committed, not yet published
  std::size_t pending_count_ = 0;
  bool publisher_idle_ = false;
  bool stopped_ = false;
  std::thread publisher_;  // last: started once the rest is built
};

}  // namespace eventflow::runtime
