#pragma once
// The queue is the transport, never the record (DESIGN §1): everything in it
// is also in the store, which refills it (recovery at start, the relay) when
// a message is lost.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <eventflow/time.hpp>

#include "base/expected.hpp"
#include "queue/lanes.hpp"

namespace eventflow::queue {

struct Message {
  std::string id{};
  std::string type{};
  std::string pipeline{};
  std::string payload{};
  std::string correlation_id{};
  SystemTime received_at{};
  unsigned attempts = 0;         // attempts already made
  std::uint32_t sinks_done = 0;  // bit i: sink i already took it (kept across retries)
  /// The sink stages sinks_done counts in (a worker's signature of them), 0
  /// when not known: after a reload changed them the bits mean nothing.
  std::uint64_t sinks_of = 0;
  std::string token{};             // the transport's handle for ack (a stream entry id)
  unsigned deliveries = 1;       // times the transport handed it out (poison detection)
  /// Another copy of it may have run already, and its event may even be
  /// pruned since: published again from the store (recovery at start, the
  /// relay), or taken over from a stopped consumer that read it. The worker
  /// asks the store before running it.
  bool maybe_settled = false;
  SystemTime not_before{};       // a retry handed back while it waited: not to run before then
  /// When a worker of this process first ran it (kept across retries): the
  /// start of its processing time. Unset until then.
  std::chrono::steady_clock::time_point first_started{};
  /// The stage and plugin a crash report last named for this event
  /// (noteCrash), for its poison record.
  std::string crashed_stage{};
  std::string crashed_plugin{};
};

/// About the memory a message holds while it waits in an in-process queue:
/// the message itself and its strings' bytes, `texts`.
inline std::size_t footprint(std::initializer_list<std::string_view> texts) {
  std::size_t bytes = sizeof(Message);
  for (const auto t : texts) bytes += t.size();
  return bytes;
}
inline std::size_t footprint(const Message& m) {
  return footprint({m.id, m.type, m.pipeline, m.payload, m.correlation_id, m.token, m.crashed_stage, m.crashed_plugin});
}

class Queue {
 public:
  virtual ~Queue() = default;
  virtual std::string kind() const = 0;
  /// Hands messages to the transport. On error the events stay recorded and
  /// unfinished in the store, and the relay publishes them again.
  virtual Expected<void> publish(const std::string& pipeline, std::vector<Message> messages) = 0;
  /// Several pipelines' messages at once: one round trip where the transport
  /// can. An error if any pipeline's publish failed (the others went out).
  virtual Expected<void> publishAll(std::map<std::string, std::vector<Message>> batches) {
    Expected<void> result;
    for (auto& [pipeline, messages] : batches)
      if (auto sent = publish(pipeline, std::move(messages)); !sent) result = sent;
    return result;
  }
  /// Up to `max` messages for worker `worker` of `pipeline`; waits at most
  /// `wait` when none is ready. Empty when closed.
  virtual std::vector<Message> take(const std::string& pipeline, unsigned worker, std::size_t max,
                                    std::chrono::milliseconds wait) = 0;
  /// The messages' outcomes are committed: the transport may forget them.
  virtual void ack(const std::string& pipeline, const std::vector<std::string>& tokens) = 0;
  /// A retry whose backoff has passed: deliver it again, keeping its token.
  virtual void redeliver(const std::string& pipeline, Message message) = 0;
  /// Messages published and not yet acknowledged (admission control, metrics).
  virtual std::size_t depth(const std::string& pipeline) = 0;
  /// Of those, the ones handed to a worker: running, or waiting for a retry.
  /// With Redis, across every consumer (a dead one's entries too) and as
  /// last counted; never waits.
  virtual std::size_t pending(const std::string& pipeline) = 0;
  /// The memory (footprint()) of the messages waiting in `pipeline`'s queue
  /// in this process, not yet taken: the embedded queue's, which ingest
  /// bounds by queue.max_bytes. 0 for a queue that keeps them elsewhere.
  virtual std::size_t bytes(const std::string& pipeline) {
    (void)pipeline;
    return 0;
  }
  virtual Expected<void> ping() = 0;
  /// A reload added `pipeline`: from now on it may be published and taken.
  /// Lanes are never removed (a removed pipeline's drains and stays empty).
  virtual void addPipeline(const std::string& pipeline) = 0;
  /// Messages this process took but will not run (retries waiting for their
  /// backoff at shutdown): another consumer gets them at once, not after
  /// claim_idle. The embedded queue has no other consumer; the store still
  /// says `retrying` and the next start queues them again.
  virtual void handBack(const std::string& pipeline, std::vector<Message> messages) {
    (void)pipeline;
    (void)messages;
  }
  /// A crash note a restarted process found (crash::takeNote): the event
  /// that was running and the stage and plugin it was in, for the poison
  /// record it may get. A shared queue keeps it for whichever consumer
  /// dead-letters the event (Message::crashed_stage); the embedded queue's
  /// recovery puts it on the message itself.
  virtual void noteCrash(const std::string& event_id, const std::string& stage, const std::string& plugin) {
    (void)event_id;
    (void)stage;
    (void)plugin;
  }
  /// Wakes every waiting take(); later takes return what is left, then nothing.
  /// A shared queue hands back what it holds for this process's workers.
  virtual void close() = 0;
};

/// In-process queue, one FIFO per pipeline. Ingest bounds it (admission control
/// on bytes, and on depth when queue.max_depth is set), so publish itself
/// never refuses an accepted event.
class EmbeddedQueue final : public Queue {
 public:
  explicit EmbeddedQueue(const std::vector<std::string>& pipelines);
  std::string kind() const override { return "embedded"; }
  Expected<void> publish(const std::string& pipeline, std::vector<Message> messages) override;
  std::vector<Message> take(const std::string& pipeline, unsigned worker, std::size_t max,
                            std::chrono::milliseconds wait) override;
  void ack(const std::string& pipeline, const std::vector<std::string>& tokens) override;
  void redeliver(const std::string& pipeline, Message message) override;
  std::size_t depth(const std::string& pipeline) override;
  std::size_t pending(const std::string& pipeline) override;
  std::size_t bytes(const std::string& pipeline) override;
  Expected<void> ping() override { return {}; }
  void addPipeline(const std::string& pipeline) override;
  void close() override;

 private:
  struct Lane {
    mutable std::mutex mutex;
    std::condition_variable cv;
    std::deque<Message> items;
    std::size_t taken = 0;  // handed to workers, not yet acknowledged
    std::size_t bytes = 0;  // footprint() of `items`
    bool closed = false;
  };
  Lanes<Lane> lanes_;
  std::atomic<bool> closed_{false};
};

struct RedisOptions {
  std::string url = "redis://127.0.0.1:6379";
  std::string prefix = "eventflow:";
  std::chrono::milliseconds claim_idle{30'000};
  std::size_t connections = 8;
  /// A write to a Redis that stops reading fails after this long, so a
  /// publisher or worker is never held; the relay repairs what was not sent.
  std::chrono::milliseconds send_timeout{10'000};
};

/// Redis Streams: one stream and one consumer group per pipeline, consumers
/// named host:pid:n. Entries are deleted once acknowledged, so the stream
/// holds exactly what is not yet acknowledged and is never trimmed past it.
std::unique_ptr<Queue> makeRedisQueue(const RedisOptions& options, const std::vector<std::string>& pipelines);

}  // namespace eventflow::queue
