#include "runtime/workers.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "base/log.hpp"
#include "base/threads.hpp"
#include "metrics/metrics.hpp"
#include "store/group_commit.hpp"

namespace eventflow::runtime {

using pipeline::Outcome;
using SteadyClock = std::chrono::steady_clock;

namespace {
// Batches a worker may have waiting for their commit while it runs the next.
constexpr std::size_t kUncommitted = 2;
// A worker takes about this much work at once, by its measured time per
// event: 64 events of a webhook at 50 ms each held a worker 3.2 s, which a
// stop had to wait out (the chain cannot be interrupted inside a plugin) and
// with Redis left up to 63 entries read but not started under its name. A
// fast pipeline (under 0.5 ms an event) takes kMaxBatch: with a backlog,
// each batch is one read from the queue, one sink call and one state
// change for that many events. Redis + PostgreSQL, batch posts end to end:
// 64 left the worker behind at 33.8k events/s; 256 gave 37.6k–38.5k, 512
// 40.0k with the worker keeping up, 1024 no more (docs/benchmarks.md).
constexpr auto kBatchTime = std::chrono::milliseconds(250);
constexpr std::size_t kMaxBatch = 512;
// And about this much payload: a batch is read at once and parsed at once,
// so 512 events of the largest a request may carry (1 MiB) would hold half
// a gigabyte per worker. By the largest payload a worker saw lately, which
// fades by a tenth a batch: 8 events of 1 MiB, and the full 512 once
// nothing over 16 KiB has come for about 40 batches. A batch taken before
// its events were known to be large runs in parts of this size.
constexpr double kBatchBytes = 8 * 1024 * 1024;
constexpr double kLargestFade = 0.9;
// Before the first measurement: small, so that a slow pipeline's first batch
// does not hold a stop either.
constexpr std::size_t kFirstBatch = 4;
constexpr auto kDrainGrace = std::chrono::seconds(5);

// Which sink stages a Message's sinks_done bits count in: a retry that comes
// back to a runner with other sinks (a reload changed them) runs every sink
// again, which G3 makes safe, instead of skipping the wrong ones.
std::uint64_t sinkSignature(const pipeline::Pipeline& p) {
  std::string text;
  for (const auto& st : p.stages())
    if (st.spec.kind == Kind::sink) text += st.plugin->file + "\n" + st.plugin->version + "\n" + st.spec.config.dump() + "\n";
  const std::uint64_t h = std::hash<std::string>{}(text);
  return h ? h : 1;
}
}  // namespace

WorkerPool::WorkerPool(const pipeline::LiveRouter& router, queue::Queue& queue, store::GroupCommitter& committer,
                       metrics::Metrics& metrics, pipeline::Settings settings)
    : router_(router), queue_(queue), committer_(committer), metrics_(metrics), settings_(std::move(settings)) {}

WorkerPool::~WorkerPool() { stop(SteadyClock::now()); }

Expected<WorkerPool::Staged> WorkerPool::stage(const std::vector<pipeline::PipelinePtr>& pipelines) {
  Staged staged;
  for (const auto& p : pipelines) {
    for (unsigned i = 0; i < p->spec().concurrency; ++i) {
      auto runner = pipeline::Runner::create(p, settings_, &metrics_);
      if (!runner) return runner.error();
      staged.runners.push_back(std::move(*runner));
    }
  }
  return staged;
}

Expected<void> WorkerPool::start() {
  auto staged = stage(router_.current()->router.pipelines());
  if (!staged) return staged.error();
  timers_guard_ = std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
      timers_.get_executor());
  timer_thread_ = std::thread([this] {
    nameThread("ef-timers");
    timers_.run();
  });
  std::lock_guard lock(workers_mutex_);
  started_ = true;
  for (auto& runner : staged->runners) launch(std::move(runner));
  return {};
}

void WorkerPool::launch(std::unique_ptr<pipeline::Runner> runner) {
  auto w = std::make_unique<Worker>();
  w->sinks = sinkSignature(runner->pipeline());
  w->runner = std::move(runner);
  w->id = next_worker_++;
  Worker& ref = *w;
  workers_.push_back(std::move(w));
  ref.thread = std::thread([this, &ref] { run(ref); });
}

