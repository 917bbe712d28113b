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

#include <map>
#include <set>

#include "pipeline/live_router.hpp"
#include "pipeline/pipeline.hpp"

#include "queue/queue.hpp"

namespace eventflow::store { class GroupCommitter; }
namespace eventflow::metrics { class Metrics; }

namespace eventflow::runtime {

/// The wait before the attempt after `attempt` (G4): initial_backoff ×
/// multiplier^(attempt − 1), capped at max_backoff; with full jitter, `unit`
/// (a uniform draw from [0, 1)) times that. Pure, for the unit tests.
std::chrono::milliseconds retryDelay(const config::RetrySpec& retry, unsigned attempt, double unit);

/// How many events a worker takes at once: about 250 ms of work by its
/// measured time per event, about 8 MiB of payload by the largest payload it
/// saw lately, and within [1, 512]. Before any measurement (0), 4. Pure,
/// for the unit tests.
std::size_t batchFor(double per_event_ns, double largest_payload_bytes);

/// The ids the workers had in hand when the process last stopped, read from
/// `dir` (see WorkerPool::trackInHand); the files are removed.
std::vector<std::string> takeInHand(const std::string& dir);

/// One worker's note of the ids in hand, `path`, for takeInHand after a
/// crash. Each note() replaces the last in one write at offset 0, padded
/// with empty lines to the file's size: the file is opened once and never
/// truncated. (Opening it with O_TRUNC at every batch freed its blocks, and
/// on a file system mounted with `discard` the worker then waited for the
/// disk: a fifth of the workers' CPU under the mixed load.) No fsync: it
/// must only outlive the process, and a crashed process's writes are in the
/// page cache.
class InHandFile {
 public:
  explicit InHandFile(std::string path) : path_(std::move(path)) {}
  ~InHandFile() { close(); }
  InHandFile(const InHandFile&) = delete;
  InHandFile& operator=(const InHandFile&) = delete;

  void note(const std::vector<queue::Message>& messages);
  void close();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::size_t size_ = 0;  // the file's size, which never shrinks
};

class WorkerPool {
 public:
  WorkerPool(const pipeline::LiveRouter& router, queue::Queue& queue, store::GroupCommitter& committer,
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

  /// Runners for `pipelines` made off to the side (a reload's new or changed
  /// pipelines): plugin instances created, nothing running them yet.
  struct Staged {
    std::vector<std::unique_ptr<pipeline::Runner>> runners;
  };
  Expected<Staged> stage(const std::vector<pipeline::PipelinePtr>& pipelines);
  /// A reload's swap, once the new generation is published: the workers of
  /// `retire` (changed pipelines) finish the batch in hand on their old
  /// runner and stop, those of `drain` (removed pipelines) run until their
  /// queue is empty and stop, and `staged`'s runners start taking at once. An
  /// event runs on one runner from its first stage to its last, never on a
  /// mix. Each stopped worker destroys its instances itself, which lets a
  /// replaced plugin library go. False (nothing done) once stop() began.
  bool swap(Staged staged, const std::set<std::string>& retire, const std::set<std::string>& drain);
  bool started() const { return started_; }

 private:
  enum Until : int { kRun = 0, kRetire = 1, kDrain = 2 };
  struct Worker {
    std::unique_ptr<pipeline::Runner> runner;
    unsigned id = 0;
    std::uint64_t sinks = 0;  // signature of the runner's sink stages (Message::sinks_of)
    std::atomic<int> until{kRun};
    std::chrono::steady_clock::time_point drain_from{};  // kDrain: not to stop before then
    std::atomic<bool> exited{false};
    std::unique_ptr<InHandFile> in_hand;  // with trackInHand
    std::thread thread;
  };
  void launch(std::unique_ptr<pipeline::Runner> runner);  // under workers_mutex_
  void run(Worker& w);
  void loop(Worker& w);
  void process(Worker& w, std::vector<queue::Message>& messages, std::vector<pipeline::Work>& works,
               std::deque<std::future<Expected<void>>>& inflight);
  void finish(Worker& w, std::vector<queue::Message>& messages, std::vector<pipeline::Work>& works,
              std::deque<std::future<Expected<void>>>& inflight);
  void scheduleRetry(queue::Message m, std::chrono::milliseconds delay);
  std::size_t batchSize(double per_event_ns, double largest_payload_bytes) const;
  void ack(const std::string& pipeline, std::vector<std::string> tokens);
  void flushAcks();
  void deadLetterPoison(pipeline::Runner& runner, std::vector<queue::Message>& poison);
  /// Acknowledges, unrun, the redelivered messages whose event is finished or pruned.
  void dropSettled(const std::string& pipeline, std::vector<queue::Message>& redelivered);
  std::chrono::milliseconds backoff(const config::RetrySpec& retry, unsigned attempt);

  const pipeline::LiveRouter& router_;
  queue::Queue& queue_;
  store::GroupCommitter& committer_;
  metrics::Metrics& metrics_;
  pipeline::Settings settings_;
  std::mutex workers_mutex_;
  std::vector<std::unique_ptr<Worker>> workers_;
  unsigned next_worker_ = 0;  // ids are never reused: they name Redis consumers and in-hand files
  bool started_ = false;
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
