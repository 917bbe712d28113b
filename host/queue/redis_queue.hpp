#pragma once
// The Redis Streams queue's class, shared by redis_queue.cpp (publish, take,
// ack, hand back) and redis_claim.cpp (taking over stopped consumers'
// entries). Internal to host/queue: others use makeRedisQueue (queue.hpp).

#include <Poco/Redis/Exception.h>
#include <Poco/URI.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/ids.hpp"
#include "base/log.hpp"
#include "base/threads.hpp"
#include "base/throttle.hpp"
#include "queue/queue.hpp"
#include "queue/redis_connection.hpp"
#include "queue/resp.hpp"

namespace eventflow::queue {

using Clock = std::chrono::steady_clock;

inline constexpr const char* kGroup = "eventflow";
// An entry delivered no more than this before its consumer's last
// interaction still counts as in hand there: Redis stamps both in
// milliseconds, and a blocked read may stamp them apart.
inline constexpr std::chrono::milliseconds kInHandSlack{5};

/// [id, [field, value, ...]] → Message, its strings moved out of the reply;
/// false when the entry was deleted.
bool decode(Reply& entry, const std::string& pipeline, Message& m);

class RedisQueue final : public Queue {
 public:
  RedisQueue(const RedisOptions& options, const std::vector<std::string>& pipelines)
      : options_(options), consumer_prefix_(consumerPrefix()), lanes_(pipelines) {
    Poco::URI uri(options.url);
    host_ = uri.getHost().empty() ? "127.0.0.1" : uri.getHost();
    port_ = uri.getPort() ? uri.getPort() : 6379;
    refresher_ = std::thread([this] {
      nameThread("ef-queue-depth");
      refreshDepths();
    });
  }

  std::string kind() const override { return "redis"; }

  Expected<void> publish(const std::string& pipeline, std::vector<Message> messages) override {
    std::string wire;
    const std::size_t n = encodeXadds(wire, pipeline, messages);
    return sendXadds(wire, n);
  }

  // Every pipeline's XADDs in one write: one round trip for all of them.
  Expected<void> publishAll(std::map<std::string, std::vector<Message>> batches) override {
    std::string wire;
    std::size_t n = 0;
    for (const auto& [pipeline, messages] : batches) n += encodeXadds(wire, pipeline, messages);
    return sendXadds(wire, n);
  }

  std::vector<Message> take(const std::string& pipeline, unsigned worker, std::size_t max,
                            std::chrono::milliseconds wait) override;

  void ack(const std::string& pipeline, const std::vector<std::string>& tokens) override;

  void redeliver(const std::string& pipeline, Message message) override {
    Lane* lane = laneOf(pipeline);
    if (!lane) return;
    std::lock_guard lock(lane->mutex);
    if (message.token == lane->suspect) lane->suspect.clear();  // it ran to a retry: it did not crash anything
    lane->ready.push_back(std::move(message));
  }

  std::size_t depth(const std::string& pipeline) override {
    Lane* lane = laneOf(pipeline);
    if (!lane) return 0;
    // Ingest asks on every request, on the HTTP event loop: it reads what the
    // refresher thread last counted and never waits on Redis.
    lane->wanted = true;
    std::lock_guard lock(lane->mutex);
    return lane->depth;  // retries in `ready` are unacknowledged entries, which XLEN counts already
  }

  std::size_t pending(const std::string& pipeline) override {
    Lane* lane = laneOf(pipeline);
    if (!lane) return 0;
    lane->wanted = true;
    std::lock_guard lock(lane->mutex);
    return lane->pending;
  }

  Expected<void> ping() override {
    return withShared([&](Connection& c) -> Expected<void> {
      c.call(Command{"PING"});
      return {};
    });
  }

  void handBack(const std::string& pipeline, std::vector<Message> messages) override;

  // Its stream and group appear with the first worker's read (XGROUP CREATE
  // … MKSTREAM from id 0), so entries an api published before are all read.
  void addPipeline(const std::string& pipeline) override { lanes_.add(pipeline); }

  void close() override;

  void noteCrash(const std::string& event_id, const std::string& stage, const std::string& plugin) override;

  ~RedisQueue() override { close(); }

 private:
  struct Lane {
    std::mutex mutex;
    std::deque<Message> ready;  // retries whose backoff has passed
    std::size_t depth = 0;  // XLEN as the refresher last read it
    std::size_t pending = 0;  // XPENDING's count as the refresher last read it
    std::atomic<bool> wanted{false};  // asked for since the last refresh
    std::atomic<std::int64_t> last_claim{0};
    std::deque<std::string> owned;  // stopped consumers' entries that were in hand, to run one at a time
    std::string claim_cursor = "-";  // where the walk of the pending list goes on
    std::string suspect;  // the claimed entry running now, until its ack: one at a time
  };

  std::string stream(const std::string& pipeline) const { return options_.prefix + pipeline; }

  // host:pid: for the process's queue. A second queue in one process (tests
  // play a crashed process and its successor so) gets host:pid/2:, since
  // claims tell a stopped consumer from a live one by its name.
  static std::string consumerPrefix() {
    static std::atomic<int> instances{0};
    const int n = ++instances;
    return hostName() + ":" + std::to_string(::getpid()) + (n > 1 ? "/" + std::to_string(n) : "") + ":";
  }