void WorkerPool::run(Worker& w) {
  nameThread("ef-worker");
  loop(w);
  // The last instances of a replaced plugin may be these: destroyed on the
  // thread that used them, before anyone joins it.
  w.runner.reset();
  if (w.in_hand) {
    w.in_hand->close();
    std::error_code ec;
    if (w.until != kRun) std::filesystem::remove(w.in_hand->path(), ec);
  }
  w.exited = true;
}

bool WorkerPool::swap(Staged staged, const std::set<std::string>& retire, const std::set<std::string>& drain) {
  std::lock_guard lock(workers_mutex_);
  if (!started_ || stopping_) return false;
  // Workers a past reload stopped: joined now (they have exited, this does not wait).
  std::erase_if(workers_, [](std::unique_ptr<Worker>& w) {
    if (!w->exited) return false;
    w->thread.join();
    return true;
  });
  for (auto& w : workers_) {
    if (w->until != kRun) continue;
    const std::string& name = w->runner->pipeline().name();
    if (retire.count(name)) {
      w->until = kRetire;
    } else if (drain.count(name)) {
      // An ingest request routed by the old generation may still publish to
      // the removed pipeline after its commit (milliseconds, seconds if the
      // store stalls): its workers wait this long before trusting an empty queue.
      w->drain_from = SteadyClock::now() + kDrainGrace;
      w->until = kDrain;
    }
  }
  for (auto& runner : staged.runners) launch(std::move(runner));
  return true;
}

void WorkerPool::stop(SteadyClock::time_point deadline) {
  {
    std::lock_guard lock(workers_mutex_);
    if (!started_ || stopping_) return;
    deadline_ns_ = deadline.time_since_epoch().count();
    stopping_ = true;
  }
  // swap() refuses from here on, so workers_ no longer changes.
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  timers_guard_.reset();
  timers_.stop();
  if (timer_thread_.joinable()) timer_thread_.join();
  flushAcks();  // what the last commits settled
  // Retries still waiting on their timer: their `retrying` is committed, and
  // another consumer takes them now (keeping what is left of the backoff)
  // rather than after queue.claim_idle.
  std::map<std::string, std::vector<queue::Message>> back;
  {
    std::lock_guard lock(waiting_mutex_);
    for (auto& [n, m] : waiting_) back[m.pipeline].push_back(std::move(m));
    waiting_.clear();
  }
  std::size_t handed = 0;
  for (auto& [pipeline, messages] : back) {
    handed += messages.size();
    queue_.handBack(pipeline, std::move(messages));
  }
  if (handed) log::info("handed back retries waiting on their timer", {{"count", std::to_string(handed)}});
  workers_.clear();
}

std::size_t batchFor(double per_event_ns, double largest_payload_bytes) {
  if (per_event_ns <= 0) return kFirstBatch;
  double n = std::chrono::duration<double, std::nano>(kBatchTime).count() / per_event_ns;
  if (largest_payload_bytes > 0) n = std::min(n, kBatchBytes / largest_payload_bytes);
  return static_cast<std::size_t>(std::clamp(n, 1.0, double(kMaxBatch)));
}

std::size_t WorkerPool::batchSize(double per_event_ns, double largest_payload_bytes) const {
  const std::size_t n = batchFor(per_event_ns, largest_payload_bytes);
  if (!stopping_) return n;
  // Stopping: only what should be done by the deadline; the rest stays in
  // the queue for the next worker, never started and never held.
  const double left = static_cast<double>(deadline_ns_.load() - SteadyClock::now().time_since_epoch().count());
  if (left <= 0) return 0;
  if (per_event_ns <= 0) return 1;
  return std::min(n, static_cast<std::size_t>(left / per_event_ns));
}

