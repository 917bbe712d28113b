#pragma once
// The worker pool: `concurrency` threads per pipeline on a Boost.Asio thread
// pool, each with its own plugin instances; retries wait on Asio timers, never
// on a worker thread.

#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "pipeline/pipeline.hpp"
#include <map>

#include "queue/queue.hpp"

namespace eventflow::store { class GroupCommitter; }
namespace eventflow::metrics { class Metrics; }

namespace eventflow::runtime {

/// The wait before the attempt after `attempt` (G4): initial_backoff ×
/// multiplier^(attempt − 1), capped at max_backoff; with full jitter, `unit`
/// (a uniform draw from [0, 1)) times that. Pure, for the unit tests.
std::chrono::milliseconds retryDelay(const config::RetrySpec& retry, unsigned attempt, double unit);

/// The ids the workers had in hand when the process last stopped, read from
/// `dir` (see WorkerPool::trackInHand); the files are removed.
std::vector<std::string> takeInHand(const std::string& dir);

class WorkerPool {
 public:
  WorkerPool(const pipeline::Router& router, queue::Queue& queue, store::GroupCommitter& committer,
             metrics::Metrics& metrics, pipeline::Settings settings);
  ~WorkerPool();

  /// Embedded queue: before running a batch, each worker writes its ids to
  /// `dir`/<n>.ids, so after a crash the next start knows which events were
  /// in hand (takeInHand) and can count their deliveries (poison, G5).
  void trackInHand(std::string dir) { in_hand_dir_ = std::move(dir); }

  /// Creates every runner first (so a plugin that refuses its config fails
  /// the start), then starts the threads.
  Expected<void> start();
  /// Finishes what is queued until `deadline`, starting only batches it
  /// expects to finish by then, and hands the rest back: retries waiting on
  /// their timer go back to the queue (Queue::handBack); what was never taken
  /// stays there. The store keeps all of it unfinished, so nothing is lost
  /// even if the hand-back fails.
  void stop(std::chrono::steady_clock::time_point deadline);

 private:
  void loop(pipeline::Runner& runner, unsigned worker);
  void noteInHand(unsigned worker, const std::vector<queue::Message>& messages);
  void process(pipeline::Runner& runner, unsigned worker, std::vector<queue::Message>& messages, std::vector<pipeline::Work>& works,
               std::deque<std::future<Expected<void>>>& inflight);
  void finish(pipeline::Runner& runner, std::vector<queue::Message>& messages, std::vector<pipeline::Work>& works,
              std::deque<std::future<Expected<void>>>& inflight);
  void scheduleRetry(queue::Message m, std::chrono::milliseconds delay);
  std::size_t batchSize(double per_event_ns) const;
  void ack(const std::string& pipeline, std::vector<std::string> tokens);
  void flushAcks();
  void deadLetterPoison(pipeline::Runner& runner, std::vector<queue::Message>& poison);
  std::chrono::milliseconds backoff(const config::RetrySpec& retry, unsigned attempt);

  const pipeline::Router& router_;
  queue::Queue& queue_;
  store::GroupCommitter& committer_;
  metrics::Metrics& metrics_;
  pipeline::Settings settings_;
  std::vector<std::unique_ptr<pipeline::Runner>> runners_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  boost::asio::io_context timers_;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> timers_guard_;
  std::thread timer_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> deadline_ns_{0};
  std::mutex rng_mutex_;
  std::mutex suspects_mutex_;
  std::mutex ack_mutex_;
  std::map<std::string, std::vector<std::string>> pending_acks_;  // committed, not yet acknowledged
  std::mutex waiting_mutex_;
  std::map<std::uint64_t, queue::Message> waiting_;  // retries on their timer, handed back at stop
  std::uint64_t next_waiting_ = 0;
  std::string in_hand_dir_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace eventflow::runtime
