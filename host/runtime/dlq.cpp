#include "runtime/dlq.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "base/log.hpp"
#include "metrics/metrics.hpp"
#include "pipeline/pipeline.hpp"
#include "pipeline/live_router.hpp"
#include "queue/queue.hpp"
#include "runtime/recover.hpp"

namespace eventflow::runtime {

nlohmann::json toJson(const store::DeadEvent& e) {
  auto nullable = [](const std::string& s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); };
  return {{"event_id", e.event_id},
          {"pipeline", e.pipeline},
          {"event_type", e.event_type},
          {"error_type", e.error_type},
          {"error_message", nullable(e.error_message)},
          {"stage", nullable(e.stage)},
          {"plugin", nullable(e.plugin)},
          {"attempts", e.attempts},
          {"first_failed_at", e.first_failed_at},
          {"failed_at", e.failed_at},
          {"replay_count", e.replay_count},
          {"correlation_id", nullable(e.correlation_id)},
          {"received_at", e.received_at},
          {"event", nlohmann::json::parse(e.payload, nullptr, false)}};
}

Dlq::Dlq(store::Store& store, queue::Queue* queue, const pipeline::LiveRouter* router, unsigned replay_rate,
         std::size_t max_depth, std::size_t max_page_bytes, metrics::Metrics* metrics, std::uint64_t max_bytes)
    : store_(store), queue_(queue), router_(router), replay_rate_(std::max(1u, replay_rate)), max_depth_(max_depth),
      max_bytes_(max_bytes), max_page_bytes_(max_page_bytes), metrics_(metrics) {}

// Counted once the store has flipped them out of 'dead', whether or not the
// publish that follows works: a lost publish is repaired, the replay stands.
void Dlq::countReplayed(const std::vector<store::PendingEvent>& events) {
  if (!metrics_) return;
  std::map<std::string_view, std::size_t> per;
  for (const auto& e : events) ++per[e.pipeline];
  for (const auto& [pipeline, n] : per) metrics_->dlqReplayed(std::string(pipeline)).Increment(static_cast<double>(n));
}

Expected<store::DeadPage> Dlq::list(const store::DeadFilter& filter) {
  if (filter.limit == 0) return store_.listDead(filter);
  // Read in chunks sized from what came so far, so a page of large events
  // holds about max_page_bytes and not `limit` of them: six pages of 100
  // dead events of 1 MB took the host from 0.2 to 1.45 GB (issue 11). Small
  // events take two queries: a probe of 16, then the rest.
  constexpr std::size_t kFirstChunk = 16;
  constexpr std::size_t kItemOverhead = 512;  // ids, times, names as JSON
  store::DeadPage out;
  std::size_t bytes = 0;
  for (;;) {
    const std::size_t left = filter.limit - out.items.size();
    std::size_t chunk = std::min(left, kFirstChunk);
    if (!out.items.empty()) {
      const std::size_t average = std::max<std::size_t>(1, bytes / out.items.size());
      chunk = std::min(left, std::max<std::size_t>(1, (max_page_bytes_ - std::min(bytes, max_page_bytes_)) / average + 1));
    }
    store::DeadFilter f = filter;
    f.offset = filter.offset + out.items.size();
    f.limit = chunk;
    auto page = store_.listDead(f);
    if (!page) return page.error();
    out.total = page->total;
    const std::size_t got = page->items.size();
    for (auto& e : page->items) {
      const std::size_t size = e.payload.size() + e.error_message.size() + kItemOverhead;
      if (!out.items.empty() && bytes + size > max_page_bytes_) return out;
      bytes += size;
      out.items.push_back(std::move(e));
    }
    if (got < chunk || out.items.size() >= filter.limit) return out;
  }
}

void Dlq::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
}

bool Dlq::waitFor(std::chrono::steady_clock::time_point until) {
  std::unique_lock lock(mutex_);
  return !cv_.wait_until(lock, until, [&] { return stopping_; });
}

Expected<DlqAnswer> Dlq::notDead(const std::string& id) {
  auto journey = store_.journey(id);
  if (!journey) return journey.error();
  if (!*journey) return DlqAnswer{DlqStatus::not_found, {}};
  return DlqAnswer{DlqStatus::not_dead, store::toString((*journey)->state)};
}

Expected<std::size_t> Dlq::publish(std::vector<store::PendingEvent> events) {
  std::map<std::string, std::vector<queue::Message>> out;
  for (auto& e : events) {
    // Routed by type as ingest would route it now, like recovery at start.
    const auto* p = router_->current()->router.route(e.type);
    if (!p) continue;  // checked before the replay; the store keeps it queued for recovery
    out[p->name()].push_back(messageOf(std::move(e), p->name()));
  }
  std::size_t sent = 0;
  for (auto& [name, messages] : out) {
    const std::size_t n = messages.size();
    // Already queued in the store: a lost publish is repaired like any other
    // (the relay with a shared queue, recovery at the next start otherwise).
    if (auto published = queue_->publish(name, std::move(messages)); !published)
      log::warn("replayed events not published; they stay queued in the store",
                {{"pipeline", name}, {"error", published.error().message}});
    else
      sent += n;
  }
  return sent;
}