void WorkerPool::loop(Worker& w) {
  pipeline::Runner& runner = *w.runner;
  const unsigned worker = w.id;
  const std::string& name = runner.pipeline().name();
  const unsigned max_deliveries = runner.pipeline().spec().max_deliveries;
  std::vector<pipeline::Work> works;
  std::deque<std::future<Expected<void>>> inflight;
  auto settle = [&] {
    for (auto& f : inflight) f.wait();
    inflight.clear();
  };
  double per_event_ns = 0;  // measured, smoothed
  double largest = 0;       // the largest payload lately, fading
  auto run = [&](std::vector<queue::Message>& batch) {
    const auto started = SteadyClock::now();
    process(w, batch, works, inflight);
    const double each = std::chrono::duration<double, std::nano>(SteadyClock::now() - started).count() /
                        static_cast<double>(std::max<std::size_t>(1, batch.size()));
    per_event_ns = per_event_ns > 0 ? 0.7 * per_event_ns + 0.3 * each : each;
  };
  for (;;) {
    // A reload replaced this pipeline: what this worker took ran on its old
    // runner; what it has not taken runs on the new one.
    if (w.until == kRetire) return settle();
    const std::size_t want = batchSize(per_event_ns, largest);
    if (want == 0) return settle();
    auto messages = queue_.take(name, worker, want, std::chrono::milliseconds(stopping_ ? 20 : 200));
    if (!messages.empty()) {
      std::size_t biggest = 0;
      for (const auto& m : messages) biggest = std::max(biggest, m.payload.size());
      largest = std::max(largest * kLargestFade, static_cast<double>(biggest));
    }
    if (messages.empty()) {
      if (stopping_) return settle();  // drained
      // A reload removed this pipeline: it stops once nothing of it is left
      // unacknowledged (retries on their timer count, as they are taken).
      if (w.until == kDrain) {
        settle();
        if (queue_.depth(name) == 0 && SteadyClock::now() >= w.drain_from) return;
      }
      continue;
    }
    // Retired while it waited in take(): what it got goes to the new
    // generation's workers, unrun (they take it as a retry due now).
    if (w.until == kRetire) {
      for (auto& m : messages) queue_.redeliver(name, std::move(m));
      return settle();
    }
    // Retries handed back by a stopped process wait out the rest of their backoff.
    const auto now = std::chrono::system_clock::now();
    std::erase_if(messages, [&](queue::Message& m) {
      if (m.not_before <= now) return false;
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(m.not_before - now);
      scheduleRetry(std::move(m), wait);
      return true;
    });
    // A message handed out more than max_deliveries times crashed whoever
    // took it before: it goes to the DLQ without running the chain (G5).
    std::vector<queue::Message> poison;
    std::erase_if(messages, [&](queue::Message& m) {
      if (m.deliveries <= max_deliveries) return false;
      poison.push_back(std::move(m));
      return true;
    });
    if (!poison.empty()) deadLetterPoison(runner, poison);
    // A copy published again (recovery, the relay) or taken over unstarted
    // from a stopped consumer may find its event finished by another copy,
    // and pruned since: its sinks must not run again (G3), as for a
    // redelivery (below).
    std::vector<queue::Message> copies;
    std::erase_if(messages, [&](queue::Message& m) {
      if (!m.maybe_settled || m.deliveries > 1) return false;
      copies.push_back(std::move(m));
      return true;
    });
    if (!copies.empty()) {
      dropSettled(name, copies);
      for (auto& m : copies) messages.push_back(std::move(m));
    }
    // A redelivered message may be what crashed the last worker; run each
    // alone, so a crash counts against it and not against its batch-mates.
    std::vector<queue::Message> suspects;
    std::erase_if(messages, [&](queue::Message& m) {
      if (m.deliveries <= 1) return false;
      suspects.push_back(std::move(m));
      return true;
    });
    // One suspect at a time in the whole process: a crash then implicates
    // only the one running, never a suspect on another thread.
    std::unique_lock suspect_lock(suspects_mutex_, std::defer_lock);
    if (!suspects.empty()) suspect_lock.lock();
    for (auto& m : suspects) {
      settle();  // if it crashes us, nothing else is left unacknowledged
      std::vector<queue::Message> one;
      one.push_back(std::move(m));
      // Asked right before it runs: after a crash hundreds of suspects wait
      // here in turn, and another copy of one (recovery publishes every
      // unfinished event again) may finish it, and retention prune it,
      // meanwhile.
      dropSettled(name, one);
      if (one.empty()) continue;
      run(one);
      settle();
    }
    if (suspect_lock.owns_lock()) suspect_lock.unlock();
    if (messages.empty()) continue;
    // Taken before their size was known (small events, then large ones
    // come): run in parts of about kBatchBytes, so that what is parsed at
    // once, and what crosses to a plugin process in one frame, stays bounded.
    std::size_t bytes = 0;
    for (const auto& m : messages) bytes += m.payload.size();
    if (static_cast<double>(bytes) <= kBatchBytes) {
      run(messages);
      continue;
    }
    std::vector<queue::Message> part;
    std::size_t part_bytes = 0;
    for (auto& m : messages) {
      if (!part.empty() && static_cast<double>(part_bytes + m.payload.size()) > kBatchBytes) {
        run(part);
        part.clear();
        part_bytes = 0;
      }
      part_bytes += m.payload.size();
      part.push_back(std::move(m));
    }
    run(part);
  }
}