  // After a clean stop this process's consumers that hold nothing are
  // deleted: every restart makes new names, and claims read the whole
  // consumer list. One that still holds entries (their commit failed) stays,
  // so that they are claimed.
  void forgetConsumers();

  // Appends one XADD per message to `wire`; returns how many.
  std::size_t encodeXadds(std::string& wire, const std::string& pipeline, const std::vector<Message>& messages) const;

  Expected<void> sendXadds(const std::string& wire, std::size_t commands) {
    if (commands == 0) return {};
    return withShared([&](Connection& c) -> Expected<void> {
      for (const auto& r : c.send(wire, commands, std::chrono::seconds(5)))
        if (r.isError()) return makeError("XADD: " + r.text);
      return {};
    });
  }

  // Entries no EventFlow wrote (another program on this prefix): one would
  // fail every group commit its state change joined, so they are
  // acknowledged and deleted, loudly, instead of handed out.
  void dropForeign(const std::string& pipeline, const std::vector<std::string>& tokens) {
    if (tokens.empty()) return;
    log::warn("dropped stream entries that are not EventFlow events",
              {{"pipeline", pipeline}, {"count", std::to_string(tokens.size())}});
    ack(pipeline, tokens);
  }

  // Every 100 ms, the stream lengths someone asked for. While Redis does not
  // answer the last counts stand (ingest keeps admitting: the store is the
  // source of truth and the relay publishes what Redis missed).
  void refreshDepths();

  Lane* laneOf(const std::string& pipeline) { return lanes_.find(pipeline); }

  Connection& reader(const std::string& pipeline, unsigned worker) {
    std::lock_guard lock(readers_mutex_);
    auto& c = readers_[pipeline + "/" + std::to_string(worker)];
    if (!c) c = std::make_unique<Connection>(host_, port_, options_.send_timeout);
    return *c;
  }

  void ensureGroup(Connection& conn, const std::string& pipeline, std::chrono::milliseconds wait) {
    if (conn.prepared) return;
    try {
      conn.call(Command{"XGROUP", "CREATE", stream(pipeline), kGroup, "0", "MKSTREAM"}, wait);
    } catch (const Poco::Redis::RedisException& e) {
      if (e.message().find("BUSYGROUP") == std::string::npos) throw;
    }
    conn.prepared = true;
  }

  // One worker per pipeline looks for dead consumers' entries at a time, a few
  // times per claim_idle.
  bool claimDue(Lane& lane);

  // Before a batch read from `ready` runs, it is claimed by this consumer
  // without counting a delivery: its delivery time and this consumer's last
  // interaction then say it is in hand (see claim()).
  void markStarted(Connection& conn, const std::string& pipeline, const std::string& consumer,
                   const std::vector<Message>& messages);

  // Takes over entries idle for claim_idle from consumers that stopped
  // without handing them back (a crash, a kill). Which of them were in hand
  // at the crash? A worker reads its next batch only once the chain has run
  // over the last one, so an entry delivered before its consumer's last
  // interaction with Redis (XINFO CONSUMERS' idle) had been through the
  // chain: it waited for its commit or a retry timer, and did not crash
  // anything. Those are claimed keeping their delivery count and run in a
  // batch at once (`out`). Only the entries delivered at or after that last
  // interaction, the batch in hand, are suspects: kept in `owned`, each
  // claimed (and counted) only when it runs, alone (deliverOwned), so G5
  // still blames a poison event and never its batch-mates.
  void claim(Connection& conn, const std::string& pipeline, const std::string& consumer, std::size_t max, Lane& lane,
             std::vector<Message>& out);

  // Hands out one suspect: claims it, which counts the delivery and returns
  // its fields, and reads its exact delivery count.
  //
  // Suspects were in hand when a consumer died, so any of them may be what
  // killed it. They run one at a time (the other worker threads take new
  // entries meanwhile): were two to run at once, the poison one would count a
  // delivery against the innocent one too, and after max_deliveries crashes
  // dead-letter it as poison. The claim asks for claim_idle again, so of two
  // processes claiming one entry only one gets it.
  bool deliverOwned(Connection& conn, const std::string& pipeline, const std::string& consumer, Lane& lane,
                    std::vector<Message>& out);

  Expected<void> withShared(const std::function<Expected<void>(Connection&)>& call);

  // Redis being down is logged once a few seconds, not once per call.
  void noteFailure(const char* what, const std::string& detail) {
    if (std::uint64_t suppressed = 0; failure_log_.allow(suppressed))
      log::warn(what, {{"error", detail}, {"failures_not_logged", std::to_string(suppressed)}});
  }

  // Where a crash note for `event_id` is kept (noteCrash).
  std::string crashKey(const std::string& event_id) const { return options_.prefix + "crash:" + event_id; }
  void readCrashNote(Connection& conn, Message& m);

  RedisOptions options_;
  std::string consumer_prefix_;
  std::string host_;
  int port_ = 6379;
  Lanes<Lane> lanes_;
  std::mutex readers_mutex_;
  std::map<std::string, std::unique_ptr<Connection>> readers_;
  std::mutex shared_mutex_;
  std::vector<std::unique_ptr<Connection>> shared_;
  std::atomic<bool> closed_{false};
  Throttle failure_log_;
  std::mutex refresh_mutex_;
  std::condition_variable refresh_cv_;
  std::thread refresher_;  // last: it reads the members above
};


}  // namespace eventflow::queue