Expected<DlqAnswer> Dlq::replay(const std::string& id) {
  if (!queue_ || !router_) return makeError("replay needs the queue and the pipelines");
  auto dead = store_.getDead(id);
  if (!dead) return dead.error();
  if (!*dead) return notDead(id);
  if (!router_->current()->router.route((*dead)->event_type)) return DlqAnswer{DlqStatus::no_pipeline, {}};
  const std::string ids[] = {id};
  auto replayed = store_.replay(ids);
  if (!replayed) return replayed.error();
  if (replayed->replayed.empty()) return notDead(id);  // it left the DLQ meanwhile
  countReplayed(replayed->replayed);
  if (auto sent = publish(std::move(replayed->replayed)); !sent) return sent.error();
  log::info("dead event replayed", {{"event_id", id}, {"pipeline", (*dead)->pipeline}});
  return DlqAnswer{};
}

Expected<std::uint64_t> Dlq::count(const store::DeadFilter& filter, std::uint64_t limit) {
  store::DeadFilter f = filter;
  f.limit = 0;
  f.offset = 0;
  auto page = store_.listDead(f);
  if (!page) return page.error();
  return limit ? std::min(limit, page->total) : page->total;
}

Expected<BulkReplay> Dlq::replayAll(store::DeadFilter filter, std::uint64_t limit) {
  if (!queue_ || !router_) return makeError("replay needs the queue and the pipelines");
  // Eight bulk replays at once sent 2.7 times replay_rate and held eight
  // threads of the HTTP blocking pool for minutes (issue 11).
  {
    std::lock_guard lock(mutex_);
    if (bulk_running_) {
      BulkReplay busy;
      busy.busy = true;
      return busy;
    }
    bulk_running_ = true;
  }
  struct Release {
    Dlq& dlq;
    ~Release() {
      std::lock_guard lock(dlq.mutex_);
      dlq.bulk_running_ = false;
    }
  } release{*this};
  using Clock = std::chrono::steady_clock;
  // Only what died before this millisecond: an event that fails again while
  // this runs has a later failed_at, so it is not taken a second time, and
  // each page can start from the top of what is still dead.
  const SystemTime before =
      std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now()) - std::chrono::milliseconds(1);
  filter.until = filter.until ? std::min(*filter.until, before) : before;
  BulkReplay result;
  std::uint64_t left_behind = 0;  // dead events this replay passes over (no pipeline); they stay first in the listing
  const auto started = Clock::now();
  const auto per_event = std::chrono::duration<double>(1.0 / replay_rate_);
  std::set<std::string> pipelines;
  for (;;) {
    if (limit && result.replayed >= limit) break;
    const std::uint64_t remaining = limit ? limit - result.replayed : kReplayPage;
    filter.offset = static_cast<std::size_t>(left_behind);
    filter.limit = static_cast<std::size_t>(std::min<std::uint64_t>({kReplayPage, replay_rate_, remaining}));
    auto page = store_.listDead(filter);
    if (!page) return page.error();
    if (page->items.empty()) break;

    std::vector<std::string> ids;
    pipelines.clear();
    for (const auto& e : page->items) {
      const auto* p = router_->current()->router.route(e.event_type);
      if (!p) {
        ++left_behind;
        ++result.skipped;
        continue;
      }
      ids.push_back(e.event_id);
      pipelines.insert(p->name());
    }
    // Backpressure: the same bound ingest answers 503 at.
    for (const auto& name : pipelines) {
      while (queue_->depth(name) >= max_depth_ || queue_->bytes(name) >= max_bytes_) {
        if (!waitFor(Clock::now() + std::chrono::milliseconds(100))) {
          result.interrupted = true;
          return result;
        }
      }
    }
    if (ids.empty()) continue;
    auto replayed = store_.replay(ids);
    if (!replayed) return replayed.error();
    result.skipped += replayed->skipped.size();
    const std::size_t n = replayed->replayed.size();
    result.replayed += n;
    countReplayed(replayed->replayed);
    if (auto sent = publish(std::move(replayed->replayed)); !sent) return sent.error();
    if (n == 0 && replayed->skipped.empty()) break;  // nothing moved: never spin
    // Stay under replay_rate: the next page waits until this many events' worth of time has passed.
    const auto next = started + std::chrono::duration_cast<Clock::duration>(per_event * static_cast<double>(result.replayed));
    if (!waitFor(next)) {
      result.interrupted = true;
      break;
    }
  }
  log::info("dead events replayed", {{"replayed", std::to_string(result.replayed)},
                                     {"skipped", std::to_string(result.skipped)},
                                     {"pipeline", filter.pipeline},
                                     {"error_type", filter.error_type}});
  return result;
}

Expected<DlqAnswer> Dlq::discard(const std::string& id) {
  // Which pipeline to count it under: the store's discard answers only yes or no.
  std::string pipeline;
  if (metrics_) {
    auto dead = store_.getDead(id);
    if (!dead) return dead.error();
    if (!*dead) return notDead(id);
    pipeline = (*dead)->pipeline;
  }
  auto discarded = store_.discard(id);
  if (!discarded) return discarded.error();
  if (!*discarded) return notDead(id);
  if (metrics_) metrics_->dlqDiscarded(pipeline).Increment();
  log::info("dead event discarded", {{"event_id", id}});
  return DlqAnswer{};
}

Expected<std::uint64_t> Dlq::purge(const store::DeadFilter& filter) {
  auto purged = store_.purge(filter);
  if (!purged) return purged.error();
  log::info("dead events purged", {{"discarded", std::to_string(*purged)},
                                   {"pipeline", filter.pipeline},
                                   {"error_type", filter.error_type}});
  return purged;
}

}  // namespace eventflow::runtime