void WorkerPool::process(Worker& wk, std::vector<queue::Message>& messages, std::vector<pipeline::Work>& works,
                         std::deque<std::future<Expected<void>>>& inflight) {
  pipeline::Runner& runner = *wk.runner;
  const std::string& name = runner.pipeline().name();
  if (!in_hand_dir_.empty()) {
    if (!wk.in_hand) wk.in_hand = std::make_unique<InHandFile>(in_hand_dir_ + "/" + std::to_string(wk.id) + ".ids");
    wk.in_hand->note(messages);
  }
  works.clear();
  works.reserve(messages.size());
  const auto started = SteadyClock::now();
  for (auto& m : messages) {
    if (m.first_started == SteadyClock::time_point{}) m.first_started = started;
    pipeline::Work w;
    w.event.id = m.id;
    w.event.type = m.type;
    w.event.correlation_id = m.correlation_id;
    w.event.pipeline = name;
    w.event.attempt = m.attempts + 1;
    w.event.received_at = m.received_at;
    w.event.body = nlohmann::json::parse(m.payload, nullptr, false);
    w.sinks_done = m.sinks_of != 0 && m.sinks_of != wk.sinks ? 0 : m.sinks_done;
    works.push_back(std::move(w));
  }
  runner.run(works);
  finish(wk, messages, works, inflight);
}

void InHandFile::note(const std::vector<queue::Message>& messages) {
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) return;
    size_ = 0;
  }
  std::string ids;
  for (const auto& m : messages) ids += m.id + "\n";
  if (ids.size() < size_) ids.append(size_ - ids.size(), '\n');
  const ssize_t written = ::pwrite(fd_, ids.data(), ids.size(), 0);
  if (written > 0) size_ = std::max(size_, static_cast<std::size_t>(written));
}

void InHandFile::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::vector<std::string> takeInHand(const std::string& dir) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".ids") continue;
    std::ifstream in(entry.path());
    for (std::string id; std::getline(in, id);)
      if (!id.empty()) ids.push_back(id);
    in.close();
    std::filesystem::remove(entry.path(), ec);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

void WorkerPool::finish(Worker& wk, std::vector<queue::Message>& messages, std::vector<pipeline::Work>& works,
                        std::deque<std::future<Expected<void>>>& inflight) {
  const auto& spec = wk.runner->pipeline().spec();
  const auto now = std::chrono::system_clock::now();
  const auto finished = SteadyClock::now();
  std::vector<store::Transition> changes;
  std::vector<std::string> acks;
  std::vector<queue::Message> retries;
  changes.reserve(works.size());
  for (std::size_t i = 0; i < works.size(); ++i) {
    auto& w = works[i];
    auto& m = messages[i];
    const unsigned attempt = m.attempts + 1;
    const auto processing_us =
        std::chrono::duration_cast<std::chrono::microseconds>(finished - m.first_started).count();
    Outcome o = w.outcome;
    if (o.kind == Outcome::Kind::retry && attempt >= spec.retry.max_attempts) {
      o.kind = Outcome::Kind::dead;
      o.message = "gave up after " + std::to_string(attempt) + " attempts: " + o.message;
    }
    switch (o.kind) {
      case Outcome::Kind::done:
        changes.push_back({.kind = store::Transition::Kind::done, .id = m.id, .attempts = attempt,
                           .processing_us = processing_us});
        metrics_.processed(spec.name, m.type).Increment();
        metrics_.processingDuration(spec.name).Observe(std::chrono::duration<double>(now - m.received_at).count());
        acks.push_back(m.token);
        break;
      case Outcome::Kind::dead:
        changes.push_back({.kind = store::Transition::Kind::dead, .id = m.id, .attempts = attempt,
                           .error_type = o.error_type, .error_message = o.message, .stage = o.stage,
                           .plugin = o.plugin, .processing_us = processing_us});
        metrics_.failed(spec.name, o.error_type).Increment();
        metrics_.deadLettered(spec.name).Increment();
        metrics_.processingDuration(spec.name).Observe(std::chrono::duration<double>(now - m.received_at).count());
        log::write(o.error_type == error_type::kValidation ? spdlog::level::debug : spdlog::level::warn, "event dead-lettered",
                   {{"event_id", m.id}, {"correlation_id", m.correlation_id}, {"pipeline", spec.name},
                    {"stage", o.stage}, {"error_type", o.error_type}, {"error", o.message}});
        acks.push_back(m.token);
        break;
      case Outcome::Kind::retry:
        changes.push_back({.kind = store::Transition::Kind::retrying, .id = m.id, .attempts = attempt,
                           .error_type = o.error_type, .error_message = o.message, .stage = o.stage,
                           .plugin = o.plugin});
        metrics_.failed(spec.name, o.error_type).Increment();
        metrics_.retried(spec.name).Increment();
        log::debug("event will be retried", {{"event_id", m.id}, {"correlation_id", m.correlation_id},
                                             {"pipeline", spec.name}, {"stage", o.stage}, {"error", o.message}});
        m.attempts = attempt;
        m.sinks_done = w.sinks_done;
        m.sinks_of = wk.sinks;
        retries.push_back(std::move(m));
        break;
    }
  }
  // The transport forgets a message only once its outcome is committed. The
  // worker goes on with its next batch meanwhile, but never more than
  // kUncommitted batches ahead: a store outage stops it, which is the
  // backpressure we want.
  // A retry is scheduled only once its `retrying` state is committed: while
  // the store is down no attempt is spent, so an outage of the store does not
  // run an event out of attempts (and into the DLQ) while its sinks may well
  // have taken it.
  inflight.push_back(committer_.transitions(
      std::move(changes), [this, retry = spec.retry, name = spec.name, acks = std::move(acks),
                           retries = std::move(retries)]() mutable {
        ack(name, std::move(acks));
        for (auto& m : retries) {
          const auto delay = backoff(retry, m.attempts);
          scheduleRetry(std::move(m), delay);
        }
      }));
  while (inflight.size() > kUncommitted) {
    inflight.front().wait();
    inflight.pop_front();
  }
}

void WorkerPool::ack(const std::string& pipeline, std::vector<std::string> tokens) {
  // Runs on a committer thread: the queue's round trip goes to the timer
  // thread instead, so the next group commit does not wait for it, and acks
  // that pile up meanwhile go out together. A crash before they go out only
  // redelivers events whose outcome is committed, which G3 absorbs.
  if (tokens.empty()) return;
  bool first = false;
  {
    std::lock_guard lock(ack_mutex_);
    first = pending_acks_.empty();
    auto& to = pending_acks_[pipeline];
    to.insert(to.end(), std::make_move_iterator(tokens.begin()), std::make_move_iterator(tokens.end()));
  }
  if (first) boost::asio::post(timers_, [this] { flushAcks(); });
}

void WorkerPool::flushAcks() {
  std::map<std::string, std::vector<std::string>> out;
  {
    std::lock_guard lock(ack_mutex_);
    out.swap(pending_acks_);
  }
  for (const auto& [pipeline, tokens] : out) queue_.ack(pipeline, tokens);
}

void WorkerPool::scheduleRetry(queue::Message m, std::chrono::milliseconds delay) {
  // The message stays unacknowledged while it waits; the timer, not a worker,
  // waits. It is kept here too, so that a stop can hand it back.
  m.not_before = std::chrono::system_clock::now() + delay;
  std::uint64_t n = 0;
  {
    std::lock_guard lock(waiting_mutex_);
    n = next_waiting_++;
    waiting_.emplace(n, std::move(m));
  }
  auto timer = std::make_shared<boost::asio::steady_timer>(timers_, delay);
  timer->async_wait([this, timer, n](const boost::system::error_code& ec) {
    if (ec) return;  // shutting down: stop() hands it back
    queue::Message msg;
    {
      std::lock_guard lock(waiting_mutex_);
      auto it = waiting_.find(n);
      if (it == waiting_.end()) return;
      msg = std::move(it->second);
      waiting_.erase(it);
    }
    const std::string pipeline = msg.pipeline;
    queue_.redeliver(pipeline, std::move(msg));
  });
}

void WorkerPool::dropSettled(const std::string& pipeline, std::vector<queue::Message>& redelivered) {
  // A worker that died after its outcome's commit and before the
  // acknowledgement leaves the event finished in the store; past its
  // retention the row is even gone. Either way its sinks must not run again
  // (G3): the entry is only acknowledged. On a store error the events run,
  // and the sinks' own idempotency holds.
  std::vector<std::string> ids;
  for (const auto& m : redelivered) ids.push_back(m.id);
  auto settled = committer_.store().settled(ids);
  if (!settled || settled->empty()) return;
  const std::set<std::string> done(settled->begin(), settled->end());
  std::vector<std::string> tokens;
  std::erase_if(redelivered, [&](const queue::Message& m) {
    if (!done.count(m.id)) return false;
    tokens.push_back(m.token);
    return true;
  });
  queue_.ack(pipeline, tokens);
  log::debug("redelivered events already finished were acknowledged unrun",
             {{"pipeline", pipeline}, {"count", std::to_string(tokens.size())}});
}

void WorkerPool::deadLetterPoison(pipeline::Runner& runner, std::vector<queue::Message>& poison) {
  const auto& spec = runner.pipeline().spec();
  std::vector<store::Transition> changes;
  std::vector<std::string> acks;
  for (auto& m : poison) {
    const std::string why = "delivered " + std::to_string(m.deliveries) + " times without finishing (max_deliveries " +
                            std::to_string(spec.max_deliveries) + "); it crashed or stalled the workers that took it";
    changes.push_back({.kind = store::Transition::Kind::dead, .id = m.id, .attempts = m.attempts, .error_type = error_type::kPoison,
                       .error_message = why, .stage = m.crashed_stage, .plugin = m.crashed_plugin});
    metrics_.failed(spec.name, error_type::kPoison).Increment();
    metrics_.deadLettered(spec.name).Increment();
    log::warn("poison event dead-lettered", {{"event_id", m.id}, {"correlation_id", m.correlation_id},
                                              {"pipeline", spec.name}, {"error", why}});
    acks.push_back(m.token);
  }
  committer_.transitions(std::move(changes), [this, name = spec.name, acks = std::move(acks)]() mutable { ack(name, std::move(acks)); })
      .wait();
}

std::chrono::milliseconds retryDelay(const config::RetrySpec& retry, unsigned attempt, double unit) {
  const double base = static_cast<double>(retry.initial_backoff.count()) *
                      std::pow(retry.multiplier, static_cast<double>(attempt > 0 ? attempt - 1 : 0));
  // min() also tames a power that overflowed to infinity (multiplier 2, attempt 2000).
  const double cap = std::min(base, static_cast<double>(retry.max_backoff.count()));
  return std::chrono::milliseconds(static_cast<std::int64_t>(retry.full_jitter ? cap * unit : cap));
}

std::chrono::milliseconds WorkerPool::backoff(const config::RetrySpec& retry, unsigned attempt) {
  if (!retry.full_jitter) return retryDelay(retry, attempt, 1.0);
  std::lock_guard lock(rng_mutex_);
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  return retryDelay(retry, attempt, dist(rng_));
}

}  // namespace eventflow::runtime
